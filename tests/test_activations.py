"""Activations: values against closed forms, derivatives against finite differences, stability."""

import warnings

import numpy as np
import pytest

from backprop import BackpropError, get_activation
from backprop.activations import ACTIVATIONS

NAMES = sorted(ACTIVATIONS)


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_finite_differences(name, rng):
    # dZ from backward equals d/dZ of sum(f(Z) * R) by central differences.
    act = get_activation(name)
    Z = rng.standard_normal((4, 5))
    Z[np.abs(Z) < 1e-3] = 0.5  # keep away from relu's kink
    R = rng.standard_normal(Z.shape)
    A = act.forward(Z)
    dZ = act.backward(Z, A, R)
    eps = 1e-6
    num = np.zeros_like(Z)
    for i in np.ndindex(Z.shape):
        Zp, Zm = Z.copy(), Z.copy()
        Zp[i] += eps
        Zm[i] -= eps
        num[i] = (np.sum(act.forward(Zp) * R) - np.sum(act.forward(Zm) * R)) / (2 * eps)
    np.testing.assert_allclose(dZ, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_are_finite_and_silent(name):
    # +-1e4 gives finite outputs and derivatives with no numpy warnings.
    act = get_activation(name)
    Z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A = act.forward(Z)
        d = act.backward(Z, A, np.ones_like(Z))
    assert np.all(np.isfinite(A)) and np.all(np.isfinite(d))


def test_values_against_closed_forms():
    # Each activation equals its textbook formula on moderate inputs.
    z = np.linspace(-3, 3, 13).reshape(1, -1)
    np.testing.assert_allclose(get_activation("sigmoid").forward(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(get_activation("tanh").forward(z), np.tanh(z))
    np.testing.assert_array_equal(get_activation("relu").forward(z), np.where(z > 0, z, 0))
    np.testing.assert_allclose(get_activation("leaky_relu").forward(z), np.where(z > 0, z, 0.01 * z))
    sm = get_activation("softmax").forward(z)
    np.testing.assert_allclose(sm, np.exp(z) / np.exp(z).sum(), rtol=1e-14)
    assert get_activation("identity").forward(z) is z


def test_sigmoid_extremes_exact():
    # sigmoid saturates to exactly 0 and 1 at -+1e4 and is 0.5 at 0.
    s = get_activation("sigmoid").forward(np.array([-1e4, 0.0, 1e4]))
    np.testing.assert_array_equal(s, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("name", NAMES)
def test_every_activation_has_formulas(name):
    # The derivation printer needs the value and derivative formulas as text.
    act = get_activation(name)
    assert act.formula.startswith("f(") and act.derivative_formula


def test_registry_error_lists_valid_names():
    # An unknown name gets one line naming the argument and every valid name.
    with pytest.raises(BackpropError, match=r"`activation` must be one of identity, leaky_relu, relu, sigmoid, softmax, tanh \(or exp, for an output layer\); got 'sigmod'"):
        get_activation("sigmod")


def test_aliases_and_config_roundtrip():
    # scikit-learn names work, and config() rebuilds an equal activation.
    assert get_activation("logistic").name == "sigmoid"
    leaky = get_activation({"name": "leaky_relu", "negative_slope": 0.2})
    assert leaky.negative_slope == 0.2 and get_activation(leaky.config()) == leaky
