"""Central finite differences against backpropagation, in float64, per parameter array."""

from __future__ import annotations

import numpy as np

__all__ = ["gradcheck", "numerical_gradients", "relative_error"]


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 1e-4) -> float:
    """max |a - n| / max(|a|, |n|, floor): relative where gradients are large, absolute (scaled
    by 1/floor) where both are tiny, so rounding noise on near-zero entries is not amplified."""
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    return float(np.max(np.abs(analytic - numeric) / scale)) if analytic.size else 0.0


def numerical_gradients(network, X, Y, loss=None, eps: float = 1e-5, sample_weight=None) -> list[np.ndarray]:
    """d loss / d parameter by central differences, (f(p + eps) - f(p - eps)) / (2 eps), entry by
    entry on a float64 copy of ``network`` (the network itself is left untouched)."""
    net = network.copy(dtype=np.float64)
    grads = []
    for p in net.parameters():
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            plus = net.loss(X, Y, loss=loss, sample_weight=sample_weight)
            flat[i] = old - eps
            minus = net.loss(X, Y, loss=loss, sample_weight=sample_weight)
            flat[i] = old
            gflat[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def gradcheck(network, X, Y, loss=None, eps: float = 1e-5, floor: float = 1e-4, sample_weight=None) -> dict[str, float]:
    """Largest relative error between backprop and finite differences, per parameter array.

    ``network`` is checked on inputs ``X`` and targets ``Y`` with ``loss`` (default its own) and
    optional ``sample_weight``; ``eps`` is the finite-difference step and ``floor`` the smallest
    magnitude errors are taken relative to (see ``relative_error``).

    Returns ``{"W1": 3.1e-10, "b1": ..., ...}`` in ``parameters()`` order; values below about
    1e-6 mean the backward pass is right. Everything runs in float64.

    >>> from backprop import Network, gradcheck
    >>> net = Network.from_sizes([2, 3, 1], activation="tanh", seed=0)
    >>> max(gradcheck(net, [[0.1, 0.2]], [[0.5]]).values()) < 1e-6
    True
    """
    net = network.copy(dtype=np.float64)
    analytic = net.gradients(X, Y, loss=loss, sample_weight=sample_weight)
    numeric = numerical_gradients(net, X, Y, loss=loss, eps=eps, sample_weight=sample_weight)
    names = [name for name, _ in net.named_parameters()]
    return {name: relative_error(a, n, floor) for name, a, n in zip(names, analytic, numeric)}
