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
