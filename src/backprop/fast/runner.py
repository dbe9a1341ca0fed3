"""EpochRunner: prepares a network, its optimizer and the data once, then runs whole epochs in
the compiled kernel (``kernels.train_epoch``). Also ``predict`` in chunks through ``kernels.forward``.

The runner works on the network's live arrays: parameters, gradients and the optimizer's slots
(velocity, Adam's m and v) are updated in place, so the numpy path can take over at any point.
"""

from __future__ import annotations

import numpy as np
from ..activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from ..layers import Dense
from ..losses import SSE, MSE, BinaryCrossEntropy, HalfSSE, SoftmaxCrossEntropy
from ..optimizers import SGD, Adam, Constant
from . import kernels as K

__all__ = ["EpochRunner", "unsupported", "predict"]

ACTIVATION_CODES = {Identity: K.IDENTITY, Sigmoid: K.SIGMOID, Tanh: K.TANH, ReLU: K.RELU,
                    LeakyReLU: K.LEAKY_RELU, Softmax: K.SOFTMAX}
LOSS_CODES = {HalfSSE: K.HALF_SSE, SSE: K.SSE, MSE: K.MSE, BinaryCrossEntropy: K.BCE,
              SoftmaxCrossEntropy: K.SOFTMAX_CE}
OPTIMIZER_CODES = {SGD: K.OPT_SGD, Adam: K.OPT_ADAM}


def unsupported(network, loss=None, optimizer=None) -> str | None:
    """Why the compiled path cannot train this (network, loss, optimizer), or None if it can."""
    if network.dtype not in (np.float32, np.float64):
        return f"dtype {network.dtype.name} (float32 and float64 are supported)"
    if len(network.layers) > MAX_LAYERS:
        return f"{len(network.layers)} layers (at most {MAX_LAYERS} are compiled)"
    for i, layer in enumerate(network.layers, start=1):
        if type(layer) is not Dense:
            return f"layer {i} is {type(layer).__name__} (only Dense layers are compiled)"
        if type(layer.activation) not in ACTIVATION_CODES:
            return f"layer {i} has activation {layer.activation!r}"
        if "W" in layer.frozen:
            return f"layer {i} has a frozen weight matrix"
        for name, p in layer.params.items():
            if p.dtype != network.dtype or not p.flags.c_contiguous or not p.flags.writeable:
                return f"parameter {name}{i} is not a writable C-contiguous {network.dtype.name} array"
    if loss is not None and type(loss) not in LOSS_CODES:
        return f"loss {loss!r}"
    if optimizer is not None and type(optimizer) not in OPTIMIZER_CODES:
        return f"optimizer {optimizer!r} (SGD and Adam are compiled)"
    return None


MAX_LAYERS = 8  # per-layer arrays travel as tuples padded to this length: one compiled type


def _typed(arrays):
    """A tuple of MAX_LAYERS + 1 arrays (empty ones after the real entries)."""
    arrays = list(arrays)
    pad = np.zeros((0,) * arrays[0].ndim, arrays[0].dtype)
    return tuple(arrays + [pad] * (MAX_LAYERS + 1 - len(arrays)))


def _layer_codes(network):
    acts = np.array([ACTIVATION_CODES[type(layer.activation)] for layer in network.layers], np.int64)
    slopes = np.array([getattr(layer.activation, "negative_slope", 0.0) for layer in network.layers])
    bias_mode = np.array([
        K.NO_BIAS if "b" not in layer.params else K.FROZEN_BIAS if "b" in layer.frozen else K.TRAINABLE_BIAS
        for layer in network.layers
    ], np.int64)
    return acts, slopes, bias_mode


def _biases(network):
    empty = np.zeros(0, network.dtype)
    return _typed([layer.params.get("b", empty) for layer in network.layers])


class EpochRunner:
    """Everything the kernel needs, built once per fit: tuples of the live parameter,
    gradient and slot arrays, batch-sized buffers, and the codes of activations, loss, optimizer."""

    def __init__(self, network, X, Y, loss, optimizer, batch_size: int, weights=None):
        dtype = network.dtype
        self.network, self.optimizer = network, optimizer
        self.X = np.ascontiguousarray(X, dtype)
        self.Y = np.ascontiguousarray(Y, dtype)
        self.n = self.X.shape[0]
        self.batch_size = batch_size
        self.n_batches = -(-self.n // batch_size)
        rows = max(1, min(batch_size, self.n))
        layers = network.layers
        sizes = network.sizes
        self.n_layers = len(layers)

        self.Ws = _typed([layer.params["W"] for layer in layers])
        self.bs = _biases(network)
        self.As = _typed([np.zeros((rows, s), dtype) for s in sizes])
        self.Zs = _typed([np.zeros((rows, s), dtype) for s in sizes[1:]])
        self.dZs = _typed([np.zeros((rows, s), dtype) for s in sizes[1:]])
        self.Yb = np.zeros((rows, sizes[-1]), dtype)
        self.gWs = _typed([layer.grads["W"] for layer in layers])
        empty = np.zeros(0, dtype)
        self.gbs = _typed([layer.grads.get("b", empty) for layer in layers])
        self.acts, self.slopes, self.bias_mode = _layer_codes(network)
        self.losses = np.zeros(rows)
        self.wb = np.zeros(rows if weights is not None else 0)
        self.weights = np.zeros(0) if weights is None else np.ascontiguousarray(weights, np.float64)
        self.w_total = float(np.sum(self.weights)) if weights is not None else float(self.n)

        self.loss_code = LOSS_CODES[type(loss)]
        self.from_logits = bool(loss.from_logits)
        self.mean = loss.reduction == "mean"
        self.opt = OPTIMIZER_CODES[type(optimizer)]
        self._bind_slots(network, optimizer, empty)
        self._arange = np.arange(self.n, dtype=np.int64)

    def _bind_slots(self, network, optimizer, empty):
        """Tuples of the optimizer's own slot arrays, W and b apart (dummies where unused)."""
        params, _ = network.trainable()
        dtype = network.dtype
        hyper = np.zeros(8)
        if isinstance(optimizer, SGD):
            hyper[K.H_MOMENTUM] = optimizer.momentum
            hyper[K.H_NESTEROV] = optimizer.nesterov
            names = ["velocity"] if optimizer.momentum else []
        else:
            hyper[K.H_BETA1], hyper[K.H_BETA2] = optimizer.beta_1, optimizer.beta_2
            hyper[K.H_1MB1], hyper[K.H_1MB2] = 1.0 - optimizer.beta_1, 1.0 - optimizer.beta_2
            hyper[K.H_EPS] = optimizer.epsilon
            names = ["m", "v"]
        hyper[K.H_DECAY] = optimizer.weight_decay
        self.hyper = hyper
        slots = []
        for name in names:
            arrays = optimizer._slots(name, params)
            for i, (a, p) in enumerate(zip(arrays, params)):  # e.g. state loaded from a file
                if a.dtype != dtype or a.shape != p.shape or not a.flags.c_contiguous:
                    arrays[i] = np.ascontiguousarray(np.broadcast_to(a, p.shape), dtype)
            slots.append(arrays)
        dummy_W = np.zeros((0, 0), dtype)
        lists = []
        for k in range(2):
            arrays = slots[k] if k < len(slots) else None
            W_list, b_list, j = [], [], 0
            for layer in network.layers:
                W_list.append(arrays[j] if arrays else dummy_W)
                j += 1
                if "b" in layer.trainable:
                    b_list.append(arrays[j] if arrays else empty)
                    j += 1
                else:
                    b_list.append(empty)
            lists += [_typed(W_list), _typed(b_list)]
        self.S1W, self.S1b, self.S2W, self.S2b = lists

    def _learning_rates(self) -> np.ndarray:
        """The rate of every step of the coming epoch (``optimizer.lr`` at t, t+1, ...)."""
        opt = self.optimizer
        if isinstance(opt.schedule, Constant):
            return np.full(self.n_batches, opt.schedule.lr, dtype=self.network.dtype)
        rates = [opt.schedule.lr_at(opt.t + i) for i in range(self.n_batches)]
        return np.asarray(rates, dtype=self.network.dtype).reshape(self.n_batches)

    def run_epoch(self, rng=None) -> float:
        """One epoch over the data, shuffled by ``rng.permutation(n)`` when rng is given (the
        same draw as the numpy path); returns the epoch loss and advances ``optimizer.t``."""
        order = rng.permutation(self.n) if rng is not None else self._arange
        return self._run(order, self._learning_rates())

    def _run(self, order, lrs) -> float:
        total = K.train_epoch(
            self.X, self.Y, order.astype(np.int64, copy=False), self.batch_size, self.weights,
            self.w_total, lrs, self.optimizer.t, self.n_layers, self.Ws, self.bs, self.As, self.Zs, self.dZs,
            self.Yb, self.gWs, self.gbs, self.S1W, self.S1b, self.S2W, self.S2b, self.acts,
            self.slopes, self.bias_mode, self.loss_code, self.from_logits, self.mean, self.opt,
            self.hyper, self.losses, self.wb)
        self.optimizer.t += len(lrs)
        return float(total)

    def warm_up(self) -> None:
        """Compile (or load from the disk cache) the kernel for these types without training."""
        self._run(np.zeros(0, np.int64), np.zeros(0, self.network.dtype))


def predict(network, X, chunk: int = 2048) -> np.ndarray:
    """Network outputs for a 2-D C-contiguous batch, ``chunk`` rows at a time (no per-layer
    arrays of the whole batch: only the output is allocated)."""
    dtype = network.dtype
    X = np.ascontiguousarray(X, dtype)
    rows = max(1, min(chunk, X.shape[0]))
    sizes = network.sizes
    out = np.empty((X.shape[0], sizes[-1]), dtype)
    acts, slopes, bias_mode = _layer_codes(network)
    K.forward(X, len(network.layers), _typed([layer.params["W"] for layer in network.layers]), _biases(network),
              _typed([np.zeros((rows, s), dtype) for s in sizes]),
              _typed([np.zeros((rows, s), dtype) for s in sizes[1:]]),
              acts, slopes, bias_mode, out, rows)
    return out
