"""Seed 000: Jason Brownlee's backpropagation from scratch, from our engine.

Its 10-row, two-class dataset; a 2-2-2 sigmoid network whose initial weights are Python's
``random.seed(1)`` / ``random()`` draws in the tutorial's order (neuron by neuron, hidden layer
first; in each neuron the input weights, then the bias): ``PythonRandom`` with
``conventions.neuron_order_network``. Online SGD at learning rate 0.5 for 20 epochs.

The tutorial's update, ``w += lrate * (expected - output) * f' * input``, is the gradient step of
the half sum of squares; the error it prints is the plain sum of squares over the rows, each row's
taken before its update. So the engine trains on ``half_sse`` (reduction "sum") and the printed
error is twice that loss, summed over the epoch's rows.
"""

from __future__ import annotations

import numpy as np

from .. import SGD, Network, get_loss
from .._validation import check_int
from ..datasets import one_hot
from ..initializers import PythonRandom
from .conventions import neuron_order_network

__all__ = ["DATASET", "network", "run"]

# x1, x2, class: typed in from the tutorial.
DATASET = [
    [2.7810836, 2.550537003, 0],
    [1.465489372, 2.362125076, 0],
    [3.396561688, 4.400293529, 0],
    [1.38807019, 1.850220317, 0],
    [3.06407232, 3.005305973, 0],
    [7.627531214, 2.759262235, 1],
    [5.332441248, 2.088626775, 1],
    [6.922596716, 1.77106367, 1],
    [8.675418651, -0.242068655, 1],
    [7.673756466, 3.508563011, 1],
]


def network(seed: int = 1, n_hidden: int = 2) -> Network:
    """2-n_hidden-2 sigmoid network drawn as ``random.seed(seed)`` and the tutorial would draw it."""
    return neuron_order_network([2, n_hidden, 2], activation="sigmoid", weight_init=PythonRandom(seed),
                                loss=get_loss("half_sse", reduction="sum"))


def _layers(net: Network) -> list[list[dict]]:
    """The tutorial's view of the network: per neuron its weights (inputs, then bias), its output
    and its delta from the last training row. The tutorial's delta is (expected - output) * f',
    the negative of the engine's dZ."""
    return [
        [{"weights": [float(w) for w in layer.params["W"][:, j]] + [float(layer.params["b"][j])],
          "output": float(layer.A[0, j]), "delta": float(-layer.dZ[0, j])}
         for j in range(layer.n_outputs)]
        for layer in net.layers
    ]


def run(epochs: int = 20, lr: float = 0.5, seed: int = 1, n_hidden: int = 2) -> dict:
    """Train row by row; per-epoch errors, the final layers and a prediction for every row.
    ``epochs`` must be at least 1: the layers' outputs and deltas are those of the last row trained."""
    epochs, n_hidden = check_int("epochs", epochs), check_int("n_hidden", n_hidden)
    data = np.array(DATASET, dtype=np.float64)
    X, labels = data[:, :2], data[:, 2].astype(int)
    Y = one_hot(labels, 2)
    net, optimizer = network(seed, n_hidden), SGD(lr)
    errors = []
    for _ in range(epochs):
        errors.append(sum(2.0 * net.train_step(x, y, optimizer) for x, y in zip(X, Y)))
    layers = _layers(net)
    predicted = np.argmax(net.predict(X), axis=1)
    return {"lrate": lr, "epochs": epochs, "seed": seed, "errors": [float(e) for e in errors],
            "layers": layers, "expected": labels.tolist(), "predicted": predicted.tolist()}
