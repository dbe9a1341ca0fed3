"""The tutorials' own conventions, built from the engine's public API (issue 28): they live with the
demos that need them, not in ``Dense``, ``Network.from_sizes`` or ``train_step``.

- ``neuron_order_network``: Brownlee's initial weights, drawn neuron by neuron (each neuron's
  input weights, then its bias) from Python's ``random`` (seed 000).
- ``bias_trick_network``: PyImageSearch's "bias trick" (seed 003): a column of ones appended to
  the input and one extra unit in every hidden layer in place of later biases.
- ``layerwise_step``: the update order of an older version of Mazur's code (seeds 001/002), each
  layer updated before the delta of the layer below is computed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .._validation import BackpropError, check_dtype
from ..initializers import as_generator, get_initializer
from ..layers import Dense
from ..network import Network

__all__ = ["neuron_order_dense", "neuron_order_network", "bias_trick_network", "layerwise_step"]


def neuron_order_dense(n_inputs: int, n_outputs: int, activation="sigmoid", weight_init="uniform",
                       use_bias: bool = True, seed=None, dtype=np.float64) -> Dense:
    """A Dense layer whose initial values are drawn neuron by neuron: one (n_outputs, n_inputs +
    use_bias) draw, a row per neuron holding its input weights and then its bias (Brownlee's
    ``initialize_network`` order). An initializer that scales by fan-in sees that transposed
    shape, so pair it with one that does not, such as ``PythonRandom`` or ``Uniform``."""
    rows = get_initializer(weight_init)((n_outputs, n_inputs + bool(use_bias)), as_generator(seed))
    W = np.ascontiguousarray(rows[:, :n_inputs].T)
    if use_bias:
        return Dense(n_inputs, n_outputs, activation, weight_init=W, bias_init=rows[:, n_inputs], dtype=dtype)
    return Dense(n_inputs, n_outputs, activation, weight_init=W, use_bias=False, dtype=dtype)


def neuron_order_network(sizes: Sequence[int], activation="sigmoid", weight_init="uniform", loss="half_sse",
                         seed=None, dtype=np.float64) -> Network:
    """Dense layers for consecutive ``sizes``, each drawn by ``neuron_order_dense``, first layer first
    (one shared stream: a ``PythonRandom`` continues from layer to layer)."""
    rng = as_generator(seed)
    return Network([neuron_order_dense(a, b, activation, weight_init, seed=rng, dtype=dtype)
                    for a, b in zip(sizes, sizes[1:])], loss=loss)


def bias_trick_network(sizes: Sequence[int], activation="sigmoid", output_activation=None, weight_init="normal",
                       loss="half_sse", seed=None, dtype=np.float64) -> Network:
    """Seed 003's layout: ``[2, 2, 1]`` becomes Dense(2, 3) with a true bias and Dense(3, 1)
    without one. The extra unit of each hidden layer is an ordinary unit (its input weights are
    trained and its output is not 1), so the network is exactly a first layer with a bias and
    every hidden layer one unit wider, later layers without bias. With ``weight_init="normal"``
    layer i is drawn as the tutorial does, one matrix ``randn(sizes[i] + 1, width) /
    sqrt(sizes[i])`` whose last row is the first layer's bias (other initializers fill the same
    matrix)."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise BackpropError(f"`sizes` must list at least two sizes; got {sizes!r}")
    dtype = check_dtype("dtype", dtype)
    rng = as_generator(seed)
    out_act = activation if output_activation is None else output_activation
    layers, last = [], len(sizes) - 2
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        width = n_out if i == last else n_out + 1
        if weight_init == "normal":
            M = rng.standard_normal((n_in + 1, width)) / np.sqrt(n_in)
        else:
            M = get_initializer(weight_init)((n_in + 1, width), rng)
        act = out_act if i == last else activation
        if i == 0:  # the ones column's row of weights is the first layer's bias
            layers.append(Dense(n_in, width, act, weight_init=M[:n_in], bias_init=M[n_in], dtype=dtype))
        else:  # the previous layer's extra unit is an ordinary input here
            layers.append(Dense(n_in + 1, width, act, weight_init=M, use_bias=False, dtype=dtype))
    return Network(layers, loss=loss)


def layerwise_step(network: Network, X, Y, optimizer, loss=None, sample_weight=None) -> float:
    """One step that updates each layer as soon as its gradients are known, so the delta handed
    to the layer below is computed with the layer's *updated* weights: the older update order of
    Mazur's code behind the blog's "0.291027924 after the first round". Backpropagation proper
    (``Network.train_step``) computes every delta from the forward pass's weights. Needs a
    stateless optimizer (``SGD`` without momentum); every layer's update uses the same step's
    learning rate. Returns the loss before the step."""
    from ..optimizers import SGD

    if not isinstance(optimizer, SGD) or optimizer.momentum:
        raise BackpropError(
            f"`layerwise` updates need SGD without momentum (no optimizer state); got {optimizer!r}"
        )
    loss = network._resolve_loss(loss)
    X2, Y2 = network.prepare(X, Y)
    network.forward_batch(X2, training=True)
    last = network.layers[-1]
    value = network.batch_loss(Y2, loss, sample_weight)
    grad = loss.gradient(last.Z if loss.from_logits else last.A, Y2, sample_weight)
    t = optimizer.t
    for i, layer in enumerate(reversed(network.layers)):
        backward = layer.backward_net if (i == 0 and loss.from_logits) else layer.backward
        backward(grad)  # fills the layer's grads from its forward-pass cache
        optimizer.t = t  # the same step's learning rate for every layer
        optimizer.step([layer.params[k] for k in layer.trainable], [layer.grads[k] for k in layer.trainable])
        grad = backward(grad)  # again, now with the updated weights: the delta handed down
    return value
