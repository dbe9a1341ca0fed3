"""`backprop tune DATA --target COL --grid "hidden=16,32 lr=0.01,0.001" --out best.safetensors`:
a cross-validated hyperparameter search (scikit-learn's GridSearchCV / RandomizedSearchCV over
backprop's MLP estimators), in local processes or on a Dask cluster (``--scheduler``).

Prints the ranked settings, writes them as CSV with ``--results`` (also after Ctrl-C, with the
fits finished so far), refits the best setting on all rows and saves it with its preprocessing,
like ``backprop train``. The logic is in :mod:`backprop.tune`; docs/distributed.md explains it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from ._common import (add_data_options, column_list, format_table, note, positive_int, read_table,
                      refuse_overwrite, seed_type)

NAME = "tune"
HELP = "search hyperparameters by cross-validation (locally or on a Dask cluster) and save the best model"


def add_arguments(parser):
    parser.add_argument("data", help="CSV file with a header line of column names")
    parser.add_argument("--target", required=True, metavar="COLUMN", help="the column to predict")
    parser.add_argument("--grid", required=True, metavar='"hidden=16,32 lr=0.01,0.001 ..."',
                        help="the values to try: name=v1,v2,... items separated by spaces; names are "
                             "hidden (32-16 is two layers), lr, alpha, epochs, batch, seed, activation, "
                             "solver and the estimators' other parameters (see docs/distributed.md)")
    parser.add_argument("--out", required=True, metavar="MODEL",
                        help="model file for the best setting, refitted on all rows (.safetensors)")
    parser.add_argument("--cv", type=positive_int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--search", choices=("grid", "random"), default="grid",
                        help="every setting of the grid, or --n-iter settings drawn from it (default grid)")
    parser.add_argument("--n-iter", type=positive_int, default=10,
                        help="settings a random search draws (default 10)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run the fits on the Dask cluster at ADDRESS (tcp://host:8786; needs backprop[dask])")
    where.add_argument("--workers", type=positive_int, default=None,
                       help="local processes to fit in (default: one per CPU; 1 fits in this process)")
    parser.add_argument("--results", default=None, metavar="CSV",
                        help="also write the ranked table here (kept with the fits so far on Ctrl-C)")
    parser.add_argument("--features", type=column_list, default=None, metavar="A,B,...",
                        help="feature columns (default: every column but the target)")
    parser.add_argument("--task", choices=("classify", "regress"), default=None,
                        help="default: classify for text labels or few integer values, else regress")
    parser.add_argument("--seed", type=seed_type, default=0,
                        help="seed of the folds, the random draws and the estimators (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_options(parser)


def load_data(args):
    """The table (the one place to switch readers)."""
    return read_table(args)


def run(args) -> int:
    import os

    from .. import __version__
    from .. import tune
    from .train import _read_task

    from .._validation import BackpropError

    _check_outputs(args)
    try:
        grid = tune.parse_grid(args.grid)
    except BackpropError as exc:
        return _usage_error(exc)
    table = load_data(args)
    task, features, encoder, X, y = _read_task(table, args)
    settings = tune.candidates(grid, args.search, args.n_iter, args.seed)
    try:
        tune.check_candidates(task, settings, args.seed)  # every setting checked before any fit
    except BackpropError as exc:
        return _usage_error(exc)
    if args.search == "random" and args.n_iter > len(settings):
        note(f"--n-iter {args.n_iter} is more than the grid's {len(settings)} settings; trying them all")
    workers = args.workers or (os.cpu_count() or 1)
    where = f"the Dask cluster at {args.scheduler}" if args.scheduler else (
        "this process" if workers == 1 else f"{workers} local processes")
    note(f"{args.search} search: {len(settings)} settings x {args.cv} folds = {len(settings) * args.cv} fits "
         f"on {table.n_rows} rows, in {where}")
    bar = None if args.quiet else _FitBar()
    try:
        result = tune.search(X, y, task, grid, cv=args.cv, method=args.search, n_iter=args.n_iter,
                             seed=args.seed, workers=None if args.scheduler else workers,
                             scheduler=args.scheduler, progress=bar)
    except tune.SearchInterrupted as stop:
        if bar is not None:
            bar.close()
        done = sum(r["folds"] for r in stop.result.rows)
        if args.results:
            _write_results(args.results, stop.result.rows, task, args.cv)
            note(f"interrupted after {done} of {stop.result.n_fits} fits; the results so far are in {args.results}")
        else:
            note(f"interrupted after {done} of {stop.result.n_fits} fits; nothing was saved")
        return 130
    finally:
        if bar is not None:
            bar.close()
    metric = "accuracy" if task == "classify" else "r2"
    print(_table(result.rows, metric))
    if args.results:
        _write_results(args.results, result.rows, task, args.cv)
        note(f"results written to {args.results}")
    failed = [r for r in result.rows if not math.isfinite(r["mean_score"])]
    if failed:
        note(f"{len(failed)} setting(s) failed in at least one fold (e.g. training diverged); they rank last")
    best = result.rows[0]
    if not math.isfinite(best["mean_score"]):
        from .._validation import BackpropError

        raise BackpropError("every setting failed to train; nothing was saved; try smaller `lr` values")
    note(f"refitting the best setting ({_shown(best['setting'])}) on all {table.n_rows} rows")
    pipe = tune.refit(X, y, task, best["setting"], args.seed)
    est, pre = tune.to_model(pipe, task, features, args.target, encoder)
    metadata = pre.to_metadata()
    metadata.update(
        training={"data": Path(args.data).name, "tuned": True, "search": args.search, "cv": args.cv,
                  "seed": args.seed, "settings_tried": len(result.rows),
                  "best": tune.settings_json(best["setting"]), "grid": args.grid},
        metrics={f"cv_{metric}_mean": best["mean_score"], f"cv_{metric}_std": best["std_score"]},
        backprop_version=__version__,
    )
    est.save(args.out, metadata=metadata)
    print(f"best: {_shown(best['setting'])} ({metric} {best['mean_score']:.4f} +- {best['std_score']:.4f})")
    print(f"model: {args.out} ({est._network().title}, refitted on all {table.n_rows} rows)")
    return 0


def _usage_error(exc) -> int:
    """A bad --grid is a usage error: one line, exit 2 (like argparse's)."""
    print(f"backprop: error: {' '.join(str(exc).split())}", file=sys.stderr)
    return 2


class _FitBar:
    """Counts finished fits: a tqdm bar on a terminal, else a line at every tenth of the work."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self._bar = None
        self._shown = -1
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc="tune", unit="fit", file=self.stream, dynamic_ncols=True)
            self._bar.update(done - self._bar.n)
            return
        tenth = done * 10 // total
        if tenth > self._shown:
            self._shown = tenth
            print(f"[tune] {done}/{total} fits", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _shown(setting: dict) -> str:
    from ..tune import short_name, show_value

    return " ".join(f"{short_name(k)}={show_value(v)}" for k, v in setting.items())


def _table(rows, metric: str) -> str:
    from ..tune import short_name, show_value

    names = list(rows[0]["setting"]) if rows else []
    header = ["rank", *map(short_name, names), f"mean {metric}", "std", "fit s", "folds"]
    body = [[str(r["rank"]), *(show_value(r["setting"][n]) for n in names), _number(r["mean_score"]),
             _number(r["std_score"]), f"{r['fit_time']:.3f}", str(r["folds"])] for r in rows]
    return format_table(header, body)


def _number(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "failed"


def _write_results(path, rows, task: str, cv: int) -> None:
    from ..csvdata import write_csv
    from ..tune import short_name, show_value

    metric = "accuracy" if task == "classify" else "r2"
    names = list(rows[0]["setting"]) if rows else []
    columns = ["rank", *map(short_name, names), f"mean_{metric}", f"std_{metric}", "mean_fit_time", "folds",
               *(f"fold{k}_{metric}" for k in range(cv))]
    body = []
    for r in rows:
        scores = [repr(float(s)) if math.isfinite(s) else "" for s in r["scores"]]
        body.append([r["rank"], *(show_value(r["setting"][n]) for n in names),
                     repr(r["mean_score"]) if math.isfinite(r["mean_score"]) else "",
                     repr(r["std_score"]) if math.isfinite(r["std_score"]) else "",
                     f"{r['fit_time']:.6f}", r["folds"], *scores, *([""] * (cv - len(scores)))])
    write_csv(path, columns, body)


def _check_outputs(args) -> None:
    """Fail before searching, not after: the output folders exist and nothing overwrites the data."""
    from .._validation import BackpropError

    for flag, value in (("--out", args.out), ("--results", args.results)):
        if value is None:
            continue
        parent = Path(value).parent
        if not (parent if str(parent) else Path(".")).is_dir():
            raise BackpropError(f"`{flag}`: cannot write {value!r}: its folder does not exist")
        refuse_overwrite(value, args.data)
    if args.results and Path(args.results).resolve() == Path(args.out).resolve():
        raise BackpropError(f"`--results` and `--out` must be different files; got {args.out!r} for both")
