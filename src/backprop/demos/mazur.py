"""Seeds 001 and 002: Matt Mazur's step-by-step backpropagation example, from our engine.

A 2-2-2 sigmoid network with w1..w8 = 0.15 .. 0.55, one bias per layer (0.35 hidden, 0.60
output) that is never trained, input (0.05, 0.10), targets (0.01, 0.99), learning rate 0.5 and
E = sum of 1/2 (target - out)^2. Neuron h1 takes w1 and w2, h2 takes w3 and w4, o1 takes w5 and
w6, o2 takes w7 and w8 (the blog's one "w1*i1 + w3*i2" is a typo: its numbers use w2).

Every number below is read from the engine: the layers' caches (Z = net, A = out, dZ = delta),
their ``grads``, the loss and its gradient, and the weights after ``Network.train_step``.
"""

from __future__ import annotations

import numpy as np

from .. import SGD, Dense, Network
from .._validation import check_choice, check_int
from .conventions import layerwise_step

__all__ = ["INPUT", "TARGET", "LEARNING_RATE", "VARIANTS", "network", "walkthrough", "train", "run"]

INPUT = np.array([0.05, 0.10])
TARGET = np.array([0.01, 0.99])
LEARNING_RATE = 0.5
VARIANTS = ("correct", "blog")

# W is (n_inputs, n_outputs): column j holds neuron j's weights.
_W_HIDDEN = [[0.15, 0.25], [0.20, 0.30]]  # h1: w1, w2   h2: w3, w4
_W_OUTPUT = [[0.40, 0.50], [0.45, 0.55]]  # o1: w5, w6   o2: w7, w8


def network() -> Network:
    """The blog's network with its initial weights; the biases are frozen (never trained)."""
    hidden = Dense(2, 2, "sigmoid", weight_init=_W_HIDDEN, bias_init=0.35, trainable_bias=False)
    output = Dense(2, 2, "sigmoid", weight_init=_W_OUTPUT, bias_init=0.60, trainable_bias=False)
    return Network([hidden, output], loss="half_sse")


def weights(net: Network) -> dict[str, float]:
    """w1..w8 in the blog's numbering (neuron by neuron: h1, h2, o1, o2)."""
    hidden, output = net.layers
    values = list(hidden.params["W"].T.ravel()) + list(output.params["W"].T.ravel())
    return {f"w{i}": float(v) for i, v in enumerate(values, start=1)}


def walkthrough() -> dict[str, dict[str, float]]:
    """The forward and backward pass of the blog's text, layer by layer through the engine."""
    net = network()
    hidden, output = net.layers
    loss = net.loss_fn
    X, Y = INPUT.reshape(1, -1), TARGET.reshape(1, -1)
    out = net.forward(X)
    forward = {
        "net_h1": hidden.Z[0, 0], "out_h1": hidden.A[0, 0], "net_h2": hidden.Z[0, 1],
        "out_h2": hidden.A[0, 1], "net_o1": output.Z[0, 0], "out_o1": output.A[0, 0],
        "net_o2": output.Z[0, 1], "out_o2": output.A[0, 1],
        "E_o1": loss.value(out[:, [0]], Y[:, [0]]), "E_o2": loss.value(out[:, [1]], Y[:, [1]]),
        "E_total": loss.value(out, Y),
    }
    dE_dout = loss.gradient(out, Y)
    # Each output's share of dE/dout_h1: back through the output layer with one error at a time.
    share = []
    for o in range(2):
        mask = np.zeros_like(dE_dout)
        mask[:, o] = dE_dout[:, o]
        share.append(output.backward(mask)[0])
    # The real backward pass, layer by layer (what Network.train_step does before its update).
    dE_dout_h = output.backward(dE_dout)
    hidden.backward(dE_dout_h)
    dW_out, dW_hid = output.grads["W"], hidden.grads["W"]
    backward = {
        "dE_total/dout_o1": dE_dout[0, 0],
        "dout_o1/dnet_o1": output.activation.derivative(output.Z, output.A)[0, 0],
        "dnet_o1/dw5": output.X[0, 0],
        "dE_total/dw5": dW_out[0, 0], "dE_total/dw6": dW_out[1, 0],
        "dE_total/dw7": dW_out[0, 1], "dE_total/dw8": dW_out[1, 1],
        "dE_o1/dnet_o1": output.dZ[0, 0],
        "dnet_o1/dout_h1": output.params["W"][0, 0],
        "dE_o1/dout_h1": share[0][0], "dE_o2/dout_h1": share[1][0],
        "dE_total/dout_h1": dE_dout_h[0, 0],
        "dout_h1/dnet_h1": hidden.activation.derivative(hidden.Z, hidden.A)[0, 0],
        "dnet_h1/dw1": hidden.X[0, 0],
        "dE_total/dw1": dW_hid[0, 0], "dE_total/dw2": dW_hid[1, 0],
        "dE_total/dw3": dW_hid[0, 1], "dE_total/dw4": dW_hid[1, 1],
    }
    return {"forward": {k: float(v) for k, v in forward.items()},
            "backward": {k: float(v) for k, v in backward.items()}}


def shown_iterations(iterations: int) -> list[int]:
    """The loop lines printed by default: 0..40 (seed 001 prints 21..40) and every 1000th."""
    return sorted({i for i in range(min(41, iterations))}
                  | {i for i in range(999, iterations, 1000)} | {iterations - 1})


def train(iterations: int = 10000, variant: str = "correct", show=None) -> dict:
    """Seed 001's loop: ``iterations`` updates on the one example; the error after update i
    (i from 0) for every i in ``show``, the weights after the first update and at the end."""
    iterations = check_int("iterations", iterations)
    variant = check_choice("variant", variant, VARIANTS)
    show = set(shown_iterations(iterations) if show is None else show)
    net, optimizer = network(), SGD(LEARNING_RATE)
    layerwise = variant == "blog"
    errors, first = [], {}
    for i in range(iterations):
        if layerwise:
            layerwise_step(net, INPUT, TARGET, optimizer)
        else:
            net.train_step(INPUT, TARGET, optimizer)
        if i == 0:
            first = weights(net)
            first_error = net.loss(INPUT, TARGET)
        if i in show:
            errors.append((i, net.loss(INPUT, TARGET)))
    out = net.predict(INPUT)
    return {
        "variant": variant, "iterations": iterations, "updated_weights": first,
        "error_after_first_round": float(first_error), "errors": [(i, float(e)) for i, e in errors],
        "final_error": float(net.loss(INPUT, TARGET)),
        "final_outputs": [float(v) for v in out], "final_weights": weights(net),
    }


def run(iterations: int = 10000, variant: str = "correct", show=None) -> dict:
    """Everything the demo prints: initial weights, the walk-through, then the training loop."""
    return {"initial_weights": weights(network()), **walkthrough(),
            **train(iterations=iterations, variant=variant, show=show)}
