"""`backprop explain` on the command line: options, formats, files, refusals and error lines."""

import json

import numpy as np
import pytest

from backprop import SGD
from backprop.cli import main
from backprop.explain.build import build_network


def _json(capsys, *argv):
    assert main(["explain", "--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_options_build_the_network_they_describe(capsys):
    # --layers/--weights/--biases/--inputs/--targets/--activation/--loss/--lr give the step an
    # independent engine run of the same network takes.
    weights = [0.1, -0.2, 0.3, 0.4, 0.5, -0.6]
    data = _json(capsys, "--layers", "2,2,1", "--weights", ",".join(map(str, weights)), "--biases", "0.1,0.2",
                 "--inputs", "0.3,0.7", "--targets", "0.9", "--activation", "tanh", "--loss", "mse", "--lr", "0.25")
    W1 = np.array([[0.1, 0.3], [-0.2, 0.4]])  # w1, w2 feed h1; w3, w4 feed h2 (the documented order)
    W2 = np.array([[0.5], [-0.6]])
    assert data["network"]["weights"]["w2"] == {"value": -0.2, "from": "i2", "to": "h1"}
    net = build_network([2, 2, 1], weights, [0.1, 0.2], "tanh", loss="mse")
    np.testing.assert_array_equal(net.layers[0].params["W"], W1)
    np.testing.assert_array_equal(net.layers[1].params["W"], W2)
    net.train_step([0.3, 0.7], [0.9], SGD(0.25))
    assert data["updated"]["w1"] == net.layers[0].params["W"][0, 0]
    assert data["updated"]["w6"] == net.layers[1].params["W"][1, 0]
    assert data["network"]["layers"][0]["activation"]["name"] == "tanh"
    assert data["network"]["layers"][0]["bias"]["names"] == ["b1", "b1"]


def test_train_biases_and_seed(capsys):
    # --train-biases trains per-neuron biases; --seed gives reproducible random weights.
    data = _json(capsys, "--train-biases")
    assert data["updated"]["b_o1"] == pytest.approx(0.6 - 0.5 * data["deltas"]["o1"], abs=1e-15)
    a = _json(capsys, "--layers", "3,2,2", "--seed", "4")
    b = _json(capsys, "--layers", "3,2,2", "--seed", "4")
    c = _json(capsys, "--layers", "3,2,2", "--seed", "5")
    assert a == b and a["network"]["weights"] != c["network"]["weights"]


@pytest.mark.parametrize("fmt, marker", [("text", "∂Eₜₒₜₐₗ/∂w₁"), ("markdown", "$$"),
                                         ("latex", r"\documentclass"), ("json", '"gradients"')])
def test_formats(capsys, fmt, marker):
    # Each --format writes its own kind of document.
    assert main(["explain", "--format", fmt]) == 0
    assert marker in capsys.readouterr().out


def test_output_file_is_written_atomically(tmp_path, capsys):
    # --output writes the whole document, leaves no temporary file, and a failing run leaves an
    # existing file untouched.
    target = tmp_path / "d.md"
    assert main(["explain", "--format", "markdown", "--output", str(target)]) == 0
    assert capsys.readouterr().out == ""
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# One training step") and "0.291027774" in text
    assert [p.name for p in tmp_path.iterdir()] == ["d.md"]
    assert main(["explain", "--weights", "1,2", "--output", str(target)]) == 2  # a usage error
    assert target.read_text(encoding="utf-8") == text
    assert main(["explain", "--output", str(tmp_path / "missing" / "d.txt")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_bad_weight_count_is_one_clear_line(capsys):
    # The error names the option, the expected count and the received count; a usage error.
    assert main(["explain", "--weights", "0.1,0.2,0.3"]) == 2
    err = capsys.readouterr().err
    assert err == "backprop: error: `--weights` must list 8 numbers (w1..w8 for layers 2,2,2); got 3\n"


@pytest.mark.parametrize("argv, expected", [
    (["--inputs", "1,2,3"], "`--inputs` must list 2 numbers (one per input); got 3"),
    (["--targets", "1"], "`--targets` must list 2 numbers (one per output); got 1"),
    (["--biases", "1,2,3"], "`--biases` must list 2 numbers (one per layer, or 4: one per neuron); got 3"),
])
def test_other_bad_options(capsys, argv, expected):
    # Bad values get a one-line usage error (exit 2) naming what is wrong.
    assert main(["explain", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("backprop: error: " + expected) and err.count("\n") == 1


@pytest.mark.parametrize("argv, expected", [
    (["--lr", "-1"], "argument --lr: must be a positive number; got '-1'"),
    (["--activation", "nope"], "argument --activation: --activation must be one of identity, leaky_relu, relu"),
    (["--loss", "nope"], "argument --loss: --loss must be one of binary_cross_entropy, "),
    (["--digits", "-3"], "argument --digits: must be an integer from 1 to 30; got '-3'"),
])
def test_bad_option_values_are_argparse_errors(capsys, argv, expected):
    # Values refused by the option's own type: argparse's one line, exit 2.
    assert main(["explain", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("backprop explain: error: " + expected) and err.count("\n") == 1


def test_bad_list_syntax_is_a_usage_error(capsys):
    # Non-numbers in a list are an argparse usage error (exit 2) naming the option.
    assert main(["explain", "--weights", "a,b"]) == 2
    assert "--weights must be comma-separated numbers; got 'a,b'" in capsys.readouterr().err


def test_large_networks_need_force(capsys):
    # Over 64 weights is refused with a clear message unless --force.
    assert main(["explain", "--layers", "8,8,2"]) == 1
    err = capsys.readouterr().err
    assert "at most 64 weights" in err and "got 80" in err and "--force" in err
    assert main(["explain", "--layers", "8,8,2", "--force", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["gradients"]) == 80  # weights only: the biases are frozen


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_diagram(tmp_path, capsys, suffix, magic):
    # --diagram draws a PNG or SVG file; the SVG carries the weights before and after.
    path = tmp_path / f"net{suffix}"
    assert main(["explain", "--diagram", str(path), "--output", str(tmp_path / "d.txt")]) == 0
    data = path.read_bytes()
    assert data.startswith(magic)
    if suffix == ".svg":
        assert b"w5=0.4" in data and b"w5=0.3589" in data and b"0.291027774" in data


def test_diagram_refuses_other_suffixes(tmp_path, capsys):
    # A diagram name that is not .png/.svg is a clear error.
    assert main(["explain", "--diagram", str(tmp_path / "net.gif")]) == 1
    assert "`diagram` must be a .png or .svg file name" in capsys.readouterr().err


def _saved_model(tmp_path):
    net = build_network([2, 3, 2], activation="tanh", loss="softmax_cross_entropy", train_biases=True, seed=1)
    meta = {"task": "classify", "features": ["a", "b"], "target": "kind", "classes": ["cat", "dog"],
            "scaler": {"mean": [1.0, 10.0], "scale": [2.0, 5.0]}}
    net.save(tmp_path / "m.safetensors", metadata=meta)
    (tmp_path / "d.csv").write_text("b,kind,a\n20,dog,3\n5,cat,-1\n", encoding="utf-8")
    return net


def test_model_data_row(tmp_path, capsys):
    # --model/--data/--row: the row's features are scaled with the saved scaler, the target is
    # one-hot over the saved classes, and the step is the engine's on the loaded network.
    net = _saved_model(tmp_path)
    data = _json(capsys, "--model", str(tmp_path / "m.safetensors"), "--data", str(tmp_path / "d.csv"),
                 "--row", "2", "--lr", "0.1")
    x, y = [(-1 - 1.0) / 2.0, (5 - 10.0) / 5.0], [1.0, 0.0]
    assert data["inputs"] == {"i1": x[0], "i2": x[1]} and data["targets"] == {"o1": 1.0, "o2": 0.0}
    net.train_step(x, y, SGD(0.1))
    assert data["updated"]["w1"] == net.layers[0].params["W"][0, 0]
    assert data["updated"]["b_o2"] == net.layers[1].params["b"][1]
    assert any("i1 = a (-1)" in note for note in data["notes"])


@pytest.mark.parametrize("argv, code, expected", [
    (["--row", "3"], 1, "`--row` must be between 1 and 2"),
    (["--row", "0"], 2, "argument --row: must be an integer >= 1; got '0'"),
    (["--row", "1", "--weights", "1"], 2, "`--model` takes the network from the file; drop --weights"),
])
def test_model_data_row_errors(tmp_path, capsys, argv, code, expected):
    # Out-of-range rows (for the file: exit 1) and options that clash with a saved model or are
    # malformed (usage: exit 2) get a clear line.
    _saved_model(tmp_path)
    assert main(["explain", "--model", str(tmp_path / "m.safetensors"), "--data", str(tmp_path / "d.csv"),
                 *argv]) == code
    assert expected in capsys.readouterr().err


def test_model_from_backprop_train_regression(tmp_path, capsys):
    # A regression model written by `backprop train`: the explained target is the row's value
    # standardised with the model's own target scaler, and the step is one engine step.
    import numpy as np

    from backprop.preprocessing import load_model

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 2))
    rows = "\n".join(f"{a:.6f},{b:.6f},{2 * a - b:.6f}" for a, b in X)
    (tmp_path / "r.csv").write_text("u,v,y\n" + rows + "\n", encoding="utf-8")
    model = str(tmp_path / "r.safetensors")
    assert main(["train", str(tmp_path / "r.csv"), "--target", "y", "--task", "regress", "--hidden", "2",
                 "--epochs", "2", "--quiet", "--out", model]) == 0
    capsys.readouterr()
    data = _json(capsys, "--model", model, "--data", str(tmp_path / "r.csv"), "--row", "3", "--lr", "0.1")
    net, pre = load_model(model)
    scale = pre.target_scaler
    t = (2 * X[2, 0] - X[2, 1] - scale.mean[0]) / scale.scale[0]
    assert abs(data["targets"]["o1"] - t) < 1e-5
    x = (X[2] - pre.scaler.mean) / pre.scaler.scale
    assert np.allclose([data["inputs"]["i1"], data["inputs"]["i2"]], x, atol=1e-5)


def test_data_without_model(capsys):
    # --data/--row alone is refused, naming --model.
    assert main(["explain", "--data", "x.csv", "--row", "1"]) == 2
    assert "need `--model FILE`" in capsys.readouterr().err


def test_model_data_row_of_a_one_hot_model(tmp_path, capsys):
    """A model trained on a text column with gaps: the notes name each network input (numeric
    columns, then one per category), the row's category is 1 and the others 0, and an empty city
    is filled with the most frequent city of the training file (counted here with csv)."""
    import collections
    import csv
    from pathlib import Path

    table = Path(__file__).parent / "fixtures" / "cities.csv"
    model = tmp_path / "m.st"
    assert main(["train", str(table), "--target", "price", "--hidden", "3", "--epochs", "2", "--out", str(model),
                 "--seed", "0"]) == 0
    capsys.readouterr()
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    cities = sorted({r["city"] for r in rows if r["city"]})
    common = collections.Counter(r["city"] for r in rows if r["city"]).most_common(1)[0][0]
    for k, r in enumerate(rows[:12], 1):
        data = _json(capsys, "--model", str(model), "--data", str(table), "--row", str(k), "--force")
        note = " ".join(data["notes"])
        chosen = r["city"] or common
        for c in cities:
            assert f"[city={c}] ({1 if c == chosen else 0})" in note
        assert ("city is empty here, filled as [city=" + common + "]" in note) == (r["city"] == "")
        for name in ("area", "rooms", "age"):
            assert f"{name} (" in note
