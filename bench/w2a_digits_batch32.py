"""W2a: the W1 network (64-32-16-10 sigmoid, half_sse) with mini-batches of 32, lr 0.1.
The floor is the sum of the BLAS calls alone (3 forward, 3 weight-gradient and 2 delta GEMMs per
batch into preallocated outputs), timed round-robin with ours."""

from __future__ import annotations

import common  # noqa: F401
import numpy as np
from common import median_time, print_rows, quiet_sklearn, torch_or_none
from w1_digits_per_sample import data, time_digits_fits, torch_digits

OURS = "backprop fit() (compiled epoch kernel)"
FLOOR = "floor: the BLAS calls alone (numpy, 1 thread)"
TITLE = "W2a: digits 64-32-16-10 sigmoid, half_sse, batch 32, lr 0.1 (1347 samples)"
REPS = 7  # rounds of the round-robin (the medians' samples)
BATCH = 32


def gemm_floor_epoch(sizes, n, batch, dtype):
    """An epoch of only the matrix products of forward + backward, outputs preallocated."""
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((a, b)).astype(dtype) for a, b in zip(sizes, sizes[1:])]
    As = [rng.standard_normal((batch, s)).astype(dtype) for s in sizes]
    Zs = [np.empty((batch, s), dtype) for s in sizes[1:]]
    Gs = [np.empty_like(W) for W in Ws]
    Ps = [np.empty((batch, s), dtype) for s in sizes[:-1]]
    n_batches = n // batch

    def epoch():
        for _ in range(n_batches):
            for i, W in enumerate(Ws):
                np.matmul(As[i], W, out=Zs[i])
            for i in range(len(Ws) - 1, -1, -1):
                np.matmul(As[i].T, Zs[i], out=Gs[i])
                if i:
                    np.matmul(Zs[i], Ws[i].T, out=Ps[i])

    return epoch


def run(reps: int = REPS, quick: bool = False):
    from seed_loop import SeedNetwork

    X, y, Y = data()
    n = len(X)
    rng = np.random.default_rng(0)
    epochs = 20 if quick else 50
    from threadpoolctl import threadpool_limits

    floor_epoch = gemm_floor_epoch([64, 32, 16, 10], n, BATCH, np.float64)

    def floor():  # as many epochs as ours per call, BLAS at 1 thread (as ours pins it)
        with threadpool_limits(1, user_api="blas"):
            for _ in range(epochs):
                floor_epoch()

    peers = {FLOOR: (floor, epochs, "8 GEMMs per batch, no Python around them")}
    rows, floor_rows = time_digits_fits(X, Y, BATCH, epochs, reps, 5, reps, ours=OURS, peers=peers)

    seed = SeedNetwork([64, 32, 16, 10], alpha=0.1 / BATCH)
    Xb = SeedNetwork.add_bias_column(X)

    def plain_epoch():
        order = rng.permutation(n)
        for s in range(0, n, BATCH):
            idx = order[s:s + BATCH]
            seed.fit_batch(Xb[idx], Y[idx])

    t = median_time(plain_epoch, reps)
    rows.append(("plain numpy mini-batch loop (seed 003 code on batches)", t, "bias trick"))

    quiet_sklearn()
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(32, 16), activation="logistic", solver="sgd",
                        batch_size=BATCH, learning_rate_init=0.1, momentum=0.0, alpha=0.0,
                        max_iter=1, random_state=0)
    t = median_time(lambda: clf.fit(X, y), reps)
    rows.append((f"scikit-learn MLPClassifier(batch_size={BATCH})", t, "one fit(max_iter=1)"))

    torch = torch_or_none()
    if torch is not None:
        model, opt, Xt, Yt = torch_digits(torch, X, Y)

        def torch_epoch():
            order = torch.from_numpy(rng.permutation(n))
            for s in range(0, n, BATCH):
                idx = order[s:s + BATCH]
                opt.zero_grad()
                loss = 0.5 * ((model(Xt[idx]) - Yt[idx]) ** 2).sum(1).mean()
                loss.backward()
                opt.step()

        t = median_time(torch_epoch, reps)
        rows.append(("PyTorch CPU (float64)", t, "nn.Sequential + optim.SGD"))
    return rows + floor_rows  # the floor last, as in the other tables


if __name__ == "__main__":
    print_rows(TITLE, run(), OURS)
