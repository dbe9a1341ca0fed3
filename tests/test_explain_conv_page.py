"""`backprop explain --conv --format html` without a browser: the page's embedded data against
independent oracles (the window of every output written out here, a plain-loop SGD of example B),
refusals, and the training record."""

import json
import re

import numpy as np
import pytest

from backprop.cli import main
from backprop.explain.conv import conv_network, example_b, explain_conv
from backprop.explain.conv_page import MAX_GRID_SIDE, conv_page_model, record_conv_training
from backprop.explain.symbols import fmt

EXAMPLE_B_X = np.array([[1, 2, 0], [0, 1, 3], [2, 1, 1]], float)
EXAMPLE_B_K = np.array([[1, -1], [2, 0]], float)
EXAMPLE_B_T = np.array([[1, 4], [1, 3]], float)


def _page_data(path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def _number(line: str) -> float:
    return float(line.rsplit("=", 1)[-1].replace("−", "-"))


def _cell(name: str) -> str:
    """The cell a quantity belongs to: dL/dK[0,1] and K+[0,1] to K[0,1], dA/dY[..] to A[..], L to the box."""
    if name in ("L", "L+"):
        return "E"
    if name.startswith("dA/dY"):
        return "c:A" + name[5:]
    return "c:" + name.removeprefix("dL/d").replace("+", "")


def _quantity(title: str) -> str:
    """The JSON derivation's name of the quantity a step's title shows."""
    slope = re.fullmatch(r"∂A(\[[\d,]+\])/∂Y\1", title)
    if slope:
        return "dA/dY" + slope[1]
    name = title.replace("∂L/∂", "dL/d").replace("⁺", "+")
    return "dL/dY" + name[1:] if name.startswith("G[") else name


def _json(capsys, *argv) -> dict:
    assert main(["explain", "--conv", "--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def _plain_example_b_losses(steps: int, lr: float = 0.1) -> list[float]:
    """Example B (3x3 input, 2x2 kernel, bias 1, half_sse) trained by SGD, written out with loops."""
    X, K, b, T = EXAMPLE_B_X, EXAMPLE_B_K.copy(), 1.0, EXAMPLE_B_T
    losses = []
    for _ in range(steps + 1):
        Y = np.array([[sum(X[p + i, q + j] * K[i, j] for i in range(2) for j in range(2)) + b for q in range(2)]
                      for p in range(2)])
        G = Y - T
        losses.append(0.5 * float(np.sum(G * G)))
        dK = np.array([[sum(G[p, q] * X[p + i, q + j] for p in range(2) for q in range(2)) for j in range(2)]
                       for i in range(2)])
        K, b = K - lr * dK, b - lr * float(G.sum())
    return losses


@pytest.mark.parametrize("argv", [
    [],
    ["--input", "1,2,0,1;0,1,3,2;2,1,1,0;1,0,2,1", "--kernel", "1,-1;2,0", "--pool", "max", "2", "--target", "1",
     "--activation", "relu"],
    ["--input", "1,2,0;0,1,3;2,1,1|0,1,0;1,0,1;0,0,1", "--kernel", "1,-1;2,0|0,1;1,0/1,0;0,1|1,1;0,0",
     "--bias", "0.5,0", "--target", "1,2;3,4|0,1;1,0", "--activation", "tanh", "--padding", "1", "--stride", "2"],
])
def test_each_step_writes_the_derivations_number_into_its_cell(tmp_path, capsys, argv):
    """Every step but the first and last is one quantity of the JSON derivation, in its order: the
    cell it highlights gets that quantity's value, and the page holds every quantity once."""
    d = _json(capsys, *argv)
    out = tmp_path / "c.html"
    assert main(["explain", "--conv", "--format", "html", "--output", str(out), *argv]) == 0
    page = _page_data(out)
    steps = page["steps"]
    names = [_quantity(s["title"]) for s in steps[1:-1]]
    order = [q for s in d["steps"] if s["key"] != "after" for q in s["quantities"]]
    assert names == order
    for s, name in zip(steps[1:-1], names):
        value = d["quantities"][name]["value"]
        (focus,) = s["focus"]
        assert focus == _cell(name)
        assert _number(s["state"][focus][-1]) == pytest.approx(value, abs=0.51e-9)
    last = steps[-1]
    after = [q for s in d["steps"] if s["key"] == "after" for q in s["quantities"]]
    assert len(last["equations"]) == len(after)
    _, _, l_after = last["state"]["E"]
    assert _number(l_after) == pytest.approx(d["L+"], abs=0.51e-9)


def test_forward_steps_use_the_window_of_their_output():
    """Y[p,q] uses the input cells of its window (stride 1, no padding), every kernel cell and b:
    the window is written out here, not read from the derivation."""
    page = conv_page_model(example_b())
    for s in page["steps"][1:5]:
        p, q = map(int, s["title"][2:-1].split(","))
        window = {f"c:X[{p + i},{q + j}]" for i in range(2) for j in range(2)}
        kernel = {f"c:K[{i},{j}]" for i in range(2) for j in range(2)}
        assert s["focus"] == [f"c:Y[{p},{q}]"]
        assert set(s["uses"]) == window | kernel | {"c:b"}
    X = EXAMPLE_B_X
    for s in page["steps"][1:5]:
        p, q = map(int, s["title"][2:-1].split(","))
        expected = float(np.sum(X[p:p + 2, q:q + 2] * EXAMPLE_B_K) + 1)
        assert _number(s["state"][f"c:Y[{p},{q}]"][-1]) == expected


def test_training_record_follows_a_plain_loop():
    """--steps: the loss at every step and at the recorded snapshots equals SGD written out with loops."""
    rec = record_conv_training(example_b(), 200)
    plain = _plain_example_b_losses(200)
    assert rec["curve"]["k"] == list(range(201))
    np.testing.assert_allclose(rec["curve"]["E"], plain, rtol=1e-12, atol=1e-300)
    for snap in rec["snapshots"]:
        assert snap["E"] == pytest.approx(plain[snap["k"]], rel=1e-12)
        assert snap["state"]["E"] == ["L", fmt(snap["E"])]
    assert [s["k"] for s in rec["snapshots"]][:3] == [0, 1, 2] and rec["snapshots"][-1]["k"] == 200


def test_refusals_write_nothing(tmp_path, capsys):
    """A grid too large to read (unless --force) and --steps 0: one line, exit 1, no file."""
    side = MAX_GRID_SIDE + 1
    big = ";".join(",".join("1" for _ in range(side)) for _ in range(side))
    out = tmp_path / "c.html"
    base = ["explain", "--conv", "--format", "html", "--output", str(out), "--input", big, "--kernel", "1",
            "--target", big]
    assert main(base) == 1
    err = capsys.readouterr().err
    assert f"draws grids of at most {MAX_GRID_SIDE}x{MAX_GRID_SIDE} cells" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
    assert main(base + ["--steps", "0"]) == 2
    assert "argument --steps: must be an integer >= 1; got '0'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert main(base + ["--force"]) == 0
    assert sum(n["shape"] == "cell" for n in _page_data(out)["graph"]["nodes"]) == 3 * side * side + 1 + 1


def test_steps_needs_html_with_conv_too(capsys):
    assert main(["explain", "--conv", "--steps", "3"]) == 2
    assert "`--steps` needs `--format html`; got --format text" in capsys.readouterr().err


def test_page_of_a_network_built_in_python():
    """conv_page_model works on any explain_conv derivation: avg pool, no bias, stride 2."""
    net = conv_network(np.ones((1, 1, 2, 2)), None, (1, 4, 4), stride=2, pool=("avg", (2, 2)))
    d = explain_conv(net, np.arange(16.0).reshape(4, 4), np.array([[3.0]]))
    page = conv_page_model(d)
    ids = {n["id"] for n in page["graph"]["nodes"]}
    assert "c:b" not in ids and "c:P[0,0]" in ids
    assert page["steps"][-1]["title"] == "After the step"


def test_jupyter_html_of_a_conv_derivation():
    """ConvDerivation._repr_html_: every equation of the derivation as MathML, its text face as the title."""
    import html

    d = example_b()
    fragment = d._repr_html_()
    titles = {html.unescape(t) for t in re.findall(r'<div title="([^"]*)"><math', fragment)}
    steps = d.steps()
    for s in steps:  # long sums are split over two lines: the first starts with the name, one ends with the value
        lhs, value = s["text"].split(" = ")[0], s["text"].rsplit(" = ", 1)[1]
        assert any(t.startswith(lhs + " = ") for t in titles), lhs
        assert any(t.startswith(lhs + " = ") and t.endswith(" = " + value) for t in titles), s["text"]
    assert fragment.count("<math") >= len(steps)
