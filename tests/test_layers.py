"""Layers: the contract (check_layer) for Dense with every activation and option."""

import numpy as np
import pytest

from backprop import BackpropError, Dense
from backprop.activations import ACTIVATIONS
from backprop.layers import layer_from_config
from conftest import check_layer


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_contract(activation, use_bias, rng):
    # Dense keeps the layer contract with finite-difference-exact gradients.
    layer = Dense(4, 3, activation=activation, use_bias=use_bias, bias_init=0.1, seed=0)
    X = rng.standard_normal((5, 4))
    X[np.abs(X) < 1e-2] = 0.3
    check_layer(layer, X)


def test_dense_shapes_and_explicit_init():
    # W is (n_inputs, n_outputs) like scikit-learn's coefs_; explicit arrays are used as given.
    layer = Dense(2, 3, weight_init=np.arange(6.0).reshape(2, 3), bias_init=[1.0, 2.0, 3.0])
    assert layer.params["W"].shape == (2, 3) and layer.params["b"].shape == (3,)
    np.testing.assert_array_equal(layer.forward(np.array([[1.0, 1.0]])), [[4.0, 7.0, 10.0]])
    with pytest.raises(BackpropError, match=r"shape \(2, 3\); got shape \(3, 2\)"):
        Dense(2, 3, weight_init=np.zeros((3, 2)))


def test_dense_seeded_init_is_reproducible():
    # Same seed, same weights; different seed, different weights.
    a, b, c = Dense(5, 4, seed=7), Dense(5, 4, seed=7), Dense(5, 4, seed=8)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], c.params["W"])


def test_dense_config_roundtrip():
    # config() rebuilds a layer of the same structure.
    layer = Dense(3, 2, activation={"name": "leaky_relu", "negative_slope": 0.1}, trainable_bias=False)
    clone = layer_from_config(layer.config())
    assert clone.config() == layer.config()
    assert clone.frozen == {"b"}


def test_dense_argument_errors():
    # Bad sizes and activation names get one clear message each.
    with pytest.raises(BackpropError, match="`n_inputs` must be an integer >= 1; got 0"):
        Dense(0, 3)
    with pytest.raises(BackpropError, match="`activation` must be one of"):
        Dense(2, 3, activation="swish")
    with pytest.raises(BackpropError, match="`dtype` must be float32 or float64; got 'int32'"):
        Dense(2, 3, dtype="int32")
