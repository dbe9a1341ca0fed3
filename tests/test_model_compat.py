"""Model files written before issue 22's table work (tests/fixtures, committed at 8fdc4cc) still
load and predict; the oracle is a plain numpy forward pass over the file's raw tensors and JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

from backprop import MLPClassifier
from backprop.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def _raw(path):
    with safe_open(str(path), "np") as f:
        meta = json.loads(f.metadata()["backprop"])
    return load_file(str(path)), meta


def _forward(tensors, X, out):
    A = X
    n = len([k for k in tensors if k.startswith("W")])
    for i in range(1, n + 1):
        Z = A @ tensors[f"W{i}"] + tensors[f"b{i}"]
        A = np.maximum(Z, 0) if i < n else Z
    if out == "softmax":
        E = np.exp(A - A.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)
    if out == "sigmoid":
        return 1 / (1 + np.exp(-A))
    return A


def _table(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_legacy_cli_models_predict_as_their_stored_weights_say(tmp_path, capsys):
    """`backprop predict` on the old classify/regress files equals a numpy pass with the stored scaler."""
    for name, target in (("legacy_classify", "kind"), ("legacy_regress", "y")):
        model, data = FIXTURES / f"{name}.safetensors", FIXTURES / f"{name}.csv"
        tensors, meta = _raw(model)
        info = meta["metadata"] if "metadata" in meta else meta
        header, rows = _table(data)
        cols = [header.index(c) for c in info["features"]]
        X = np.array([[float(r[j]) for j in cols] for r in rows])
        X = (X - np.array(info["scaler"]["mean"])) / np.array(info["scaler"]["scale"])
        out = tmp_path / f"{name}.csv"
        assert main(["predict", str(model), str(data), "--out", str(out)]) == 0
        _, got = _table(out)
        if info["task"] == "classify":
            expected = [info["classes"][k] for k in _forward(tensors, X, "softmax").argmax(axis=1)]
            assert [r[0] for r in got] == expected
        else:
            ts = info["target_scaler"]
            expected = _forward(tensors, X, "identity")[:, 0] * ts["scale"][0] + ts["mean"][0]
            np.testing.assert_allclose([float(r[0]) for r in got], expected, rtol=1e-12)
    capsys.readouterr()


def test_legacy_estimator_file_loads_and_predicts():
    """MLPClassifier.load on the old file: classes and predictions from the raw tensors."""
    tensors, _ = _raw(FIXTURES / "legacy_estimator.safetensors")
    X = np.loadtxt(FIXTURES / "legacy_estimator_X.csv", delimiter=",", skiprows=1)
    clf = MLPClassifier.load(FIXTURES / "legacy_estimator.safetensors")
    assert list(clf.classes_) == ["no", "yes"]
    p = _forward(tensors, X, "sigmoid")[:, 0]
    np.testing.assert_array_equal(clf.predict(X), np.where(p > 0.5, "yes", "no"))


def test_legacy_cli_models_load_as_estimators():
    """`MLPClassifier.load` / `MLPRegressor.load` read the old `backprop train` files too (one schema
    for every reader): on the standardised columns they give the numpy pass over the raw tensors."""
    from backprop import MLPRegressor

    for name, cls in (("legacy_classify", MLPClassifier), ("legacy_regress", MLPRegressor)):
        model = FIXTURES / f"{name}.safetensors"
        tensors, meta = _raw(model)
        info = meta["metadata"] if "metadata" in meta else meta
        header, rows = _table(FIXTURES / f"{name}.csv")
        cols = [header.index(c) for c in info["features"]]
        X = np.array([[float(r[j]) for j in cols] for r in rows])
        X = (X - np.array(info["scaler"]["mean"])) / np.array(info["scaler"]["scale"])
        est = cls.load(model)
        assert est.n_features_in_ == len(cols) and est.n_iter_ == info["training"]["epochs_run"]
        if cls is MLPClassifier:
            p = _forward(tensors, X, "softmax")
            np.testing.assert_allclose(est.predict_proba(X), p, rtol=0, atol=1e-14)
            np.testing.assert_array_equal(est.predict(X), p.argmax(axis=1))
            assert list(est.classes_) == list(range(len(info["classes"])))
        else:
            np.testing.assert_allclose(est.predict(X), _forward(tensors, X, "identity")[:, 0], rtol=1e-12)
    try:
        MLPRegressor.load(FIXTURES / "legacy_classify.safetensors")
    except Exception as exc:
        assert "task 'classify'; load it with MLPClassifier.load" in str(exc)
    else:
        raise AssertionError("a classifier file loaded as a regressor")
