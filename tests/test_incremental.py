"""Out-of-core partial_fit over real Parquet files (pyarrow): the merged statistics against the
whole table's StandardScaler, the weights against partial_fit on the in-memory pieces in the
documented order, the saved model, and the same weights on a Dask LocalCluster."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from backprop import MLPClassifier, MLPRegressor
from backprop._validation import BackpropError
from backprop.incremental import fit_parquet, pieces

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _write(folder, seed=0, files=3, groups=2, rows=25):
    """`files` Parquet files of `groups` row groups each; returns the pieces' (X, y) in file/group order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    chunks = []
    for f in range(files):
        X = rng.normal(size=(groups * rows, 3)) * [1, 5, 50] + [0, 2, -7]
        y = np.where(X[:, 0] + X[:, 1] / 5 > 0.4, "yes", "no")
        table = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y})
        pq.write_table(table, folder / f"part{f}.parquet", row_group_size=rows)
        chunks += [(X[g * rows:(g + 1) * rows], y[g * rows:(g + 1) * rows]) for g in range(groups)]
    return chunks


def test_two_passes_equal_scaler_and_partial_fit_in_memory(tmp_path):
    """Statistics equal the whole table's StandardScaler; weights equal partial_fit on the scaled
    pieces in default_rng(seed).permutation order, epoch by epoch; the saved model predicts the same."""
    chunks = _write(tmp_path / "data")
    assert len(pieces(tmp_path / "data")) == 6
    est = MLPClassifier(hidden_layer_sizes=(5,), random_state=0, learning_rate_init=0.01)
    model = fit_parquet(tmp_path / "data", "label", est, epochs=3, seed=4)

    X_all = np.vstack([c[0] for c in chunks])
    scaler = StandardScaler().fit(X_all)
    np.testing.assert_allclose(model.mean, scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(model.scale, scaler.scale_, rtol=1e-12)
    assert model.n_rows == 150 and model.classes.tolist() == ["no", "yes"]

    oracle = MLPClassifier(hidden_layer_sizes=(5,), random_state=0, learning_rate_init=0.01)
    rng = np.random.default_rng(4)
    for _ in range(3):
        for k in rng.permutation(6):
            oracle.partial_fit(scaler.transform(chunks[k][0]), chunks[k][1], classes=["no", "yes"])
    for W, V in zip(model.estimator.coefs_, oracle.coefs_):
        np.testing.assert_allclose(W, V, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(model.predict(X_all), oracle.predict(scaler.transform(X_all)))

    from backprop.preprocessing import load_model

    model.save(tmp_path / "m.safetensors")
    network, pre = load_model(tmp_path / "m.safetensors")
    labels = pre.labels(pre.decode(network.predict(pre.scaler.transform(X_all))))
    assert labels == model.predict(X_all).tolist()


def test_regressor_target_is_standardised(tmp_path):
    """A regressor learns the standardised target; predict() returns it in the target's units."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 2))
    y = 100 + 30 * X[:, 0]
    pq.write_table(pa.table({"x1": X[:, 0], "x2": X[:, 1], "t": y}), tmp_path / "r.parquet", row_group_size=20)
    model = fit_parquet(tmp_path / "r.parquet", "t", MLPRegressor(hidden_layer_sizes=(4,), random_state=0,
                                                                 learning_rate_init=0.02), epochs=40)
    assert model.y_mean == pytest.approx(y.mean(), rel=1e-12) and model.y_scale == pytest.approx(y.std(), rel=1e-12)
    pred = model.predict(X)
    assert 1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2) > 0.9


def test_bad_source_and_columns(tmp_path):
    """A missing path, an unknown target or feature: one message naming it."""
    with pytest.raises(BackpropError, match="does not exist"):
        fit_parquet(tmp_path / "nope", "y", MLPClassifier())
    _write(tmp_path / "d", files=1, groups=1)
    with pytest.raises(BackpropError, match="`target` must be a column"):
        fit_parquet(tmp_path / "d", "species", MLPClassifier())
    with pytest.raises(BackpropError, match="`features` must be columns"):
        fit_parquet(tmp_path / "d", "label", MLPClassifier(), features=["a", "zz"])


def test_cluster_gives_the_local_weights(tmp_path):
    """On a LocalCluster (127.0.0.1, 2 worker processes) the chain of partial_fit tasks gives the
    local run's weights exactly."""
    distributed = pytest.importorskip("distributed")
    _write(tmp_path / "data", seed=1)
    est = MLPClassifier(hidden_layer_sizes=(4,), random_state=1, learning_rate_init=0.01)
    local = fit_parquet(tmp_path / "data", "label", est, epochs=2, seed=0)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as lc, distributed.Client(lc) as client:
        remote = fit_parquet(tmp_path / "data", "label", est, epochs=2, seed=0, client=client)
    np.testing.assert_array_equal(local.mean, remote.mean)
    for W, V in zip(local.estimator.coefs_, remote.estimator.coefs_):
        np.testing.assert_array_equal(W, V)


def test_docs_example_runs_and_prints_what_the_page_says(tmp_path, monkeypatch, capsys):
    """docs/distributed.md's Python example runs as written and prints the output shown under it
    (2000 rows: 4 files of 500; the rule a - b > 0 is 'up')."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "distributed.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    shown = re.findall(r"prints\n\n```\n(.*?)```", text[text.index(code):], re.S)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "distributed.md", "exec"), {})
    assert capsys.readouterr().out == shown == "2000 ['down', 'up'] ['up', 'down']\n"
    assert (tmp_path / "moves.safetensors").exists()
