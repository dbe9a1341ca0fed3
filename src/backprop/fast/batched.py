"""BatchRunner: whole epochs of mini-batch training in numpy, for batches big enough that the
matrix products (BLAS) dominate. Same interface as ``runner.EpochRunner`` (``warm_up``,
``run_epoch``) and the same arithmetic as the numpy reference path (``Dense.forward``,
``Dense.backward``, ``Loss.value``/``gradient``, ``SGD``/``Adam``), operation for operation,
but with every large array allocated once per fit:

- the batch is gathered with ``np.take(X, idx, out=...)`` into one buffer (no copy of X);
- ``Z = A @ W`` and the gradients go through ``np.matmul(..., out=...)``; relu and identity
  work in place (other activations call the activation object, as the reference does);
- the gradients land in ``layer.grads`` (as on the reference path), and SGD and Adam update
  the parameters and their slots in place with preallocated scratch arrays.

Nothing here imports numba or SciPy. BLAS threads are chosen by the caller (``__init__``'s rule).
"""

from __future__ import annotations

import numpy as np

from ..activations import Identity, ReLU
from ..optimizers import SGD, Adam

__all__ = ["BatchRunner", "optimizer_slots", "forward_chunked"]


def optimizer_slots(optimizer, names, params, dtype):
    """The optimizer's own slot arrays for ``params`` (created as the numpy path would), made
    C-contiguous arrays of ``dtype`` where a loaded state left them otherwise."""
    out = []
    for name in names:
        arrays = optimizer._slots(name, params)
        for i, (a, p) in enumerate(zip(arrays, params)):
            if a.dtype != dtype or a.shape != p.shape or not a.flags.c_contiguous:
                arrays[i] = np.ascontiguousarray(np.broadcast_to(a, p.shape), dtype)
        out.append(arrays)
    return out


class _Layer:
    """Buffers of one Dense layer for ``rows`` rows: net input Z, activation A (None when the
    activation is computed by the activation object or is the identity), delta to pass down."""

    def __init__(self, layer, rows, dtype, first):
        self.layer = layer
        self.W = layer.params["W"]
        self.b = layer.params.get("b")
        self.gW = layer.grads["W"]
        self.gb = layer.grads.get("b")
        self.act = layer.activation
        self.kind = "identity" if type(self.act) is Identity else "relu" if type(self.act) is ReLU else "other"
        k, n = self.W.shape
        self.Z = np.empty((rows, n), dtype)
        self.A = np.empty((rows, n), dtype) if self.kind == "relu" else None
        self.mask = np.empty((rows, n), bool) if self.kind == "relu" else None
        self.D = None if first else np.empty((rows, k), dtype)

    def forward(self, X, m):
        Z = np.matmul(X, self.W, out=self.Z[:m])
        if self.b is not None:
            Z += self.b
        if self.kind == "identity":
            return Z
        if self.kind == "relu":
            return np.maximum(Z, 0, out=self.A[:m])
        return self.act.forward(Z)

    def backward(self, X, Z, A, dA, m, from_net=False):
        """Fill the layer's grads from dA (or dZ when ``from_net``); return the delta for the
        layer below (None for the first layer)."""
        if from_net or self.kind == "identity":
            dZ = dA
        elif self.kind == "relu":
            dZ = np.multiply(dA, np.greater(Z, 0, out=self.mask[:m]), out=dA)
        else:
            dZ = self.act.backward(Z, A, dA)
        np.matmul(X.T, dZ, out=self.gW)
        if self.gb is not None:
            np.sum(dZ, axis=0, out=self.gb)
        if self.D is None:
            return None
        return np.matmul(dZ, self.W.T, out=self.D[:m])


class _InPlaceStep:
    """``SGD`` and ``Adam`` steps (``optimizers.py``'s formulas, the same roundings) on live
    arrays with preallocated scratch; other optimizers use their own ``step``."""

    def __init__(self, optimizer, params, grads, dtype):
        self.opt, self.params, self.grads = optimizer, params, grads
        self.kind = type(optimizer) if type(optimizer) in (SGD, Adam) else None
        names = []
        if self.kind is SGD and optimizer.momentum:
            names = ["velocity"]
        elif self.kind is Adam:
            names = ["m", "v"]
        self.slots = optimizer_slots(optimizer, names, params, dtype) if self.kind else []
        self.tmp = [np.empty_like(p) for p in params] if self.kind else []
        self.tmp2 = [np.empty_like(p) for p in params] if self.kind else []

    def __call__(self):
        opt = self.opt
        if self.kind is None:
            opt.step(self.params, self.grads)
            return
        lr = opt.lr
        if self.kind is SGD:
            self._sgd(lr)
        else:
            self._adam(lr)
        opt.t += 1

    def _decayed(self, p, g, tmp):
        """g + weight_decay * p for weight matrices (the reference's ``g = g + wd * p``)."""
        wd = self.opt.weight_decay
        if wd and p.ndim >= 2:
            np.multiply(wd, p, out=tmp)
            return np.add(g, tmp, out=tmp)
        return g

    def _sgd(self, lr):
        opt = self.opt
        velocity = self.slots[0] if self.slots else None
        for i, (p, g, tmp, tmp2) in enumerate(zip(self.params, self.grads, self.tmp, self.tmp2)):
            g = self._decayed(p, g, tmp2)
            step = np.multiply(lr, g, out=tmp)
            if velocity is None:
                p -= step
                continue
            v = velocity[i]
            v *= opt.momentum
            v -= step
            if opt.nesterov:
                look = np.multiply(opt.momentum, v, out=tmp2)
                look -= step
                p += look
            else:
                p += v

    def _adam(self, lr):
        opt = self.opt
        t = opt.t + 1
        c1 = 1.0 - opt.beta_1**t
        c2 = 1.0 - opt.beta_2**t
        for p, g, m, v, tmp, tmp2 in zip(self.params, self.grads, *self.slots, self.tmp, self.tmp2):
            g = self._decayed(p, g, tmp2)
            m *= opt.beta_1
            m += np.multiply(1.0 - opt.beta_1, g, out=tmp)
            v *= opt.beta_2
            sq = np.multiply(g, g, out=tmp)
            v += np.multiply(1.0 - opt.beta_2, sq, out=tmp)
            num = np.divide(m, c1, out=tmp)
            num = np.multiply(lr, num, out=tmp)
            den = np.divide(v, c2, out=tmp2)
            np.sqrt(den, out=den)
            den += opt.epsilon
            p -= np.divide(num, den, out=tmp)


class BatchRunner:
    """Everything one mini-batch step needs, allocated once per fit; ``run_epoch`` trains one
    epoch and returns its loss as ``training.fit`` defines it."""

    def __init__(self, network, X, Y, loss, optimizer, batch_size: int, weights=None):
        dtype = network.dtype
        self.X, self.Y = X, Y
        self.n = X.shape[0]
        self.batch_size = batch_size
        self.loss, self.optimizer = loss, optimizer
        self.weights = weights
        self.w_total = float(np.sum(weights)) if weights is not None else float(self.n)
        rows = max(1, min(batch_size, self.n))
        self.Xb = np.empty((rows, X.shape[1]), dtype)
        self.Yb = np.empty((rows, Y.shape[1]), dtype)
        self.wb = np.empty(rows, weights.dtype) if weights is not None else None
        self.layers = [_Layer(layer, rows, dtype, i == 0) for i, layer in enumerate(network.layers)]
        params, grads = network.trainable()
        self.step = _InPlaceStep(optimizer, params, grads, dtype)

    def warm_up(self) -> None:
        """Nothing to compile."""

    def run_epoch(self, rng=None) -> float:
        """One epoch, shuffled by ``rng.permutation(n)`` when rng is given (the numpy path's
        draw); returns the epoch loss and advances ``optimizer.t``."""
        order = rng.permutation(self.n) if rng is not None else None
        total = 0.0
        for start in range(0, self.n, self.batch_size):
            total += self._batch(start, order)
        return total

    def _batch(self, start, order) -> float:
        m = min(self.batch_size, self.n - start)
        if order is None:  # unshuffled: views, as the reference path's slices
            Xb, Yb = self.X[start:start + m], self.Y[start:start + m]
            wb = None if self.weights is None else self.weights[start:start + m]
        else:
            idx = order[start:start + m]
            Xb = np.take(self.X, idx, axis=0, out=self.Xb[:m], mode="clip")
            Yb = np.take(self.Y, idx, axis=0, out=self.Yb[:m], mode="clip")
            wb = None if self.weights is None else np.take(self.weights, idx, out=self.wb[:m], mode="clip")
        inputs, outs = [Xb], []
        for layer in self.layers:
            outs.append(layer.forward(inputs[-1], m))
            inputs.append(outs[-1])
        loss, last = self.loss, self.layers[-1]
        out = last.Z[:m] if loss.from_logits else outs[-1]
        value = loss.value(out, Yb, wb)
        grad = loss.gradient(out, Yb, wb)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            grad = layer.backward(inputs[i], layer.Z[:m], outs[i], grad, m,
                                  from_net=loss.from_logits and i == len(self.layers) - 1)
        self.step()
        if loss.reduction == "mean":
            share = m if wb is None else float(np.sum(wb))
            value *= share / self.w_total
        return value


def forward_chunked(network, X, chunk: int = 2048) -> np.ndarray:
    """Outputs for a 2-D batch, ``chunk`` rows at a time through preallocated buffers (only
    the output and one chunk's activations are allocated; the chunks stay in cache)."""
    n = X.shape[0]
    rows = max(1, min(chunk, n))
    layers = [_Layer(layer, rows, network.dtype, True) for layer in network.layers]
    out = np.empty((n, network.n_outputs), network.dtype)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        A = X[start:start + m]
        for layer in layers:
            A = layer.forward(A, m)
        out[start:start + m] = A
    return out
