"""The CSV command line end to end: train -> predict -> evaluate -> info, checked against the
true labels and independent formulas; every refusal is one line with the right exit code."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from backprop import Network
from backprop.cli import main
from backprop.commands import train as train_command
from backprop.csvdata import read_csv

CLASSES = ["east", "north", "west"]


def blobs_csv(path, n=150, seed=0, shuffle_columns=False, label_column=True):
    """Three well-separated Gaussian blobs in 3-D with text labels (an easy problem)."""
    rng = np.random.default_rng(seed)
    centers = np.array([[4.0, 0.0, 1.0], [0.0, 4.0, -1.0], [-4.0, 0.0, 0.0]])
    y = rng.integers(0, 3, n)
    X = centers[y] + rng.normal(0, 0.7, (n, 3))
    names = ["f1", "f2", "f3"]
    rows = [[*x, CLASSES[k]] for x, k in zip(X, y)]
    header = names + ["kind"]
    if shuffle_columns:  # columns in another order, the target first, plus an unused column
        header = ["kind", "f3", "unused", "f1", "f2"]
        rows = [[r[3], r[2], "zzz", r[0], r[1]] for r in rows]
    if not label_column:
        k = header.index("kind")
        header = header[:k] + header[k + 1 :]
        rows = [r[:k] + r[k + 1 :] for r in rows]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return [CLASSES[k] for k in y]


def linear_csv(path, n=120, seed=0):
    """t = 1000 + 50 a - 30 b: far from zero mean and unit scale, so an unscaled output shows."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    t = 1000 + 50 * X[:, 0] - 30 * X[:, 1]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["a", "b", "t"])
        writer.writerows([[*x, v] for x, v in zip(X, t)])
    return t


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("backprop: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def trained(tmp_path, capsys):
    """A classifier trained by the CLI on the blobs, with its data file and true labels."""
    data = tmp_path / "train.csv"
    labels = blobs_csv(data)
    model = tmp_path / "model.safetensors"
    code, out, err = run_cli(capsys, "train", data, "--target", "kind", "--hidden", "8", "--epochs", "15", "--lr", "0.01", "--batch-size", "32",
                             "--out", model, "--seed", "1")
    assert code == 0, err
    return tmp_path, data, model, labels, out, err


def test_train_round_trip_classification(trained, capsys):
    # Train, then predict a fresh sample (columns reordered, an extra column): accuracy against
    # the true labels is high; evaluate's accuracy and confusion matrix agree with those labels.
    tmp_path, _, model, _, out, err = trained
    assert "task: classify, because the target holds text labels" in err
    assert f"model: {model}" in out and "epochs: 15 of 15 (done)" in out

    fresh = tmp_path / "fresh.csv"
    truth = blobs_csv(fresh, n=90, seed=7, shuffle_columns=True)
    preds = tmp_path / "preds.csv"
    code, _, err = run_cli(capsys, "predict", model, fresh, "--out", preds)
    assert code == 0 and "ignoring columns the model does not use: unused" in err
    predicted = read_csv(preds).strings("kind")
    accuracy = np.mean([p == t for p, t in zip(predicted, truth)])
    assert accuracy >= 0.95

    code, out, _ = run_cli(capsys, "evaluate", model, fresh)
    assert code == 0
    assert f"accuracy: {accuracy:.6g}" in out
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    matrix = confusion_matrix(truth, predicted, labels=CLASSES)
    block = out.split("confusion matrix")[1].splitlines()[2:5]
    assert [[int(v) for v in line.split()[1:]] for line in block] == matrix.tolist()
    precision, recall, _, _ = precision_recall_fscore_support(truth, predicted, labels=CLASSES, zero_division=0)
    report = out.split("confusion matrix")[0]
    for k, name in enumerate(CLASSES):
        row = next(line.split() for line in report.splitlines() if line.split()[:1] == [name])
        assert float(row[1]) == pytest.approx(precision[k], abs=5e-4)
        assert float(row[2]) == pytest.approx(recall[k], abs=5e-4)
        assert int(row[4]) == truth.count(name)


def test_predict_proba_matches_the_network(trained, capsys):
    # --proba columns are the softmax outputs of the saved network on the standardised features,
    # the label is their argmax, and every row sums to 1.
    tmp_path, data, model, _, _, _ = trained
    code, out, _ = run_cli(capsys, "predict", model, data, "--proba")
    assert code == 0
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["kind", "proba_east", "proba_north", "proba_west"]
    proba = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    net = Network.load(model)
    meta = net.metadata
    X = read_csv(data).numeric(meta["features"])
    Z = (X - np.array(meta["scaler"]["mean"])) / np.array(meta["scaler"]["scale"])
    np.testing.assert_array_equal(proba, net.predict(Z))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert [r[0] for r in rows[1:]] == [CLASSES[k] for k in proba.argmax(axis=1)]


def test_metadata_schema_and_info(trained, capsys):
    # The model file holds the documented metadata; info shows the architecture and the
    # parameter count computed by hand: (3+1)*8 + (8+1)*3 = 59.
    _, data, model, _, _, _ = trained
    meta = Network.load(model).metadata
    assert set(meta) == {"task", "features", "target", "classes", "scaler", "preprocessing", "training",
                         "metrics", "history", "backprop_version", "format", "estimator", "params", "fitted"}
    # the estimator's own entries: the options given, and the estimators' defaults for the rest
    assert meta["format"] == "backprop.estimator" and meta["estimator"] == "MLPClassifier"
    params = meta["params"]
    assert (params["hidden_layer_sizes"], params["max_iter"], params["learning_rate_init"], params["batch_size"],
            params["random_state"]) == ([8], 15, 0.01, 32, 1)
    from backprop import MLPClassifier

    defaults = MLPClassifier().get_params()
    for name in ("alpha", "tol", "n_iter_no_change", "solver", "activation", "early_stopping", "momentum"):
        assert params[name] == defaults[name], name
    assert [c["kind"] for c in meta["preprocessing"]["columns"]] == ["numeric"] * 3
    assert meta["task"] == "classify" and meta["features"] == ["f1", "f2", "f3"]
    assert meta["target"] == "kind" and meta["classes"] == CLASSES
    X = read_csv(data).numeric(["f1", "f2", "f3"])
    train_rows = meta["training"]["n_train"]
    assert train_rows + meta["training"]["n_validation"] == 150 and meta["training"]["n_validation"] == 15
    assert len(meta["scaler"]["mean"]) == 3 and not np.allclose(meta["scaler"]["mean"], X.mean(axis=0))
    assert meta["training"]["epochs_run"] == 15 and meta["training"]["seed"] == 1
    assert len(meta["history"]["loss"]) == 15 and len(meta["history"]["val_loss"]) == 15
    assert meta["metrics"]["val_loss"] == pytest.approx(meta["history"]["val_loss"][-1])
    code, out, _ = run_cli(capsys, "info", model)
    assert code == 0
    assert "network: Network 3-8-3 (relu, softmax output)" in out
    assert "parameters: 59 (float64)" in out and "classes (3): east, north, west" in out
    assert "estimator: MLPClassifier (`backprop train` fitted it; MLPClassifier.load reads this file" in out
    code, out, _ = run_cli(capsys, "info", model, "--json")
    assert json.loads(out)["metadata"] == meta


def test_scaler_is_learned_on_training_rows(tmp_path, capsys):
    # The stored scaler is the mean/std of exactly the training rows (not the validation rows).
    data = tmp_path / "d.csv"
    blobs_csv(data, n=40)
    model = tmp_path / "m.safetensors"
    assert run_cli(capsys, "train", data, "--target", "kind", "--epochs", "1", "--validation", "0.25",
                   "--out", model)[0] == 0
    meta = Network.load(model).metadata
    X = read_csv(data).numeric(["f1", "f2", "f3"])
    rows, val = train_command.split_rows(None, 40, 0.25, 0)  # no: stratified; recompute below
    labels = np.array([CLASSES.index(v) for v in read_csv(data).strings("kind")])
    rows, val = train_command.split_rows(labels, 40, 0.25, 0)
    assert len(val) == 10 and len(set(rows) | set(val)) == 40
    np.testing.assert_allclose(meta["scaler"]["mean"], X[rows].mean(axis=0))
    np.testing.assert_allclose(meta["scaler"]["scale"], X[rows].std(axis=0))


def test_regression_round_trip_in_target_units(tmp_path, capsys):
    # Regression is auto-detected; predictions come back in the target's units (around 1000),
    # and evaluate's R2/MAE/RMSE equal the formulas applied to predict's output.
    data = tmp_path / "lin.csv"
    t = linear_csv(data)
    model = tmp_path / "lin.safetensors"
    code, _, err = run_cli(capsys, "train", data, "--target", "t", "--hidden", "none", "--epochs", "60",
                           "--lr", "0.05", "--out", model, "--quiet")
    assert code == 0 and "task: regress" in err and "[train] epoch" not in err
    code, out, _ = run_cli(capsys, "predict", model, data)
    pred = np.array([float(r[0]) for r in list(csv.reader(out.splitlines()))[1:]])
    assert np.sqrt(np.mean((pred - t) ** 2)) < 0.05 * t.std()
    code, out, _ = run_cli(capsys, "evaluate", model, data)
    values = dict(line.split(": ") for line in out.splitlines())
    err_ = pred - t
    assert float(values["r2"]) == pytest.approx(1 - np.sum(err_**2) / np.sum((t - t.mean()) ** 2), rel=1e-5)
    assert float(values["mae"]) == pytest.approx(np.mean(np.abs(err_)), rel=1e-5)
    assert float(values["rmse"]) == pytest.approx(np.sqrt(np.mean(err_**2)), rel=1e-5)
    meta = Network.load(model).metadata
    assert meta["task"] == "regress" and meta["target_scaler"]["mean"][0] == pytest.approx(1000, abs=10)


def test_progress_lines_one_per_epoch(tmp_path, capsys):
    # On a non-terminal stderr the progress bar prints one plain line per epoch.
    data = tmp_path / "d.csv"
    blobs_csv(data, n=30)
    code, _, err = run_cli(capsys, "train", data, "--target", "kind", "--epochs", "4",
                           "--out", tmp_path / "m.safetensors")
    assert code == 0
    assert [line.split(":")[0] for line in err.splitlines() if line.startswith("[train]")] == [
        f"[train] epoch {e}/4" for e in range(1, 5)]


def test_ctrl_c_saves_the_model(tmp_path, capsys, monkeypatch):
    # A Ctrl-C during training (here raised after epoch 3 of 50) still saves the model, says so,
    # and records the interruption in the metadata.
    from backprop.callbacks import Callback

    class CtrlC(Callback):
        def on_epoch_end(self, state):
            if state.epoch == 2:
                raise KeyboardInterrupt

    original = train_command.build_callbacks
    monkeypatch.setattr(train_command, "build_callbacks", lambda args: [*original(args), CtrlC()])
    data = tmp_path / "d.csv"
    blobs_csv(data, n=30)
    model = tmp_path / "m.safetensors"
    code, out, err = run_cli(capsys, "train", data, "--target", "kind", "--epochs", "50", "--out", model)
    assert code == 0
    assert "interrupted after 3 of 50 epochs; saving the model" in err
    assert "epochs: 3 of 50 (interrupted)" in out
    training = Network.load(model).metadata["training"]
    assert training["interrupted"] is True and training["epochs_run"] == 3


def test_ctrl_c_in_the_first_epoch(tmp_path, capsys, monkeypatch):
    # A Ctrl-C before any epoch finished still saves the model; the curve is skipped with a note.
    from backprop.callbacks import Callback

    class CtrlC(Callback):
        def on_batch_end(self, state):
            raise KeyboardInterrupt

    monkeypatch.setattr(train_command, "build_callbacks", lambda args: [CtrlC()])
    data = tmp_path / "d.csv"
    blobs_csv(data, n=30)
    model = tmp_path / "m.safetensors"
    code, _, err = run_cli(capsys, "train", data, "--target", "kind", "--out", model,
                           "--plot", tmp_path / "c.png")
    assert code == 0 and "interrupted after 0 of 200 epochs" in err and "no loss curve" in err
    assert Network.load(model).metadata["training"]["epochs_run"] == 0
    assert not (tmp_path / "c.png").exists()


def test_seed_makes_training_reproducible(tmp_path, capsys):
    # Two runs with the same seed write identical weights; another seed differs.
    data = tmp_path / "d.csv"
    blobs_csv(data, n=40)
    paths = [tmp_path / f"m{i}.safetensors" for i in range(3)]
    for path, seed in zip(paths, ["5", "5", "6"]):
        assert run_cli(capsys, "train", data, "--target", "kind", "--epochs", "3", "--seed", seed,
                       "--out", path)[0] == 0
    w = [Network.load(p).get_weights() for p in paths]
    assert all(np.array_equal(a, b) for a, b in zip(w[0], w[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(w[0], w[2]))


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--hidden", "8,x"], "must be comma-separated positive layer sizes"),
        (["--validation", "1.5"], "must be a fraction in [0, 1)"),
        (["--epochs", "0"], "must be an integer >= 1; got '0'"),
        (["--lr", "-1"], "must be a positive number"),
        (["--seed", "-3"], "must be an integer >= 0"),
        (["--task", "cluster"], "invalid choice"),
        (["--optimizer", "rmsprop"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, args, expected):
    # Malformed options are argparse usage errors: exit 2, the option named.
    data = tmp_path / "d.csv"
    blobs_csv(data, n=10)
    code, _, err = run_cli(capsys, "train", data, "--target", "kind", "--out", tmp_path / "m", *args)
    assert code == 2 and expected in err


def test_missing_required_option_exit_2(capsys):
    # Forgetting --target is a usage error.
    code, _, err = run_cli(capsys, "train", "d.csv", "--out", "m.safetensors")
    assert code == 2 and "--target" in err


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "content, extra, expected",
    [
        ("a,b\n1,x\n2,y\n", ["--target", "c"], "`--target`: `{data}` has no column 'c'; its columns are 'a', 'b'"),
        ("a,b,y\n1,2,p\n2,red,q\n3,4,p\n", ["--target", "y"], "line 3: column 'b' (features) must be numeric; got 'red'"),
        ("a,y\n1,p\n,q\n", ["--target", "y", "--missing", "error"],
         "line 3: column 'a' (features) must hold a value; got a missing cell (--missing error)"),
        ("a,b,y\n1,,p\n2,,q\n", ["--target", "y"], "column 'b' (features) is empty in every one of its 2 rows"),
        ("a,y\n1,p\n2,\n", ["--target", "y"], "line 3: column 'y' (target) has a missing value"),
        ("a,y\n1,p\n2,p\n3,p\n", ["--target", "y"], "holds a single class ('p') in all 3 rows"),
        ("a,y\n1,p\n2,q\n", ["--target", "y", "--task", "regress"], "column 'y' (target) must be numeric; got 'p'"),
        ("y\n1\n2\n", ["--target", "y"], "has no feature columns besides the target 'y'"),
        ("a,b,y\n1,2,p\n", ["--target", "y", "--features", "a,y"], "`--features` must not include the target"),
        ("", ["--target", "y"], "is empty"),
        ("a,y\n1,p\n2,q,3\n", ["--target", "y"], "line 3: expected 2 fields like the header but found 3"),
    ],
)
def test_train_data_errors_exit_1(tmp_path, capsys, content, extra, expected):
    # Every data problem is refused with one line naming the column/line, exit 1, no traceback.
    data = _write(tmp_path, "d.csv", content)
    code, _, err = run_cli(capsys, "train", data, *extra, "--out", tmp_path / "m.safetensors")
    assert code == 1
    assert expected.format(data=data) in one_line_error(err)
    assert not (tmp_path / "m.safetensors").exists()


def test_binary_file_and_missing_folder(tmp_path, capsys):
    # A binary file and an --out folder that does not exist are refused before any training.
    binary = tmp_path / "img.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
    code, _, err = run_cli(capsys, "train", binary, "--target", "y", "--out", tmp_path / "m")
    assert code == 1 and "binary data" in one_line_error(err)
    data = tmp_path / "d.csv"
    blobs_csv(data, n=10)
    code, _, err = run_cli(capsys, "train", data, "--target", "kind", "--out", tmp_path / "no" / "m")
    assert code == 1 and "its folder does not exist" in one_line_error(err)
    assert "[train]" not in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    # --debug adds the traceback to the one-line message.
    code, _, err = run_cli(capsys, "--debug", "train", tmp_path / "none.csv", "--target", "y", "--out", tmp_path / "m")
    assert code == 1 and "Traceback" in err and "does not exist" in err


def test_predict_and_evaluate_errors(trained, capsys):
    # Missing feature columns, unseen labels, no target column, --proba on the wrong model,
    # and a file that is not a model: one line each, exit 1.
    tmp_path, data, model, _, _, _ = trained
    nofeat = _write(tmp_path, "nofeat.csv", "f1,kind\n1,east\n")
    code, _, err = run_cli(capsys, "predict", model, nofeat)
    assert code == 1 and "`features`: " in err and "has no columns 'f2', 'f3'" in one_line_error(err)

    unseen = _write(tmp_path, "unseen.csv", "f1,f2,f3,kind\n1,2,3,east\n4,5,6,south\n")
    code, _, err = run_cli(capsys, "evaluate", model, unseen)
    assert code == 1
    assert "line 3: column 'kind' has the label 'south', which the model never saw" in one_line_error(err)
    assert "'east', 'north', 'west'" in err

    notarget = _write(tmp_path, "notarget.csv", "f1,f2,f3\n1,2,3\n")
    code, _, err = run_cli(capsys, "evaluate", model, notarget)
    assert code == 1 and "has no column 'kind', the target the model predicts" in one_line_error(err)
    code, out, _ = run_cli(capsys, "predict", model, notarget)  # predict works without the target
    assert code == 0 and out.splitlines()[0] == "kind" and out.splitlines()[1] in CLASSES

    code, _, err = run_cli(capsys, "predict", data, data)
    assert code == 1 and "is not a valid model file" in one_line_error(err)
    code, _, err = run_cli(capsys, "info", tmp_path / "missing.safetensors")
    assert code == 1 and "does not exist" in one_line_error(err)

    reg = tmp_path / "lin.csv"
    linear_csv(reg, n=20)
    assert run_cli(capsys, "train", reg, "--target", "t", "--epochs", "1", "--out", tmp_path / "r.st")[0] == 0
    code, _, err = run_cli(capsys, "predict", tmp_path / "r.st", reg, "--proba")
    assert code == 1 and "`--proba` needs a classification model" in one_line_error(err)


def test_predict_out_is_atomic_and_never_overwrites_inputs(trained, capsys):
    # A failed predict leaves an existing --out untouched; --out may not be the data or model file.
    tmp_path, data, model, _, _, _ = trained
    out = _write(tmp_path, "out.csv", "precious\n")
    bad = _write(tmp_path, "bad.csv", "f1,f2,f3\n1,2,oops\n")
    assert run_cli(capsys, "predict", model, bad, "--out", out)[0] == 1
    assert out.read_text() == "precious\n"
    before = data.read_bytes()
    code, _, err = run_cli(capsys, "predict", model, data, "--out", data)
    assert code == 1 and "must not overwrite the input file" in one_line_error(err)
    assert data.read_bytes() == before
    assert run_cli(capsys, "predict", model, data, "--out", out)[0] == 0
    assert read_csv(out).n_rows == 150
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files


def test_failed_train_keeps_the_old_model(tmp_path, capsys):
    # Training that fails on bad data does not touch an existing model file.
    model = _write(tmp_path, "m.safetensors", "old model")
    bad = _write(tmp_path, "bad.csv", "a,y\n1,p\nx,q\n")
    assert run_cli(capsys, "train", bad, "--target", "y", "--out", model)[0] == 1
    assert model.read_text() == "old model"


def test_no_header_option(tmp_path, capsys):
    # --no-header names the columns column1..N, at train and predict time alike.
    data = tmp_path / "d.csv"
    blobs_csv(data, n=30)
    lines = data.read_text().splitlines()[1:]
    raw = _write(tmp_path, "raw.csv", "\n".join(lines) + "\n")
    code, _, err = run_cli(capsys, "train", raw, "--target", "kind", "--out", tmp_path / "m")
    assert code == 1 and "pass --no-header" in one_line_error(err)
    model = tmp_path / "m.safetensors"
    assert run_cli(capsys, "train", raw, "--no-header", "--target", "column4", "--epochs", "2",
                   "--out", model)[0] == 0
    assert Network.load(model).metadata["features"] == ["column1", "column2", "column3"]
    code, out, _ = run_cli(capsys, "predict", model, raw, "--no-header")
    assert code == 0 and len(out.splitlines()) == 31


def test_evaluate_report_on_a_hand_built_model(tmp_path, capsys):
    # A model built by hand predicts "pos" exactly when x > 0; on six labelled rows with three
    # mistakes the confusion matrix and per-class scores are counted by hand:
    # true neg -> [neg 2, pos 2], true pos -> [neg 1, pos 3]; precision(neg) = 2/3, recall(neg) = 1/2,
    # precision(pos) = 3/5, recall(pos) = 3/4; accuracy 5/8.
    from backprop.layers import Dense

    net = Network([Dense(1, 2, activation="softmax", weight_init=np.array([[-1.0, 1.0]]))],
                  loss="softmax_cross_entropy")
    meta = {"task": "classify", "features": ["x"], "target": "y", "classes": ["neg", "pos"],
            "scaler": {"mean": [0.0], "scale": [1.0]}}
    model = tmp_path / "hand.safetensors"
    net.save(model, meta)
    rows = [(-2, "neg"), (-3, "neg"), (3, "neg"), (5, "neg"), (-1, "pos"), (1, "pos"), (2, "pos"), (4, "pos")]
    data = _write(tmp_path, "d.csv", "x,y\n" + "".join(f"{x},{y}\n" for x, y in rows))
    code, out, _ = run_cli(capsys, "evaluate", model, data)
    assert code == 0
    assert "rows: 8" in out and "accuracy: 0.625" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.split("confusion matrix")[0].splitlines() if line}
    assert lines["neg"] == ["0.667", "0.500", f"{2 * (2/3) * 0.5 / (2/3 + 0.5):.3f}", "4"]
    assert lines["pos"] == ["0.600", "0.750", f"{2 * 0.6 * 0.75 / 1.35:.3f}", "4"]
    matrix = out.split("confusion matrix")[1].splitlines()[2:]
    assert [line.split() for line in matrix] == [["neg", "2", "2"], ["pos", "1", "3"]]
    # The loss is softmax cross-entropy of logits (-x, x): mean of log(1 + exp(-2 x t)), t = +-1.
    t = np.array([-1 if y == "neg" else 1 for _, y in rows])
    x = np.array([x for x, _ in rows], dtype=float)
    loss = np.mean(np.log1p(np.exp(-2 * x * t)))
    assert f"loss (softmax_cross_entropy): {loss:.6g}" in out


def test_divergence_is_reported_and_nothing_saved(tmp_path, capsys):
    # A learning rate that blows the loss up stops training at once, keeps the old model file,
    # and says what to change.
    data = tmp_path / "lin.csv"
    linear_csv(data, n=40)
    model = _write(tmp_path, "m.safetensors", "old model")
    code, _, err = run_cli(capsys, "train", data, "--target", "t", "--optimizer", "sgd", "--lr", "1e6",
                           "--epochs", "30", "--out", model)
    assert code == 1
    assert "training diverged: the loss" in one_line_error(err) and "smaller `--lr`" in err
    assert len([line for line in err.splitlines() if line.startswith("[train]")]) < 30
    assert "RuntimeWarning" not in err
    assert model.read_text() == "old model"


def test_checkpoint_and_resume_flags_are_bitwise(tmp_path, capsys):
    # `train --checkpoint` then `--resume` from the epoch-2 checkpoint (as if killed during epoch 3)
    # ends with a model file whose weights equal an uninterrupted run's, bit for bit.
    data = tmp_path / "blobs.csv"
    blobs_csv(data, n=90)
    common = [str(data), "--target", "kind", "--epochs", "4", "--batch-size", "8", "--quiet", "--seed", "3"]
    full, ckpt = tmp_path / "full.safetensors", tmp_path / "ckpt"
    assert run_cli(capsys, "train", *common, "--out", full)[0] == 0
    assert run_cli(capsys, "train", *common, "--checkpoint", ckpt, "--out", tmp_path / "first.safetensors")[0] == 0
    newest = sorted(ckpt.glob("checkpoint-*.safetensors"))
    assert [p.name for p in newest] == ["checkpoint-000003.safetensors", "checkpoint-000004.safetensors"]
    for p in newest[1:]:
        p.unlink()  # the run "died" during epoch 4: only the epoch-3 checkpoint is left
    resumed = tmp_path / "resumed.safetensors"
    loud = [a for a in common if a != "--quiet"]
    code, _, err = run_cli(capsys, "train", *loud, "--resume", ckpt, "--checkpoint", ckpt, "--out", resumed)
    assert code == 0
    # only the missing epoch ran (a fresh run would give the same weights, so check that too)
    assert [line.split(":")[0] for line in err.splitlines() if line.startswith("[train]")] == ["[train] epoch 4/4"]
    a, b = Network.load(full), Network.load(resumed)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    code, _, err = run_cli(capsys, "train", *common, "--resume", tmp_path / "empty", "--out", resumed)
    assert code == 1 and "`--resume` must name a folder holding checkpoints" in err


@pytest.mark.parametrize("task, extra", [
    ("classify", ["--early-stopping", "--alpha", "0.01", "--n-iter-no-change", "3", "--tol", "0.001", "--lr", "0.05"]),
    ("regress", ["--optimizer", "sgd", "--lr", "0.01", "--batch-size", "16", "--tol", "0.001"]),
])
def test_train_is_the_estimator_fitted_in_python(tmp_path, capsys, task, extra):
    # One engine: the CLI's weights are bitwise those of MLPClassifier/MLPRegressor fitted in
    # Python with the same parameters on the same split, encoded by the file's own preprocessor.
    from backprop import MLPClassifier, MLPRegressor
    from backprop.preprocessing import load_model
    from backprop.tables import read_table

    data, model = tmp_path / "d.csv", tmp_path / "m.safetensors"
    if task == "classify":
        blobs_csv(data, n=120)
        target = "kind"
    else:
        linear_csv(data, n=120)
        target = "t"
    code, _, err = run_cli(capsys, "train", data, "--target", target, "--hidden", "6", "--epochs", "40",
                           "--seed", "3", "--quiet", *extra, "--out", model)
    assert code == 0, err
    network, pre = load_model(model)
    table = read_table(str(data))
    X, y = pre.transform(table), pre.targets(table)
    rows, val = train_command.split_rows(y if task == "classify" else None, len(y), 0.1, 3)
    if task == "regress":
        y = (y - pre.target_scaler.mean[0]) / pre.target_scaler.scale[0]
    opts = dict(zip(extra[::2], extra[1::2])) if task == "regress" else {}
    if task == "classify":
        est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=40, random_state=3, early_stopping=True, alpha=0.01,
                            n_iter_no_change=3, tol=0.001, learning_rate_init=0.05)
    else:
        est = MLPRegressor(hidden_layer_sizes=(6,), max_iter=40, random_state=3, solver=opts["--optimizer"],
                           learning_rate_init=0.01, batch_size=16, tol=0.001)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X[rows], y[rows], X_val=X[val], y_val=y[val])
    for ours, theirs in zip(network.get_weights(), [w for pair in zip(est.coefs_, est.intercepts_) for w in pair]):
        np.testing.assert_array_equal(ours, theirs)
    meta = network.metadata
    assert meta["training"]["epochs_run"] == est.n_iter_ and meta["history"]["loss"] == est.loss_curve_
    if task == "classify":
        assert est.n_iter_ < 40 and meta["metrics"]["val_accuracy"] == est.best_validation_score_


def test_early_stopping_needs_validation_rows(tmp_path, capsys):
    data = tmp_path / "d.csv"
    blobs_csv(data, n=30)
    code, _, err = run_cli(capsys, "train", data, "--target", "kind", "--early-stopping", "--validation", "0",
                           "--out", tmp_path / "m.safetensors")
    assert code == 1 and "`--early-stopping`" in one_line_error(err) and "--validation 0" in err
    assert not (tmp_path / "m.safetensors").exists()


def test_a_class_of_one_row_stays_in_training(tmp_path, capsys):
    # The estimator must see every class: a label held by a single row is never held out, so the
    # model's classes are all the file's (with 30% held out, a random split would often take it).
    data = tmp_path / "d.csv"
    blobs_csv(data, n=40)
    lines = data.read_text().splitlines()
    data.write_text("\n".join([*lines, "9.0,9.0,9.0,rare"]) + "\n")
    for seed in range(5):
        model = tmp_path / f"m{seed}.safetensors"
        code, _, err = run_cli(capsys, "train", data, "--target", "kind", "--epochs", "2", "--validation", "0.3",
                               "--seed", str(seed), "--quiet", "--out", model)
        assert code == 0, err
        assert Network.load(model).metadata["classes"] == sorted([*CLASSES, "rare"])
    labels = np.array([0] * 20 + [1] * 20 + [2])
    for seed in range(20):
        train, val = train_command.split_rows(labels, 41, 0.3, seed)
        assert 40 in train and len(val) == 12
