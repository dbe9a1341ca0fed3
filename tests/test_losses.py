"""Losses: values by hand, gradients by finite differences, from-logits stability, reductions."""

import warnings

import numpy as np
import pytest

from backprop import BackpropError, get_loss
from backprop.losses import LOSSES


def _targets(name, rng, shape):
    if name == "softmax_cross_entropy":
        return np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    if name == "binary_cross_entropy":
        return rng.integers(0, 2, shape).astype(float)
    if name == "half_poisson_deviance":  # counts, zeros included
        return rng.poisson(1.5, shape).astype(float)
    return rng.standard_normal(shape)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_matches_finite_differences(name, reduction, rng):
    # gradient() is the derivative of value() with the reduction's scaling, weighted or not.
    loss = get_loss(name, reduction=reduction)
    out = rng.standard_normal((5, 3))
    Y = _targets(name, rng, out.shape)
    for w in (None, rng.uniform(0.5, 2, 5)):
        g = loss.gradient(out, Y, w)
        num = np.zeros_like(out)
        for i in np.ndindex(out.shape):
            p, m = out.copy(), out.copy()
            p[i] += 1e-6
            m[i] -= 1e-6
            num[i] = (loss.value(p, Y, w) - loss.value(m, Y, w)) / 2e-6
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_values_by_hand():
    # Hand-computed values for one sample with out=(0.75, 0.25), t=(1, 0).
    out, Y = np.array([[0.75, 0.25]]), np.array([[1.0, 0.0]])
    assert get_loss("half_sse").value(out, Y) == pytest.approx(0.5 * (0.0625 + 0.0625))
    assert get_loss("sse").value(out, Y) == pytest.approx(0.125)
    assert get_loss("mse").value(out, Y) == pytest.approx(0.0625)
    z = np.array([[2.0, -1.0]])
    p = np.exp(z) / np.exp(z).sum()
    assert get_loss("softmax_cross_entropy").value(z, Y) == pytest.approx(-np.log(p[0, 0]))
    s = 1 / (1 + np.exp(-z))
    bce = -(np.log(s[0, 0]) + np.log(1 - s[0, 1]))
    assert get_loss("binary_cross_entropy").value(z, Y) == pytest.approx(bce)


def test_mean_is_sum_over_n():
    # reduction="mean" is the per-sample sum divided by the number of samples.
    rng = np.random.default_rng(1)
    out, Y = rng.random((7, 2)), rng.random((7, 2))
    assert get_loss("half_sse", "mean").value(out, Y) == pytest.approx(get_loss("half_sse", "sum").value(out, Y) / 7)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "softmax_cross_entropy"])
def test_from_logits_is_stable(name):
    # Logits of +-1e4 give finite loss and gradient and no warnings.
    z = np.array([[1e4, -1e4], [-1e4, 1e4]])
    Y = np.array([[0.0, 1.0], [0.0, 1.0]])
    loss = get_loss(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, g = loss.value(z, Y), loss.gradient(z, Y)
    assert np.isfinite(v) and np.all(np.isfinite(g))
    assert v > 1e3  # the confidently wrong sample costs ~2e4 (over 2 samples)


def test_registry_and_reduction_errors():
    # Unknown names and reductions get a message naming the argument and the choices.
    with pytest.raises(BackpropError, match="`loss` must be one of binary_cross_entropy, half_poisson_deviance, half_sse, mse, softmax_cross_entropy, sse; got 'l2'"):
        get_loss("l2")
    with pytest.raises(BackpropError, match="`reduction` must be one of 'mean', 'sum'; got 'avg'"):
        get_loss("mse", reduction="avg")
    with pytest.raises(BackpropError, match=r"`sample_weight` must have shape \(2,\)"):
        get_loss("mse").value(np.zeros((2, 1)), np.zeros((2, 1)), sample_weight=[1, 2, 3])
