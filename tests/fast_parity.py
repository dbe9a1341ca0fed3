"""Shared oracle for the fast-path tests: train the same network on the numpy reference path
and on a fast runner, then compare weights, per-epoch losses and optimizer state (1e-12)."""

import numpy as np

from backprop import SGD, Adam
from backprop.optimizers import InverseScaling, ReduceOnPlateau

RTOL = 1e-12

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]
# (loss, kind of targets, output activation): every loss, and each from-logits loss with its link
# and with identity
LOSS_CASES = [
    ("half_sse", "regression", "sigmoid"),
    ("sse", "regression", "tanh"),
    ("mse", "regression", "identity"),
    ("binary_cross_entropy", "binary", "sigmoid"),
    ("softmax_cross_entropy", "onehot", "softmax"),
    ("softmax_cross_entropy", "onehot", "identity"),
]
OPTIMIZERS = {
    "sgd": lambda: SGD(0.05),
    "momentum": lambda: SGD(0.05, momentum=0.9),
    "nesterov": lambda: SGD(0.05, momentum=0.8, nesterov=True),
    "momentum-decay": lambda: SGD(0.05, momentum=0.5, weight_decay=0.01),
    "decay": lambda: SGD(0.05, weight_decay=0.01),
    "adam": lambda: Adam(0.01),
    "adam-decay": lambda: Adam(0.01, weight_decay=0.001),
    "invscaling": lambda: SGD(InverseScaling(0.1, power_t=0.5), momentum=0.9),
    "plateau": lambda: Adam(ReduceOnPlateau(0.05, patience=1, factor=0.5)),
}


def _data(rng, n=37, d=5, k=3, kind="regression"):
    X = rng.standard_normal((n, d))
    if kind == "onehot":
        Y = np.eye(k)[rng.integers(0, k, n)]
    elif kind == "binary":
        Y = (rng.random((n, k)) > 0.5).astype(float)
    else:
        Y = rng.random((n, k))
    return X, Y


def _both(make_net, X, Y, make_optimizer=lambda: SGD(0.1), **fit_kwargs):
    """Train two identical networks, reference path then fast path; return (nets, hists, opts)."""
    nets, hists, opts = [], [], []
    for use_fast in (False, True):
        net, opt = make_net(), make_optimizer()
        hists.append(net.fit(X, Y, optimizer=opt, fast=use_fast, **fit_kwargs))
        nets.append(net)
        opts.append(opt)
    return nets, hists, opts


def _assert_same(nets, hists, opts=None, rtol=RTOL, atol=1e-13):
    ref, fst = nets
    for (name, p), q in zip(ref.named_parameters(), fst.parameters()):
        np.testing.assert_allclose(q, p, rtol=rtol, atol=atol, err_msg=name)
    np.testing.assert_allclose(hists[1].loss, hists[0].loss, rtol=rtol, atol=atol)
    if opts is not None:
        assert opts[0].t == opts[1].t
        for name, slots in opts[0].state.items():
            for a, b in zip(slots, opts[1].state[name]):
                np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=name)
