"""Compiled (numba) kernels that run one whole training epoch of a stack of Dense layers.

Every formula mirrors the numpy reference path operation for operation (the same expressions in
the same order, see ``activations.py``, ``losses.py``, ``optimizers.py``), so the two paths agree
to rounding: the only differences are the order of the sums inside matrix products and row sums.

Small products (per-sample training) run as plain loops; larger ones call BLAS through
``np.dot(a, b, out)``. Nothing is allocated per step: every batch-sized array is a buffer handed in
by ``backprop.fast.runner``. Per-layer arrays travel in tuples padded to ``runner.MAX_LAYERS``, so one compiled kernel
serves networks of any depth up to that (one compilation per dtype, cached on disk by
``cache=True``); ``n_layers`` says how many entries are real.

Codes (kept in sync with ``runner.py``):
    activations: 0 identity, 1 sigmoid, 2 tanh, 3 relu, 4 leaky_relu, 5 softmax
    losses:      0 half_sse, 1 sse, 2 mse, 3 binary_cross_entropy, 4 softmax_cross_entropy
    optimizers:  0 SGD, 1 Adam; bias modes: 0 none, 1 frozen, 2 trainable
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX = 0, 1, 2, 3, 4, 5
HALF_SSE, SSE, MSE, BCE, SOFTMAX_CE = 0, 1, 2, 3, 4
OPT_SGD, OPT_ADAM = 0, 1
NO_BIAS, FROZEN_BIAS, TRAINABLE_BIAS = 0, 1, 2
# hyper-parameter slots of the ``hyper`` array
H_MOMENTUM, H_NESTEROV, H_DECAY, H_BETA1, H_BETA2, H_EPS, H_1MB1, H_1MB2 = range(8)

# Products with fewer multiply-adds than this run as loops; larger ones call BLAS.
BLAS_MIN_MACS = 8192
# Matrix-product loops may reorder their sums and fuse multiply-adds, as BLAS does; every other
# formula is compiled without fast-math so that it rounds exactly as numpy does.
MATMUL_FLAGS = {"contract", "reassoc"}


# -- matrix products: out = A @ W and out = D @ W.T (A.T @ D is in _grad_and_update) --------------
@njit(cache=True, fastmath=MATMUL_FLAGS)
def _mm(A, W, out):
    m, k = A.shape
    n = W.shape[1]
    if m * k * n >= BLAS_MIN_MACS:
        np.dot(A, W, out)
        return
    for r in range(m):
        for c in range(n):
            out[r, c] = 0.0
        for i in range(k):
            a = A[r, i]
            for c in range(n):
                out[r, c] += a * W[i, c]


@njit(cache=True, fastmath=MATMUL_FLAGS)
def _mm_nt(D, W, out):
    m, n = D.shape
    k = W.shape[0]
    if m * k * n >= BLAS_MIN_MACS:
        np.dot(D, W.T, out)
        return
    for r in range(m):
        for i in range(k):
            s = 0.0
            for c in range(n):
                s += D[r, c] * W[i, c]
            out[r, i] = s


# -- activations: A = f(Z); dZ = dA * f'(Z) in place --------------------------------------------
@njit(cache=True)
def _sigmoid(z):
    e = math.exp(-abs(z))
    return 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)


@njit(cache=True)
def _softmax_row(z, out):
    mx = z[0]
    for c in range(1, z.shape[0]):
        if z[c] > mx:
            mx = z[c]
    s = 0.0
    for c in range(z.shape[0]):
        out[c] = math.exp(z[c] - mx)
        s += out[c]
    for c in range(z.shape[0]):
        out[c] = out[c] / s


@njit(cache=True)
def _activate(code, slope, Z, A):
    m, n = Z.shape
    if code == SOFTMAX:
        for r in range(m):
            _softmax_row(Z[r], A[r])
        return
    for r in range(m):
        for c in range(n):
            z = Z[r, c]
            if code == IDENTITY:
                A[r, c] = z
            elif code == SIGMOID:
                A[r, c] = _sigmoid(z)
            elif code == TANH:
                A[r, c] = math.tanh(z)
            elif code == RELU:
                A[r, c] = z if z > 0 else 0.0
            else:
                A[r, c] = z if z > 0 else z * slope


@njit(cache=True)
def _activation_backward(code, slope, Z, A, dZ):
    """dZ holds dA on entry and dZ on exit."""
    m, n = Z.shape
    if code == IDENTITY:
        return
    if code == SOFTMAX:
        for r in range(m):
            s = 0.0
            for c in range(n):
                s += dZ[r, c] * A[r, c]
            for c in range(n):
                dZ[r, c] = A[r, c] * (dZ[r, c] - s)
        return
    for r in range(m):
        for c in range(n):
            if code == SIGMOID:
                a = A[r, c]
                dZ[r, c] = dZ[r, c] * (a * (1.0 - a))
            elif code == TANH:
                a = A[r, c]
                dZ[r, c] = dZ[r, c] * (1.0 - a * a)
            elif code == RELU:
                dZ[r, c] = dZ[r, c] * (1.0 if Z[r, c] > 0 else 0.0)
            else:
                dZ[r, c] = dZ[r, c] * (1.0 if Z[r, c] > 0 else slope)


# -- losses: per-sample values into ``losses``; d loss / d out (or d z) into G ------------------
@njit(cache=True)
def _loss(code, out, Y, losses, G):
    m, n = out.shape
    for r in range(m):
        o = out[r]
        y = Y[r]
        g = G[r]
        if code == SOFTMAX_CE:
            _softmax_row(o, g)
            mx = o[0]
            for c in range(1, n):
                if o[c] > mx:
                    mx = o[c]
            se = 0.0
            sy = 0.0
            syz = 0.0
            for c in range(n):
                se += math.exp(o[c] - mx)
                sy += y[c]
                syz += y[c] * o[c]
            losses[r] = sy * (mx + math.log(se)) - syz
            for c in range(n):
                g[c] = g[c] * sy - y[c]
            continue
        s = 0.0
        for c in range(n):
            if code == BCE:
                z = o[c]
                s += max(z, 0.0) - y[c] * z + math.log1p(math.exp(-abs(z)))
                g[c] = _sigmoid(z) - y[c]
            else:
                d = y[c] - o[c]
                s += d * d
                if code == HALF_SSE:
                    g[c] = o[c] - y[c]
                elif code == SSE:
                    g[c] = 2.0 * (o[c] - y[c])
                else:
                    g[c] = (2.0 / n) * (o[c] - y[c])
        if code == HALF_SSE:
            s = 0.5 * s
        elif code == MSE:
            s = s / n
        losses[r] = s


@njit(cache=True)
def _reduce_loss(losses, G, wb, weighted, mean, scratch):
    """The reduced batch loss (float64); scales G as ``Loss.gradient`` does."""
    m = G.shape[0]
    total = 0.0
    if not weighted:
        for r in range(m):
            total += losses[r]
        if mean and m != 1:
            scratch[0] = m
            for r in range(m):
                for c in range(G.shape[1]):
                    G[r, c] = G[r, c] / scratch[0]
        return total / m if mean else total
    wsum = 0.0
    for r in range(m):
        total += wb[r] * losses[r]
        wsum += wb[r]
        scratch[0] = wb[r]
        for c in range(G.shape[1]):
            G[r, c] = G[r, c] * scratch[0]
    if mean:
        scratch[0] = wsum
        for r in range(m):
            for c in range(G.shape[1]):
                G[r, c] = G[r, c] / scratch[0]
        return total / wsum
    return total


# -- optimizer: coefficients once per step, then the update of one (flat) parameter ----------
# slots of the ``coef`` array, in the parameters' dtype
C_LR, C_MOMENTUM, C_DECAY, C_C1, C_C2, C_BETA1, C_BETA2, C_1MB1, C_1MB2, C_EPS = range(10)


@njit(cache=True)
def _coefficients(hyper, lr, t, coef):
    """Fill ``coef`` (parameters' dtype: numpy rounds a Python float against an array the same
    way) with this step's scalars; Adam's bias corrections use the step count t (from 1)."""
    coef[C_LR] = lr
    coef[C_MOMENTUM] = hyper[H_MOMENTUM]
    coef[C_DECAY] = hyper[H_DECAY]
    coef[C_C1] = 1.0 - hyper[H_BETA1] ** float(t)
    coef[C_C2] = 1.0 - hyper[H_BETA2] ** float(t)
    coef[C_BETA1] = hyper[H_BETA1]
    coef[C_BETA2] = hyper[H_BETA2]
    coef[C_1MB1] = hyper[H_1MB1]
    coef[C_1MB2] = hyper[H_1MB2]
    coef[C_EPS] = hyper[H_EPS]


@njit(cache=True)
def _update(opt, p, g, s1, s2, coef, nesterov, decay):
    """One step of SGD or Adam on p (``optimizers.py``'s formulas, element by element). The
    variants are separate loops so that each one compiles to vector code."""
    lr = coef[C_LR]
    wd = coef[C_DECAY]
    if opt == OPT_SGD:
        momentum = coef[C_MOMENTUM]
        if momentum == 0 and not decay:
            for i in range(p.shape[0]):
                p[i] -= lr * g[i]
        elif momentum == 0:
            for i in range(p.shape[0]):
                p[i] -= lr * (g[i] + wd * p[i])
        else:
            for i in range(p.shape[0]):
                gi = g[i] + wd * p[i] if decay else g[i]
                v = s1[i] * momentum
                v = v - lr * gi
                s1[i] = v
                if nesterov:
                    p[i] += momentum * v - lr * gi
                else:
                    p[i] += v
        return
    c1, c2, eps = coef[C_C1], coef[C_C2], coef[C_EPS]
    b1, b2, one_b1, one_b2 = coef[C_BETA1], coef[C_BETA2], coef[C_1MB1], coef[C_1MB2]
    for i in range(p.shape[0]):
        gi = g[i] + wd * p[i] if decay else g[i]
        m = s1[i] * b1
        m = m + one_b1 * gi
        s1[i] = m
        v = s2[i] * b2
        v = v + one_b2 * (gi * gi)
        s2[i] = v
        p[i] -= lr * (m / c1) / (np.sqrt(v / c2) + eps)


@njit(cache=True, fastmath=MATMUL_FLAGS)
def _weight_grad(A, D, G):
    """G = A.T @ D, the weight gradient of a Dense layer."""
    m, k = A.shape
    n = D.shape[1]
    if m * k * n >= BLAS_MIN_MACS:
        np.dot(A.T, D, G)
        return
    for i in range(k):
        a = A[0, i]
        for c in range(n):
            G[i, c] = a * D[0, c]
        for r in range(1, m):
            a = A[r, i]
            for c in range(n):
                G[i, c] += a * D[r, c]


@njit(cache=True)
def _flat(a):
    return a.reshape(a.size)


# -- one epoch --------------------------------------------------------------------------------
@njit(cache=True)
def train_epoch(X, Y, order, batch_size, weights, w_total, lrs, t0, n_layers,
                Ws, bs, As, Zs, dZs, Yb_buf, gWs, gbs, S1W, S1b, S2W, S2b,
                acts, slopes, bias_mode, loss_code, from_logits, mean, opt, hyper,
                losses, wb):
    """Train on the rows ``order`` in batches of ``batch_size``; returns the epoch's loss as
    ``training.fit`` defines it (per-batch losses before each update, weighted by batch share).

    Each layer is updated as soon as backward has passed it (its old weights have then been used
    for the delta of the layer below), which is the same arithmetic as updating after backward."""
    n = order.shape[0]
    weighted = weights.shape[0] > 0
    dtype_one = np.empty(1, Ws[0].dtype)
    coef = np.empty(10, Ws[0].dtype)
    nesterov = hyper[H_NESTEROV] != 0
    decay = hyper[H_DECAY] != 0
    last = n_layers - 1
    total = 0.0
    step = 0
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        # gather the batch (and its weights) into the input buffers
        Xb = As[0][:m]
        Yb = Yb_buf[:m]
        share = 0.0
        for r in range(m):
            j = order[start + r]
            Xb[r, :] = X[j]
            Yb[r, :] = Y[j]
            if weighted:
                wb[r] = weights[j]
                share += weights[j]
        # forward
        for layer in range(n_layers):
            Z = Zs[layer][:m]
            _mm(As[layer][:m], Ws[layer], Z)
            if bias_mode[layer] != NO_BIAS:
                b = bs[layer]
                for r in range(m):
                    for c in range(Z.shape[1]):
                        Z[r, c] += b[c]
            if layer < last or not from_logits:
                _activate(acts[layer], slopes[layer], Z, As[layer + 1][:m])
        # loss and its gradient at the output
        G = dZs[last][:m]
        out = Zs[last][:m] if from_logits else As[n_layers][:m]
        _loss(loss_code, out, Yb, losses, G)
        value = _reduce_loss(losses[:m], G, wb[:m], weighted, mean, dtype_one)
        if not from_logits:
            _activation_backward(acts[last], slopes[last], Zs[last][:m], As[n_layers][:m], G)
        # backward, each layer updated right after its delta has been passed down
        _coefficients(hyper, lrs[step], t0 + step + 1, coef)
        for layer in range(last, -1, -1):
            D = dZs[layer][:m]
            W = Ws[layer]
            if layer > 0:
                P = dZs[layer - 1][:m]
                _mm_nt(D, W, P)
                _activation_backward(acts[layer - 1], slopes[layer - 1], Zs[layer - 1][:m],
                                     As[layer][:m], P)
            if bias_mode[layer] == TRAINABLE_BIAS:
                gb = gbs[layer]
                for c in range(gb.shape[0]):
                    gb[c] = D[0, c]
                for r in range(1, m):
                    for c in range(gb.shape[0]):
                        gb[c] += D[r, c]
            _weight_grad(As[layer][:m], D, gWs[layer])
            _update(opt, _flat(W), _flat(gWs[layer]), _flat(S1W[layer]), _flat(S2W[layer]), coef,
                    nesterov, decay)
            if bias_mode[layer] == TRAINABLE_BIAS:
                _update(opt, bs[layer], gbs[layer], S1b[layer], S2b[layer], coef, nesterov, False)
        if mean:
            value *= (share if weighted else m) / w_total
        total += value
        step += 1
    return total


@njit(cache=True)
def forward(X, n_layers, Ws, bs, As, Zs, acts, slopes, bias_mode, out, chunk):
    """Outputs of the network for every row of X, ``chunk`` rows at a time (inference)."""
    n = X.shape[0]
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        A = X[start:start + m]
        for layer in range(n_layers):
            Z = Zs[layer][:m]
            _mm(A, Ws[layer], Z)
            if bias_mode[layer] != NO_BIAS:
                b = bs[layer]
                for r in range(m):
                    for c in range(Z.shape[1]):
                        Z[r, c] += b[c]
            A = out[start:start + m] if layer == n_layers - 1 else As[layer + 1][:m]
            _activate(acts[layer], slopes[layer], Z, A)
