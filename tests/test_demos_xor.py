"""`backprop demo xor` (seed 003): the bias trick against seed 003's NeuralNetwork re-implemented
in numpy here, its weight draws, a gradcheck, the default seed, and the output lines."""

import json
import re

import numpy as np
import pytest

from backprop import Network, gradcheck
from backprop.cli import main
from backprop.demos import xor
from backprop.demos.conventions import bias_trick_network


class PyImageSearchNet:
    """Seed 003's NeuralNetwork (fit_partial, predict, calculate_loss), written out from the text."""

    def __init__(self, W, alpha):
        self.W, self.alpha = [w.copy() for w in W], alpha

    @staticmethod
    def sigmoid(x):
        return 1.0 / (1 + np.exp(-x))

    def fit(self, X, y, epochs):
        X = np.c_[X, np.ones((X.shape[0]))]
        for _ in range(epochs):
            for x, target in zip(X, y):
                A = [np.atleast_2d(x)]
                for layer in range(len(self.W)):
                    A.append(self.sigmoid(A[layer].dot(self.W[layer])))
                D = [(A[-1] - target) * A[-1] * (1 - A[-1])]
                for layer in range(len(A) - 2, 0, -1):
                    D.append(D[-1].dot(self.W[layer].T) * A[layer] * (1 - A[layer]))
                D = D[::-1]
                for layer in range(len(self.W)):
                    self.W[layer] += -self.alpha * A[layer].T.dot(D[layer])

    def predict(self, X):
        p = np.atleast_2d(np.c_[X, np.ones((X.shape[0]))])
        for W in self.W:
            p = self.sigmoid(p.dot(W))
        return p

    def calculate_loss(self, X, targets):
        return 0.5 * np.sum((self.predict(X) - np.atleast_2d(targets)) ** 2)


def _as_pyimagesearch(net):
    # First layer: [W; b] is the matrix that multiplies [x, 1]; later layers have no bias.
    first, *rest = net.layers
    return [np.vstack([first.params["W"], first.params["b"]])] + [layer.params["W"] for layer in rest]


def test_bias_trick_draws_the_tutorials_matrices():
    # bias_trick_network draws randn(n_i + 1, n_{i+1} + 1) / sqrt(n_i), the last layer
    # randn(n + 1, n_out) / sqrt(n), from one Generator in order.
    net = bias_trick_network([4, 3, 2, 2], seed=11)
    rng = np.random.default_rng(11)
    expected = [rng.standard_normal((5, 4)) / np.sqrt(4), rng.standard_normal((4, 3)) / np.sqrt(3),
                rng.standard_normal((3, 2)) / np.sqrt(2)]
    for ours, theirs in zip(_as_pyimagesearch(net), expected):
        np.testing.assert_array_equal(ours, theirs)
    assert net.sizes == [4, 4, 3, 2]  # the extra units are real sigmoid units


@pytest.mark.parametrize("sizes", [[2, 2, 1], [3, 4, 3, 2]])
def test_bias_trick_trains_like_seed_003s_network(sizes):
    # Per-sample SGD through the engine equals seed 003's fit_partial on the same matrices.
    rng = np.random.default_rng(3)
    X = rng.random((6, sizes[0]))
    Y = (rng.random((6, sizes[-1])) > 0.5).astype(float)
    net = bias_trick_network(sizes, seed=5)
    oracle = PyImageSearchNet(_as_pyimagesearch(net), alpha=0.5)
    oracle.fit(X, Y, epochs=50)
    from backprop import SGD, get_loss

    net.fit(X, Y, epochs=50, batch_size=1, optimizer=SGD(0.5), shuffle=False)
    for ours, theirs in zip(_as_pyimagesearch(net), oracle.W):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(net.predict(X), oracle.predict(X), rtol=1e-12)
    half_sse = get_loss("half_sse", reduction="sum")
    assert net.loss(X, Y, loss=half_sse) == pytest.approx(oracle.calculate_loss(X, Y), rel=1e-12)


def test_bias_trick_network_gradchecks():
    # The bias-trick layout's gradients agree with central differences.
    net = bias_trick_network([3, 4, 3, 2], seed=2)
    X = np.random.default_rng(0).random((5, 3))
    assert max(gradcheck(net, X, np.eye(2)[[0, 1, 1, 0, 1]]).values()) < 1e-6


def test_demo_variant_matches_the_oracle_and_reports_its_loss_lines():
    # The pyimagesearch variant of the demo (300 epochs): predictions and the loss lines
    # ("[INFO] epoch=N, loss=...") equal the oracle's calculate_loss after those epochs.
    result = xor.run(epochs=300, seed=4, variant="pyimagesearch", every=100)
    oracle = PyImageSearchNet(_as_pyimagesearch(xor.network(4, "pyimagesearch")), alpha=0.5)
    losses = []
    for epoch in range(1, 301):
        oracle.fit(xor.X, xor.Y, epochs=1)
        if epoch == 1 or epoch % 100 == 0:
            losses.append((epoch, oracle.calculate_loss(xor.X, xor.Y)))
    assert [e for e, _ in result["losses"]] == [1, 100, 200, 300]
    assert [v for _, v in result["losses"]] == pytest.approx([v for _, v in losses], rel=1e-12)
    assert result["pred"] == pytest.approx(oracle.predict(xor.X)[:, 0].tolist(), rel=1e-12)


@pytest.mark.slow
def test_default_seed_classifies_all_four(capsys):
    # `backprop demo xor` with its default seed gets every row right, in the tutorial's line format.
    assert main(["demo", "xor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    pattern = re.compile(r"\[INFO\] data=\[(\d) (\d)\], ground-truth=(\d), pred=(\d\.\d{4}), step=(\d)$")
    rows = [pattern.match(line) for line in lines[-4:]]
    assert all(rows), lines[-4:]
    for m in rows:
        a, b, truth, pred, step = m.groups()
        assert int(truth) == (int(a) ^ int(b)) == int(step) == int(float(pred) > 0.5)
    assert lines[1].startswith("[INFO] epoch=1, loss=")


def test_json_and_bad_input(capsys):
    # --json holds the predictions at full precision; a bad --every is a one-line error.
    assert main(["demo", "xor", "--json", "--epochs", "5", "--variant", "pyimagesearch"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["variant"] == "pyimagesearch" and len(data["pred"]) == 4
    assert data["network"] == "Network 2-3-1 (sigmoid)"
    assert main(["demo", "xor", "--every", "0"]) == 2  # a usage error, from argparse
    assert "argument --every: must be an integer >= 1; got '0'" in capsys.readouterr().err
