"""Hyperparameter search over the estimators: scikit-learn's GridSearchCV / RandomizedSearchCV run
through joblib, in local processes or on a Dask cluster.

- :func:`parse_grid` reads ``"hidden=16,32 lr=0.01,0.001 alpha=1e-4"`` into lists of estimator
  parameter values; :func:`check_candidates` builds every setting the search will fit and runs the
  estimator's own parameter checks on it, so an unknown name or a bad value is refused before the
  first fit.
- :func:`search` runs the search. Each fit is wrapped in :class:`_Reported`, which sends one small
  message per finished fit (its setting, fold and score) to the parent: appended to a file for
  local processes, a Dask event (``Worker.log_event``) on a cluster. The parent counts them for the
  progress bar and keeps them, so a search stopped by Ctrl-C still has its results so far
  (:class:`SearchInterrupted`).
- :func:`to_model` turns the refitted best pipeline (StandardScaler, then the MLP; for regression a
  standardised target too) into a Network and a :class:`~backprop.preprocessing.Preprocessor`, the
  same model file ``backprop train`` writes.

Nothing here prints; progress goes to a callback.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, clone

from ._validation import BackpropError

__all__ = ["parse_grid", "check_candidates", "search", "to_model", "SearchResult", "SearchInterrupted",
           "build_pipeline", "candidates", "ALIASES"]

ALIASES = {"hidden": "hidden_layer_sizes", "lr": "learning_rate_init", "epochs": "max_iter",
           "seed": "random_state", "batch": "batch_size"}
# estimator parameter -> kind of value the grid may give it
_KINDS = {
    "hidden_layer_sizes": "sizes", "learning_rate_init": "float", "alpha": "float", "max_iter": "int",
    "batch_size": "int", "random_state": "int", "n_iter_no_change": "int", "activation": "text",
    "solver": "text", "learning_rate": "text", "loss": "text", "momentum": "float", "beta_1": "float",
    "beta_2": "float", "epsilon": "float", "tol": "float", "power_t": "float",
    "validation_fraction": "float", "early_stopping": "bool", "nesterovs_momentum": "bool",
    "shuffle": "bool",
}
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_CONNECT_TIMEOUT = 5.0


# -- the grid ----------------------------------------------------------------------------------
def _value(name: str, kind: str, text: str):
    text = text.strip()
    try:
        if kind == "sizes":
            if text.lower() in ("none", "0"):
                return ()
            sizes = tuple(int(part) for part in text.split("-"))
            if min(sizes) < 1:
                raise ValueError
            return sizes
        if kind == "int":
            number = float(text)
            if number != int(number):
                raise ValueError
            return int(number)
        if kind == "float":
            number = float(text)
            if not math.isfinite(number):
                raise ValueError
            return number
        if kind == "bool":
            return _BOOLS[text.lower()]
    except (ValueError, KeyError):
        expected = {"sizes": "layer sizes like 32 or 32-16 (or none)", "int": "an integer",
                    "float": "a finite number", "bool": "true or false"}[kind]
        raise BackpropError(f"`--grid` {name}: each value must be {expected}; got {text!r}") from None
    return text


def parse_grid(text: str) -> dict[str, list]:
    """``"hidden=16,32-16 lr=0.01,0.001"`` -> ``{"hidden_layer_sizes": [(16,), (32, 16)],
    "learning_rate_init": [0.01, 0.001]}``. Names are the estimators' parameters or the short
    names in ``ALIASES``; ``32-16`` is two hidden layers. Unknown names and malformed values are
    refused with the accepted names or the expected form."""
    grid: dict[str, list] = {}
    items = text.split()
    if not items:
        raise BackpropError(f"`--grid` must hold name=value,value,... items like 'hidden=16,32 lr=0.01'; got {text!r}")
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise BackpropError(f"`--grid` items must look like name=value,value,...; got {item!r}")
        param = ALIASES.get(name, name)
        if param not in _KINDS:
            known = ", ".join(sorted(set(ALIASES) | set(_KINDS)))
            raise BackpropError(f"`--grid` names an unknown parameter {name!r}; the known ones are {known}")
        if param in grid:
            raise BackpropError(f"`--grid` gives {name!r} twice; list all its values in one item")
        parsed = [_value(name, _KINDS[param], v) for v in values.split(",")]
        if len(set(map(repr, parsed))) != len(parsed):
            raise BackpropError(f"`--grid` {name}: values must be distinct; got {values!r}")
        grid[param] = parsed
    return grid


def short_name(param: str) -> str:
    """The name shown in tables: the alias where there is one."""
    return next((a for a, p in ALIASES.items() if p == param), param)


def show_value(value) -> str:
    if isinstance(value, tuple):
        return "-".join(map(str, value)) if value else "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def candidates(grid: dict[str, list], method: str, n_iter: int, seed: int) -> list[dict]:
    """Every setting the search will fit, in scikit-learn's order: the whole grid, or the
    ``n_iter`` settings RandomizedSearchCV draws from it under ``seed`` (without repeats)."""
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    if method == "grid":
        return list(ParameterGrid(grid))
    with warnings.catch_warnings():  # n_iter above the grid's size: the whole grid, said by the CLI
        warnings.simplefilter("ignore", UserWarning)
        return list(ParameterSampler(grid, n_iter=n_iter, random_state=seed))


def build_pipeline(task: str, seed: int):
    """StandardScaler then the MLP (classify); for regression the same inside a
    TransformedTargetRegressor that standardises the target, as ``backprop train`` does."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .estimators import MLPClassifier, MLPRegressor

    if task == "classify":
        return Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(random_state=seed))])
    inner = Pipeline([("scale", StandardScaler()), ("mlp", MLPRegressor(random_state=seed))])
    return TransformedTargetRegressor(regressor=inner, transformer=StandardScaler())


def _prefix(task: str) -> str:
    return "mlp__" if task == "classify" else "regressor__mlp__"


def check_candidates(task: str, settings: list[dict], seed: int) -> None:
    """Run the estimator's parameter checks on every setting (each value first, then each
    combination), naming the parameter and value of the first one refused. No fit happens."""
    mlp = build_pipeline(task, seed)
    mlp = mlp.named_steps["mlp"] if task == "classify" else mlp.regressor.named_steps["mlp"]
    seen: set = set()
    for setting in settings:
        for name, value in setting.items():
            if (name, repr(value)) in seen:
                continue
            seen.add((name, repr(value)))
            try:
                clone(mlp).set_params(**{name: value})._check_params()
            except BackpropError as exc:
                raise BackpropError(f"`--grid` {short_name(name)}={show_value(value)}: {exc}") from None
    for setting in settings:
        try:
            clone(mlp).set_params(**setting)._check_params()
        except BackpropError as exc:
            shown = " ".join(f"{short_name(k)}={show_value(v)}" for k, v in setting.items())
            raise BackpropError(f"`--grid` setting {shown}: {exc}") from None


# -- per-fit reports -----------------------------------------------------------------------------
class _FileReporter:
    """Appends one JSON line per finished fit to a file (processes on this machine)."""

    def __init__(self, path: str):
        self.path = path

    def send(self, message: dict) -> None:
        line = (json.dumps(message) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one short write in append mode: lines never interleave
        finally:
            os.close(fd)


class _DaskReporter:
    """Sends one Dask event per finished fit; the client subscribes to the topic."""

    def __init__(self, topic: str):
        self.topic = topic

    def send(self, message: dict) -> None:
        from distributed import get_worker

        try:
            worker = get_worker()
        except ValueError:  # not on a worker (a fit run in the client): nothing to report to
            return
        worker.log_event(self.topic, message)


def _jsonable_setting(setting: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in setting.items()}


class _Reported(BaseEstimator):
    """Fits ``estimator`` and, once it is scored on its test fold, reports (setting, fold, score,
    fit time) through ``reporter``; a fit that fails reports a failure and re-raises. ``keys`` are
    the searched parameter names (without the pipeline prefix)."""

    def __init__(self, estimator=None, reporter=None, keys=(), prefix=""):
        self.estimator = estimator
        self.reporter = reporter
        self.keys = keys
        self.prefix = prefix

    def _setting(self) -> dict:
        params = self.estimator.get_params()
        return _jsonable_setting({k: params[self.prefix + k] for k in self.keys})

    def fit(self, X, y):
        from sklearn.exceptions import ConvergenceWarning

        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                warnings.simplefilter("ignore", ConvergenceWarning)  # short max_iter: a quick search
                self.estimator_ = clone(self.estimator).fit(X, y)
            # the estimator ends training cleanly on Ctrl-C and says so; in a search, Ctrl-C stops the search
            if any(str(w.message).startswith("training interrupted (Ctrl-C)") for w in caught):
                raise KeyboardInterrupt
            for w in caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        except Exception as exc:
            if self.reporter is not None:
                self.reporter.send({"setting": self._setting(), "fold": None, "score": None,
                                    "fit_time": time.perf_counter() - start, "error": str(exc)[:200]})
            raise
        self.fit_time_ = time.perf_counter() - start
        return self

    def score(self, X, y):
        value = float(self.estimator_.score(X, y))
        if self.reporter is not None:
            fold = hashlib.blake2b(np.ascontiguousarray(X).tobytes(), digest_size=8).hexdigest()
            self.reporter.send({"setting": self._setting(), "fold": fold,
                                "score": value if math.isfinite(value) else None,
                                "fit_time": self.fit_time_, "error": None})
        return value


class _Collector:
    """The parent's side: keeps each fit's report once (a retried task may report twice) and calls
    ``progress(done, total)``."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None):
        self.total, self.progress = total, progress
        self.records: dict[tuple, dict] = {}
        self._lock = threading.Lock()
        self._failures = 0

    def add(self, message: dict) -> None:
        with self._lock:
            if message.get("fold") is None:
                self._failures += 1
                key = ("failed", self._failures)
            else:
                key = (json.dumps(message["setting"], sort_keys=True), message["fold"])
            if key in self.records:
                return
            self.records[key] = message
            done = min(len(self.records), self.total)
        if self.progress is not None:
            self.progress(done, self.total)


class _FilePoller:
    def __init__(self, path: str, collector: _Collector):
        self.path, self.collector = path, collector
        self._offset = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self._offset += end
        for line in data[:end].splitlines():
            self.collector.add(json.loads(line))

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.poll()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()


# -- results ------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """The ranked settings (best first) and where they came from."""

    rows: list[dict]  # rank, setting (estimator names), mean_score, std_score, fit_time, folds, scores
    n_fits: int
    elapsed: float
    backend: str
    settings: list[dict] = field(default_factory=list)

    @property
    def best(self) -> dict:
        return self.rows[0]["setting"]


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search; ``result`` holds the fits finished so far (settings with fewer
    folds than asked say so in ``folds``)."""

    def __init__(self, result: SearchResult):
        super().__init__("search interrupted")
        self.result = result


def _rank(rows: list[dict]) -> list[dict]:
    rows.sort(key=lambda r: (not math.isfinite(r["mean_score"]), -r["mean_score"]
                             if math.isfinite(r["mean_score"]) else 0.0))
    for i, row in enumerate(rows, start=1):
        row["rank"] = i
    return rows


def _rows_from_cv(cv_results: dict, n_splits: int, keys: list[str]) -> list[dict]:
    rows = []
    for i, params in enumerate(cv_results["params"]):
        scores = [float(cv_results[f"split{k}_test_score"][i]) for k in range(n_splits)]
        finite = [s for s in scores if math.isfinite(s)]
        rows.append({
            "setting": {k: params["estimator__" + p] for k, p in keys},
            "mean_score": float(np.mean(scores)) if len(finite) == n_splits else float("nan"),
            "std_score": float(np.std(scores)) if len(finite) == n_splits else float("nan"),
            "fit_time": float(cv_results["mean_fit_time"][i]),
            "folds": len(finite), "scores": scores,
        })
    return _rank(rows)


def _rows_from_records(records: list[dict], settings: list[dict]) -> list[dict]:
    rows = []
    for setting in settings:
        key = _jsonable_setting(setting)
        mine = [r for r in records if r["setting"] == key and r["score"] is not None]
        scores = [r["score"] for r in mine]
        rows.append({
            "setting": setting,
            "mean_score": float(np.mean(scores)) if scores else float("nan"),
            "std_score": float(np.std(scores)) if scores else float("nan"),
            "fit_time": float(np.mean([r["fit_time"] for r in mine])) if mine else float("nan"),
            "folds": len(scores), "scores": scores,
        })
    return _rank([r for r in rows if r["folds"]])


# -- the search ----------------------------------------------------------------------------------
def splitter(task: str, cv: int, seed: int):
    """The folds: stratified for classification, shuffled under ``seed`` (the same everywhere)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    kind = StratifiedKFold if task == "classify" else KFold
    return kind(n_splits=cv, shuffle=True, random_state=seed)


def connect(address: str, timeout: float = _CONNECT_TIMEOUT):
    """A dask.distributed Client for the scheduler at ``address``, or one clear error."""
    try:
        from distributed import Client
    except ImportError:
        raise BackpropError("`--scheduler` needs Dask, which is not installed; install it with "
                            "pip install 'backprop[dask]'") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise BackpropError(
            f"`--scheduler` {address}: no Dask scheduler answered within {timeout:g} s "
            f"({' '.join(str(exc).split()) or type(exc).__name__}); start one with `dask scheduler` "
            "or leave out --scheduler to search in local processes") from None
    except ValueError as exc:
        raise BackpropError(f"`--scheduler` must be a scheduler address like tcp://10.0.0.5:8786; "
                            f"got {address!r} ({exc})") from None


def search(X, y, task: str, grid: dict[str, list], *, cv: int = 5, method: str = "grid", n_iter: int = 10,
           seed: int = 0, workers: int | None = 1, scheduler: str | None = None, client=None,
           progress: Callable[[int, int], None] | None = None,
           connect_timeout: float = _CONNECT_TIMEOUT) -> SearchResult:
    """Cross-validated search over ``grid`` (from :func:`parse_grid`) for the pipeline of
    :func:`build_pipeline`; ``y`` holds class indices (classify) or values (regress).

    Runs in ``workers`` local processes (1: in this process), or on the Dask cluster at
    ``scheduler`` (or through an existing ``client``). The folds, the draws of a random search
    and every estimator's ``random_state`` (unless the grid sets it) come from ``seed``, so the
    scores are the same wherever it runs. Ctrl-C raises :class:`SearchInterrupted` with the
    results so far; the best setting is ``result.best`` (refit it with :func:`refit`)."""
    import joblib
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    if method not in ("grid", "random"):
        raise BackpropError(f"`search` must be 'grid' or 'random'; got {method!r}")
    if not isinstance(cv, int) or cv < 2 or cv > len(y):
        raise BackpropError(f"`--cv` must be an integer from 2 to the number of rows ({len(y)}); got {cv!r}")
    settings = candidates(grid, method, n_iter, seed)
    check_candidates(task, settings, seed)
    n_fits = len(settings) * cv
    collector = _Collector(n_fits, progress)
    keys = list(grid)
    prefix = _prefix(task)
    poller = None
    tmpdir = None
    own_client = False
    if scheduler is not None or client is not None:
        if client is None:
            client = connect(scheduler, connect_timeout)
            own_client = True
        topic = f"backprop-tune-{uuid.uuid4().hex}"
        client.subscribe_topic(topic, lambda event: collector.add(event[1]))
        reporter = _DaskReporter(topic)
        backend = f"dask scheduler {client.scheduler.address}"
    else:
        tmpdir = tempfile.mkdtemp(prefix="backprop-tune-")
        path = os.path.join(tmpdir, "fits.jsonl")
        reporter = _FileReporter(path)
        poller = _FilePoller(path, collector)
        backend = "this process" if workers == 1 else f"{workers} local processes"
    wrapped = _Reported(build_pipeline(task, seed), reporter, tuple(keys), prefix)
    space = {"estimator__" + prefix + k: v for k, v in grid.items()}
    common = dict(cv=splitter(task, cv, seed), refit=False, error_score=np.nan, return_train_score=False)
    if method == "grid":
        searcher = GridSearchCV(wrapped, space, n_jobs=workers if client is None else -1, **common)
    else:
        searcher = RandomizedSearchCV(wrapped, space, n_iter=n_iter, random_state=seed,
                                      n_jobs=workers if client is None else -1, **common)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # n_iter > grid size; fit failures are ranked NaN
            if client is not None:
                # no scatter: data scattered to one worker is lost with it, and the search could
                # not finish when that worker dies; each task carries its (small) table instead
                with joblib.parallel_backend("dask", client=client):
                    searcher.fit(X, y)
            else:
                searcher.fit(X, y)
    except KeyboardInterrupt:
        if poller is not None:
            poller.stop()
            poller = None
        records = list(collector.records.values())
        raise SearchInterrupted(SearchResult(_rows_from_records(records, settings), n_fits,
                                             time.perf_counter() - start, backend, settings)) from None
    finally:
        if poller is not None:
            poller.stop()
        if tmpdir is not None:
            import shutil

            shutil.rmtree(tmpdir, ignore_errors=True)
        if client is not None:
            try:
                client.unsubscribe_topic(topic)
            except Exception:  # the client may already be closing after Ctrl-C
                pass
            if own_client:
                client.close()
    if progress is not None:
        progress(n_fits, n_fits)
    rows = _rows_from_cv(searcher.cv_results_, cv, [(k, prefix + k) for k in keys])
    return SearchResult(rows, n_fits, time.perf_counter() - start, backend, settings)


def refit(X, y, task: str, setting: dict, seed: int = 0):
    """The pipeline with ``setting`` fitted on all of (X, y)."""
    from sklearn.exceptions import ConvergenceWarning

    pipe = build_pipeline(task, seed).set_params(**{_prefix(task) + k: v for k, v in setting.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pipe.fit(X, y)


# -- the model file -----------------------------------------------------------------------------
def to_model(pipe, task: str, features: list[str], target: str, encoder=None):
    """(estimator, Preprocessor) of the fitted ``pipe`` from :func:`refit`: its MLP, and the
    scaler's mean and scale (the target's too, for regression). ``estimator.save(path,
    metadata=preprocessor.to_metadata())`` writes a file of the same schema as ``backprop
    train``'s: a two-class MLP keeps its one logistic output."""
    from .preprocessing import Standardizer

    if task == "classify":
        scale, mlp, target_scaler = pipe.named_steps["scale"], pipe.named_steps["mlp"], None
    else:
        scale, mlp = pipe.regressor_.named_steps["scale"], pipe.regressor_.named_steps["mlp"]
        target_scaler = Standardizer(pipe.transformer_.mean_, pipe.transformer_.scale_)
    return model_from_parts(mlp, task, features, target, Standardizer(scale.mean_, scale.scale_),
                            encoder=encoder, target_scaler=target_scaler)


def model_from_parts(mlp, task: str, features, target, scaler, encoder=None, target_scaler=None):
    """(estimator, Preprocessor) from a fitted MLP estimator and its Standardizers (see to_model);
    the preprocessor's classes must be in the order of the estimator's ``classes_``."""
    from .preprocessing import Preprocessor

    binary = task == "classify" and mlp.out_activation_ == "logistic"
    return mlp, Preprocessor(task, list(features), target, scaler, encoder=encoder, target_scaler=target_scaler,
                             binary=binary)


def settings_json(setting: dict) -> dict:
    """A setting with the shown names and JSON values (for model metadata and CSV)."""
    return {short_name(k): (list(v) if isinstance(v, tuple) else v) for k, v in setting.items()}

