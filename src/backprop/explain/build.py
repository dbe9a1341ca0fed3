"""Build a small network from the derivation's numbering: weights w1, w2, .. and biases by layer.

The weights are listed neuron by neuron (the first neuron's incoming weights input by input,
then the next neuron's), layer by layer, as in seed 002; the engine stores layer l's weights as
W[i, j] (input i to neuron j), so w(offset + j * n_in + i + 1) = W[i, j].
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .._validation import BackpropError, check_int
from ..initializers import as_generator, get_initializer
from ..layers import Dense
from ..losses import get_loss
from ..network import Network

__all__ = ["build_network", "weights_to_matrices", "count_weights"]


def count_weights(sizes: Sequence[int]) -> int:
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def weights_to_matrices(sizes: Sequence[int], values: Sequence[float]) -> list[np.ndarray]:
    """w1, w2, .. in the seed's numbering -> one (n_in, n_out) matrix per layer."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    expected = count_weights(sizes)
    if values.size != expected:
        raise BackpropError(
            f"`weights` must list {expected} numbers (w1..w{expected} for layers "
            f"{','.join(map(str, sizes))}); got {values.size}"
        )
    mats, start = [], 0
    for n_in, n_out in zip(sizes, sizes[1:]):
        mats.append(values[start : start + n_in * n_out].reshape(n_out, n_in).T.copy())
        start += n_in * n_out
    return mats


def _bias_vectors(sizes: Sequence[int], biases: Sequence[float]) -> list[np.ndarray]:
    """One number per layer (shared by its neurons) or one per neuron, layer by layer."""
    biases = [float(b) for b in biases]
    layers = list(sizes[1:])
    if len(biases) == len(layers):
        return [np.full(n, b) for n, b in zip(layers, biases)]
    if len(biases) == sum(layers):
        out, start = [], 0
        for n in layers:
            out.append(np.array(biases[start : start + n]))
            start += n
        return out
    raise BackpropError(
        f"`biases` must list {len(layers)} (one per layer) or {sum(layers)} (one per neuron) numbers; "
        f"got {len(biases)}"
    )


def build_network(
    sizes: Sequence[int],
    weights: Sequence[float] | None = None,
    biases: Sequence[float] | None = None,
    activation="sigmoid",
    output_activation=None,
    loss="half_sse",
    train_biases: bool = False,
    seed: int | None = None,
) -> Network:
    """A Dense network with the given weights (random, from ``seed``, when None) and biases
    (0.35 for every hidden layer and 0.60 for the output layer when None, as in seed 002).

    ``output_activation=None`` uses the loss's link for the cross-entropies (sigmoid, softmax)
    and ``activation`` otherwise.
    """
    sizes = [check_int("layers", s) for s in sizes]
    if len(sizes) < 2:
        raise BackpropError(f"`layers` must list at least two sizes (inputs, outputs); got {len(sizes)}")
    loss_fn = get_loss(loss)
    if output_activation is None:
        output_activation = loss_fn.link or activation
    if weights is None:
        rng, init = as_generator(seed), get_initializer("normal")  # randn / sqrt(fan_in), seed 003
        mats = [init((a, b), rng) for a, b in zip(sizes, sizes[1:])]
    else:
        mats = weights_to_matrices(sizes, weights)
    if biases is None:
        biases = [0.35] * (len(sizes) - 2) + [0.60]
    bvecs = _bias_vectors(sizes, biases)
    last = len(mats) - 1
    layers = [
        Dense(W.shape[0], W.shape[1], output_activation if k == last else activation,
              weight_init=W, bias_init=b, trainable_bias=train_biases)
        for k, (W, b) in enumerate(zip(mats, bvecs))
    ]
    return Network(layers, loss=loss_fn)
