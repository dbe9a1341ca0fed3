"""Compiled (numba) kernels that run one whole training epoch of a stack of Dense layers.

Every formula mirrors the numpy reference path operation for operation (the same expressions in
the same order, see ``activations.py``, ``losses.py``, ``optimizers.py``), so the two paths agree
to rounding: the only differences are the order of the sums inside matrix products, and exp and
tanh, which are ``vexp``'s (within 1 and 2 ulp of numpy's, and vectorisable) instead of the C
library's.
Every kernel with a loop starts with ``wide_vectors()`` (``vectors.py``: the CPU's widest
vectors, 512-bit with AVX-512; W1 1.11 -> 0.98 ms per epoch).

Memory layout: the parameters of all layers live in one flat buffer ``P`` (W1, b1, W2, b2, ...;
``w_off[l]`` and ``b_off[l]`` give where each starts); gradients ``G`` and optimizer slots
``S1``/``S2`` (SGD's velocity, Adam's m and v) use the same offsets. Batch-sized activations,
net inputs and deltas live in ``Abuf``, ``Zbuf`` and ``Dbuf`` at ``a_off``/``z_off``. All of
them are allocated once per fit by ``runner.EpochRunner``; nothing is allocated per step. One
compiled kernel per dtype serves networks of any depth, cached on disk by ``cache=True``.

Per-sample plain SGD (the tutorials' algorithm) has its own kernel, ``train_online``, with loops
only. In ``train_epoch`` (mini-batches) small products run as loops and the others (at least
``BLAS_MIN_MACS`` multiply-adds) call numpy's own gemm through its address (``blas.gemm``: the
kernel never imports SciPy, and a W2b epoch is one call instead of ~20 Python calls per batch:
501 -> 445 ms, medians of interleaved fits); SGD with momentum then adds the velocity to the
weights by numpy's axpy (``blas.axpy``, in BLAS's threads). Where numpy's gemm cannot be had,
they call numba's ``np.dot`` (SciPy's BLAS, which imports ``scipy.linalg`` on first use), and
batches large enough for BLAS to dominate train in ``batched.py`` with numpy's matmul instead.

Codes (kept in sync with ``runner.py``):
    activations: 0 identity, 1 sigmoid, 2 tanh, 3 relu, 4 leaky_relu, 5 softmax
    losses:      0 half_sse, 1 sse, 2 mse, 3 binary_cross_entropy, 4 softmax_cross_entropy
    optimizers:  0 SGD, 1 Adam; bias modes: 0 none, 1 frozen, 2 trainable
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .blas import NO_TRANS, TRANS, axpy, gemm
from .vectors import wide_vectors
from .vexp import exp, tanh

IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX = 0, 1, 2, 3, 4, 5
HALF_SSE, SSE, MSE, BCE, SOFTMAX_CE = 0, 1, 2, 3, 4
OPT_SGD, OPT_ADAM = 0, 1
NO_BIAS, FROZEN_BIAS, TRAINABLE_BIAS = 0, 1, 2
# slots of the float64 ``hyper`` array (optimizer settings; H_L2 is fit's ``l2``: each batch of m
# rows adds 0.5 * l2 * ||W||^2 / m to its loss and l2 / m to the weight decay of its step)
H_MOMENTUM, H_NESTEROV, H_DECAY, H_BETA1, H_BETA2, H_EPS, H_1MB1, H_1MB2, H_L2 = range(9)
N_HYPER = 9
# slots of the ``coef`` array: this step's scalars in the parameters' dtype
C_LR, C_MOMENTUM, C_DECAY, C_C1, C_C2, C_BETA1, C_BETA2, C_1MB1, C_1MB2, C_EPS, C_TMP, C_SCALE = range(12)
N_COEF = 12
# SGD momentum on BLAS-sized layers keeps U = V / scale in the velocity slot during an epoch
# (``_sgd_gemm_step``); scale is a product of momentum factors, brought back to 1 (U multiplied by
# it, ``_unscale``) before it leaves [RESCALE_BELOW, 1 / RESCALE_BELOW] and at the epoch's end.
# A momentum below RESCALE_BELOW keeps the plain form (dividing by it could overflow).
RESCALE_BELOW = 2.0 ** -20

# Products with at least this many multiply-adds call BLAS (numpy's gemm, ``blas.py``, or else
# numba's ``np.dot``); smaller ones run as loops.
BLAS_MIN_MACS = 8192
# Matrix-product loops may reorder their sums and fuse multiply-adds, as BLAS does; every other
# formula is compiled without fast-math so that it rounds exactly as numpy does.
MATMUL_FLAGS = {"contract", "reassoc"}


def _numba_knows(option: str) -> bool:
    """Whether this numba accepts a jit option (an unknown one fails only when compiling)."""
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:  # pragma: no cover - depends on the numba version
        return False
    return hasattr(CPUTargetOptions, option)


def kernel(*, refcounts: bool = True, **options):
    """``njit`` with what every kernel here shares: cached on disk, and numpy's error model
    (a float division by zero gives inf or NaN, as numpy does, instead of a check that raises
    ZeroDivisionError; that check is a branch per division and keeps LLVM from vectorising the
    loop: the sigmoid loop 0.77 -> 0.2 ms per digits epoch).

    ``refcounts=False`` drops numba's reference counting (its NRT), for kernels that never
    allocate and only index or slice the arrays they are given: there NRT's increment/decrement
    on every view is pure overhead (per-sample digits, W1: 2.9 -> 1.8 ms per epoch, identical
    weights). ``_nrt`` is numba's own (internal) option; a numba version that refuses it gets
    plain ``njit``."""
    options = {"cache": True, "error_model": "numpy", **options}
    if not refcounts:
        try:
            return njit(_nrt=False, **options)
        except (KeyError, TypeError, ValueError):  # pragma: no cover - depends on the numba version
            pass
    return njit(**options)


jit = kernel()
njit_no_refcounts = kernel(refcounts=False)
# Inlined into every caller by LLVM (numba's ``forceinline``: LLVM's alwaysinline, which keeps
# each instruction's own fast-math flags, unlike numba's ``inline="always"``). For the small
# functions called per sample: a call passes every array as seven words and checks a status on
# return, and LLVM's own heuristics leave the larger ones as calls (W1: 1.21 -> 1.11 ms/epoch).
INLINE = {"forceinline": True} if _numba_knows("forceinline") else {}
njit_inline = kernel(refcounts=False, **INLINE)


# -- matrix products on flat buffers --------------------------------------------------------------
# Loops index 1-D slices with range() counters only: numba then knows the index is not negative
# and emits vector code (an index like ``off + c`` would cost a wrap-around check per element).
@jit
def view(buf, off, rows, cols):
    return buf[off:off + rows * cols].reshape((rows, cols))


@kernel(fastmath=MATMUL_FLAGS)
def _mm(fn, A, a0, W, w0, Z, z0, m, k, n):
    """Z = A @ W with A (m, k) at a0, W (k, n) at w0, Z (m, n) at z0. BLAS-sized products call
    numpy's gemm at address ``fn`` (``blas.gemm``), or numba's ``np.dot`` when fn is 0."""
    wide_vectors()
    if m * k * n >= BLAS_MIN_MACS:
        if fn:
            gemm(fn, NO_TRANS, NO_TRANS, m, n, k, 1.0, A, a0, k, W, w0, n, 0.0, Z, z0, n)
        else:
            np.dot(view(A, a0, m, k), view(W, w0, k, n), view(Z, z0, m, n))
        return
    for r in range(m):
        z = Z[z0 + r * n:z0 + r * n + n]
        x = A[a0 + r * k:a0 + r * k + k]
        for c in range(n):
            z[c] = 0.0
        for i in range(k):
            a = x[i]
            w = W[w0 + i * n:w0 + i * n + n]
            for c in range(n):
                z[c] += a * w[c]


@kernel(fastmath=MATMUL_FLAGS)
def _mm_nt(fn, D, d0, W, w0, P, p0, m, k, n):
    """P = D @ W.T with D (m, n), W (k, n), P (m, k): the delta passed to the layer below."""
    wide_vectors()
    if m * k * n >= BLAS_MIN_MACS:
        if fn:
            gemm(fn, NO_TRANS, TRANS, m, k, n, 1.0, D, d0, n, W, w0, n, 0.0, P, p0, k)
        else:
            np.dot(view(D, d0, m, n), view(W, w0, k, n).T, view(P, p0, m, k))
        return
    for r in range(m):
        d = D[d0 + r * n:d0 + r * n + n]
        p = P[p0 + r * k:p0 + r * k + k]
        for i in range(k):
            w = W[w0 + i * n:w0 + i * n + n]
            s = 0.0
            for c in range(n):
                s += d[c] * w[c]
            p[i] = s


@kernel(fastmath=MATMUL_FLAGS)
def _mm_tn(fn, A, a0, D, d0, G, g0, m, k, n):
    """G = A.T @ D with A (m, k), D (m, n), G (k, n): the weight gradient."""
    wide_vectors()
    if m * k * n >= BLAS_MIN_MACS:
        if fn:
            gemm(fn, TRANS, NO_TRANS, k, n, m, 1.0, A, a0, k, D, d0, n, 0.0, G, g0, n)
        else:
            np.dot(view(A, a0, m, k).T, view(D, d0, m, n), view(G, g0, k, n))
        return
    for i in range(k):
        g = G[g0 + i * n:g0 + i * n + n]
        d = D[d0:d0 + n]
        a = A[a0 + i]
        for c in range(n):
            g[c] = a * d[c]
        for r in range(1, m):
            d = D[d0 + r * n:d0 + r * n + n]
            a = A[a0 + r * k + i]
            for c in range(n):
                g[c] += a * d[c]


# -- activations: A = f(Z); dZ = dA * f'(Z) in place --------------------------------------------
@njit_inline
def _sigmoid_from_exp(z, e):
    """sigmoid(z) given e = exp(-|z|): 1 / (1 + e) for z >= 0, e / (1 + e) below, as one
    division for both signs (the numerator chosen), so that a loop of it stays vector code."""
    numerator = 1.0 if z >= 0 else e
    return numerator / (1.0 + e)


@njit_inline
def _sigmoid(z):
    return _sigmoid_from_exp(z, exp(-abs(z)))


@njit_inline
def _shifted_exps(Z, z0, A, a0, m, n, maxes):
    """A = exp(Z - its row's max) for the (m, n) blocks at Z[z0] and A[a0] (the row maxima into
    ``maxes`` when it is not empty): the subtraction row by row, then the exps in one loop over
    the whole block (vector code over m * n values, where a loop per row of ten outputs runs
    mostly in its scalar remainder: 2048 x 10 float32, the softmax 138 -> 69 us)."""
    wide_vectors()
    keep = maxes.shape[0] > 0
    for r in range(m):
        z = Z[z0 + r * n:z0 + r * n + n]
        a = A[a0 + r * n:a0 + r * n + n]
        mx = z[0]
        for c in range(1, n):
            mx = max(mx, z[c])
        for c in range(n):
            a[c] = z[c] - mx
        if keep:
            maxes[r] = mx
    e = A[a0:a0 + m * n]
    for i in range(m * n):
        e[i] = exp(e[i])


@njit_inline
def _normalise_row(a):
    """a /= sum(a) (the sum in float64, in order); returns the sum."""
    s = 0.0
    for c in range(a.shape[0]):
        s += a[c]
    for c in range(a.shape[0]):
        a[c] = a[c] / s
    return s


@njit_inline
def _activate(code, slope, Zbuf, z0, Abuf, a0, m, n):
    """A = f(Z) for an (m, n) block; each activation is its own loop so it compiles to vectors."""
    wide_vectors()
    size = m * n
    Z = Zbuf[z0:z0 + size]
    A = Abuf[a0:a0 + size]
    if code == SOFTMAX:
        _shifted_exps(Zbuf, z0, Abuf, a0, m, n, Zbuf[0:0])
        for r in range(m):
            _normalise_row(A[r * n:r * n + n])
    elif code == IDENTITY:
        for i in range(size):
            A[i] = Z[i]
    elif code == SIGMOID:
        for i in range(size):
            A[i] = _sigmoid(Z[i])
    elif code == TANH:
        for i in range(size):
            A[i] = tanh(Z[i])
    elif code == RELU:  # as np.maximum(Z, 0): NaN stays NaN, -0.0 becomes 0.0
        for i in range(size):
            A[i] = 0.0 if Z[i] <= 0 else Z[i]
    else:
        for i in range(size):
            A[i] = Z[i] if Z[i] > 0 else Z[i] * slope


@njit_inline
def _activation_backward(code, slope, Zbuf, z0, Abuf, a0, Dbuf, d0, m, n):
    """D holds dA on entry and dZ = dA * f'(Z) on exit (softmax: its Jacobian-vector product)."""
    wide_vectors()
    size = m * n
    Z = Zbuf[z0:z0 + size]
    A = Abuf[a0:a0 + size]
    D = Dbuf[d0:d0 + size]
    if code == SOFTMAX:
        for r in range(m):
            a = A[r * n:r * n + n]
            d = D[r * n:r * n + n]
            s = 0.0
            for c in range(n):
                s += d[c] * a[c]
            for c in range(n):
                d[c] = a[c] * (d[c] - s)
    elif code == SIGMOID:
        for i in range(size):
            D[i] = D[i] * (A[i] * (1.0 - A[i]))
    elif code == TANH:
        for i in range(size):
            D[i] = D[i] * (1.0 - A[i] * A[i])
    elif code == RELU:
        for i in range(size):
            D[i] = D[i] * (1.0 if Z[i] > 0 else 0.0)
    elif code == LEAKY_RELU:
        for i in range(size):
            D[i] = D[i] * (1.0 if Z[i] > 0 else slope)


# -- losses ----------------------------------------------------------------------------------------
@njit_inline
def _loss(code, Obuf, o0, Y, Gbuf, g0, losses, m, n):
    """Per-sample losses of the (m, n) outputs at Obuf[o0] against the rows of Y, and d loss /
    d out (d z for the from-logits losses) into Gbuf[g0]; ``losses.py``'s formulas."""
    wide_vectors()
    if code == SOFTMAX_CE:
        _shifted_exps(Obuf, o0, Gbuf, g0, m, n, losses)  # each row's max kept in losses
        for r in range(m):
            o = Obuf[o0 + r * n:o0 + r * n + n]
            g = Gbuf[g0 + r * n:g0 + r * n + n]
            y = Y[r]
            se = _normalise_row(g)  # the softmax, and its sum of exps
            sy = 0.0
            syz = 0.0
            for c in range(n):
                sy += y[c]
                syz += y[c] * o[c]
            losses[r] = sy * (losses[r] + math.log(se)) - syz
            for c in range(n):
                g[c] = g[c] * sy - y[c]
        return
    for r in range(m):
        o = Obuf[o0 + r * n:o0 + r * n + n]
        g = Gbuf[g0 + r * n:g0 + r * n + n]
        y = Y[r]
        s = 0.0
        if code == BCE:
            for c in range(n):  # the exps first, in a loop of their own (vector code)
                g[c] = exp(-abs(o[c]))
            for c in range(n):
                e = g[c]
                s += max(o[c], 0.0) - y[c] * o[c] + math.log1p(e)
                g[c] = _sigmoid_from_exp(o[c], e) - y[c]
        else:
            for c in range(n):
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


@jit
def _reduce_loss(losses, Gbuf, g0, wb, weighted, mean, m, n, coef):
    """The reduced batch loss (float64), scaling G as ``Loss.gradient`` does."""
    wide_vectors()
    total = 0.0
    G = Gbuf[g0:g0 + m * n]
    if not weighted:
        for r in range(m):
            total += losses[r]
        if mean and m != 1:
            coef[C_TMP] = m
            for i in range(m * n):
                G[i] = G[i] / coef[C_TMP]
        return total / m if mean else total
    wsum = 0.0
    for r in range(m):
        total += wb[r] * losses[r]
        wsum += wb[r]
        coef[C_TMP] = wb[r]
        g = G[r * n:r * n + n]
        for c in range(n):
            g[c] = g[c] * coef[C_TMP]
    if mean and wsum > 0:  # a batch weighing 0 in all contributes 0 (as Loss.value/gradient)
        coef[C_TMP] = wsum
        for i in range(m * n):
            G[i] = G[i] / coef[C_TMP]
        return total / wsum
    return 0.0 if mean else total


# -- optimizers ------------------------------------------------------------------------------------
@jit
def _coefficients(hyper, lr, t, coef):
    """This step's scalars in the parameters' dtype (numpy rounds a Python float against an array
    the same way); Adam's bias corrections use the step count t (from 1) as ``Adam`` does."""
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


@jit
def _update(opt, Pbuf, Gbuf, S1buf, S2buf, start, size, coef, nesterov, decay):
    """One SGD or Adam step on P[start:start+size] (``optimizers.py``'s formulas element by
    element). The variants are separate loops so that each compiles to vector code."""
    wide_vectors()
    lr = coef[C_LR]
    wd = coef[C_DECAY]
    P = Pbuf[start:start + size]
    G = Gbuf[start:start + size]
    S1 = S1buf[start:start + size]  # empty when the optimizer has no such slot
    S2 = S2buf[start:start + size]
    if opt == OPT_SGD:
        momentum = coef[C_MOMENTUM]
        if momentum == 0 and not decay:
            for i in range(size):
                P[i] -= lr * G[i]
        elif momentum == 0:
            for i in range(size):
                P[i] -= lr * (G[i] + wd * P[i])
        else:
            for i in range(size):
                g = G[i] + wd * P[i] if decay else G[i]
                v = S1[i] * momentum
                v = v - lr * g
                S1[i] = v
                if nesterov:
                    P[i] += momentum * v - lr * g
                else:
                    P[i] += v
        return
    c1, c2, eps = coef[C_C1], coef[C_C2], coef[C_EPS]
    b1, b2, one_b1, one_b2 = coef[C_BETA1], coef[C_BETA2], coef[C_1MB1], coef[C_1MB2]
    for i in range(size):
        g = G[i] + wd * P[i] if decay else G[i]
        mi = S1[i] * b1
        mi = mi + one_b1 * g
        S1[i] = mi
        vi = S2[i] * b2
        vi = vi + one_b2 * (g * g)
        S2[i] = vi
        P[i] -= lr * (mi / c1) / (np.sqrt(vi / c2) + eps)


@jit
def _weights_squared(P, sizes, w_off):
    """Sum of the squares of every weight matrix (biases left out): ||W||^2 of fit's l2."""
    total = 0.0
    for layer in range(sizes.shape[0] - 1):
        w0, size = w_off[layer], sizes[layer] * sizes[layer + 1]
        for i in range(size):
            total += P[w0 + i] * P[w0 + i]
    return total


@jit
def _sgd_outer_step(A, a0, D, d0, P, w0, k, n, lr):
    """Plain SGD on a per-sample weight gradient: W -= lr * (a_i * d_j), the same two roundings
    as computing dW = outer(a, d) and then W -= lr * dW, in one pass."""
    wide_vectors()
    d = D[d0:d0 + n]
    for i in range(k):
        a = A[a0 + i]
        w = P[w0 + i * n:w0 + i * n + n]
        for c in range(n):
            w[c] -= lr * (a * d[c])


@jit
def _sgd_gemm_step(fn, A, a0, D, d0, P, w0, S1, k, n, m, lr, momentum, scaled, nesterov, coef,
                   axpy_fn):
    """SGD (no weight decay) on a BLAS-sized weight gradient without storing it. Without
    momentum, W -= lr * (A.T @ D) is one gemm into W (beta 1). With momentum the step is
    V = momentum * V - lr * (A.T @ D), then W += V:

    - ``scaled``: the slot holds U = V / scale (``coef[C_SCALE]``, this step's scale; see
      ``train_epoch``), and the step is U -= (lr / scale) * (A.T @ D), one gemm into U with beta
      1, then W += scale * U. With a beta other than 0 and 1, BLAS first scales C in a pass of its
      own (W2b's first layer: about 20 us of a 550 us step);
    - otherwise one gemm into V with beta ``momentum``, then W += V.

    Nesterov's W += momentum * V_new - lr * G is W - momentum * V_old + (1 + momentum) * V_new
    (lr * G = momentum * V_old - V_new), so G is not needed either: W -= momentum * V_old before
    the gemm, W += (1 + momentum) * V_new after it. In the scaled form momentum * V_old is
    scale * U_old (this step's scale is the last one times momentum).

    W += c * U (or V) goes through numpy's axpy at address ``axpy_fn`` (``blas.axpy``) when it
    is not 0: each of BLAS's threads then adds the rows it has just written (see blas.py).

    BLAS adds the product in its own threads, and no pass reads a stored gradient. Rounding: BLAS
    may fuse the multiply-add, and the scaled form rounds lr / scale and scale * U, where numpy's
    formula rounds momentum * V and lr * G: the same arithmetic to within rounding."""
    wide_vectors()
    if momentum == 0:
        gemm(fn, TRANS, NO_TRANS, k, n, m, -lr, A, a0, k, D, d0, n, 1.0, P, w0, n)
        return
    if scaled:
        scale = coef[C_SCALE]
        if nesterov:
            _add_scaled(axpy_fn, -scale, S1, P, w0, k * n)
        gemm(fn, TRANS, NO_TRANS, k, n, m, -(lr / scale), A, a0, k, D, d0, n, 1.0, S1, w0, n)
        _add_scaled(axpy_fn, (1.0 + momentum) * scale if nesterov else scale, S1, P, w0, k * n)
    else:
        if nesterov:
            _add_scaled(axpy_fn, -momentum, S1, P, w0, k * n)
        gemm(fn, TRANS, NO_TRANS, k, n, m, -lr, A, a0, k, D, d0, n, momentum, S1, w0, n)
        _add_scaled(axpy_fn, 1.0 + momentum if nesterov else 1.0, S1, P, w0, k * n)


@jit
def _add_scaled(axpy_fn, alpha, S, P, start, size):
    """P[start:start + size] += alpha * S[start:start + size]: numpy's axpy at address
    ``axpy_fn`` (``blas.axpy``), or a loop when it is 0."""
    wide_vectors()
    if axpy_fn != 0:
        axpy(axpy_fn, size, alpha, S, start, P, start)
        return
    w = P[start:start + size]
    v = S[start:start + size]
    for i in range(size):
        w[i] += alpha * v[i]


@jit
def _unscale(S1, sizes, w_off, batch_size, scale):
    """V = scale * U in the velocity slot of every layer ``_sgd_gemm_step`` updates (every
    weight matrix with at least ``BLAS_MIN_MACS`` multiply-adds per batch)."""
    wide_vectors()
    for layer in range(sizes.shape[0] - 1):
        k, n = sizes[layer], sizes[layer + 1]
        if batch_size * k * n >= BLAS_MIN_MACS:
            v = S1[w_off[layer]:w_off[layer] + k * n]
            for i in range(k * n):
                v[i] *= scale


@jit
def _add_bias(Zbuf, z0, P, b0, m, n):
    wide_vectors()
    b = P[b0:b0 + n]
    for r in range(m):
        z = Zbuf[z0 + r * n:z0 + r * n + n]
        for c in range(n):
            z[c] += b[c]


@jit
def _mm_bias(fn, A, a0, P, w0, b0, Z, z0, m, k, n):
    """Z = A @ W + b (W at P[w0], b at P[b0]) through numpy's gemm at address ``fn``: every row
    of Z set to b, then the gemm adds the product to it (beta 1). With beta 0, BLAS would zero Z
    in a pass of its own before adding the product, and the bias would take one more (W2b's
    first layer: 12 us of a 600 us step)."""
    wide_vectors()
    b = P[b0:b0 + n]
    for r in range(m):
        z = Z[z0 + r * n:z0 + r * n + n]
        for c in range(n):
            z[c] = b[c]
    gemm(fn, NO_TRANS, NO_TRANS, m, n, k, 1.0, A, a0, k, P, w0, n, 1.0, Z, z0, n)


@jit
def _column_sums(Dbuf, d0, G, g0, m, n):
    """G[g0:g0+n] = the column sums of the (m, n) block at Dbuf[d0] (the bias gradient)."""
    wide_vectors()
    g = G[g0:g0 + n]
    d = Dbuf[d0:d0 + n]
    for c in range(n):
        g[c] = d[c]
    for r in range(1, m):
        d = Dbuf[d0 + r * n:d0 + r * n + n]
        for c in range(n):
            g[c] += d[c]


# -- one epoch ------------------------------------------------------------------------------------
@jit
def train_epoch(X, Y, order, batch_size, weights, w_total, lrs, t0,
                sizes, w_off, b_off, a_off, z_off, acts, slopes, bias_mode,
                P, G, S1, S2, Abuf, Zbuf, Dbuf, Ybuf, losses, wb, coef,
                loss_code, from_logits, mean, opt, hyper, gemm_fn, axpy_fn):
    """Train on the rows ``order`` in batches of ``batch_size``; returns the epoch's loss as
    ``training.fit`` defines it (per-batch losses before each update, weighted by batch share).

    Each layer is updated as soon as backward has passed it (its old weights have then given
    the delta of the layer below), which is the same arithmetic as updating after backward."""
    wide_vectors()
    n_samples = order.shape[0]
    n_layers = sizes.shape[0] - 1
    last = n_layers - 1
    n_out = sizes[n_layers]
    weighted = weights.shape[0] > 0
    nesterov = hyper[H_NESTEROV] != 0
    l2 = hyper[H_L2]
    decay = hyper[H_DECAY] != 0 or l2 != 0
    plain_sgd = opt == OPT_SGD and hyper[H_MOMENTUM] == 0 and not decay
    # SGD whose step is linear in the gradient: BLAS-sized gradients go into the gemm itself
    # (every batch of the epoch, the last one too, so that a layer's slot keeps one form)
    gemm_sgd = gemm_fn != 0 and opt == OPT_SGD and not decay
    momentum = hyper[H_MOMENTUM]
    scaled = gemm_sgd and momentum >= RESCALE_BELOW  # their velocity slots hold V / scale
    scale = 1.0
    total = 0.0
    step = 0
    for start in range(0, n_samples, batch_size):
        m = min(batch_size, n_samples - start)
        # gather the batch (and its weights) into the input buffers
        share = 0.0
        d_in = sizes[0]
        for r in range(m):
            j = order[start + r]
            x, xb = X[j], Abuf[r * d_in:r * d_in + d_in]
            for c in range(d_in):
                xb[c] = x[c]
            y, yb = Y[j], Ybuf[r]
            for c in range(n_out):
                yb[c] = y[c]
            if weighted:
                wb[r] = weights[j]
                share += weights[j]
        # forward
        for layer in range(n_layers):
            k, n = sizes[layer], sizes[layer + 1]
            z0 = z_off[layer]
            if bias_mode[layer] != NO_BIAS and gemm_fn != 0 and m * k * n >= BLAS_MIN_MACS:
                _mm_bias(gemm_fn, Abuf, a_off[layer], P, w_off[layer], b_off[layer], Zbuf, z0, m, k, n)
            else:
                _mm(gemm_fn, Abuf, a_off[layer], P, w_off[layer], Zbuf, z0, m, k, n)
                if bias_mode[layer] != NO_BIAS:
                    _add_bias(Zbuf, z0, P, b_off[layer], m, n)
            if layer < last or not from_logits:
                _activate(acts[layer], slopes[layer], Zbuf, z0, Abuf, a_off[layer + 1], m, n)
        # loss and its gradient at the output
        zl, al = z_off[last], a_off[n_layers]
        if from_logits:
            _loss(loss_code, Zbuf, zl, Ybuf, Dbuf, zl, losses, m, n_out)
        else:
            _loss(loss_code, Abuf, al, Ybuf, Dbuf, zl, losses, m, n_out)
        value = _reduce_loss(losses, Dbuf, zl, wb, weighted, mean, m, n_out, coef)
        if not from_logits:
            _activation_backward(acts[last], slopes[last], Zbuf, zl, Abuf, al, Dbuf, zl, m, n_out)
        # backward, each layer updated right after its delta has been passed down
        _coefficients(hyper, lrs[step], t0 + step + 1, coef)
        if l2 != 0:  # fit's l2: this batch's penalty at the weights it was computed with
            total += 0.5 * l2 * _weights_squared(P, sizes, w_off) / n_samples
            coef[C_DECAY] = hyper[H_DECAY] + l2 / m
        if scaled:
            if not RESCALE_BELOW <= scale * momentum <= 1.0 / RESCALE_BELOW:
                _unscale(S1, sizes, w_off, batch_size, scale)
                scale = 1.0
            scale *= momentum
            coef[C_SCALE] = scale
        for layer in range(last, -1, -1):
            k, n = sizes[layer], sizes[layer + 1]
            d0, a0, w0 = z_off[layer], a_off[layer], w_off[layer]
            if layer > 0:
                p0 = z_off[layer - 1]
                _mm_nt(gemm_fn, Dbuf, d0, P, w0, Dbuf, p0, m, k, n)
                _activation_backward(acts[layer - 1], slopes[layer - 1], Zbuf, p0, Abuf, a0,
                                     Dbuf, p0, m, k)
            if plain_sgd and m == 1:
                _sgd_outer_step(Abuf, a0, Dbuf, d0, P, w0, k, n, coef[C_LR])
            elif gemm_sgd and batch_size * k * n >= BLAS_MIN_MACS:
                _sgd_gemm_step(gemm_fn, Abuf, a0, Dbuf, d0, P, w0, S1, k, n, m, coef[C_LR],
                               coef[C_MOMENTUM], scaled, nesterov, coef, axpy_fn)
            else:
                _mm_tn(gemm_fn, Abuf, a0, Dbuf, d0, G, w0, m, k, n)
                _update(opt, P, G, S1, S2, w0, k * n, coef, nesterov, decay)
            if bias_mode[layer] == TRAINABLE_BIAS:
                b0 = b_off[layer]
                _column_sums(Dbuf, d0, G, b0, m, n)
                _update(opt, P, G, S1, S2, b0, n, coef, nesterov, False)
        if mean:
            value *= (share if weighted else m) / w_total
        total += value
        step += 1
    if scaled and scale != 1.0:
        _unscale(S1, sizes, w_off, batch_size, scale)
    return total


@kernel(refcounts=False, fastmath={"reassoc"}, **INLINE)
def _finite(a, a0, size):
    """True when a[a0:a0 + size] holds no NaN and no infinity: x - x is 0 for every finite x and
    NaN otherwise (one vector pass; reassociating the sum of zeros changes nothing)."""
    wide_vectors()
    if size == 0:
        return True
    x = a[a0:a0 + size]
    acc = x[0] - x[0]
    for i in range(size):
        acc += x[i] - x[i]
    return acc == 0


# The step after a forward product goes through blocks of about this many values (16 KiB of
# float32), so that a block stays in the L1 cache from its check through bias and activation.
FORWARD_BLOCK = 4096


@kernel(nogil=True)  # inference runs it in threads of its own (forward.forward_chunked)
def dense_forward_rows(code, slope, Z, b, A, m, n, check):
    """The step after a forward product (inference's, and ``batched.BatchRunner``'s with
    ``check`` False) on the (m, n) block Z: Z += b (when b is not empty) and A = f(Z), a block
    of rows at a time (one read of Z from memory instead of two: 2048 x 256 float32, 222 -> 167
    us). With ``check``, each block of Z is first checked for NaN and
    infinity (``_finite``): at the first that is not finite, stops and returns its first row,
    the rows before it done. Returns m when all are done."""
    wide_vectors()
    rows = max(1, FORWARD_BLOCK // max(n, 1))
    for r in range(0, m, rows):
        k = min(rows, m - r)
        if check and not _finite(Z, r * n, k * n):
            return r
        if b.shape[0]:
            _add_bias(Z, r * n, b, 0, k, n)
        _activate(code, slope, Z, r * n, A, r * n, k, n)
    return m


# -- the pieces between BLAS calls, for batched.BatchRunner (flat views of 2-D arrays; its forward
# step is ``dense_forward_rows``) ---------------------------------------------------------------
@jit
def dense_backward_pre(code, slope, Z, A, D, gb, m, n):
    """D: dA -> dZ in place (identity: unchanged); gb = column sums of dZ (when not empty)."""
    wide_vectors()
    _activation_backward(code, slope, Z, 0, A, 0, D, 0, m, n)
    if gb.shape[0]:
        _column_sums(D, 0, gb, 0, m, n)


@jit
def loss_and_gradient(code, O, Y, G, losses, wb, weighted, mean, m, n, coef):
    """The batch's reduced loss; d loss / d out (or d z) into G, as ``train_epoch`` does."""
    wide_vectors()
    _loss(code, O, 0, Y, G, 0, losses, m, n)
    return _reduce_loss(losses, G, 0, wb, weighted, mean, m, n, coef)


@jit
def update_params(opt, params, grads, slots1, slots2, decays, hyper, lr, t, coef, rows):
    """One SGD/Adam step (``_update``) on every parameter (flat views) after a batch of ``rows``
    rows; ``decays[i]`` says whether weight decay (and fit's l2 / rows) applies to parameter i
    (weight matrices only)."""
    wide_vectors()
    _coefficients(hyper, lr, t, coef)
    nesterov = hyper[H_NESTEROV] != 0
    decay = hyper[H_DECAY] != 0 or hyper[H_L2] != 0
    if hyper[H_L2] != 0:
        coef[C_DECAY] = hyper[H_DECAY] + hyper[H_L2] / rows
    for i in range(len(params)):
        p = params[i]
        _update(opt, p, grads[i], slots1[i], slots2[i], 0, p.shape[0], coef, nesterov,
                decay and decays[i])


# -- per-sample plain SGD (the tutorials' algorithm), weights stored transposed ----------------
@kernel(refcounts=False, fastmath=MATMUL_FLAGS, **INLINE)
def _dot(w, x):
    """sum_i w[i] * x[i] (a product's sum: may be reordered, as BLAS does)."""
    wide_vectors()
    s = 0.0
    for i in range(x.shape[0]):
        s += w[i] * x[i]
    return s


@kernel(refcounts=False, fastmath=MATMUL_FLAGS, **INLINE)
def _online_forward(Wt, a, z):
    """z = W.T a with Wt (n, k) holding W transposed: four rows at a time, so that each load
    of ``a`` serves four sums (digits, W1: 0.5 -> 0.3 ms per epoch for the products)."""
    wide_vectors()
    n, k = Wt.shape
    c = 0
    while c + 4 <= n:
        r0, r1, r2, r3 = Wt[c], Wt[c + 1], Wt[c + 2], Wt[c + 3]
        s0 = s1 = s2 = s3 = 0.0
        for i in range(k):
            ai = a[i]
            s0 += r0[i] * ai
            s1 += r1[i] * ai
            s2 += r2[i] * ai
            s3 += r3[i] * ai
        z[c], z[c + 1], z[c + 2], z[c + 3] = s0, s1, s2, s3
        c += 4
    while c < n:
        z[c] = _dot(Wt[c], a)
        c += 1


@kernel(refcounts=False, fastmath=MATMUL_FLAGS, **INLINE)
def _online_backward(Wt, b, x, d, p, lr, pass_down, train_bias):
    """One layer, one sample, Wt (n, k) holding W transposed: the delta handed down,
    p[i] = sum_c d[c] * W[i, c] with the old weights (when ``pass_down``), and the updates
    W[i, c] -= (lr * d[c]) * x[i] and b[c] -= lr * d[c]. Rows go four at a time, and the
    delta and the update share one pass over the rows: each weight is loaded once, used for p
    and then updated. The update is one fused multiply-add per weight where the reference
    rounds x * d, then lr * that, then the difference: the weights agree to rounding (1e-15
    after an epoch of digits), at 1.4 -> 1.2 ms per epoch."""
    wide_vectors()
    n, k = Wt.shape
    if pass_down:
        for i in range(k):
            p[i] = 0.0
    c = 0
    while c + 4 <= n:
        e0, e1, e2, e3 = d[c], d[c + 1], d[c + 2], d[c + 3]
        l0, l1, l2, l3 = lr * e0, lr * e1, lr * e2, lr * e3
        r0, r1, r2, r3 = Wt[c], Wt[c + 1], Wt[c + 2], Wt[c + 3]
        if pass_down:
            for i in range(k):
                xi = x[i]
                w0, w1, w2, w3 = r0[i], r1[i], r2[i], r3[i]
                p[i] += e0 * w0 + e1 * w1 + e2 * w2 + e3 * w3
                r0[i] = w0 - l0 * xi
                r1[i] = w1 - l1 * xi
                r2[i] = w2 - l2 * xi
                r3[i] = w3 - l3 * xi
        else:
            for i in range(k):
                xi = x[i]
                r0[i] -= l0 * xi
                r1[i] -= l1 * xi
                r2[i] -= l2 * xi
                r3[i] -= l3 * xi
        c += 4
    while c < n:
        e0 = d[c]
        l0 = lr * e0
        r0 = Wt[c]
        if pass_down:
            for i in range(k):
                p[i] += e0 * r0[i]
        for i in range(k):
            r0[i] -= l0 * x[i]
        c += 1
    if train_bias:
        _online_bias_step(b, d, lr)


@njit_inline
def _online_bias_step(b, d, lr):
    """b[c] -= lr * d[c]."""
    for c in range(b.shape[0]):
        b[c] -= lr * d[c]


@kernel(refcounts=False, fastmath=MATMUL_FLAGS, **INLINE)
def _online_update_then_forward(Wt, x, d, lr, x_next, z):
    """The first layer's update of one sample fused with its product for the next:
    W[i, c] -= (lr * d[c]) * x[i] as ``_online_backward`` does it (without a delta to hand
    down), and z = W.T x_next with the updated weights, in one pass over the rows. Each weight
    is loaded once instead of twice, and the products' multiply-adds fill the slots the stores
    leave (W1: 1.00 -> 0.94 ms per epoch, medians of interleaved runs)."""
    wide_vectors()
    n, k = Wt.shape
    c = 0
    while c + 4 <= n:
        l0, l1, l2, l3 = lr * d[c], lr * d[c + 1], lr * d[c + 2], lr * d[c + 3]
        r0, r1, r2, r3 = Wt[c], Wt[c + 1], Wt[c + 2], Wt[c + 3]
        s0 = s1 = s2 = s3 = 0.0
        for i in range(k):
            xi = x[i]
            ai = x_next[i]
            w0 = r0[i] - l0 * xi
            w1 = r1[i] - l1 * xi
            w2 = r2[i] - l2 * xi
            w3 = r3[i] - l3 * xi
            r0[i] = w0
            r1[i] = w1
            r2[i] = w2
            r3[i] = w3
            s0 += w0 * ai
            s1 += w1 * ai
            s2 += w2 * ai
            s3 += w3 * ai
        z[c], z[c + 1], z[c + 2], z[c + 3] = s0, s1, s2, s3
        c += 4
    while c < n:
        l0 = lr * d[c]
        r0 = Wt[c]
        s0 = 0.0
        for i in range(k):
            w0 = r0[i] - l0 * x[i]
            r0[i] = w0
            s0 += w0 * x_next[i]
        z[c] = s0
        c += 1


@njit_no_refcounts
def train_online(X, Y, order, w_total, lrs, Wts, bs, As, Zs, Ds, acts, slopes, bias_mode,
                 Ybuf, losses, loss_code, from_logits, mean):
    """``train_epoch`` for batches of one sample, plain SGD (no momentum, no weight decay) and
    no sample weights. Per layer: ``Wts[l]`` its W transposed (n, k) and ``bs[l]`` its bias
    (views of ``runner``'s flat buffer), ``As[l]``/``As[l + 1]`` its input and output, ``Zs[l]``
    and ``Ds[l]`` its net input and delta. The first layer's product for each sample but the
    first is made while the sample before it updates that layer's weights
    (``_online_update_then_forward``). Returns the epoch loss."""
    wide_vectors()
    n_layers = len(Wts)
    last = n_layers - 1
    n_out = Zs[last].shape[0]
    total = 0.0
    steps = order.shape[0]
    if steps > 0:  # the first sample's first product; the others come with the update before them
        _online_forward(Wts[0], X[order[0]], Zs[0])
    for step in range(steps):
        j = order[step]
        x = X[j]  # the first layer reads its input from X itself
        y = Y[j]
        for c in range(n_out):
            Ybuf[0, c] = y[c]
        for layer in range(n_layers):
            Wt, b, z = Wts[layer], bs[layer], Zs[layer]
            a = x if layer == 0 else As[layer]
            n = z.shape[0]
            if layer > 0:
                _online_forward(Wt, a, z)
            if bias_mode[layer] != NO_BIAS:
                for c in range(n):
                    z[c] += b[c]
            if layer < last or not from_logits:
                _activate(acts[layer], slopes[layer], z, 0, As[layer + 1], 0, 1, n)
        d = Ds[last]
        if from_logits:
            _loss(loss_code, Zs[last], 0, Ybuf, d, 0, losses, 1, n_out)
        else:
            _loss(loss_code, As[n_layers], 0, Ybuf, d, 0, losses, 1, n_out)
            _activation_backward(acts[last], slopes[last], Zs[last], 0, As[n_layers], 0, d, 0, 1, n_out)
        value = losses[0]
        lr = lrs[step]
        for layer in range(last, -1, -1):
            below = Ds[layer - 1] if layer > 0 else Ds[layer]
            a = x if layer == 0 else As[layer]
            if layer == 0 and step + 1 < steps:  # and the next sample's product, in one pass
                _online_update_then_forward(Wts[0], x, Ds[0], lr, X[order[step + 1]], Zs[0])
                if bias_mode[0] == TRAINABLE_BIAS:
                    _online_bias_step(bs[0], Ds[0], lr)
            else:
                _online_backward(Wts[layer], bs[layer], a, Ds[layer], below, lr, layer > 0,
                                 bias_mode[layer] == TRAINABLE_BIAS)
            if layer > 0:
                k = below.shape[0]
                _activation_backward(acts[layer - 1], slopes[layer - 1], Zs[layer - 1], 0, As[layer], 0,
                                     below, 0, 1, k)
        if mean:
            value *= 1.0 / w_total
        total += value
    return total


def dispatched() -> bool:
    """True once numba has compiled or loaded any kernel of this module in this process (its
    compiler target is then set up, and loading one more from the disk cache costs little)."""
    from numba.core.dispatcher import Dispatcher

    return any(isinstance(f, Dispatcher) and f.signatures for f in list(globals().values()))
