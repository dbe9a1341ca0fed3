"""explain() on random networks: every number agrees with the engine, finite differences and an
independent plain-numpy forward pass; the updated values equal one engine training step."""

import itertools

import numpy as np
import pytest

from backprop import SGD, BackpropError, Dense, Network
from backprop.explain import explain
from backprop.gradcheck import numerical_gradients, relative_error

ACTS = {  # plain formulas written here, independent of backprop.activations
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "identity": lambda z: z,
    "softmax": lambda z: np.exp(z) / np.exp(z).sum(),
}
LOSSES = ["half_sse", "mse", "cross_entropy"]
CASES = list(itertools.product([1, 2, 3], ["sigmoid", "tanh", "relu"], LOSSES))


def _network(n_hidden, act, loss, seed, out_act=None):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(2, 4))] + [int(rng.integers(2, 4)) for _ in range(n_hidden)] + [int(rng.integers(2, 4))]
    if loss == "cross_entropy":
        loss, default_out = ("softmax_cross_entropy", "softmax") if seed % 2 else ("binary_cross_entropy", "sigmoid")
    else:
        default_out = act
    out_act = out_act or default_out
    layers = [Dense(a, b, out_act if k == len(sizes) - 2 else act, weight_init=rng.normal(0, 0.8, (a, b)),
                    bias_init=rng.normal(0, 0.3, b)) for k, (a, b) in enumerate(zip(sizes, sizes[1:]))]
    x = rng.uniform(-1, 1, sizes[0])
    if loss == "softmax_cross_entropy":
        y = np.eye(sizes[-1])[rng.integers(sizes[-1])]
    else:
        y = rng.uniform(0, 1, sizes[-1])
    return Network(layers, loss=loss), x, y


def _names(net):
    """Weight and bias names written out from the documented scheme, for each engine array entry."""
    sizes = net.sizes
    hidden = len(sizes) - 2

    def neuron(layer, j):  # layer 1..L
        if layer == len(sizes) - 1:
            return f"o{j + 1}"
        return f"h{j + 1}" if hidden == 1 else f"h{layer}_{j + 1}"

    names, w = [], 1
    for layer, (a, b) in enumerate(zip(sizes, sizes[1:]), start=1):
        W = np.empty((a, b), dtype=object)
        for j in range(b):
            for i in range(a):
                W[i, j] = f"w{w}"
                w += 1
        names += [W, np.array([f"b_{neuron(layer, j)}" for j in range(b)], dtype=object)]
    return names, neuron


def _forward_plain(net, x):
    outs = []
    a = x
    for layer in net.layers:
        z = a @ layer.params["W"] + layer.params["b"]
        a = ACTS[layer.activation.name](z)
        outs.append((z, a))
    return outs


@pytest.mark.parametrize("n_hidden, act, loss", CASES)
def test_gradients_match_engine_and_finite_differences(n_hidden, act, loss):
    # Every gradient in the derivation equals network.gradients() and central differences.
    seed = 7 * n_hidden + len(act) + len(loss)
    net, x, y = _network(n_hidden, act, loss, seed)
    d = explain(net, x, y, lr=0.3).to_dict()
    engine = net.gradients(x, y)
    numeric = numerical_gradients(net, x, y)
    names, _ = _names(net)
    for array_names, g_engine, g_num in zip(names, engine, numeric):
        ours = np.array([d["gradients"][n] for n in array_names.ravel()]).reshape(array_names.shape)
        np.testing.assert_allclose(ours, g_engine, rtol=1e-12, atol=1e-15)
        assert relative_error(ours, g_num) < 1e-6


@pytest.mark.parametrize("n_hidden, act, loss", CASES)
def test_updated_values_equal_one_engine_step(n_hidden, act, loss):
    # "updated" is exactly the network after one train_step with SGD(lr); the input network is untouched.
    seed = 11 * n_hidden + len(act) + 3 * len(loss)
    net, x, y = _network(n_hidden, act, loss, seed)
    before = net.get_weights()
    d = explain(net, x, y, lr=0.3).to_dict()
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)
    stepped = net.copy()
    stepped.train_step(x, y, SGD(0.3))
    names, _ = _names(net)
    for array_names, p in zip(names, stepped.get_weights()):
        ours = np.array([d["updated"][n] for n in array_names.ravel()]).reshape(array_names.shape)
        np.testing.assert_array_equal(ours, p)
    assert d["after"]["E_total"] == pytest.approx(stepped.loss(x, y), rel=1e-14)


@pytest.mark.parametrize("n_hidden, act, loss", CASES)
def test_forward_deltas_and_factors_are_consistent(n_hidden, act, loss):
    # net/out match a plain numpy forward pass; each delta is dE/dbias by finite differences;
    # the chain-rule factors multiply to the gradient; a hidden dE/dout is the sum of its terms.
    seed = 13 * n_hidden + 2 * len(act) + len(loss)
    net, x, y = _network(n_hidden, act, loss, seed)
    d = explain(net, x, y, lr=0.1).to_dict()
    names, neuron = _names(net)
    for layer, (z, a) in enumerate(_forward_plain(net, x), start=1):
        for j in range(len(z)):
            assert d["forward"][f"net_{neuron(layer, j)}"] == pytest.approx(z[j], rel=1e-12, abs=1e-14)
            assert d["forward"][f"out_{neuron(layer, j)}"] == pytest.approx(a[j], rel=1e-12, abs=1e-14)
    numeric = numerical_gradients(net, x, y)
    for layer in range(1, len(net.layers) + 1):
        db_numeric = numeric[2 * layer - 1]
        ours = np.array([d["deltas"][neuron(layer, j)] for j in range(len(db_numeric))])
        assert relative_error(ours, db_numeric) < 1e-6
    for name, factors in d["factors"].items():
        product = np.prod(list(factors.values()))
        assert product == pytest.approx(d["gradients"][name], rel=1e-12, abs=1e-300)
    for name, entry in d["backward"].items():
        if "terms" in entry:
            assert sum(entry["terms"].values()) == pytest.approx(entry["dE/dout"], rel=1e-12, abs=1e-15)
    if d["network"]["loss"]["name"] in ("half_sse", "mse"):  # dE/dout of an output by finite differences
        out = np.array([d["forward"][f"out_o{k + 1}"] for k in range(len(y))])
        loss_fn = net.loss_fn
        for k in range(len(y)):
            e = np.zeros_like(out)
            e[k] = 1e-6
            fd = (loss_fn.value(out[None] + e, y[None]) - loss_fn.value(out[None] - e, y[None])) / 2e-6
            assert d["backward"][f"o{k + 1}"]["dE/dout"] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    if "E_o1" in d["errors"]:
        total = sum(v for k, v in d["errors"].items() if k != "E_total")
        assert total == pytest.approx(d["errors"]["E_total"], rel=1e-12)


@pytest.mark.parametrize("out_act, loss", [("softmax", "half_sse"), ("identity", "softmax_cross_entropy"),
                                           ("identity", "binary_cross_entropy")])
def test_softmax_and_identity_outputs(out_act, loss):
    # Non-elementwise softmax (Jacobian path) and identity outputs under from-logits losses.
    net, x, y = _network(1, "tanh", "half_sse", seed=5, out_act=out_act)
    net = Network(net.layers, loss=loss)
    if loss == "softmax_cross_entropy":
        y = np.eye(len(y))[0]
    d = explain(net, x, y, lr=0.2).to_dict()
    names, _ = _names(net)
    numeric = numerical_gradients(net, x, y)
    for array_names, g_num in zip(names, numeric):
        ours = np.array([d["gradients"][n] for n in array_names.ravel()]).reshape(array_names.shape)
        assert relative_error(ours, g_num) < 1e-6
    for name, factors in d["factors"].items():
        assert np.prod(list(factors.values())) == pytest.approx(d["gradients"][name], rel=1e-12)
    if out_act == "softmax":  # the Jacobian row sums to zero (outputs sum to one)
        for k in range(len(y)):
            assert sum(d["backward"][f"o{k + 1}"]["dout/dnet"].values()) == pytest.approx(0, abs=1e-12)
    else:
        assert all(set(f) == {"dE/dnet", "dnet/dw"} for n, f in d["factors"].items() if n.startswith("w") and
                   d["network"]["weights"][n]["to"].startswith("o"))


def test_refusals():
    # One sample only; more than 64 weights needs force=True; lr must be positive.
    net = Network.from_sizes([9, 8, 2], seed=0)
    with pytest.raises(BackpropError, match="at most 64 weights.*got 88"):
        explain(net, np.zeros(9), [0, 1])
    assert explain(net, np.zeros(9), [0, 1], force=True).to_dict()["network"]["sizes"] == [9, 8, 2]
    small = Network.from_sizes([2, 2, 1], seed=0)
    with pytest.raises(BackpropError, match="one sample"):
        explain(small, [[0, 1], [1, 0]], [[1], [0]])
    with pytest.raises(BackpropError, match="`lr` must be a positive number; got -1"):
        explain(small, [0, 1], [1], lr=-1)
