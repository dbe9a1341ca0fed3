"""`backprop demo brownlee` (seed 000): the trace with random.seed(1) (6.350 at epoch 0, 1.132 at
epoch 19) and Brownlee's list-of-dicts algorithm re-implemented here as the oracle."""

import json
import random
from math import exp

import numpy as np
import pytest

from backprop import Dense
from backprop.cli import main
from backprop.demos import brownlee
from backprop.initializers import PythonRandom


def _brownlee_oracle(seed=1, epochs=20, lr=0.5, n_hidden=2):
    """The tutorial's algorithm in plain Python: network as lists of neuron dicts."""
    rnd = random.Random(seed)
    net = [[{"weights": [rnd.random() for _ in range(3)]} for _ in range(n_hidden)],
           [{"weights": [rnd.random() for _ in range(n_hidden + 1)]} for _ in range(2)]]
    initial = [[list(n["weights"]) for n in layer] for layer in net]

    def forward(row):
        inputs = row
        for layer in net:
            new = []
            for n in layer:
                w = n["weights"]
                n["output"] = 1.0 / (1.0 + exp(-(w[-1] + sum(w[i] * inputs[i] for i in range(len(w) - 1)))))
                new.append(n["output"])
            inputs = new
        return inputs

    errors = []
    for _ in range(epochs):
        total = 0
        for row in brownlee.DATASET:
            outputs = forward(row)
            expected = [0, 0]
            expected[row[-1]] = 1
            total += sum((expected[i] - outputs[i]) ** 2 for i in range(2))
            for i in reversed(range(2)):
                layer = net[i]
                if i == 1:
                    errs = [expected[j] - layer[j]["output"] for j in range(len(layer))]
                else:
                    errs = [sum(n["weights"][j] * n["delta"] for n in net[1]) for j in range(len(layer))]
                for j, n in enumerate(layer):
                    n["delta"] = errs[j] * n["output"] * (1.0 - n["output"])
            for i in range(2):
                inputs = row[:-1] if i == 0 else [n["output"] for n in net[0]]
                for n in net[i]:
                    for j in range(len(inputs)):
                        n["weights"][j] += lr * n["delta"] * inputs[j]
                    n["weights"][-1] += lr * n["delta"]
        errors.append(total)
    trained = [[dict(n, weights=list(n["weights"])) for n in layer] for layer in net]
    predictions = []
    for row in brownlee.DATASET:
        out = forward(row)
        predictions.append(out.index(max(out)))
    return initial, errors, trained, predictions


def test_trace_with_seed_1_matches_the_published_numbers():
    # With random.seed(1) the algorithm prints error=6.350 at epoch 0 and 1.132 at epoch 19.
    errors = brownlee.run()["errors"]
    assert len(errors) == 20
    assert "%.3f" % errors[0] == "6.350"
    assert "%.3f" % errors[19] == "1.132"


def test_initial_weights_are_the_tutorials_draws():
    # PythonRandom drawn neuron by neuron (demos.conventions) draws exactly what initialize_network draws after seed(1).
    initial, _, _, _ = _brownlee_oracle(epochs=0)
    net = brownlee.network(seed=1)
    for layer, neurons in zip(net.layers, initial):
        for j, weights in enumerate(neurons):
            assert list(layer.params["W"][:, j]) + [layer.params["b"][j]] == weights


def test_python_random_is_pythons_stream():
    # PythonRandom(s) gives random.seed(s); random() ... in row-major order, continuing across calls.
    init, ref = PythonRandom(7), random.Random(7)
    a, b = init((2, 3), None), init((4,), None)
    assert a.ravel().tolist() + b.tolist() == [ref.random() for _ in range(10)]
    with pytest.raises(ValueError, match="`seed` must be an integer"):
        PythonRandom(1.5)


def test_neuron_order_without_bias_and_bad_order():
    # Neuron order without a bias draws one row per neuron; with one, each row ends in the bias.
    from backprop.demos.conventions import neuron_order_dense

    layer = neuron_order_dense(3, 2, weight_init=PythonRandom(3), use_bias=False)
    ref = random.Random(3)
    rows = [[ref.random() for _ in range(3)] for _ in range(2)]
    np.testing.assert_array_equal(layer.params["W"], np.array(rows).T)
    layer = neuron_order_dense(3, 2, weight_init=PythonRandom(3))
    ref = random.Random(3)
    rows = np.array([[ref.random() for _ in range(4)] for _ in range(2)])
    np.testing.assert_array_equal(layer.params["W"], rows[:, :3].T)
    np.testing.assert_array_equal(layer.params["b"], rows[:, 3])


@pytest.mark.parametrize("seed,n_hidden", [(1, 2), (5, 3)])
def test_training_agrees_with_the_plain_python_oracle(seed, n_hidden):
    # Every epoch's error, the final weights, outputs, deltas and predictions, to 1e-12.
    _, errors, net, predictions = _brownlee_oracle(seed=seed, n_hidden=n_hidden)
    result = brownlee.run(seed=seed, n_hidden=n_hidden)
    assert result["errors"] == pytest.approx(errors, rel=1e-12)
    for ours, theirs in zip(result["layers"], net):
        for a, b in zip(ours, theirs):
            assert a["weights"] == pytest.approx(b["weights"], rel=1e-12, abs=1e-14)
            assert a["output"] == pytest.approx(b["output"], rel=1e-12)
            assert a["delta"] == pytest.approx(b["delta"], rel=1e-10, abs=1e-15)
    assert result["predicted"] == predictions


def test_cli_output_shape_and_json(capsys):
    # Lines shaped like the tutorial's, then --json with full-precision errors.
    assert main(["demo", "brownlee"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ">epoch=0, lrate=0.500, error=6.350"
    assert lines[19] == ">epoch=19, lrate=0.500, error=1.132"
    assert lines[20].startswith("[{'weights': [")
    assert lines[22:] == [f"Expected={e}, Got={e}" for e in [0] * 5 + [1] * 5]
    assert main(["demo", "brownlee", "--json", "--epochs", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["errors"]) == 3 and data["errors"][0] == pytest.approx(6.350126629, abs=1e-9)
