"""backprop tune: grid parsing and checks, search scores against a plain cross-validation loop, the
saved best model against its scikit-learn pipeline, Ctrl-C, and a real Dask LocalCluster on
127.0.0.1 (same scores as a local run, a worker killed mid-search, an unreachable scheduler)."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from backprop import MLPClassifier, MLPRegressor, tune
from backprop._validation import BackpropError
from backprop.cli import main
from backprop.preprocessing import load_model
from processes import started

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _iris_csv(path: Path, rows=None) -> Path:
    iris = load_iris()
    idx = range(len(iris.target)) if rows is None else rows
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["sl", "sw", "pl", "pw", "species"])
        out.writerows([*iris.data[i], iris.target_names[iris.target[i]]] for i in idx)
    return path


def _read_results(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _oracle_scores(X, y, settings, cv, seed, classify=True):
    """Mean fold scores of each setting by a plain loop: scikit-learn's folds, a fresh
    StandardScaler + estimator per fold (no search machinery)."""
    folds = (StratifiedKFold if classify else KFold)(n_splits=cv, shuffle=True, random_state=seed)
    out = []
    for setting in settings:
        scores = []
        for train, test in folds.split(X, y):
            est = (MLPClassifier if classify else MLPRegressor)(random_state=seed, **setting)
            pipe = Pipeline([("scale", StandardScaler()), ("mlp", est)]).fit(X[train], y[train])
            scores.append(pipe.score(X[test], y[test]))
        out.append(np.mean(scores))
    return out


# -- the grid -------------------------------------------------------------------------------------
def test_parse_grid_names_values_and_layers():
    """Short names map to estimator parameters; 32-16 is two layers; numbers and booleans convert."""
    grid = tune.parse_grid("hidden=16,32-16,none lr=0.01,1e-3 epochs=5 early_stopping=true activation=tanh")
    assert grid == {"hidden_layer_sizes": [(16,), (32, 16), ()], "learning_rate_init": [0.01, 0.001],
                    "max_iter": [5], "early_stopping": [True], "activation": ["tanh"]}


@pytest.mark.parametrize("text, words", [
    ("hiden=16", ["unknown parameter 'hiden'", "hidden"]),
    ("hidden=16,abc", ["hidden", "layer sizes", "'abc'"]),
    ("epochs=2.5", ["epochs", "an integer", "'2.5'"]),
    ("lr", ["name=value"]),
    ("lr=0.1 lr=0.2", ["twice"]),
])
def test_parse_grid_refuses_bad_items(text, words):
    """A malformed item, an unknown name or a bad value: one message naming it."""
    with pytest.raises(BackpropError) as err:
        tune.parse_grid(text)
    for word in words:
        assert word in str(err.value)


def test_check_candidates_names_the_invalid_value():
    """The estimator's own checks run on every value before any fit: alpha=-1 is named."""
    settings = tune.candidates(tune.parse_grid("alpha=1e-4,-1 lr=0.01"), "grid", 1, 0)
    with pytest.raises(BackpropError, match=r"alpha=-1: `alpha` must be a non-negative number; got -1"):
        tune.check_candidates("classify", settings, 0)


def test_cli_invalid_grid_fails_before_any_fit(tmp_path, capsys):
    """The CLI refuses an invalid value or an unknown name with one line (exit 2, usage), before the
    search starts."""
    data = _iris_csv(tmp_path / "iris.csv")
    code = main(["tune", str(data), "--target", "species", "--grid", "hidden=8 solver=adamw",
                 "--out", str(tmp_path / "m.safetensors"), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "solver=adamw" in err and "'adam'" in err and "Traceback" not in err
    assert "grid search:" not in err  # the search never started
    assert not (tmp_path / "m.safetensors").exists()
    code = main(["tune", str(data), "--target", "species", "--grid", "hiden=8", "--out", str(tmp_path / "m.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown parameter 'hiden'" in err[0]


# -- local search ---------------------------------------------------------------------------------
def test_local_search_equals_a_plain_loop_and_saves_the_best(tmp_path, capsys):
    """Scores of `backprop tune` (2 local processes) equal a hand-written CV loop; the ranking follows
    them; the saved model predicts what the best setting's pipeline, refitted on all rows, predicts."""
    data = _iris_csv(tmp_path / "iris.csv")
    results, out = tmp_path / "r.csv", tmp_path / "best.safetensors"
    code = main(["tune", str(data), "--target", "species", "--grid", "hidden=4,8 lr=0.01,0.003 epochs=8",
                 "--cv", "3", "--seed", "3", "--workers", "2", "--results", str(results), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "12/12 fits" in captured.err
    rows = _read_results(results)
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
    iris = load_iris()
    settings = [{"hidden_layer_sizes": (int(r["hidden"]),), "learning_rate_init": float(r["lr"]), "max_iter": 8}
                for r in rows]
    expected = _oracle_scores(iris.data, iris.target, settings, cv=3, seed=3)
    np.testing.assert_allclose([float(r["mean_accuracy"]) for r in rows], expected, rtol=0, atol=1e-12)
    assert expected == sorted(expected, reverse=True)

    best = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(random_state=3, **settings[0]))])
    best.fit(iris.data, iris.target)
    network, pre = load_model(out)
    probs = network.predict(pre.scaler.transform(iris.data))
    np.testing.assert_allclose(probs, best.predict_proba(iris.data), atol=1e-12)
    assert network.metadata["training"]["best"] == {"hidden": [settings[0]["hidden_layer_sizes"][0]],
                                                    "lr": settings[0]["learning_rate_init"], "epochs": 8}


def test_binary_and_regression_models_equal_their_pipelines(tmp_path):
    """to_model, saved and read back as every reader does (load_model): a two-class MLP's one
    logistic output, and a regressor with its standardised target, give the pipeline's
    probabilities and predictions."""
    from backprop.preprocessing import LabelEncoder, load_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)) * [1, 10, 100] + 5
    y_class = (X[:, 0] + X[:, 1] / 10 > 5.5).astype(int)
    pipe = tune.refit(X, y_class, "classify", {"hidden_layer_sizes": (5,), "max_iter": 20})
    est, pre = tune.to_model(pipe, "classify", ["a", "b", "c"], "t", LabelEncoder([0, 1]))
    est.save(tmp_path / "c.safetensors", metadata=pre.to_metadata())
    network, pre = load_model(tmp_path / "c.safetensors")
    assert network.n_outputs == 1 and pre.binary
    np.testing.assert_allclose(pre.probabilities(network.predict(pre.scaler.transform(X))), pipe.predict_proba(X),
                               atol=1e-12)

    y_reg = X @ [1.0, 0.2, 0.01] + 50
    pipe = tune.refit(X, y_reg, "regress", {"hidden_layer_sizes": (5,), "max_iter": 20})
    est, pre = tune.to_model(pipe, "regress", ["a", "b", "c"], "t")
    est.save(tmp_path / "r.safetensors", metadata=pre.to_metadata())
    network, pre = load_model(tmp_path / "r.safetensors")
    np.testing.assert_allclose(pre.decode(network.predict(pre.scaler.transform(X))), pipe.predict(X),
                               rtol=1e-12)


def test_random_search_draws_n_iter_settings_like_scikit_learn():
    """--search random fits the n_iter settings ParameterSampler draws under the seed; scores
    match the plain loop (regression, R2)."""
    from sklearn.model_selection import ParameterSampler

    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.normal(size=40)
    grid = tune.parse_grid("hidden=3,6 lr=0.01,0.03,0.1 epochs=10")
    result = tune.search(X, y, "regress", grid, cv=2, method="random", n_iter=3, seed=7, workers=1)
    drawn = list(ParameterSampler(grid, n_iter=3, random_state=7))
    assert len(result.rows) == 3
    as_set = lambda settings: {tuple(sorted(s.items())) for s in settings}  # noqa: E731
    assert as_set(r["setting"] for r in result.rows) == as_set(drawn)

    def oracle(setting):  # the target standardised on each training fold, R2 in the target's units
        from sklearn.compose import TransformedTargetRegressor

        scores = []
        for train, test in KFold(2, shuffle=True, random_state=7).split(X):
            est = TransformedTargetRegressor(
                regressor=Pipeline([("s", StandardScaler()), ("m", MLPRegressor(random_state=7, **setting))]),
                transformer=StandardScaler()).fit(X[train], y[train])
            scores.append(est.score(X[test], y[test]))
        return np.mean(scores)

    for row in result.rows:
        assert row["mean_score"] == pytest.approx(oracle(row["setting"]), abs=1e-12)


def test_ctrl_c_keeps_the_results_so_far(tmp_path):
    """SIGINT in the middle of a search: exit 130, and --results holds the fits finished so far."""
    data = _iris_csv(tmp_path / "iris.csv")
    results = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "backprop", "tune", str(data), "--target", "species", "--workers", "1",
           "--grid", "hidden=8,16 lr=0.01,0.02,0.03,0.04,0.05 epochs=400 batch=4 n_iter_no_change=100000",
           "--cv", "5", "--results", str(results), "--out", str(tmp_path / "m.safetensors")]
    with started(cmd, stderr=subprocess.PIPE, text=True, cwd=tmp_path) as proc:  # killed whatever happens
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "[tune] " in line and "fits" in line:  # the first tenth of the fits is done
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, "".join(seen) + rest
    assert "results so far" in rest
    rows = _read_results(results)
    assert rows and all(1 <= int(r["folds"]) <= 5 for r in rows)
    assert sum(int(r["folds"]) for r in rows) < 50
    assert not (tmp_path / "m.safetensors").exists()


# -- a real Dask cluster --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as lc:
        with distributed.Client(lc) as client:
            yield lc, client


def test_cluster_scores_equal_a_local_run(cluster, tmp_path, capsys):
    """`backprop tune --scheduler` on a LocalCluster gives the local run's scores and model."""
    lc, _ = cluster
    data = _iris_csv(tmp_path / "iris.csv", rows=range(0, 150, 2))
    args = ["tune", str(data), "--target", "species", "--grid", "hidden=4,8 alpha=1e-4,1e-2 epochs=6",
            "--cv", "3", "--seed", "5"]
    assert main([*args, "--workers", "1", "--results", str(tmp_path / "local.csv"),
                 "--out", str(tmp_path / "local.safetensors")]) == 0
    code = main([*args, "--scheduler", lc.scheduler_address, "--results", str(tmp_path / "dask.csv"),
                 "--out", str(tmp_path / "dask.safetensors")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "12/12 fits" in err and "Dask cluster" in err
    local, remote = _read_results(tmp_path / "local.csv"), _read_results(tmp_path / "dask.csv")
    keys = ["hidden", "alpha", "mean_accuracy", "std_accuracy", "fold0_accuracy", "fold1_accuracy", "fold2_accuracy"]
    assert [[r[k] for k in keys] for r in remote] == [[r[k] for k in keys] for r in local]
    a, b = load_model(tmp_path / "local.safetensors")[0], load_model(tmp_path / "dask.safetensors")[0]
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)


def test_killed_worker_search_still_scores_every_setting(cluster):
    """A worker process SIGKILLed while it fits: Dask reruns its tasks elsewhere and every setting
    gets all its folds, with the scores of an undisturbed plain loop."""
    lc, client = cluster
    iris = load_iris()
    X, y = iris.data, iris.target
    grid = tune.parse_grid("hidden=6 lr=0.01,0.02,0.03,0.04 epochs=1500 batch=4 n_iter_no_change=100000")
    first_fit, killed = threading.Event(), threading.Event()
    pids = client.run(os.getpid)

    def killer():  # not in the progress callback: that runs on the client's event loop
        first_fit.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = tune.search(X, y, "classify", grid, cv=3, seed=2, client=client,
                         progress=lambda done, total: first_fit.set())
    thread.join(5)
    assert killed.is_set(), "the search finished before a worker could be killed"
    assert len(result.rows) == 4 and all(r["folds"] == 3 for r in result.rows)
    settings = [r["setting"] for r in result.rows]
    expected = _oracle_scores(X, y, settings, cv=3, seed=2)
    np.testing.assert_allclose([r["mean_score"] for r in result.rows], expected, atol=1e-12)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it, for the next test


def test_unreachable_scheduler_is_one_line_within_seconds(tmp_path, capsys):
    """--scheduler at a closed port: exit 1 with one line naming --scheduler, in seconds."""
    pytest.importorskip("distributed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = _iris_csv(tmp_path / "iris.csv", rows=range(0, 150, 5))
    start = time.monotonic()
    code = main(["tune", str(data), "--target", "species", "--grid", "hidden=4", "--cv", "2",
                 "--scheduler", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path / "m.safetensors")])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and elapsed < 20
    assert err[-1].startswith("backprop: error: `--scheduler` tcp://127.0.0.1:") and "no Dask scheduler" in err[-1]


def test_missing_dask_names_the_extra(tmp_path):
    """Without dask.distributed importable, --scheduler says to install backprop[dask]."""
    data = _iris_csv(tmp_path / "iris.csv", rows=range(0, 150, 5))
    code = ("import sys; sys.modules['distributed'] = None; from backprop.cli import main; "
            f"sys.exit(main(['tune', {str(data)!r}, '--target', 'species', '--grid', 'hidden=4', '--cv', '2', "
            f"'--scheduler', 'tcp://127.0.0.1:1', '--out', {str(tmp_path / 'm.safetensors')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "pip install 'backprop[dask]'" in proc.stderr and "Traceback" not in proc.stderr
