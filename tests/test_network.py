"""Network: gradchecks for every activation x loss pair and a deep network, shapes, parameters."""

import numpy as np
import pytest

from backprop import BackpropError, Dense, Network, gradcheck
from backprop.activations import ACTIVATIONS
from backprop.losses import LOSSES, get_loss


def _output_activation(hidden: str, loss: str) -> str:
    link = get_loss(loss).link
    return hidden if link is None or hidden in (link, "identity") else link


def _data(loss, rng, n=4, n_in=3, n_out=3):
    X = rng.standard_normal((n, n_in))
    if loss == "softmax_cross_entropy":
        Y = np.eye(n_out)[rng.integers(0, n_out, n)]
    elif loss == "binary_cross_entropy":
        Y = rng.integers(0, 2, (n, n_out)).astype(float)
    else:
        Y = rng.random((n, n_out))
    return X, Y


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradcheck_every_activation_loss_pair(activation, loss, rng):
    # Backprop gradients equal central differences (< 1e-6) for each activation x loss.
    net = Network.from_sizes([3, 4, 3], activation=activation,
                             output_activation=_output_activation(activation, loss),
                             weight_init="glorot", bias_init=0.1, loss=loss, seed=3)
    X, Y = _data(loss, rng)
    errors = gradcheck(net, X, Y)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradcheck_three_hidden_layers(reduction, rng):
    # A 5-6-5-4-3 network with mixed activations passes gradcheck; weighted samples too.
    layers = [Dense(5, 6, "tanh", seed=1, bias_init=0.1), Dense(6, 5, "leaky_relu", seed=2, bias_init=0.1),
              Dense(5, 4, "sigmoid", seed=3), Dense(4, 3, "softmax", seed=4)]
    net = Network(layers, loss=get_loss("softmax_cross_entropy", reduction))
    X, Y = _data("softmax_cross_entropy", rng, n=6, n_in=5)
    assert max(gradcheck(net, X, Y).values()) < 1e-6
    w = rng.uniform(0.1, 3, 6)
    assert max(gradcheck(net, X, Y, sample_weight=w).values()) < 1e-6


def test_gradcheck_detects_a_wrong_gradient(rng):
    # The oracle can fail: a sabotaged derivative is caught.
    net = Network.from_sizes([3, 4, 2], activation="tanh", seed=0)
    net.layers[0].activation.derivative = lambda Z, A: 1.0 - A  # wrong on purpose
    X, Y = _data("mse", rng, n_out=2)
    assert max(gradcheck(net, X, Y).values()) > 1e-3


def test_forward_1d_and_2d(rng):
    # One sample as 1-D gives 1-D output equal to the matching row of a batch.
    net = Network.from_sizes([3, 5, 2], seed=0)
    X = rng.standard_normal((4, 3))
    batch = net.forward(X)
    assert batch.shape == (4, 2)
    one = net.forward(X[2])
    assert one.shape == (2,)
    np.testing.assert_allclose(one, batch[2], rtol=1e-15)


def test_forward_by_hand():
    # A 2-1 identity network computes x @ W + b.
    net = Network([Dense(2, 1, weight_init=[[2.0], [-3.0]], bias_init=0.5)])
    np.testing.assert_allclose(net.forward([[1.0, 1.0], [0.0, 2.0]]), [[-0.5], [-5.5]])


def test_repr_and_sizes():
    # repr reads like the tutorial's "NeuralNetwork: 64-32-16-10".
    assert repr(Network.from_sizes([64, 32, 16, 10], seed=0)) == "Network 64-32-16-10 (sigmoid)"
    assert repr(Network.from_sizes([4, 8, 3], activation="relu", output_activation="softmax", seed=0)) \
        == "Network 4-8-3 (relu, softmax output)"


def test_parameters_are_live_and_ordered():
    # parameters() returns live arrays in W1, b1, W2, b2 order; editing one changes the output.
    net = Network.from_sizes([2, 3, 1], activation="identity", seed=0)
    names = [n for n, _ in net.named_parameters()]
    assert names == ["W1", "b1", "W2", "b2"]
    before = net.forward([1.0, 1.0]).copy()
    net.parameters()[3][...] += 1.0
    np.testing.assert_allclose(net.forward([1.0, 1.0]), before + 1.0)


def test_gradients_order_and_shapes(rng):
    # gradients() returns one array per parameter with matching shapes.
    net = Network.from_sizes([3, 4, 2], seed=0)
    grads = net.gradients(rng.random((5, 3)), rng.random((5, 2)))
    assert [g.shape for g in grads] == [p.shape for p in net.parameters()]


def test_set_weights_roundtrip_and_errors():
    # set_weights copies values in; wrong count or shape is refused naming the parameter.
    a, b = Network.from_sizes([2, 3, 1], seed=0), Network.from_sizes([2, 3, 1], seed=1)
    b.set_weights(a.get_weights())
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    with pytest.raises(BackpropError, match="must hold 4 arrays"):
        b.set_weights(a.get_weights()[:2])
    with pytest.raises(BackpropError, match=r"weights for `W2` must have shape \(3, 1\); got shape \(1, 3\)"):
        b.set_weights([a.get_weights()[0], a.get_weights()[1], np.zeros((1, 3)), np.zeros(1)])


def test_frozen_bias_is_not_trained_but_has_gradient(rng):
    # A frozen bias keeps its value through training yet still reports its gradient.
    net = Network.from_sizes([2, 2, 2], trainable_bias=False, bias_init=0.35, seed=0)
    X, Y = rng.random((8, 2)), rng.random((8, 2))
    assert np.any(net.gradients(X, Y)[1] != 0)
    net.fit(X, Y, epochs=3, batch_size=2, lr=0.5, seed=0)
    np.testing.assert_array_equal(net.parameters()[1], [0.35, 0.35])
    assert len(net.trainable()[0]) == 2


def test_float32_end_to_end(rng):
    # float32 networks keep float32 through forward, gradients and training.
    net = Network.from_sizes([3, 4, 2], seed=0, dtype=np.float32)
    X, Y = rng.random((6, 3)), rng.random((6, 2))
    assert net.forward(X).dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.gradients(X, Y))
    net.fit(X, Y, epochs=2, batch_size=3, seed=0)
    assert all(p.dtype == np.float32 for p in net.parameters())
    assert max(gradcheck(net, X, Y).values()) < 1e-6  # gradcheck runs on a float64 copy


def test_layer_size_mismatch_and_logits_checks():
    # Layers must chain; a from-logits loss needs a matching or identity output.
    with pytest.raises(BackpropError, match="layer 1 has 3 outputs but layer 2 expects 4 inputs"):
        Network([Dense(2, 3), Dense(4, 1)])
    with pytest.raises(BackpropError, match="needs an output layer with activation 'softmax' or 'identity'; got 'tanh'"):
        Network.from_sizes([2, 3], activation="tanh", loss="softmax_cross_entropy")


def test_shape_errors_name_both_shapes():
    # Wrong input or target shapes name what was expected and what came.
    net = Network.from_sizes([3, 2], seed=0)
    with pytest.raises(BackpropError, match=r"`X` must have shape \(n_samples, 3\) or \(3,\); got shape \(2, 4\)"):
        net.forward(np.zeros((2, 4)))
    with pytest.raises(BackpropError, match=r"`Y` must have shape \(2, 2\).*got shape \(2, 3\)"):
        net.loss(np.zeros((2, 3)), np.zeros((2, 3)))


def test_backward_returns_input_gradient(rng):
    # Network.backward(dY) returns dX equal to finite differences of sum(forward(X) * dY).
    net = Network.from_sizes([3, 4, 2], activation="tanh", seed=0)
    X, R = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))
    net.forward(X)
    dX = net.backward(R)
    num = np.zeros_like(X)
    for i in np.ndindex(X.shape):
        p, m = X.copy(), X.copy()
        p[i] += 1e-6
        m[i] -= 1e-6
        num[i] = (np.sum(net.forward(p) * R) - np.sum(net.forward(m) * R)) / 2e-6
    np.testing.assert_allclose(dX, num, rtol=1e-6, atol=1e-10)
