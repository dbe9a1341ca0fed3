"""Seed 002's worked example (Mazur): a 2-2-2 sigmoid network, one step at learning rate 0.5.

w1..w8 = 0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55 in the seed's numbering (h1 takes w1
from i1 and w2 from i2, h2 takes w3 and w4, o1 takes w5 and w6, o2 takes w7 and w8); biases
b1 = 0.35 (hidden) and b2 = 0.60 (output), frozen; input (0.05, 0.10), targets (0.01, 0.99).
"""

from __future__ import annotations

from ..network import Network
from .build import build_network
from .trace import Derivation, explain

__all__ = ["WEIGHTS", "BIASES", "INPUTS", "TARGETS", "LR", "NOTES", "network", "derivation"]

WEIGHTS = [0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55]
BIASES = [0.35, 0.60]
INPUTS = [0.05, 0.10]
TARGETS = [0.01, 0.99]
LR = 0.5

NOTES = [
    "This is the worked example of the backpropagation tutorial (seed 002); every number it prints "
    "appears above at its printed precision, with two known exceptions.",
    "(1) The tutorial prints dE_o2/dout_h1 = -0.019049119. The exact value is -0.0190491183 (the term "
    "delta_o2 * w7 in the hidden layer's section), which rounds to -0.019049118; the tutorial's last digit was rounded "
    "by hand. Its sum dE/dout_h1 = 0.036350306 agrees.",
    "(2) The tutorial says the error after the first round is 0.291027924. That number came from an "
    "older version of its code that updated the output weights before computing the hidden deltas. "
    "With every gradient taken from the old weights (the algorithm the tutorial describes, and the one "
    "used here) the error after the step is 0.291027774.",
    "The tutorial once writes net_h1 = w1*i1 + w3*i2 for the hidden layer; that is a typo for "
    "w2*i2, the weight its forward pass uses (and the one used here).",
]


def network(train_biases: bool = False) -> Network:
    """The seed's 2-2-2 network; ``train_biases`` makes the biases trainable (one per neuron)."""
    return build_network([2, 2, 2], WEIGHTS, BIASES, "sigmoid", loss="half_sse", train_biases=train_biases)


def derivation() -> Derivation:
    """The seed's step, explained, with the notes on its two known exceptions."""
    d = explain(network(), INPUTS, TARGETS, lr=LR)
    d.notes = list(NOTES)
    return d
