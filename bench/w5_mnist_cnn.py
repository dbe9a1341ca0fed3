"""W5: a wider CNN on 60,000 synthetic 1x28x28 images (Conv2D(1,32,3,relu) -> MaxPool 2 ->
Conv2D(32,64,3,relu) -> MaxPool 2 -> Flatten -> Dense(1600,128,relu) -> Dense(128,10), softmax
cross-entropy), batch 128, SGD lr 0.01 momentum 0.9, float32.

A full epoch takes tens of seconds on this machine's 2 shared cores, so training is timed on a
fraction of one (``TRAIN_ROWS`` samples per call: the same batches, data and network as a full
epoch), ours and PyTorch at 1 and 2 threads round-robin; the time is scaled to 60,000 samples.
Prediction is timed on all 60,000 images: ours (``Network.predict``, the compiled conv forward)
against PyTorch's inference mode at 1 and 2 threads (2048 images per call). Peak RSS is that of a fresh process that
makes the data and trains ``TRAIN_ROWS`` samples (VmHWM)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import common  # noqa: F401
import numpy as np
from common import ROOT, interleaved_medians, print_rows, torch_or_none

OURS = "backprop fit() float32 (compiled conv epoch)"
PREDICT_OURS = "backprop predict() float32 (compiled conv forward)"
TITLE = "W5: synthetic 1x28x28 CNN (conv32-pool-conv64-pool-128-10), batch 128, SGD momentum 0.9, float32"
REPS = 3
N, BATCH, TRAIN_ROWS = 60000, 128, 5120
LR, MOMENTUM = 0.01, 0.9


def data(n=N, seed=0):
    """Synthetic digits-like images: class-dependent blobs plus noise, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    yy, xx = np.mgrid[0:28, 0:28]
    centres = rng.uniform(6, 22, (10, 2))
    X = np.empty((n, 1, 28, 28), np.float32)
    for k in range(10):
        blob = np.exp(-((yy - centres[k, 0]) ** 2 + (xx - centres[k, 1]) ** 2) / 18.0).astype(np.float32)
        X[y == k, 0] = blob
    X += rng.random(X.shape, dtype=np.float32) * 0.5
    return X, y, np.eye(10, dtype=np.float32)[y]


def network(seed=0):
    from backprop import Conv2D, Dense, Flatten, MaxPool2D, Network

    f = np.float32
    return Network([
        Conv2D(1, 32, 3, activation="relu", seed=seed, dtype=f), MaxPool2D(2),
        Conv2D(32, 64, 3, activation="relu", seed=seed + 1, dtype=f), MaxPool2D(2), Flatten(),
        Dense(1600, 128, activation="relu", seed=seed + 2, dtype=f), Dense(128, 10, seed=seed + 3, dtype=f),
    ], loss="softmax_cross_entropy", input_shape=(1, 28, 28))


def torch_model(torch):
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))


def peak_rss() -> float:
    """VmHWM (MiB) of a fresh process that makes the data and trains TRAIN_ROWS samples."""
    code = ("import sys; sys.path.insert(0, 'bench'); import common, w5_mnist_cnn as w; "
            "from backprop import SGD, fit; X, y, Y = w.data(); net = w.network(); "
            "fit(net, X[:w.TRAIN_ROWS], Y[:w.TRAIN_ROWS], epochs=1, batch_size=w.BATCH, "
            "optimizer=SGD(w.LR, momentum=w.MOMENTUM), seed=1); "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def allocations() -> tuple[int, int, int, int]:
    """numba's allocation count (NRT statistics: every array compiled code allocates, and one per
    array a dispatcher is passed) over one fit epoch of TRAIN_ROWS // 4 samples and of
    TRAIN_ROWS, in a fresh process with ``NUMBA_NRT_STATS=1`` (read at numba's import), after a
    warm-up fit (numba's runtime keeps no count before its first call). Returns (steps, count, steps, count): equal counts mean none is per step."""
    code = ("import sys; sys.path.insert(0, 'bench'); import w5_mnist_cnn as w; "
            "from numba.core.runtime import rtsys; from backprop import SGD, fit; "
            "X, y, Y = w.data(); net = w.network(); out = []\n"
            "for i, rows in enumerate((w.BATCH, w.TRAIN_ROWS // 4, w.TRAIN_ROWS)):\n"
            "    before = rtsys.get_allocation_stats().alloc if i else 0\n"
            "    fit(net, X[:rows], Y[:rows], epochs=1, batch_size=w.BATCH, "
            "optimizer=SGD(w.LR, momentum=w.MOMENTUM), seed=1)\n"
            "    out += [-(-rows // w.BATCH), rtsys.get_allocation_stats().alloc - before]\n"
            "print(*out[2:])")
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=env)
    return tuple(int(v) for v in out.stdout.split()[-4:])


def run(reps: int = REPS, quick: bool = False, train_rows: int = TRAIN_ROWS, predict: bool = True):
    from backprop import SGD, fit

    X, y, Y = data()
    Xs, Ys = X[:train_rows], Y[:train_rows]
    scale = N / train_rows
    net = network()
    opt = SGD(LR, momentum=MOMENTUM)
    fns = {OURS: lambda: fit(net, Xs, Ys, epochs=1, batch_size=BATCH, optimizer=opt, seed=1, fast=True)}
    pred = {PREDICT_OURS: lambda: net.predict(X)}
    torch = torch_or_none()
    if torch is not None:
        Xt, yt = torch.from_numpy(Xs), torch.from_numpy(y[:train_rows].astype(np.int64))
        Xall = torch.from_numpy(X)
        for threads in (1, 2):
            model = torch_model(torch)
            topt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
            loss_fn = torch.nn.CrossEntropyLoss()
            rng = np.random.default_rng(1)

            def train(model=model, topt=topt, threads=threads, rng=rng):
                before = torch.get_num_threads()
                torch.set_num_threads(threads)
                try:
                    order = torch.from_numpy(rng.permutation(train_rows))
                    for s in range(0, train_rows, BATCH):
                        idx = order[s:s + BATCH]
                        topt.zero_grad(set_to_none=True)
                        loss_fn(model(Xt[idx]), yt[idx]).backward()
                        topt.step()
                finally:
                    torch.set_num_threads(before)

            def infer(model=model, threads=threads):
                before = torch.get_num_threads()
                torch.set_num_threads(threads)
                try:
                    with torch.inference_mode():  # in chunks, as one would serve it
                        return torch.cat([model(Xall[s:s + 2048]) for s in range(0, N, 2048)])
                finally:
                    torch.set_num_threads(before)

            name = f"PyTorch {torch.__version__} CPU float32, {threads} thread{'s' * (threads > 1)}"
            fns[name] = train
            pred[f"{name} (inference_mode)"] = infer
    rows = [(name, t * scale, f"{train_rows} samples per call, scaled to {N}")
            for name, t in interleaved_medians(fns, 1 if quick else reps).items()]
    train_rounds = dict(common.ROUNDS)
    prows = [(name, t, f"{N} images") for name, t in interleaved_medians(pred, 1 if quick else reps).items()
             ] if predict else []
    common.ROUNDS.clear()
    common.ROUNDS.update({k: [t * scale for t in v] for k, v in train_rounds.items()})
    return rows, prows


if __name__ == "__main__":
    # --train-only [ROWS]: the training rows alone, on ROWS samples per call (a quick check)
    only = "--train-only" in sys.argv
    tail = sys.argv[sys.argv.index("--train-only") + 1:] if only else []
    rows, prows = run(quick="--quick" in sys.argv, train_rows=int(tail[0]) if tail else TRAIN_ROWS,
                      predict=not only)
    print_rows(TITLE, rows, OURS)
    for name, *_ in rows[1:]:  # PyTorch's time over ours, round by round
        ratios = common.round_ratios(rows, name, OURS) or []
        print(f"{name} / ours by round:", " ".join(f"{r:.2f}" for r in ratios))
    if not only:
        print_rows("W5 predict", prows, PREDICT_OURS)
        print(json.dumps({"peak_rss_mib": peak_rss()}))
