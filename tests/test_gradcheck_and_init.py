"""gradcheck's own arithmetic, and the initializers' distributions and seeding."""

import numpy as np
import pytest

from backprop import BackpropError, Network
from backprop.gradcheck import numerical_gradients, relative_error
from backprop.initializers import as_generator, get_initializer


def test_numerical_gradient_of_linear_model_is_exact():
    # For loss = 1/2 (x.w - t)^2 the gradient is (x.w - t) x, computed by hand.
    net = Network.from_sizes([3, 1], activation="identity", weight_init=[[1.0], [2.0], [3.0]], loss="half_sse")
    x, t = np.array([0.5, -1.0, 2.0]), 1.0
    num = numerical_gradients(net, x, [t])
    resid = x @ [1.0, 2.0, 3.0] - t
    np.testing.assert_allclose(num[0][:, 0], resid * x, rtol=1e-8)
    np.testing.assert_allclose(num[1], [resid], rtol=1e-8)


def test_relative_error_floor():
    # Tiny entries are compared absolutely; large ones relatively.
    assert relative_error(np.array([1e-9]), np.array([2e-9])) == pytest.approx(1e-9 / 1e-4)
    assert relative_error(np.array([2.0]), np.array([2.002])) == pytest.approx(0.002 / 2.002)


@pytest.mark.parametrize("name,std", [("normal", 1 / np.sqrt(400)), ("he", np.sqrt(2 / 400)),
                                      ("glorot", np.sqrt(6 / 600) / np.sqrt(3)),
                                      ("uniform", 0.1 / np.sqrt(12))])
def test_initializer_scales(name, std):
    # Each initializer's standard deviation matches its rule for a 400x200 matrix.
    W = get_initializer(name)((400, 200), np.random.default_rng(0))
    assert W.shape == (400, 200)
    assert W.std() == pytest.approx(std, rel=0.02)


def test_initializers_use_only_their_generator():
    # Global numpy random state is neither used nor changed.
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    a = get_initializer("glorot")((5, 5), as_generator(3))
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    np.testing.assert_array_equal(a, get_initializer("glorot")((5, 5), as_generator(3)))


def test_initializer_errors():
    # Unknown names and bad seeds are refused clearly.
    with pytest.raises(BackpropError, match="`weight_init` must be one of glorot, he, normal, uniform, zeros"):
        get_initializer("kaiming_fancy")
    with pytest.raises(BackpropError, match="`seed` must be a non-negative integer"):
        as_generator(-1)
