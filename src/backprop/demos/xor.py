"""Seed 003's first example: a 2-2-1 sigmoid network learns XOR, from our engine.

Learning rate 0.5, 20,000 epochs of per-sample updates in the data's order, weights drawn as
randn / sqrt(fan_in). By default the network has true biases (a bias per neuron, initialised to 0);
``variant="pyimagesearch"`` builds the tutorial's "bias trick" instead
(``conventions.bias_trick_network``): a column of ones appended to the input and an extra
hidden unit that feeds the output in place of its bias. That extra unit goes through the sigmoid
like any other, so it is a third hidden unit, not a bias: the network is really 2-3-1, with no
bias on the output.
"""

from __future__ import annotations

import numpy as np

from .. import SGD, Network, get_loss
from .._validation import check_choice, check_int
from ._display import EpochLoss
from .conventions import bias_trick_network

__all__ = ["X", "Y", "VARIANTS", "network", "run"]

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
Y = np.array([[0], [1], [1], [0]])
VARIANTS = ("default", "pyimagesearch")


def network(seed: int | None = 42, variant: str = "default") -> Network:
    """The 2-2-1 sigmoid network (true biases, or the tutorial's bias trick)."""
    variant = check_choice("variant", variant, VARIANTS)
    make = bias_trick_network if variant == "pyimagesearch" else Network.from_sizes
    return make([2, 2, 1], activation="sigmoid", loss=get_loss("half_sse", reduction="sum"), seed=seed)


def run(epochs: int = 20000, lr: float = 0.5, seed: int = 42, variant: str = "default",
        every: int = 1000, report=None) -> dict:
    """Train per sample; the loss lines, the prediction for each row and whether all four are right.

    ``report(epoch, loss)`` is called for every loss line as training goes.
    """
    check_int("every", every)
    net = network(seed, variant)
    display = EpochLoss(X, Y, every=every, report=report)
    net.fit(X, Y, epochs=check_int("epochs", epochs), batch_size=1, optimizer=SGD(lr),
            shuffle=False, callbacks=[display])
    pred = net.predict(X)[:, 0]
    step = (pred > 0.5).astype(int)
    return {"variant": variant, "seed": seed, "epochs": epochs, "lr": lr, "network": repr(net),
            "losses": display.records, "data": X.tolist(), "ground_truth": Y[:, 0].tolist(),
            "pred": [float(p) for p in pred], "step": step.tolist(),
            "all_correct": bool(np.all(step == Y[:, 0]))}
