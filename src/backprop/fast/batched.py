"""BatchRunner: whole epochs of mini-batch training for batches big enough that the matrix
products dominate, where numpy's gemm cannot be called from compiled code (``blas.py``; then
``fast.choose_runner`` picks this runner over ``runner.EpochRunner``). Same interface as
``runner.EpochRunner`` (``warm_up``, ``run_epoch``), same formulas as the numpy reference path,
and every array allocated once per fit:

- the batch is gathered with ``np.take(X, idx, out=...)`` into one buffer (no copy of X);
- the products go to numpy's BLAS through ``np.matmul(..., out=...)``: Z = A @ W, the weight
  gradients straight into ``layer.grads["W"]``, the deltas into per-layer buffers;
- everything between two products runs in one compiled call of ``kernels.py`` (bias and
  activation; activation derivative and bias gradient; loss and its gradient; the SGD/Adam
  update of all parameters and slots in place, one pass over each array), the same kernels
  as ``EpochRunner``'s, so the rounding is the numpy path's.

Numba's own ``np.dot`` is not used: it would call SciPy's BLAS (and import ``scipy.linalg``).
BLAS threads are chosen by the caller (``fast.blas_threads``).
"""

from __future__ import annotations

import numpy as np

from . import kernels as K
from .runner import LOSS_CODES, OPTIMIZER_CODES, activation_code, optimizer_state

__all__ = ["BatchRunner"]


class _Layer:
    """One Dense layer's live parameters and gradients (flat views) and its buffers for
    ``rows`` rows: net input Z, activation A, and the delta D handed to the layer below."""

    def __init__(self, layer, rows, dtype, first, from_logits):
        self.W = layer.params["W"]
        self.WT = self.W.T
        k, n = self.W.shape
        empty = np.zeros(0, dtype)
        # a frozen bias is added but gets no gradient; no bias: empty arrays skip both
        self.b = layer.params["b"].reshape(-1) if "b" in layer.params else empty
        self.gb = layer.grads["b"].reshape(-1) if "b" in layer.trainable else empty
        self.gW = layer.grads["W"]
        self.code, self.slope = (K.IDENTITY, 0.0) if from_logits else activation_code(layer.activation)
        self.n = n
        self.Z = np.empty((rows, n), dtype)
        self.A = self.Z if self.code == K.IDENTITY else np.empty((rows, n), dtype)
        self.D = None if first else np.empty((rows, k), dtype)


class BatchRunner:
    """Everything one mini-batch step needs, allocated once per fit; ``run_epoch`` trains one
    epoch and returns its loss as ``training.fit`` defines it."""

    uses_blas = True

    def __init__(self, network, X, Y, loss, optimizer, batch_size: int, weights=None, l2: float = 0.0):
        dtype = network.dtype
        self.X, self.Y, self.weights = X, Y, weights
        self.n = X.shape[0]
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.w_total = float(np.sum(weights)) if weights is not None else float(self.n)
        rows = max(1, min(batch_size, self.n))
        self.Xb = np.empty((rows, X.shape[1]), dtype)
        self.Yb = np.empty((rows, Y.shape[1]), dtype)
        self.wb = np.empty(rows) if weights is not None else np.zeros(0)
        self.weights64 = None if weights is None else np.asarray(weights, np.float64)
        last = len(network.layers) - 1
        self.layers = [_Layer(layer, rows, dtype, i == 0, loss.from_logits and i == last)
                       for i, layer in enumerate(network.layers)]
        self.loss_code = LOSS_CODES[type(loss)]
        self.from_logits = bool(loss.from_logits)
        self.mean = loss.reduction == "mean"
        self.G_out = np.empty((rows, network.n_outputs), dtype)  # d loss / d out of the last layer
        self.losses = np.zeros(rows)
        self.coef = np.zeros(K.N_COEF, dtype)
        params, _ = network.trainable()
        self.hyper, slots = optimizer_state(optimizer, params, dtype, l2)
        self.l2 = float(l2)
        self.opt = OPTIMIZER_CODES[type(optimizer)]
        grads = {id(p): g for p, g in zip(*network.trainable())}
        none = np.zeros(0, dtype)
        self.params = tuple(p.reshape(-1) for p in params)
        self.grads = tuple(grads[id(p)].reshape(-1) for p in params)
        self.slots = [tuple(a.reshape(-1) for a in arrays) for arrays in slots]
        self.slots += [tuple(none for _ in params)] * (2 - len(self.slots))
        self.decays = np.array([p.ndim >= 2 for p in params])
        self._view_cache = {}

    def warm_up(self) -> None:
        """Nothing to do: the small kernels compile (or load from the disk cache) on first use."""

    def run_epoch(self, rng=None) -> float:
        """One epoch, shuffled by ``rng.permutation(n)`` when rng is given (the numpy path's
        draw); returns the epoch loss and advances ``optimizer.t``."""
        order = rng.permutation(self.n) if rng is not None else None
        total = 0.0
        for start in range(0, self.n, self.batch_size):
            total += self._batch(start, order)
        return total

    def _views(self, m):
        """The buffers' views for a batch of m rows, made once per batch size (a fit has at most
        two: the full batch and the last one): per layer (Z, A, their flat views, the delta
        buffer handed down and its flat view), and the output gradient's 2-D and flat views."""
        views = self._view_cache.get(m)
        if views is None:
            layers = []
            for layer in self.layers:
                Z, A = layer.Z[:m], layer.A[:m]
                D = None if layer.D is None else layer.D[:m]
                layers.append((Z, A, Z.reshape(-1), A.reshape(-1), D, None if D is None else D.reshape(-1)))
            G = self.G_out[:m]
            views = self._view_cache[m] = (layers, G, G.reshape(-1), self.Xb[:m], self.Yb[:m], self.wb[:m])
        return views

    def _batch(self, start, order) -> float:
        m = min(self.batch_size, self.n - start)
        w = self.weights64
        layer_views, D, D_flat, Xbuf, Ybuf, wbuf = self._views(m)
        if order is None:  # unshuffled: views, as the reference path's slices
            Xb, Yb = self.X[start:start + m], self.Y[start:start + m]
            wb = wbuf if w is None else w[start:start + m]
        else:
            idx = order[start:start + m]
            Xb = np.take(self.X, idx, axis=0, out=Xbuf, mode="clip")
            Yb = np.take(self.Y, idx, axis=0, out=Ybuf, mode="clip")
            wb = wbuf if w is None else np.take(w, idx, out=wbuf, mode="clip")
        A = Xb
        for layer, (Z, A_next, Z_flat, A_flat, _, _) in zip(self.layers, layer_views):
            np.matmul(A, layer.W, out=Z)
            K.dense_forward_rows(layer.code, layer.slope, Z_flat, layer.b, A_flat, m, layer.n, False)
            A = A_next
        last = self.layers[-1]
        out = layer_views[-1][2] if self.from_logits else layer_views[-1][3]
        value = K.loss_and_gradient(self.loss_code, out, Yb, D_flat, self.losses, wb,
                                    w is not None, self.mean, m, last.n, self.coef)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            _, _, Z_flat, A_flat, D_below, D_below_flat = layer_views[i]
            K.dense_backward_pre(layer.code, layer.slope, Z_flat, A_flat, D_flat, layer.gb, m, layer.n)
            A_in = layer_views[i - 1][1] if i else Xb
            np.matmul(A_in.T, D, out=layer.gW)
            if D_below is not None:
                D = np.matmul(D, layer.WT, out=D_below)
                D_flat = D_below_flat
        penalty = 0.0
        if self.l2:  # fit's l2, at the weights this batch was computed with (before the step)
            squared = sum(float(np.dot(p, p)) for p, d in zip(self.params, self.decays) if d)
            penalty = 0.5 * self.l2 * squared / self.n
        opt = self.optimizer
        K.update_params(self.opt, self.params, self.grads, self.slots[0], self.slots[1], self.decays,
                        self.hyper, opt.lr, opt.t + 1, self.coef, m)
        opt.t += 1
        if self.mean:
            value *= (float(np.sum(wb)) if w is not None else m) / self.w_total
        return value + penalty
