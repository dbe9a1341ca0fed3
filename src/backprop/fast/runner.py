"""EpochRunner: prepares a network, its optimizer and the data once, then runs whole epochs in
the compiled kernel (``kernels.train_epoch``, or ``kernels.train_online`` per sample; each called
through its saved machine code, ``native.py``, where that loads), for every batch size; BLAS-sized
products call numpy's own gemm (``blas.py``). Only where that gemm cannot be called from compiled
code do large batches train in ``batched.BatchRunner`` (numpy's matmul driven from Python).

Parameters and optimizer slots are copied into flat buffers before each epoch and back after it,
so between epochs the network and the optimizer hold the current values and the numpy path can
take over at any point. ``layer.grads`` are not filled by the fast path.
"""

from __future__ import annotations

import numpy as np
from ..activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from ..layers import Dense
from ..losses import SSE, MSE, BinaryCrossEntropy, HalfSSE, SoftmaxCrossEntropy
from ..optimizers import SGD, Adam, Constant
from . import blas
from . import kernels as K
from . import native

__all__ = ["EpochRunner", "unsupported", "optimizer_state", "activation_code", "ACTIVATION_CODES",
           "LOSS_CODES"]

ACTIVATION_CODES = {Identity: K.IDENTITY, Sigmoid: K.SIGMOID, Tanh: K.TANH, ReLU: K.RELU,
                    LeakyReLU: K.LEAKY_RELU, Softmax: K.SOFTMAX}
LOSS_CODES = {HalfSSE: K.HALF_SSE, SSE: K.SSE, MSE: K.MSE, BinaryCrossEntropy: K.BCE,
              SoftmaxCrossEntropy: K.SOFTMAX_CE}
OPTIMIZER_CODES = {SGD: K.OPT_SGD, Adam: K.OPT_ADAM}


def unsupported(network, loss=None, optimizer=None) -> str | None:
    """Why the compiled path cannot train this (network, loss, optimizer), or None if it can."""
    if network.dtype not in (np.float32, np.float64):
        return f"dtype {network.dtype.name} (float32 and float64 are supported)"
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


def optimizer_state(optimizer, params, dtype, l2: float = 0.0):
    """(hyper, slots): the kernel's float64 settings array for an SGD or Adam optimizer, and the
    optimizer's own slot arrays for ``params`` (one list per slot name, created as the numpy
    path would; made C-contiguous arrays of ``dtype`` where a loaded state left them otherwise)."""
    hyper = np.zeros(K.N_HYPER)
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
    hyper[K.H_L2] = l2
    slots = []
    for name in names:
        arrays = optimizer._slots(name, params)
        for i, (a, p) in enumerate(zip(arrays, params)):  # e.g. state loaded from a file
            if a.dtype != dtype or a.shape != p.shape or not a.flags.c_contiguous:
                arrays[i] = np.ascontiguousarray(np.broadcast_to(a, p.shape), dtype)
        slots.append(arrays)
    return hyper, slots


ALIGN_BYTES = 64  # one cache line: vector loads and stores never straddle two
ALIGN_ITEMS = 16  # every block in a flat buffer starts on a multiple of this many items


def aligned_zeros(shape, dtype) -> np.ndarray:
    """``np.zeros`` whose data starts on a cache line. numpy's own allocations are only 16-byte
    aligned, so every other one puts each 32-byte vector access across two cache lines; in the
    per-sample kernel that alone made an epoch 1.2 or 1.45 ms by the luck of malloc."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(size + ALIGN_BYTES, np.uint8)
    start = -raw.ctypes.data % ALIGN_BYTES
    return raw[start:start + size].view(dtype).reshape(shape)


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN_ITEMS) * ALIGN_ITEMS


def activation_code(activation) -> tuple[int, float]:
    """The kernels' code for an activation, and its negative slope (0 but for leaky_relu)."""
    return ACTIVATION_CODES[type(activation)], float(getattr(activation, "negative_slope", 0.0))


def _layer_codes(network):
    codes = [activation_code(layer.activation) for layer in network.layers]
    acts = np.array([code for code, _ in codes], np.int64)
    slopes = np.array([slope for _, slope in codes])
    bias_mode = np.array([
        K.NO_BIAS if "b" not in layer.params else K.FROZEN_BIAS if "b" in layer.frozen else K.TRAINABLE_BIAS
        for layer in network.layers
    ], np.int64)
    return acts, slopes, bias_mode


class _Layout:
    """Offsets of every layer's W and b in the flat parameter buffer, and of its batch-sized
    blocks (activations, net inputs, deltas) in the flat work buffers, for ``rows`` rows."""

    def __init__(self, network, rows: int):
        self.sizes = np.array(network.sizes, np.int64)
        self.acts, self.slopes, self.bias_mode = _layer_codes(network)
        w_off, b_off, offset = [], [], 0
        self.arrays = []  # (name, layer, offset) of each parameter, in named_parameters() order
        for layer in network.layers:
            offset = _aligned(offset)
            w_off.append(offset)
            self.arrays.append(("W", layer, offset))
            offset += layer.params["W"].size
            if "b" in layer.params:
                offset = _aligned(offset)
                b_off.append(offset)
                self.arrays.append(("b", layer, offset))
                offset += layer.params["b"].size
            else:
                b_off.append(-1)
        self.n_params = offset
        self.w_off, self.b_off = np.array(w_off, np.int64), np.array(b_off, np.int64)
        sizes = network.sizes
        self.a_off, self.a_size = self._blocks([rows * s for s in sizes])
        self.z_off, self.z_size = self._blocks([rows * s for s in sizes[1:]])

    @staticmethod
    def _blocks(lengths):
        """Aligned offsets of consecutive blocks of these lengths, and the total length."""
        offsets, end = [], 0
        for length in lengths:
            offsets.append(_aligned(end))
            end = offsets[-1] + length
        return np.array(offsets, np.int64), end

    def views(self, flat, arrays, transposed=False):
        """(array, its block of ``flat`` shaped like it) for each per-parameter array
        (``self.arrays`` order; None = skipped); ``transposed``: each weight matrix's block holds
        W.T (``kernels.train_online``'s layout). Built once; each epoch copies through them."""
        pairs = []
        for (name, _, offset), a in zip(self.arrays, arrays):
            if a is not None:
                if transposed and name == "W":
                    pairs.append((a, flat[offset:offset + a.size].reshape(a.shape[::-1]).T))
                else:
                    pairs.append((a, flat[offset:offset + a.size].reshape(a.shape)))
        return pairs


def copy_in(pairs) -> None:
    for array, block in pairs:
        np.copyto(block, array)


def copy_out(pairs) -> None:
    for array, block in pairs:
        np.copyto(array, block)


class EpochRunner:
    """Everything the kernel needs, built once per fit: flat buffers for the parameters, the
    gradients, the optimizer's slots and one batch's activations, and the codes of the layers,
    loss and optimizer. Each epoch copies the live parameters and slots in and back out (they
    are a few times smaller than one epoch's work), so the network and the optimizer are always
    current between epochs and the numpy path can take over at any point."""

    def __init__(self, network, X, Y, loss, optimizer, batch_size: int, weights=None, l2: float = 0.0):
        dtype = network.dtype
        self.network, self.optimizer = network, optimizer
        self.X = np.ascontiguousarray(X, dtype)
        self.Y = np.ascontiguousarray(Y, dtype)
        self.n = self.X.shape[0]
        self.batch_size = batch_size
        self.n_batches = -(-self.n // batch_size)
        rows = max(1, min(batch_size, self.n))
        self.layout = lay = _Layout(network, rows)
        self.params = [p for _, p in network.named_parameters()]
        self.P = aligned_zeros(lay.n_params, dtype)
        self.G = aligned_zeros(lay.n_params, dtype)
        self.Abuf = aligned_zeros(lay.a_size, dtype)
        self.Zbuf = aligned_zeros(lay.z_size, dtype)
        self.Dbuf = aligned_zeros(lay.z_size, dtype)
        self.Ybuf = aligned_zeros((rows, network.n_outputs), dtype)
        self.losses = np.zeros(rows)
        self.wb = np.zeros(rows if weights is not None else 0)
        self.coef = np.zeros(K.N_COEF, dtype)
        self.weights = np.zeros(0) if weights is None else np.ascontiguousarray(weights, np.float64)
        self.w_total = float(np.sum(self.weights)) if weights is not None else float(self.n)
        self.loss_code = LOSS_CODES[type(loss)]
        self.from_logits = bool(loss.from_logits)
        self.mean = loss.reduction == "mean"
        self.opt = OPTIMIZER_CODES[type(optimizer)]
        self._bind_slots(network, optimizer, l2)
        self._arange = np.arange(self.n, dtype=np.int64)
        # per-sample plain SGD without sample weights: the specialised kernel (train_online)
        self.online = (rows == 1 and weights is None and type(optimizer) is SGD
                       and not optimizer.momentum and not optimizer.weight_decay and not l2)
        largest = max(rows * a * b for a, b in zip(network.sizes, network.sizes[1:]))
        self.uses_blas = not self.online and largest >= K.BLAS_MIN_MACS
        # numpy's own gemm for the BLAS-sized products (0: numba's np.dot, SciPy's BLAS)
        self.gemm_fn = (blas.gemm_address(network.dtype) or 0) if self.uses_blas else 0
        # and its axpy, for W += V after the gemm that wrote V (0: a compiled loop)
        self.axpy_fn = (blas.axpy_address(network.dtype) or 0) if self.gemm_fn else 0
        # the kernel through its saved machine code (native.py: no 0.3 s numba set-up), or None
        # for its numba dispatcher
        if self.online:
            self._online_views = self._views_for_online(network)
            entry = native.online_entry(len(network.layers), dtype)
        else:
            entry = native.epoch_entry(dtype)
        if entry is not None and not self.online:
            # inference's compiled step too, for large predictions after batched training (not
            # after per-sample training, the tutorials' small networks: building it makes the
            # first run 1.1 s longer)
            native.save_post_entry(dtype)
        empty = self._kernel_args(np.zeros(0, np.int64), np.zeros(0, dtype))  # order, lrs: per call
        self._entry = entry and entry.prepare(**empty)
        # the live parameters and slots, and where each sits in the flat buffers
        self._param_views = lay.views(self.P, self.params, transposed=self.online)
        self._slot_views = [] if self.online else [lay.views(flat, arrays)
                                                   for flat, arrays in zip(self.S, self.slots)]

    def _views_for_online(self, network):
        """Per-layer views of the flat buffers for ``kernels.train_online``: (Wts, bs, As, Zs, Ds),
        each W as W.T (n, k), a missing bias as an empty array."""
        lay, sizes = self.layout, network.sizes
        Wts, bs = [], []
        for layer, (k, n) in enumerate(zip(sizes, sizes[1:])):
            w0, b0 = lay.w_off[layer], lay.b_off[layer]
            Wts.append(self.P[w0:w0 + k * n].reshape(n, k))
            bs.append(self.P[b0:b0 + n] if b0 >= 0 else self.P[:0])
        As = [self.Abuf[o:o + s] for o, s in zip(lay.a_off, sizes)]
        Zs = [self.Zbuf[o:o + s] for o, s in zip(lay.z_off, sizes[1:])]
        Ds = [self.Dbuf[o:o + s] for o, s in zip(lay.z_off, sizes[1:])]
        return tuple(Wts), tuple(bs), tuple(As), tuple(Zs), tuple(Ds)

    def _bind_slots(self, network, optimizer, l2=0.0):
        """The optimizer's slot lists (its own arrays, created as the numpy path would), each
        spread over the parameters in ``layout.arrays`` order (None for frozen parameters)."""
        params, _ = network.trainable()
        self.hyper, slots = optimizer_state(optimizer, params, network.dtype, l2)
        trainable_ids = [id(p) for p in params]
        self.slots = []  # per slot name: list aligned with layout.arrays
        for arrays in slots:
            by_id = dict(zip(trainable_ids, arrays))
            self.slots.append([by_id.get(id(p)) for p in self.params])
        self.S = [aligned_zeros(self.layout.n_params if k < len(self.slots) else 0, network.dtype)
                  for k in range(2)]

    def _learning_rates(self) -> np.ndarray:
        """The rate of every step of the coming epoch (``optimizer.lr`` at t, t+1, ...)."""
        opt = self.optimizer
        if type(opt.schedule) is Constant:
            return np.full(self.n_batches, opt.schedule.lr, dtype=self.network.dtype)
        rates = [opt.schedule.lr_at(opt.t + i) for i in range(self.n_batches)]
        return np.asarray(rates, dtype=self.network.dtype).reshape(self.n_batches)

    def run_epoch(self, rng=None) -> float:
        """One epoch over the data, shuffled by ``rng.permutation(n)`` when rng is given (the
        same draw as the numpy path); returns the epoch loss and advances ``optimizer.t``."""
        order = rng.permutation(self.n) if rng is not None else self._arange
        return self._run(order, self._learning_rates())

    def _kernel_args(self, order, lrs) -> dict:
        """The arguments of the kernel's entry (``native.ONLINE_ARGS`` or ``native.EPOCH_ARGS``);
        for ``train_epoch`` also those of its dispatcher."""
        lay = self.layout
        args = dict(X=self.X, Y=self.Y, order=order, w_total=self.w_total, lrs=lrs, acts=lay.acts,
                    slopes=lay.slopes, bias_mode=lay.bias_mode, P=self.P, Ybuf=self.Ybuf,
                    losses=self.losses, loss_code=self.loss_code, from_logits=self.from_logits,
                    mean=self.mean)
        if self.online:
            args.update(A=self.Abuf, Z=self.Zbuf, D=self.Dbuf, meta=native.meta_array(lay))
        else:
            args.update(batch_size=self.batch_size, weights=self.weights, t0=self.optimizer.t,
                        sizes=lay.sizes, w_off=lay.w_off, b_off=lay.b_off, a_off=lay.a_off,
                        z_off=lay.z_off, G=self.G, S1=self.S[0], S2=self.S[1], Abuf=self.Abuf,
                        Zbuf=self.Zbuf, Dbuf=self.Dbuf, wb=self.wb, coef=self.coef, opt=self.opt,
                        hyper=self.hyper, gemm_fn=self.gemm_fn, axpy_fn=self.axpy_fn)
        return args

    def _run(self, order, lrs) -> float:
        lay = self.layout
        copy_in(self._param_views)
        for pairs in self._slot_views:
            copy_in(pairs)
        order = np.ascontiguousarray(order, np.int64)
        lrs = np.ascontiguousarray(lrs, self.network.dtype)
        if self._entry is not None:
            changes = dict(order=order, lrs=lrs) if self.online else dict(order=order, lrs=lrs,
                                                                         t0=self.optimizer.t)
            total = self._entry(**changes)
        elif self.online:
            total = K.train_online(
                self.X, self.Y, order, self.w_total, lrs, *self._online_views,
                lay.acts, lay.slopes, lay.bias_mode, self.Ybuf, self.losses, self.loss_code,
                self.from_logits, self.mean)
        else:
            args = self._kernel_args(order, lrs)
            total = K.train_epoch(*(args[name] for name, _ in native.EPOCH_ARGS))
        copy_out(self._param_views)
        for pairs in self._slot_views:
            copy_out(pairs)
        self.optimizer.t += len(lrs)
        return float(total)

    def warm_up(self) -> None:
        """Compile (or load from the disk cache) the kernel for these types without training."""
        self._run(np.zeros(0, np.int64), np.zeros(0, self.network.dtype))

