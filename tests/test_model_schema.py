"""One model-file schema for every reader (issue 28, item 3): a file written by
``MLPClassifier.save`` / ``MLPRegressor.save`` goes through ``backprop predict``, ``evaluate``,
``info`` and ``explain --model`` too. The oracle is the estimator itself on the same numbers
(its own input checks, network and decoding), against the command line's table reader and
preprocessor; the legacy estimator file's oracle is a numpy forward pass of its raw tensors."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from backprop import MLPClassifier, MLPRegressor
from backprop.cli import main

from test_model_compat import FIXTURES, _forward, _raw


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a short fit is all these tests need
        return est.fit(X, y)


def _rows(text):
    return list(csv.reader(text.strip().splitlines()))


@pytest.fixture
def binary_model(tmp_path):
    """A classifier fitted on a DataFrame (names a, b, c; text labels), and a CSV holding its
    columns in another order, the label column among them."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    y = np.where(X["a"] - 0.5 * X["b"] > 0, "yes", "no")
    clf = _fit(MLPClassifier(hidden_layer_sizes=(6,), max_iter=200, random_state=0), X, y)
    model, data = tmp_path / "clf.safetensors", tmp_path / "data.csv"
    clf.save(model)
    frame = X.assign(label=y)[["c", "label", "a", "b"]]
    frame.to_csv(data, index=False, float_format="%.17g")
    return clf, X, y, model, data


def test_predict_on_an_estimator_file_matches_the_estimator(binary_model, capsys):
    clf, X, _, model, data = binary_model
    assert main(["predict", str(model), str(data), "--proba"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[0] == ["prediction", "proba_no", "proba_yes"]
    assert [r[0] for r in rows[1:]] == list(clf.predict(X))
    np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], dtype=float), clf.predict_proba(X),
                               rtol=0, atol=1e-14)


def test_evaluate_on_an_estimator_file_needs_and_uses_target(binary_model, capsys):
    clf, X, y, model, data = binary_model
    assert main(["evaluate", str(model), str(data)]) == 1
    err = capsys.readouterr().err
    assert "`--target` must name the column of true values" in err and "MLPClassifier.save" in err
    assert main(["evaluate", str(model), str(data), "--target", "label"]) == 0
    out = capsys.readouterr().out
    accuracy = float(next(l for l in out.splitlines() if l.startswith("accuracy:")).split()[1])
    assert accuracy == pytest.approx(clf.score(X, y), abs=1e-6)
    p = clf.predict_proba(X)[:, 1]
    t = (y == "yes").astype(float)
    log_loss = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    loss = float(next(l for l in out.splitlines() if l.startswith("loss")).split()[-1])
    assert loss == pytest.approx(log_loss, rel=1e-5)


def test_info_and_explain_read_an_estimator_file(binary_model, capsys):
    clf, X, y, model, data = binary_model
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "written by: MLPClassifier.save" in out
    assert "features (3): a, b, c" in out and "classes (2, one logistic output): no, yes" in out
    row = 5
    assert main(["explain", "--model", str(model), "--data", str(data), "--row", str(row),
                 "--target-column", "label", "--format", "json"]) == 0
    derivation = json.loads(capsys.readouterr().out)
    assert [derivation["inputs"][f"i{k}"] for k in (1, 2, 3)] == pytest.approx(list(X.iloc[row - 1]), abs=1e-15)
    assert derivation["forward"]["out_o1"] == pytest.approx(clf.predict_proba(X.iloc[[row - 1]])[0, 1], abs=1e-14)
    assert derivation["targets"]["o1"] == float(y[row - 1] == "yes")  # 0/1 on the one logistic output
    assert main(["explain", "--model", str(model), "--data", str(data), "--row", "1"]) == 1
    assert "`--target-column` must name the column of true values" in capsys.readouterr().err


def test_array_fitted_models_take_columns_in_order(tmp_path, capsys):
    """Fitted on numpy arrays (no names): the table's columns but --target, in order."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(90, 4))
    labels = np.argmax(X[:, :3], axis=1) * 10  # classes 0, 10, 20
    clf = _fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=150, random_state=1), X, labels)
    target = X @ [1.0, -2.0, 0.5, 3.0] + 4.0
    reg = _fit(MLPRegressor(hidden_layer_sizes=(8,), max_iter=150, random_state=1), X, target)
    data = tmp_path / "x.csv"
    table = pd.DataFrame(X, columns=["p", "q", "r", "s"]).assign(klass=labels, value=target)
    cm, rm = tmp_path / "clf.safetensors", tmp_path / "reg.safetensors"
    clf.save(cm)
    reg.save(rm)
    table.drop(columns="value").to_csv(data, index=False, float_format="%.17g")
    assert main(["predict", str(cm), str(data)]) == 1
    err = capsys.readouterr().err
    assert "must have 4 feature columns" in err and "got 5" in err and "--target" in err
    assert main(["predict", str(cm), str(data), "--target", "klass"]) == 0
    assert [int(r[0]) for r in _rows(capsys.readouterr().out)[1:]] == list(clf.predict(X))
    table.drop(columns="klass").to_csv(data, index=False, float_format="%.17g")
    assert main(["predict", str(rm), str(data), "--target", "value"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[0] == ["value"]
    np.testing.assert_allclose([float(r[0]) for r in rows[1:]], reg.predict(X), rtol=1e-13, atol=1e-13)
    assert main(["evaluate", str(rm), str(data), "--target", "value"]) == 0
    out = capsys.readouterr().out
    r2 = float(next(l for l in out.splitlines() if l.startswith("r2:")).split()[1])
    assert r2 == pytest.approx(reg.score(X, target), abs=1e-6)


def test_models_the_command_line_cannot_use_are_refused_by_name(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    multilabel = _fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=20, random_state=0), X,
                      np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int))
    two_outputs = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=20, random_state=0), X, X * 2)
    data = tmp_path / "x.csv"
    pd.DataFrame(X, columns=["u", "v"]).to_csv(data, index=False)
    for est, what in ((multilabel, "multilabel-indicator"), (two_outputs, "2 outputs")):
        path = tmp_path / f"{type(est).__name__}.safetensors"
        est.save(path)
        assert main(["predict", str(path), str(data)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and what in err[0] and ".load)" in err[0]


def test_target_must_match_a_train_model(tmp_path, capsys):
    data = FIXTURES / "legacy_classify.csv"
    assert main(["evaluate", str(FIXTURES / "legacy_classify.safetensors"), str(data), "--target", "nope"]) == 1
    assert "`--target` must be the model's own target" in capsys.readouterr().err


def test_legacy_estimator_file_through_the_command_line(capsys):
    """The estimator file committed before this schema work (fitted on an array of x0, x1)."""
    tensors, _ = _raw(FIXTURES / "legacy_estimator.safetensors")
    X = np.loadtxt(FIXTURES / "legacy_estimator_X.csv", delimiter=",", skiprows=1)
    assert main(["predict", str(FIXTURES / "legacy_estimator.safetensors"), str(FIXTURES / "legacy_estimator_X.csv"),
                 "--proba"]) == 0
    rows = _rows(capsys.readouterr().out)[1:]
    p = _forward(tensors, X, "sigmoid")[:, 0]
    assert [r[0] for r in rows] == list(np.where(p > 0.5, "yes", "no"))
    np.testing.assert_allclose([float(r[2]) for r in rows], p, rtol=1e-12)


def test_estimator_load_names_the_class_a_train_file_needs():
    with pytest.raises(Exception, match="task 'regress'; load it with MLPRegressor.load"):
        MLPClassifier.load(FIXTURES / "legacy_regress.safetensors")


def test_plot_boundary_on_an_estimator_file(tmp_path, capsys):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 2))
    y = (X[:, 0] > X[:, 1]).astype(int)
    clf = _fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=100, random_state=0), X, y)
    model, data, image = tmp_path / "m.safetensors", tmp_path / "d.csv", tmp_path / "b.png"
    clf.save(model)
    pd.DataFrame(X, columns=["u", "v"]).assign(y=y).to_csv(data, index=False)
    assert main(["plot-boundary", str(model), str(data), "--out", str(image), "--target", "y"]) == 0
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_train_file_is_an_estimator_file_with_its_preprocessing(tmp_path, capsys):
    """`backprop train` fits an MLPClassifier: `MLPClassifier.load` reads its file, and on the
    encoded columns (the file's own preprocessor) gives what `backprop predict` prints; two
    classes sit on one logistic output, as the estimator's."""
    from backprop.preprocessing import load_model
    from backprop.tables import read_table

    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"u": rng.normal(size=90), "city": rng.choice(["oslo", "rome", "lima"], 90)})
    frame["label"] = np.where(frame["u"] + (frame["city"] == "rome") > 0.3, "hot", "cold")
    data, model = tmp_path / "d.csv", tmp_path / "m.safetensors"
    frame.to_csv(data, index=False, float_format="%.17g")
    assert main(["train", str(data), "--target", "label", "--hidden", "5", "--epochs", "30", "--lr", "0.01",
                 "--quiet", "--out", str(model)]) == 0
    capsys.readouterr()
    clf = MLPClassifier.load(model)
    assert clf.hidden_layer_sizes == (5,) and clf.max_iter == 30 and clf.out_activation_ == "logistic"
    network, pre = load_model(model)
    assert network.n_outputs == 1 and pre.binary
    X = pre.transform(read_table(str(data)))
    assert X.shape == (90, 4)  # u, and city one-hot
    assert main(["predict", str(model), str(data), "--proba"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[0] == ["label", "proba_cold", "proba_hot"]  # the target's own name
    assert [r[0] for r in rows[1:]] == [pre.encoder.classes[k] for k in clf.predict(X)]
    np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], dtype=float), clf.predict_proba(X),
                               rtol=0, atol=1e-14)
