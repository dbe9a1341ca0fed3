"""W4: the digits CNN of issue 20 (Conv2D(1,16,3,pad 1,relu) -> MaxPool 2 -> Conv2D(16,32,3,pad 1,relu)
-> MaxPool 2 -> Flatten -> Dense(128,64,relu) -> Dense(64,10), softmax cross-entropy) on the 1347
training digits (1x8x8), batch 32, SGD lr 0.01 momentum 0.9, float32 and float64.

Ours (the compiled conv epoch, ``backprop.fast.conv``), PyTorch at 1 and at 2 threads and the floor
(the GEMMs alone: the 11 products of a batch's forward and backward into preallocated outputs,
numpy at 1 thread, as ours pins BLAS here) are timed round-robin in this process; the numpy
reference path (fast=False) once per round too. Times are per epoch."""

from __future__ import annotations

import common  # noqa: F401
import numpy as np
from common import interleaved_medians, print_rows, torch_or_none
from w1_digits_per_sample import data

OURS = "backprop fit() float32 (compiled conv epoch)"
TITLE = "W4: digits CNN 1x8x8 (conv16-pool-conv32-pool-64-10), batch 32, SGD momentum 0.9 (1347 samples)"
REPS = 5
BATCH = 32
LR, MOMENTUM = 0.01, 0.9


def network(dtype, seed=0):
    from backprop import Conv2D, Dense, Flatten, MaxPool2D, Network

    return Network([
        Conv2D(1, 16, 3, padding=1, activation="relu", seed=seed, dtype=dtype), MaxPool2D(2),
        Conv2D(16, 32, 3, padding=1, activation="relu", seed=seed + 1, dtype=dtype), MaxPool2D(2),
        Flatten(), Dense(128, 64, activation="relu", seed=seed + 2, dtype=dtype),
        Dense(64, 10, seed=seed + 3, dtype=dtype),
    ], loss="softmax_cross_entropy", input_shape=(1, 8, 8))


def conv_gemms(layers, batch):
    """(m, k, n, transposes) of every product of one batch: for each conv layer (C, H, W, O, kh,
    kw, oh, ow) or dense layer (k, n), forward cols @ Wc, dWc = cols.T @ dZ and (not the first
    layer) dcols = dZ @ Wc.T."""
    out = []
    for i, (rows, k, n) in enumerate(layers):
        m = batch * rows
        out.append(("nn", m, k, n))
        out.append(("tn", m, k, n))
        if i:
            out.append(("nt", m, k, n))
    return out


def floor_epoch(products, n, batch, dtype):
    """An epoch of only the products (numpy matmul into preallocated outputs)."""
    rng = np.random.default_rng(0)
    calls = []
    for kind, m, k, n_ in products:
        A = rng.standard_normal((m, k)).astype(dtype)
        W = rng.standard_normal((k, n_)).astype(dtype)
        D = rng.standard_normal((m, n_)).astype(dtype)
        if kind == "nn":
            calls.append((A, W, np.empty((m, n_), dtype)))
        elif kind == "tn":
            calls.append((A.T, D, np.empty((k, n_), dtype)))
        else:
            calls.append((D, W.T, np.empty((m, k), dtype)))
    n_batches = -(-n // batch)

    def epoch():
        for _ in range(n_batches):
            for a, b, c in calls:
                np.matmul(a, b, out=c)

    return epoch


# (rows per sample, k, n) of the W4 network's products
W4_PRODUCTS = [(64, 9, 16), (16, 144, 32), (1, 128, 64), (1, 64, 10)]


def torch_model(torch, dtype):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    return model.to(torch.float32 if dtype == np.float32 else torch.float64)


def torch_epoch_fn(torch, model, X, y, batch, epochs, threads, seed=0):
    """A function training ``epochs`` epochs of ``model`` at ``threads`` intra-op threads."""
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    n = X.shape[0]

    def run():
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for _ in range(epochs):
                order = torch.from_numpy(rng.permutation(n))
                for s in range(0, n, batch):
                    idx = order[s:s + batch]
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(model(X[idx]), y[idx])
                    loss.backward()
                    opt.step()
        finally:
            torch.set_num_threads(before)

    return run


def run(reps: int = REPS, quick: bool = False):
    from threadpoolctl import threadpool_limits

    from backprop import SGD, fit

    X, y, Y = data()
    X = X.reshape(-1, 1, 8, 8)
    n = len(X)
    epochs = 3 if quick else 5
    rows, fns, per = [], {}, {}
    torch = torch_or_none()
    for dtype in (np.float32, np.float64):
        name = "float32" if dtype == np.float32 else "float64"
        net = network(dtype)
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        opt = SGD(LR, momentum=MOMENTUM)

        def ours(net=net, Xd=Xd, Yd=Yd, opt=opt):
            fit(net, Xd, Yd, epochs=epochs, batch_size=BATCH, optimizer=opt, seed=1, fast=True)

        fns[f"backprop fit() {name} (compiled conv epoch)"] = ours
        floor = floor_epoch(conv_gemms(W4_PRODUCTS, BATCH), n, BATCH, dtype)

        def floor_run(floor=floor):
            with threadpool_limits(1, user_api="blas"):
                for _ in range(epochs):
                    floor()

        fns[f"floor {name}: the GEMMs alone (numpy, 1 thread)"] = floor_run
        if torch is not None:
            Xt, yt = torch.from_numpy(Xd), torch.from_numpy(y.astype(np.int64))
            for threads in (1, 2):
                model = torch_model(torch, dtype)
                fns[f"PyTorch {torch.__version__} CPU {name}, {threads} thread{'s' * (threads > 1)}"] = \
                    torch_epoch_fn(torch, model, Xt, yt, BATCH, epochs, threads)
    times = interleaved_medians(fns, reps)
    for name, t in times.items():
        rows.append((name, t / epochs, f"{epochs} epochs per call"))
    for key in list(common.ROUNDS):
        common.ROUNDS[key] = [t / epochs for t in common.ROUNDS[key]]
    for name in ("float32", "float64"):  # the numpy reference path, a single epoch per call
        dtype = np.float32 if name == "float32" else np.float64
        net = network(dtype)
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        from common import median_time

        t = median_time(lambda: fit(net, Xd, Yd, epochs=1, batch_size=BATCH,
                                    optimizer=SGD(LR, momentum=MOMENTUM), seed=1, fast=False), 3)
        rows.append((f"backprop numpy reference path {name} (fast=False)", t, "channels-last layers"))
    return rows


def faster_torch(rows, name: str):
    """The row of PyTorch's faster thread setting for dtype ``name``."""
    cands = [r for r in rows if r[0].startswith("PyTorch") and name in r[0]]
    return min(cands, key=lambda r: r[1])[0] if cands else None


if __name__ == "__main__":
    rows = run(quick=True)
    print_rows(TITLE, rows, OURS)
