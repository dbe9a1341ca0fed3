"""`backprop explain --format html` without a browser: the page's embedded data against independent
oracles (finite differences, seed 001's printed loop), refusals, and the Jupyter reprs."""

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from backprop import Network
from backprop.cli import main
from backprop.explain import example, explain
from backprop.explain.page import network_of, page_model, record_training

# seed 001 prints round(E_total, 9) after update i (from 0)
SEED_001 = {21: 0.137205276, 22: 0.131620316, 30: 0.095354325, 39: 0.069045516, 40: 0.066817506}


def _page_data(path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def _seed_loss(w: np.ndarray) -> float:
    """Seed 002's 2-2-2 sigmoid network written out in the test: E_total for weights w1..w8."""
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    i1, i2 = 0.05, 0.10
    h1, h2 = sig(w[0] * i1 + w[1] * i2 + 0.35), sig(w[2] * i1 + w[3] * i2 + 0.35)
    o1, o2 = sig(w[4] * h1 + w[5] * h2 + 0.60), sig(w[6] * h1 + w[7] * h2 + 0.60)
    return 0.5 * (0.01 - o1) ** 2 + 0.5 * (0.99 - o2) ** 2


def _number(line: str) -> float:
    return float(line.rsplit("=", 1)[1].replace("−", "-"))


def test_steps_follow_the_derivation_in_order_and_updates_match_finite_differences(tmp_path):
    """Steps: start, forward neuron by neuron, error, backward layer by layer (each followed by its
    weights' updates), after; each shown w⁺ equals w - 0.5 * a central-difference gradient."""
    out = tmp_path / "step.html"
    assert main(["explain", "--format", "html", "--output", str(out)]) == 0
    data = _page_data(out)
    titles = [s["title"] for s in data["steps"]]
    assert titles[:6] == ["The network before the step", "Forward: h1", "Forward: h2", "Forward: o1",
                          "Forward: o2", "The error"]
    assert titles[6] == "Backward: the output layer (deltas)"
    assert titles[7:11] == ["Update w5 (h1 → o1)", "Update w6 (h2 → o1)", "Update w7 (h1 → o2)", "Update w8 (h2 → o2)"]
    assert titles[11] == "Backward: the hidden layer (deltas)" and titles[-1] == "After the step"
    w = np.array(example.WEIGHTS)
    for k in range(8):
        step = data["steps"][titles.index(next(t for t in titles if t.startswith(f"Update w{k + 1} ")))]
        e = np.zeros(8)
        e[k] = 1e-6
        grad = (_seed_loss(w + e) - _seed_loss(w - e)) / 2e-6
        shown = step["state"][f"e:w{k + 1}"][1]  # "w5⁺ = 0.35891648"
        assert _number(shown) == pytest.approx(w[k] - 0.5 * grad, abs=1e-8)
        assert step["focus"] == [f"e:w{k + 1}"]
        # the equation's result is the same number, and its text face is the text derivation's
        assert _number(step["equations"][-1]["text"]) == _number(shown)
    text = example.derivation().to_text()
    for step in data["steps"]:
        for eq in step["equations"]:
            assert "<math" in eq["mathml"]
            lhs = eq["text"].split(" = ")[0]
            assert lhs in text


def test_forward_and_error_labels_against_the_written_out_network(tmp_path):
    """The nodes' net/out labels and E_total come out as the test's own forward pass gives them."""
    data = page_model(example.derivation())
    last = data["steps"][-1]["state"]
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    net_h1 = 0.15 * 0.05 + 0.20 * 0.10 + 0.35
    assert _number(last["n:h1"][2]) == pytest.approx(net_h1, abs=1e-12)
    assert _number(last["n:h1"][3]) == pytest.approx(sig(net_h1), abs=5e-10)
    before, after = (float(v) for v in last["E"][1].split(" → "))
    assert before == pytest.approx(_seed_loss(np.array(example.WEIGHTS)), abs=5e-10)
    assert after == pytest.approx(0.291027774, abs=5e-10)  # seed 001's error after one round


def test_steps_record_the_seed_001_loop():
    """--steps: the curve is E_total after each SGD step; seed 001's printed lines match it, and a
    snapshot's labels are the numbers of the network after that many steps."""
    record = record_training(example.derivation(), 41)
    E = dict(zip(record["curve"]["k"], record["curve"]["E"]))
    for i, printed in SEED_001.items():
        assert round(E[i + 1], 9) == printed, i
    assert [s["k"] for s in record["snapshots"]] == list(range(42))
    assert record["snapshots"][22]["state"]["E"][1] == "0.137205276"
    long = record_training(example.derivation(), 3000)
    ks = [s["k"] for s in long["snapshots"]]
    assert ks[0] == 0 and ks[-1] == 3000 and len(ks) <= 60 and ks == sorted(ks)


def test_rebuilt_network_gives_the_same_derivation():
    """network_of(d) is the network d started from: explaining it again gives the same numbers."""
    net = Network.from_sizes([3, 2, 2], activation="tanh", output_activation="sigmoid", seed=3)
    d = explain(net, [0.1, -0.4, 0.7], [0.0, 1.0], lr=0.1)
    assert explain(network_of(d), d.x, d.y, lr=0.1).to_dict() == d.to_dict()


def test_page_is_self_contained(tmp_path):
    """No reference to any server: no http(s) URL in a src/href, a CSP that forbids loads."""
    out = tmp_path / "p.html"
    assert main(["explain", "--format", "html", "--steps", "5", "--layers", "3,4,2", "--seed", "2",
                 "--loss", "softmax_cross_entropy", "--output", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    assert "default-src 'none'" in text
    assert _page_data(out)["training"]["steps"] == 5


@pytest.mark.parametrize("argv, code, message", [
    (["--steps", "0"], 2, "argument --steps: must be an integer >= 1; got '0'"),
    (["--steps", "-3"], 2, "argument --steps: must be an integer >= 1; got '-3'"),
    (["--layers", "2,12,1"], 1, "draws at most 10 neurons per layer"),
])
def test_refusals_write_nothing(tmp_path, capsys, argv, code, message):
    """Bad input: one line on stderr, exit 2 (usage) or 1, and no file (nor an existing one changed)."""
    out = tmp_path / "p.html"
    assert main(["explain", "--format", "html", "--output", str(out), *argv]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
    out.write_text("keep")
    assert main(["explain", "--format", "html", "--output", str(out), *argv]) == code
    assert out.read_text() == "keep"


def test_force_draws_a_wide_layer_and_steps_need_html(tmp_path, capsys):
    """--force draws the wide layer; --steps with another format is refused."""
    out = tmp_path / "p.html"
    assert main(["explain", "--format", "html", "--layers", "2,12,1", "--force", "--output", str(out)]) == 0
    assert len(_page_data(out)["graph"]["nodes"]) == 2 + 12 + 1 + 1 + 1
    assert main(["explain", "--steps", "3"]) == 2
    assert "`--steps` needs `--format html`; got --format text" in capsys.readouterr().err


def test_unwritable_outputs(tmp_path, capsys):
    """A missing folder or a folder as the output: one line, exit 1, nothing written."""
    for target in (tmp_path / "missing" / "p.html", tmp_path):
        assert main(["explain", "--format", "html", "--steps", "10", "--output", str(target)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("backprop") and "`--output`" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._row = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []

    def handle_endtag(self, tag):
        if tag == "tr":
            self.rows.append(self._row)

    def handle_data(self, data):
        if self._row is not None:
            self._row.append(data)


def test_jupyter_reprs():
    """Derivation renders as Markdown and as HTML with MathML; Network as a table whose parameter
    counts are n_in*n_out + n_out; History as a PNG of its loss curve."""
    d = example.derivation()
    assert d._repr_markdown_() == d.to_markdown()
    html = d._repr_html_()
    assert html.count("<math") == sum(1 for line in d.to_markdown().splitlines() if line == "$$") // 2
    assert "0.35891648" in html  # w5⁺, the tutorial's printed value
    net = Network.from_sizes([4, 3, 2], seed=0)
    cells = _Cells()
    cells.feed(net._repr_html_())
    assert [r[-1] for r in cells.rows[2:4]] == [str(4 * 3 + 3), str(3 * 2 + 2)]
    history = net.fit(np.random.default_rng(0).random((8, 4)), np.random.default_rng(1).random((8, 2)), epochs=4, seed=0)
    png = history._repr_png_()
    import io

    import matplotlib.image as mpimg

    image = mpimg.imread(io.BytesIO(png), format="png")
    assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0


def test_history_png_without_matplotlib(monkeypatch):
    """Without matplotlib the History has no PNG (Jupyter falls back to its repr)."""
    import sys

    from backprop.callbacks import History

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert History(epochs=[0, 1], loss=[1.0, 0.5])._repr_png_() is None
