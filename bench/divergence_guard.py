"""Cost of the divergence guard: a per-sample (batch_size=1) digits epoch with the guard as
shipped vs. with its checks replaced by no-ops, in the same run, interleaved; medians of
several repetitions and their ratio. Pins BLAS to one thread.

    PYTHONPATH=src python bench/divergence_guard.py [--reps 7] [--epochs 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit

from threadpoolctl import threadpool_limits

from backprop import Network, fit, training
from backprop.datasets import load_digits, one_hot
from backprop.guards import DivergenceGuard


class NoGuard(DivergenceGuard):
    """The same object, every check a no-op."""

    def check_batch(self, value, epoch, batch):
        pass

    def check_epoch(self, loss, epoch):
        pass


def one_run(X, Y, epochs, guard_cls) -> float:
    training.DivergenceGuard = guard_cls
    try:
        net = Network.from_sizes([64, 32, 16, 10], activation="sigmoid", seed=0)
        start = time.perf_counter()
        fit(net, X, Y, epochs=epochs, batch_size=1, lr=0.1, seed=0)
        return time.perf_counter() - start
    finally:
        training.DivergenceGuard = DivergenceGuard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    X, y = load_digits()
    Y = one_hot(y, 10)
    with threadpool_limits(1):
        one_run(X, Y, 1, DivergenceGuard)  # warm-up
        times = {"guard": [], "none": []}
        for rep in range(args.reps):  # alternate the order so drift hits both alike
            order = [("guard", DivergenceGuard), ("none", NoGuard)][:: 1 if rep % 2 else -1]
            for key, cls in order:
                times[key].append(one_run(X, Y, args.epochs, cls))
    g, n = statistics.median(times["guard"]), statistics.median(times["none"])
    steps = args.epochs * len(X)
    print(f"digits, {len(X)} samples, batch_size=1, {args.epochs} epochs, {args.reps} reps, 1 BLAS thread")
    print(f"median with guard   : {g:.3f} s ({g / steps * 1e6:.2f} us/step)")
    print(f"median without guard: {n:.3f} s ({n / steps * 1e6:.2f} us/step)")
    print(f"ratio guard/none    : {g / n:.4f}  (overhead {100 * (g / n - 1):+.2f}%; noise on a shared machine)")
    # The checks alone, timed directly (steadier than the difference of two noisy totals).
    from backprop.callbacks import History, TrainState

    net = Network.from_sizes([64, 32, 16, 10], activation="sigmoid", seed=0)
    guard = DivergenceGuard(TrainState(net, None, History(), None, 1), X)
    per_batch = min(timeit.repeat(lambda: guard.check_batch(0.5, 0, 0), number=100_000, repeat=5)) / 100_000
    per_epoch = min(timeit.repeat(lambda: guard.check_epoch(0.5, 0), number=1_000, repeat=5)) / 1_000
    share = (per_batch * steps + per_epoch * args.epochs) / n
    print(f"check_batch: {per_batch * 1e9:.0f} ns/call; check_epoch: {per_epoch * 1e6:.1f} us/call; "
          f"share of the epoch time: {100 * share:.3f}%")


if __name__ == "__main__":
    main()
