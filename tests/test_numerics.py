"""Numerics: inputs up to 1e4 in magnitude give finite values and no overflow, invalid-value or
divide warnings anywhere in forward, backward or loss, for every activation, loss and dtype."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from backprop import Network
from backprop.activations import ACTIVATIONS
from backprop.losses import LOSSES, get_loss

# (loss, output activation) pairs the engine accepts.
PAIRS = [("half_sse", "sigmoid"), ("sse", "identity"), ("mse", "tanh"), ("half_sse", "relu"),
         ("mse", "leaky_relu"), ("binary_cross_entropy", "sigmoid"), ("softmax_cross_entropy", "softmax"),
         ("binary_cross_entropy", "identity"), ("softmax_cross_entropy", "identity"), ("half_sse", "softmax")]


def _strict():
    """Every numpy floating-point problem raises, and every warning is an error."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")
    err = np.errstate(over="raise", invalid="raise", divide="raise")
    err.__enter__()
    return ctx, err


@pytest.fixture
def strict():
    ctx, err = _strict()
    yield
    err.__exit__(None, None, None)
    ctx.__exit__(None, None, None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", sorted(ACTIVATIONS))
@pytest.mark.parametrize("loss,output", PAIRS)
def test_large_inputs_are_finite_and_silent(strict, rng, dtype, hidden, loss, output):
    # Inputs of +-1e4 (and weights with unit variance, so net inputs reach ~1e5) go through
    # forward, loss and backward without a warning and with finite results.
    X = rng.choice([-1e4, 1e4], size=(6, 5)) * rng.random((6, 5))
    X[0] = 1e4
    X[1] = -1e4
    n_out = 3
    Y = np.eye(n_out)[rng.integers(0, n_out, 6)]
    net = Network.from_sizes([5, 7, n_out], activation=hidden, output_activation=output,
                             weight_init="he", loss=loss, seed=0, dtype=dtype)
    out = net.predict(X)
    value = net.loss(X, Y)
    grads = net.gradients(X, Y)
    assert np.isfinite(out).all() and np.isfinite(value)
    assert all(np.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_losses_at_extremes(strict, name, reduction):
    # Each loss at outputs/logits of +-1e4 is finite and silent.
    loss = get_loss(name, reduction=reduction)
    out = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]])
    Y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert np.isfinite(loss.value(out, Y))
    assert np.isfinite(loss.gradient(out, Y)).all()


def test_cross_entropies_at_extremes_match_hand_values(strict):
    # Hand-derived: BCE(z=1e4, t=0) = 1e4 with gradient 1; BCE(z=-1e4, t=0) = log(1+e^-1e4) = 0.
    # Softmax CE(z=[1e4, -1e4], t=[0, 1]) = 2e4 with gradient [1, -1].
    bce = get_loss("binary_cross_entropy", reduction="sum")
    assert bce.value(np.array([[1e4], [-1e4]]), np.array([[0.0], [0.0]])) == 1e4
    np.testing.assert_array_equal(bce.gradient(np.array([[1e4], [-1e4]]), np.array([[0.0], [0.0]])), [[1.0], [0.0]])
    ce = get_loss("softmax_cross_entropy", reduction="sum")
    z, t = np.array([[1e4, -1e4]]), np.array([[0.0, 1.0]])
    assert ce.value(z, t) == 2e4
    np.testing.assert_array_equal(ce.gradient(z, t), [[1.0, -1.0]])
