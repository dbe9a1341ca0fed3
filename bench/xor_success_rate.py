"""How often does `backprop demo xor` learn XOR? Success rate over seeds, both bias layouts.

A seed succeeds when, after training (20,000 epochs by default, learning rate 0.5, per-sample
updates), the network's step output (pred > 0.5) is right on all four rows. Runs the demo's own
``backprop.demos.xor.run``; the result table goes to stdout (markdown), progress to stderr.

    PYTHONPATH=src python bench/xor_success_rate.py --seeds 100 [--epochs 20000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from backprop.demos import xor


def trial(job):
    variant, seed, epochs = job
    result = xor.run(epochs=epochs, seed=seed, variant=variant, every=epochs)
    return variant, seed, result["all_correct"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="seeds 0..N-1 (default 100)")
    parser.add_argument("--epochs", type=int, default=20000, help="epochs per run (default 20000)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    args = parser.parse_args(argv)
    jobs = [(v, s, args.epochs) for v in xor.VARIANTS for s in range(args.seeds)]
    start = time.perf_counter()
    wins: dict[str, list[int]] = {v: [] for v in xor.VARIANTS}
    with ProcessPoolExecutor(args.jobs) as pool:
        for n, (variant, seed, ok) in enumerate(pool.map(trial, jobs), start=1):
            if ok:
                wins[variant].append(seed)
            print(f"\r{n}/{len(jobs)} runs", end="", file=sys.stderr, flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(f"| variant | seeds that classify all four rows ({args.epochs} epochs) |")
    print("|---|---|")
    for variant in xor.VARIANTS:
        print(f"| {variant} | {len(wins[variant])}/{args.seeds} |")
    for variant in xor.VARIANTS:
        failed = sorted(set(range(args.seeds)) - set(wins[variant]))
        print(f"\n{variant}: failing seeds {failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
