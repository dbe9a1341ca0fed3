"""The command line on a convolutional network: train on pixel columns with --input-shape and
--conv, then info, predict and evaluate on the saved file; refusals are one line."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from backprop import Conv2D, MaxPool2D, Network
from backprop.cli import main
from backprop.datasets import load_digits


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def digits_csv(tmp_path_factory):
    """400 digits as a CSV of 64 pixel columns (row-major, one channel) and a text label."""
    path = tmp_path_factory.mktemp("cnn") / "digits.csv"
    X, y = load_digits()
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"px{i}" for i in range(64)] + ["digit"])
        writer.writerows([[*row, names[k]] for row, k in zip(X[:400], y[:400])])
    return path, [names[k] for k in y[:400]]


def test_train_info_predict_evaluate_a_conv_network(tmp_path, capsys, digits_csv):
    # A conv net trained from the CLI predicts its training labels well, and every command reads it.
    data, labels = digits_csv
    model = tmp_path / "cnn.safetensors"
    code, out, _ = run_cli(capsys, "train", data, "--target", "digit", "--input-shape", "1,8,8",
                           "--conv", "8x3p1,max2", "--hidden", "32", "--epochs", "15", "--lr", "0.01", "--batch-size", "32", "--out", model, "--quiet")
    assert code == 0 and "Network (1, 8, 8) -> 10" in out
    net = Network.load(model)
    assert [type(l) for l in net.layers[:2]] == [Conv2D, MaxPool2D] and net.layers[0].output_shape == (8, 8, 8)
    code, out, _ = run_cli(capsys, "info", model)
    assert code == 0 and "1x8x8 -> 8x8x8" in out and "8x4x4 -> 128" in out
    preds = tmp_path / "pred.csv"
    code, _, _ = run_cli(capsys, "predict", model, data, "--out", preds)
    with open(preds) as fh:
        predicted = [row["digit"] for row in csv.DictReader(fh)]
    accuracy = np.mean(np.array(predicted) == np.array(labels))
    assert code == 0 and accuracy > 0.9
    code, out, _ = run_cli(capsys, "evaluate", model, data)
    assert code == 0 and f"{accuracy:.4f}"[:4] in out


@pytest.mark.parametrize("extra, message", [
    (["--input-shape", "1,8,7", "--conv", "8x3"], "needs 56 feature columns"),
    (["--input-shape", "1,8,8", "--conv", "8x9"], "is larger than the padded input 8x8"),
    (["--input-shape", "1,8,8", "--conv", "8x3,max9"], "does not fit the input"),
    (["--input-shape", "1,8,8", "--conv", "8y3"], "is not a layer"),
    (["--conv", "8x3"], "go together"),
])
def test_bad_conv_options_are_one_line(tmp_path, capsys, digits_csv, extra, message):
    # Shapes that do not fit and malformed layer lists: one line, exit 1, no model written.
    data, _ = digits_csv
    model = tmp_path / "m.safetensors"
    code, _, err = run_cli(capsys, "train", data, "--target", "digit", "--epochs", "1", "--out", model, "--quiet", *extra)
    assert code == 1 and message in err and len(err.strip().splitlines()[-1]) > 0
    assert not model.exists()


def test_bad_input_shape_is_a_usage_error(tmp_path, capsys, digits_csv):
    # --input-shape must be three positive integers (exit 2, argparse's usage error).
    data, _ = digits_csv
    code, _, err = run_cli(capsys, "train", data, "--target", "digit", "--input-shape", "1,8", "--out", tmp_path / "m")
    assert code == 2 and "three positive integers" in err
