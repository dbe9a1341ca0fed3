"""Scaling of `backprop tune`'s search: a 48-setting grid (3 folds: 144 fits) on the digits,
fitted (a) in a plain loop in this process (the floor: no joblib, no Dask), (b) by tune.search on a
Dask LocalCluster (127.0.0.1) with 1 worker and (c) with 2 workers (processes, 1 thread each,
BLAS pinned to 1 thread), and (d) in 2 local joblib processes. Reports wall times, the speed-up
of 2 workers over 1, and the overhead per fit of each search over the plain loop. Every worker
process is warmed by a small fit first (imports and numba's disk cache in the worker processes).

    .venv/bin/python bench/tune_scaling.py [--cv 3] [--write]
"""

from __future__ import annotations

import argparse
import builtins
import os
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one thread per worker process: no oversubscription

import numpy as np  # noqa: E402
from common import ROOT, machine, versions  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from backprop import tune  # noqa: E402

TITLE = "Hyperparameter search: a 48-setting grid with 1 and 2 Dask workers (issue 25)"
GRID = "hidden=16,32,64,32-16 lr=0.003,0.01,0.03 alpha=1e-4,1e-3 batch=32,64 epochs=30"  # 4*3*2*2 = 48


def plain_loop(X, y, settings, cv, seed):
    folds = list(tune.splitter("classify", cv, seed).split(X, y))
    base = tune.build_pipeline("classify", seed)
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for s in settings:
            for train, test in folds:
                pipe = clone(base).set_params(**{"mlp__" + k: v for k, v in s.items()})
                scores.append(pipe.fit(X[train], y[train]).score(X[test], y[test]))
    return scores


def _warm():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    plain_loop(X[:200], y[:200], [{"max_iter": 2}], 2, 0)


def on_cluster(n_workers, X, y, grid, cv, seed):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as lc, Client(lc) as client:
        client.run(_warm)  # every worker process: imports and numba's disk cache loaded
        start = time.perf_counter()
        result = tune.search(X, y, "classify", grid, cv=cv, seed=seed, client=client)
        return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true",
                        help="replace this section of docs/benchmarks.md (between its markers)")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    grid = tune.parse_grid(GRID)
    settings = tune.candidates(grid, "grid", 0, args.seed)
    n_fits = len(settings) * args.cv
    plain_loop(X[:200], y[:200], settings[:2], 2, args.seed)  # warm numba's cache in this process
    start = time.perf_counter()
    loop_scores = plain_loop(X, y, settings, args.cv, args.seed)
    t_loop = time.perf_counter() - start
    t1, r1 = on_cluster(1, X, y, grid, args.cv, args.seed)
    t2, r2 = on_cluster(2, X, y, grid, args.cv, args.seed)
    tune.search(X[:200], y[:200], "classify", tune.parse_grid("hidden=8 epochs=2"), cv=2, workers=2)
    start = time.perf_counter()
    tune.search(X, y, "classify", grid, cv=args.cv, seed=args.seed, workers=2)
    t_local2 = time.perf_counter() - start
    same = sorted(np.round([r["mean_score"] for r in r1.rows], 12)) == sorted(np.round([r["mean_score"] for r in r2.rows], 12))
    loop_means = np.asarray(loop_scores).reshape(len(settings), args.cv).mean(axis=1)
    same_loop = sorted(np.round(loop_means, 12)) == sorted(np.round([r["mean_score"] for r in r1.rows], 12))
    out = []
    print = lambda line="": out.append(str(line))  # noqa: E731 (the section's lines, shown and written below)
    print(f"## {TITLE}\n")
    print(f"{len(settings)} settings x {args.cv} folds = {n_fits} fits on the digits ({len(y)} rows, 64 features); "
          f"grid `{GRID}`, seed {args.seed}.\n")
    print("| run | wall time | per fit | overhead per fit vs the plain loop |")
    print("|---|---:|---:|---:|")
    for name, t in (("plain loop, this process", t_loop), ("Dask LocalCluster, 1 worker", t1),
                    ("Dask LocalCluster, 2 workers", t2), ("joblib, 2 local processes", t_local2)):
        over = "-" if t is t_loop else f"{(t - t_loop) / n_fits * 1000:+.1f} ms"
        if name.endswith("2 workers") or name.startswith("joblib"):  # two in parallel: per-worker time
            over = f"{(2 * t - t_loop) / n_fits * 1000:+.1f} ms (worker time)"
        print(f"| {name} | {t:.2f} s | {t / n_fits * 1000:.1f} ms | {over} |")
    print(f"\nspeed-up of 2 Dask workers over 1: {t1 / t2:.2f}x; the same scores with 1 and 2 workers: {same}; "
          f"the same as the plain loop: {same_loop}.")
    m, v = machine(), versions()
    print(f"\nmachine: {m}; versions: {v}")
    text = "\n".join(out)
    builtins.print(text)
    if args.write:
        write_section(ROOT / "docs" / "benchmarks.md", text)


def write_section(path, text: str) -> None:
    """Replace the page's section between the tune-scaling markers (or append it), atomically."""
    from backprop.io import atomic_write_bytes

    start, end = "<!-- tune-scaling:start -->", "<!-- tune-scaling:end -->"
    page = path.read_text(encoding="utf-8")
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in page and end in page:
        page = page[:page.index(start)] + block + page[page.index(end) + len(end):]
    else:
        page = page.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_bytes(path, page.encode())


if __name__ == "__main__":
    main()
