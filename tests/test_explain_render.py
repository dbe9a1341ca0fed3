"""Renderings of a derivation: text/markdown snapshots, a LaTeX document that compiles, JSON.

The snapshots are regression guards only: the default example's numbers are checked against the
tutorial in test_explain_mazur.py and the other network's against the engine and finite
differences in test_explain_gradients.py. Regenerate them after an intended change with
BACKPROP_UPDATE_SNAPSHOTS=1.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from backprop.explain import explain
from backprop.explain.build import build_network
from backprop.explain.example import derivation

SNAPSHOTS = Path(__file__).parent / "snapshots"


def _deep():
    # two tanh hidden layers, softmax cross-entropy, trained biases: the other code paths
    net = build_network([2, 2, 2, 2], activation="tanh", loss="softmax_cross_entropy", train_biases=True, seed=3)
    return explain(net, [0.5, -0.25], [0.0, 1.0], lr=0.1)


def _softmax_sse():
    net = build_network([2, 2, 2], weights=[0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, 0.8],
                        output_activation="softmax", loss="half_sse")
    return explain(net, [1.0, 0.5], [0.2, 0.8], lr=0.5)


CASES = {"default": derivation, "deep_softmax_ce": _deep, "softmax_half_sse": _softmax_sse}


def _check_snapshot(name: str, text: str):
    path = SNAPSHOTS / name
    if os.environ.get("BACKPROP_UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing snapshot {path}; run with BACKPROP_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("fmt, ext", [("text", "txt"), ("markdown", "md")])
def test_snapshot(case, fmt, ext):
    # The text and markdown renderings are unchanged (regression guard).
    _check_snapshot(f"explain_{case}.{ext}", CASES[case]().render(fmt))


def _balanced(tex: str) -> bool:
    depth = 0
    for c in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_latex_is_a_well_formed_ascii_document(case):
    # The LaTeX is pure ASCII (pdflatex-safe), braces and environments balance, one document.
    tex = CASES[case]().to_latex()
    assert tex.isascii()
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    assert _balanced(tex)
    begins = re.findall(r"\\begin\{(\w+\*?)\}", tex)
    ends = re.findall(r"\\end\{(\w+\*?)\}", tex)
    assert sorted(begins) == sorted(ends)


@pytest.mark.parametrize("case", sorted(CASES))
def test_markdown_math_is_ascii_and_balanced(case):
    # Every $$ block of the markdown holds ASCII LaTeX with balanced braces (GitHub renders it).
    md = CASES[case]().to_markdown()
    blocks = md.split("$$")
    assert len(blocks) % 2 == 1
    for math in blocks[1::2]:
        assert math.isascii() and _balanced(math), math


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("case", sorted(CASES))
def test_latex_compiles(case, tmp_path):
    # pdflatex turns the document into a PDF without errors.
    (tmp_path / "d.tex").write_text(CASES[case]().to_latex(), encoding="ascii")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "d.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "d.pdf").stat().st_size > 1000


def test_json_has_the_documented_keys_and_round_trips():
    # to_json() is valid JSON with the documented top-level keys and plain numbers.
    d = derivation()
    data = json.loads(d.to_json())
    assert {"network", "forward", "errors", "deltas", "gradients", "factors", "updated"} <= set(data)
    assert data["format"] == "backprop.explain" and data["version"] == 1
    assert data["factors"]["w5"].keys() == {"dE/dout", "dout/dnet", "dnet/dw"}
    assert data == d.to_dict()


def test_text_uses_unicode_math_and_markdown_uses_tex():
    # The terminal text has ∂ and subscripts; the markdown has \frac{\partial ...} in $$ blocks.
    d = derivation()
    assert "∂Eₜₒₜₐₗ/∂w₅" in d.to_text()
    assert r"\frac{\partial E_{total}}{\partial w_{5}}" in d.to_markdown()


def test_trained_biases_are_named_per_neuron():
    # With --train-biases each neuron's bias gets its own name, gradient and update.
    from backprop.explain.example import network

    data = explain(network(train_biases=True), [0.05, 0.10], [0.01, 0.99]).to_dict()
    assert {"b_h1", "b_h2", "b_o1", "b_o2"} <= set(data["updated"])
    assert data["gradients"]["b_o1"] == data["deltas"]["o1"]
    assert data["factors"]["b_h1"]["dnet/db"] == 1.0


def test_tiny_numbers_never_print_as_zero():
    # A gradient of 1e-12 prints in scientific notation, not as 0.
    from backprop.explain.symbols import fmt

    assert fmt(1.5e-12) == "1.500000e-12"
    assert fmt(0.000438568) == "0.000438568" and fmt(0.40) == "0.4" and fmt(-0.5) == "-0.5"
    assert np.isclose(float(fmt(1.5e-12)), 1.5e-12)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_latex_math_parses(case):
    # Every equation line of the LaTeX parses with matplotlib's mathtext (a LaTeX math subset),
    # a check of the math syntax that runs where pdflatex is not installed.
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("agg")
    bodies = re.findall(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", CASES[case]().to_latex(), re.S)
    assert bodies
    for body in bodies:
        for line in body.split(r"\\"):
            parser.parse("$" + line.replace("&", "").strip() + "$", dpi=72)


def test_public_api_is_callable_and_a_package():
    # backprop.explain(...) returns a Derivation, and its modules still import by dotted path.
    import backprop
    import backprop.explain.trace as trace
    from backprop.explain.example import network

    d = backprop.explain(network(), [0.05, 0.10], [0.01, 0.99])
    assert isinstance(d, backprop.Derivation) and trace.Derivation is backprop.Derivation
