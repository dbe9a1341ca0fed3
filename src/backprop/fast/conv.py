"""The compiled fast path for convolutional networks: whole epochs in one numba kernel.

The twin of the numpy reference path in ``layers/`` (channels-last inside, see
``layers/base.py``), kernel by kernel:

==============================  ==================================================
numpy reference                 compiled twin (this module)
==============================  ==================================================
``layers.conv.im2col``          ``im2col``
``layers.conv.col2im``          ``col2im``
``Conv2D.forward/backward``     ``conv_forward`` / ``conv_backward``
``MaxPool2D.forward/backward``  ``max_pool_forward`` / ``max_pool_backward``
ReLU conv + max pool, backward  ``fused_backward`` (P_FUSE, BLAS-sized)
``AvgPool2D.forward/backward``  ``avg_pool_forward`` / ``avg_pool_backward``
``Flatten.forward/backward``    ``flatten_forward`` / ``flatten_backward``
``Dense.forward/backward``      ``kernels._mm_bias``, ``_mm_nt``, ``_mm_tn``
bias + activation               ``kernels._add_bias``, ``_activate``,
                                ``_activation_backward``
loss, optimizer step            ``kernels._loss``, ``_reduce_loss``, ``_update``
one epoch                       ``train_conv_epoch`` (``_load_batch``,
                                ``forward_layers``, ``backward_layers``,
                                ``_step``); large batches in two halves on
                                two threads: ``train_conv_epoch_halves``
inference                       ``forward_conv``
==============================  ==================================================

Products (the convolution's ``cols @ Wc``, ``cols.T @ dZ``, ``dZ @ Wc.T`` and the Dense ones) go
through numpy's own gemm by address (``blas.py``) when they are BLAS-sized, as in the dense
kernel; a convolution's run over blocks of about DW_CHUNK_ROWS im2col rows, each block's
im2col, gemm and fused max pool (or pool backward, gemms and col2im) one after the other while
its rows are in the core's cache (W5, per batch of 128 in two halves on 2 threads: 78 -> 63 ms,
a loaded machine); everything between them runs in compiled loops over preallocated flat buffers (nothing
is allocated per step). Inside the kernel a convolution's weights are kept as the im2col matrix
Wc = W.transpose(2, 3, 1, 0).reshape(kh*kw*C, O) (``Conv2D.kernel_matrix``); ``ConvRunner`` copies
them (and the optimizer's slots, laid out the same way) in before an epoch and back after it, so
between epochs the layers and the optimizer hold the current values in their public layouts.

Each layer of the network is one row of the int64 ``plan`` (columns ``P_*``): its kind, activation
code, bias mode, shapes, and the offsets of its blocks in the flat buffers. Every kernel is
cached on disk (numba ``cache=True``); the first compilation announces itself on the
``backprop.fast`` logger like the dense kernels. ``train_conv_epoch`` and ``forward_conv`` are
also saved as machine code of their own (``native.py``), which ``ConvRunner`` and ``predict``
call where it loads (a later process then skips numba's 0.4-0.5 s compiler set-up), and their
numba dispatchers otherwise; ``train_conv_epoch_halves`` always runs through its dispatcher.
"""

from __future__ import annotations

import numpy as np

from ..layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D
from ..optimizers import Constant, SGD
from . import blas
from . import kernels as K
from . import native
from numba import prange

from .kernels import jit, kernel

__all__ = ["ConvRunner", "unsupported", "is_conv_network", "forward_conv", "predict",
           "predict_if_supported", "largest_gemm_macs"]

CONV, MAXPOOL, AVGPOOL, FLATTEN, DENSE = 0, 1, 2, 3, 4
# Batches whose largest product has at least this many multiply-adds train in two halves on two
# threads (``train_conv_epoch_halves``); W5's is 285M, W4's 2.4M.
HALVES_FROM_MACS = 1 << 24
# A convolution's products run over blocks of about this many im2col rows (a few samples): its
# forward gemm right after im2col of the block, its delta's gemm right before col2im of it, and
# its weight gradient as one gemm per block adding to it (``_weight_gradient``).
DW_CHUNK_ROWS = 512
KINDS = {Conv2D: CONV, MaxPool2D: MAXPOOL, AvgPool2D: AVGPOOL, Flatten: FLATTEN, Dense: DENSE}
# columns of a plan row
(P_KIND, P_ACT, P_BIAS, P_C, P_H, P_W, P_O, P_OH, P_OW, P_KH, P_KW, P_SH, P_SW, P_PH, P_PW,
 P_WOFF, P_BOFF, P_AIN, P_AOUT, P_ZOFF, P_COLS, P_IDX, P_FUSE) = range(23)
N_PLAN = 23
# P_FUSE: 1 on a ReLU convolution whose output goes straight into a max pool that tiles it
# (stride = pool size), and on that pool: the pool reads the convolution's Z and applies the
# ReLU to each window's maximum (the same values: ReLU is monotone), and its backward writes dZ
# directly (the gradient where the window's maximum is and Z > 0, else 0), so the ReLU's own
# forward and backward passes over the convolution's output are skipped.


def is_conv_network(network) -> bool:
    """True when the network has a layer other than Dense (what this module trains)."""
    return any(type(layer) is not Dense for layer in network.layers)


def unsupported(network, loss=None, optimizer=None) -> str | None:
    """Why this module cannot train (network, loss, optimizer), or None if it can."""
    from .runner import ACTIVATION_CODES, LOSS_CODES, OPTIMIZER_CODES

    if network.dtype not in (np.float32, np.float64):
        return f"dtype {network.dtype.name} (float32 and float64 are supported)"
    for i, layer in enumerate(network.layers, start=1):
        if type(layer) not in KINDS:
            return (f"layer {i} is {type(layer).__name__} (Conv2D, MaxPool2D, AvgPool2D, Flatten "
                    "and Dense are compiled)")
        if isinstance(layer, (Conv2D, Dense)):
            if type(layer.activation) not in ACTIVATION_CODES:
                return f"layer {i} has activation {layer.activation!r}"
            if "W" in layer.frozen:
                return f"layer {i} has a frozen weight matrix"
        for name, p in layer.params.items():
            if p.dtype != network.dtype or not p.flags.c_contiguous or not p.flags.writeable:
                return f"parameter {name}{i} is not a writable C-contiguous {network.dtype.name} array"
    if type(network.layers[-1]) is not Dense:
        return f"the last layer is {type(network.layers[-1]).__name__} (a Dense layer is compiled)"
    if loss is not None and type(loss) not in LOSS_CODES:
        return f"loss {loss!r}"
    if optimizer is not None and type(optimizer) not in OPTIMIZER_CODES:
        return f"optimizer {optimizer!r} (SGD and Adam are compiled)"
    return None


# -- the kernels, one per concern --------------------------------------------------------------
@kernel(refcounts=False, nogil=True)
def im2col(X, x0, m, H, W, C, kh, kw, sh, sw, ph, pw, oh, ow, cols, c0):
    """``layers.conv.im2col``: the windows of the m channels-last (H, W, C) images at X[x0] as
    the rows of cols[c0:] (m*oh*ow rows of kh*kw*C values ordered (i, j, c)); window entries that
    fall in the padding are 0. A window row that lies inside the image is one contiguous run of
    kw*C values in X, copied as one loop (no reference counts: it only slices)."""
    K.wide_vectors()
    kc = kh * kw * C
    run = kw * C
    for r in range(m):
        for p in range(oh):
            for q in range(ow):
                row = c0 + ((r * oh + p) * ow + q) * kc
                xl = q * sw - pw
                inside = xl >= 0 and xl + kw <= W
                for i in range(kh):
                    y = p * sh + i - ph
                    dst = cols[row + i * run:row + i * run + run]
                    if y < 0 or y >= H:
                        for t in range(run):
                            dst[t] = 0.0
                    elif inside:
                        s0 = x0 + ((r * H + y) * W + xl) * C
                        src = X[s0:s0 + run]
                        for t in range(run):
                            dst[t] = src[t]
                    else:
                        for j in range(kw):
                            x = xl + j
                            d = dst[j * C:j * C + C]
                            if 0 <= x < W:
                                s0 = x0 + ((r * H + y) * W + x) * C
                                src = X[s0:s0 + C]
                                for c in range(C):
                                    d[c] = src[c]
                            else:
                                for c in range(C):
                                    d[c] = 0.0


@kernel(refcounts=False, nogil=True)
def col2im(dcols, c0, m, H, W, C, kh, kw, sh, sw, ph, pw, oh, ow, dX, x0):
    """``layers.conv.col2im``, the adjoint of ``im2col``: dX[x0:] (m channels-last (H, W, C)
    images) = the sum of each window's gradient (rows of dcols[c0:]) added back where the window
    was read, windows in row-major order as numpy adds them; the padding's share is dropped."""
    K.wide_vectors()
    kc = kh * kw * C
    run = kw * C
    out = dX[x0:x0 + m * H * W * C]
    for t in range(m * H * W * C):
        out[t] = 0.0
    for r in range(m):
        for p in range(oh):
            for q in range(ow):
                row = c0 + ((r * oh + p) * ow + q) * kc
                xl = q * sw - pw
                inside = xl >= 0 and xl + kw <= W
                for i in range(kh):
                    y = p * sh + i - ph
                    if y < 0 or y >= H:
                        continue
                    src = dcols[row + i * run:row + i * run + run]
                    if inside:
                        d0 = x0 + ((r * H + y) * W + xl) * C
                        dst = dX[d0:d0 + run]
                        for t in range(run):
                            dst[t] += src[t]
                        continue
                    for j in range(kw):
                        x = xl + j
                        if x < 0 or x >= W:
                            continue
                        d0 = x0 + ((r * H + y) * W + x) * C
                        dst = dX[d0:d0 + C]
                        for c in range(C):
                            dst[c] += src[j * C + c]


@kernel(refcounts=False, nogil=True)
def max_pool_forward(X, x0, m, H, W, C, kh, kw, sh, sw, oh, ow, A, a0, idx, i0, relu):
    """``MaxPool2D.forward``: A[a0:] = the maximum of each (kh, kw) window (stride (sh, sw)) of
    the channels-last images at X[x0], and idx[i0:] = the window offset i*kw + j of the first
    maximum in row-major order (a tie keeps the earlier offset; idx may be empty: not kept).
    ``relu``: X is the convolution's Z and A = relu(maximum), which is ``MaxPool2D.forward`` of
    ``_activate``'s ReLU (see P_FUSE)."""
    K.wide_vectors()
    keep = idx.shape[0] > 0
    for r in range(m):
        for p in range(oh):
            for q in range(ow):
                o0 = ((r * oh + p) * ow + q) * C
                out = A[a0 + o0:a0 + o0 + C]
                s0 = x0 + ((r * H + p * sh) * W + q * sw) * C
                src = X[s0:s0 + C]
                for c in range(C):
                    out[c] = src[c]
                arg = idx[i0 + o0:i0 + o0 + C] if keep else idx[0:0]
                if keep:
                    for c in range(C):
                        arg[c] = 0
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        if k == 0:
                            continue
                        s0 = x0 + ((r * H + p * sh + i) * W + q * sw + j) * C
                        src = X[s0:s0 + C]
                        if keep:
                            for c in range(C):
                                if src[c] > out[c]:
                                    out[c] = src[c]
                                    arg[c] = k
                        else:
                            for c in range(C):
                                if src[c] > out[c]:
                                    out[c] = src[c]
                if relu:  # as np.maximum(Z, 0)
                    for c in range(C):
                        out[c] = 0.0 if out[c] <= 0 else out[c]


@kernel(refcounts=False, nogil=True)
def max_pool_backward(dY, y0, idx, i0, m, H, W, C, kh, kw, sh, sw, oh, ow, dX, x0, Z, z0):
    """``MaxPool2D.backward``: dX[x0:] = 0, then each window's gradient dY added to the input its
    maximum came from (offset idx); overlapping windows add up. Windows that tile the image
    (stride = pool size) write each input they cover once (the gradient where it is the
    window's maximum, else 0) and only the uncovered edge is zeroed. Z not empty (tiling pools
    only, see P_FUSE): the ReLU's backward too, dX = that gradient where Z[z0:] > 0, else 0."""
    K.wide_vectors()
    relu = Z.shape[0] > 0
    if sh == kh and sw == kw:
        hc, wc = oh * kh, ow * kw  # the covered block of each image
        for r in range(m):
            for y in range(H):
                b0 = x0 + (r * H + y) * W * C
                if y >= hc:
                    row = dX[b0:b0 + W * C]
                else:
                    row = dX[b0 + wc * C:b0 + W * C]
                for t in range(row.shape[0]):
                    row[t] = 0.0
            for p in range(oh):
                for q in range(ow):
                    o0 = ((r * oh + p) * ow + q) * C
                    g = dY[y0 + o0:y0 + o0 + C]
                    arg = idx[i0 + o0:i0 + o0 + C]
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            e0 = ((r * H + p * kh + i) * W + q * kw + j) * C
                            dst = dX[x0 + e0:x0 + e0 + C]
                            if relu:
                                z = Z[z0 + e0:z0 + e0 + C]
                                for c in range(C):
                                    dst[c] = g[c] if arg[c] == k and z[c] > 0 else 0.0
                            else:
                                for c in range(C):
                                    dst[c] = g[c] if arg[c] == k else 0.0
        return
    out = dX[x0:x0 + m * H * W * C]
    for t in range(m * H * W * C):
        out[t] = 0.0
    for r in range(m):
        for p in range(oh):
            for q in range(ow):
                o0 = ((r * oh + p) * ow + q) * C
                for c in range(C):
                    k = idx[i0 + o0 + c]
                    i = k // kw
                    j = k - i * kw
                    dX[x0 + ((r * H + p * sh + i) * W + q * sw + j) * C + c] += dY[y0 + o0 + c]


@kernel(refcounts=False, nogil=True)
def avg_pool_forward(X, x0, m, H, W, C, kh, kw, sh, sw, oh, ow, A, a0):
    """``AvgPool2D.forward``: A[a0:] = the sum of each window's kh*kw inputs in row-major order,
    divided by kh*kw (numpy's order of operations)."""
    K.wide_vectors()
    for r in range(m):
        for p in range(oh):
            for q in range(ow):
                o0 = a0 + ((r * oh + p) * ow + q) * C
                out = A[o0:o0 + C]
                s0 = x0 + ((r * H + p * sh) * W + q * sw) * C
                src = X[s0:s0 + C]
                for c in range(C):
                    out[c] = src[c]
                for i in range(kh):
                    for j in range(kw):
                        if i == 0 and j == 0:
                            continue
                        s0 = x0 + ((r * H + p * sh + i) * W + q * sw + j) * C
                        src = X[s0:s0 + C]
                        for c in range(C):
                            out[c] += src[c]
                for c in range(C):
                    out[c] = out[c] / (kh * kw)


@kernel(refcounts=False, nogil=True)
def avg_pool_backward(dY, y0, m, H, W, C, kh, kw, sh, sw, oh, ow, dX, x0):
    """``AvgPool2D.backward``: dX[x0:] = 0, then every input of each window gets the window's
    gradient / (kh*kw); overlapping windows add up."""
    K.wide_vectors()
    out = dX[x0:x0 + m * H * W * C]
    for t in range(m * H * W * C):
        out[t] = 0.0
    for r in range(m):
        for p in range(oh):
            for q in range(ow):
                g0 = y0 + ((r * oh + p) * ow + q) * C
                g = dY[g0:g0 + C]
                for i in range(kh):
                    for j in range(kw):
                        d0 = x0 + ((r * H + p * sh + i) * W + q * sw + j) * C
                        dst = dX[d0:d0 + C]
                        for c in range(C):
                            dst[c] += g[c] / (kh * kw)


@kernel(refcounts=False, nogil=True)
def flatten_forward(X, x0, m, H, W, C, A, a0):
    """``Flatten.forward``: channels-last (H, W, C) images at X[x0] -> rows in C-H-W order at
    A[a0] (entry c*H*W + y*W + x holds X[y, x, c])."""
    hw = H * W
    for r in range(m):
        src = X[x0 + r * hw * C:x0 + (r + 1) * hw * C]
        dst = A[a0 + r * hw * C:a0 + (r + 1) * hw * C]
        for s in range(hw):
            for c in range(C):
                dst[c * hw + s] = src[s * C + c]


@kernel(refcounts=False, nogil=True)
def flatten_backward(dY, y0, m, H, W, C, dX, x0):
    """``Flatten.backward``: C-H-W gradient rows at dY[y0] back to channels-last at dX[x0]."""
    hw = H * W
    for r in range(m):
        src = dY[y0 + r * hw * C:y0 + (r + 1) * hw * C]
        dst = dX[x0 + r * hw * C:x0 + (r + 1) * hw * C]
        for s in range(hw):
            for c in range(C):
                dst[s * C + c] = src[c * hw + s]


@kernel(nogil=True)
def conv_forward(fn, L, Lp, Abuf, Zbuf, Cbuf, c0, P, m, Ibuf):
    """``Conv2D.forward`` for plan row L: cols = im2col(input) into Cbuf[c0:], Z = cols @ Wc + b
    (numpy's gemm at address ``fn`` when BLAS-sized), ``_chunk_samples`` samples at a time so that
    the gemm reads the rows im2col has just written from the core's cache; the activation is
    ``forward_layers``', or, for a fused pair (P_FUSE), the max pool of row Lp (ReLU included)
    runs on each block's Z right after its gemm."""
    H, W, C, O = L[P_H], L[P_W], L[P_C], L[P_O]
    oh, ow, kh, kw = L[P_OH], L[P_OW], L[P_KH], L[P_KW]
    kc, per = kh * kw * L[P_C], oh * ow
    step = _chunk_samples(per, m)
    for r0 in range(0, m, step):
        mc = min(step, m - r0)
        ci = c0 + r0 * per * kc
        im2col(Abuf, L[P_AIN] + r0 * H * W * C, mc, H, W, C, kh, kw, L[P_SH], L[P_SW], L[P_PH],
               L[P_PW], oh, ow, Cbuf, ci)
        _dense_forward(fn, L, Cbuf, ci, Zbuf, L[P_ZOFF] + r0 * per * O, P, mc * per, kc, O)
        if L[P_FUSE]:
            pooled = Lp[P_OH] * Lp[P_OW] * O
            max_pool_forward(Zbuf, L[P_ZOFF] + r0 * per * O, mc, oh, ow, O, Lp[P_KH], Lp[P_KW],
                             Lp[P_SH], Lp[P_SW], Lp[P_OH], Lp[P_OW], Abuf, Lp[P_AOUT] + r0 * pooled,
                             Ibuf, Lp[P_IDX] + r0 * pooled, True)


@kernel(nogil=True)
def _dense_forward(fn, L, In, i0, Zbuf, z0, P, rows, k, n):
    """Zbuf[z0:] = In[i0:] @ W + b for plan row L (a Dense layer, or a block of a convolution's
    im2col rows)."""
    if L[P_BIAS] != K.NO_BIAS and fn != 0 and rows * k * n >= K.BLAS_MIN_MACS:
        K._mm_bias(fn, In, i0, P, L[P_WOFF], L[P_BOFF], Zbuf, z0, rows, k, n)
    else:
        K._mm(fn, In, i0, P, L[P_WOFF], Zbuf, z0, rows, k, n)
        if L[P_BIAS] != K.NO_BIAS:
            K._add_bias(Zbuf, z0, P, L[P_BOFF], rows, n)


@kernel(nogil=True)
def _chunk_samples(per, m):
    """Samples per block of a convolution's im2col rows (``per`` rows each): about
    DW_CHUNK_ROWS rows, at least one sample, at most m."""
    return max(1, min(m, DW_CHUNK_ROWS // per))


@jit
def _weight_gradient(fn, A, a0, D, d0, G, g0, m, k, n, chunk):
    """G = A.T @ D (``kernels._mm_tn``) with A (m, k) the im2col rows and D (m, n) dZ; with BLAS,
    as one gemm per ``chunk`` rows, each adding to G (beta 1): the rows' sum is the product's
    long dimension, and gemms over blocks of it that stay in the core's cache run faster than
    one over all of it (W5's second convolution, 7744 rows on one thread: 5.4 -> 4.1 ms in
    blocks of 484)."""
    if fn == 0 or m * k * n < K.BLAS_MIN_MACS or m <= chunk:
        K._mm_tn(fn, A, a0, D, d0, G, g0, m, k, n)
        return
    for s in range(0, m, chunk):
        rows = min(chunk, m - s)
        blas.gemm(fn, blas.TRANS, blas.NO_TRANS, k, n, rows, 1.0, A, a0 + s * k, k, D, d0 + s * n,
                  n, 0.0 if s == 0 else 1.0, G, g0, n)


@jit
def conv_backward(fn, L, Dbuf, d_in, Zbuf, Abuf, Cbuf, c0, DCbuf, P, G, m, slope, pass_down):
    """``Conv2D.backward`` for plan row L, D holding dA at L's output on entry: dZ in place,
    dWc = cols.T @ dZ into G, db = column sums of dZ, and (``pass_down``) dX = col2im(dZ @ Wc.T)
    into Dbuf[d_in:]. The weights are not changed here."""
    H, W, C, O = L[P_H], L[P_W], L[P_C], L[P_O]
    oh, ow, kh, kw = L[P_OH], L[P_OW], L[P_KH], L[P_KW]
    rows, kc = m * oh * ow, kh * kw * C
    d0 = L[P_AOUT]
    if not L[P_FUSE]:  # else the max pool above wrote dZ
        K._activation_backward(L[P_ACT], slope, Zbuf, L[P_ZOFF], Abuf, d0, Dbuf, d0, rows, O)
    _weight_gradient(fn, Cbuf, c0, Dbuf, d0, G, L[P_WOFF], rows, kc, O, DW_CHUNK_ROWS)
    if L[P_BIAS] == K.TRAINABLE_BIAS:
        K._column_sums(Dbuf, d0, G, L[P_BOFF], rows, O)
    if pass_down:  # a block of samples at a time, its dcols still in the core's cache for col2im
        per = oh * ow
        step = _chunk_samples(per, m)
        for r0 in range(0, m, step):
            mc = min(step, m - r0)
            K._mm_nt(fn, Dbuf, d0 + r0 * per * O, P, L[P_WOFF], DCbuf, 0, mc * per, kc, O)
            col2im(DCbuf, 0, mc, H, W, C, kh, kw, L[P_SH], L[P_SW], L[P_PH], L[P_PW], oh, ow, Dbuf,
                   d_in + r0 * H * W * C)


@jit
def fused_backward(fn, L, Lp, Dbuf, d_in, Zbuf, Cbuf, c0, DCbuf, Ibuf, P, G, m, pass_down):
    """The backward of a fused pair (P_FUSE, BLAS-sized): ``max_pool_backward`` of the pool (row
    Lp) writing the convolution's dZ, then the convolution's weight and bias gradients and
    (``pass_down``) its delta as ``conv_backward`` computes them, ``_chunk_samples`` samples at a
    time so that each block's dZ is read back from the core's cache."""
    H, W, C, O = L[P_H], L[P_W], L[P_C], L[P_O]
    oh, ow, kh, kw = L[P_OH], L[P_OW], L[P_KH], L[P_KW]
    poh, pw_ = Lp[P_OH], Lp[P_OW]
    kc, per, pooled = kh * kw * C, oh * ow, Lp[P_OH] * Lp[P_OW] * O
    d0, w0, b0 = L[P_AOUT], L[P_WOFF], L[P_BOFF]
    trainable = L[P_BIAS] == K.TRAINABLE_BIAS
    if trainable:
        gb = G[b0:b0 + O]
        for c in range(O):
            gb[c] = 0.0
    step = _chunk_samples(per, m)
    for r0 in range(0, m, step):
        mc = min(step, m - r0)
        dz = d0 + r0 * per * O
        max_pool_backward(Dbuf, Lp[P_AOUT] + r0 * pooled, Ibuf, Lp[P_IDX] + r0 * pooled, mc, oh, ow,
                          O, Lp[P_KH], Lp[P_KW], Lp[P_SH], Lp[P_SW], poh, pw_, Dbuf, dz, Zbuf,
                          L[P_ZOFF] + r0 * per * O)
        blas.gemm(fn, blas.TRANS, blas.NO_TRANS, kc, O, mc * per, 1.0, Cbuf, c0 + r0 * per * kc, kc,
                  Dbuf, dz, O, 0.0 if r0 == 0 else 1.0, G, w0, O)
        if trainable:
            _add_column_sums(Dbuf, dz, G, b0, mc * per, O)
        if pass_down:
            K._mm_nt(fn, Dbuf, dz, P, w0, DCbuf, 0, mc * per, kc, O)
            col2im(DCbuf, 0, mc, H, W, C, kh, kw, L[P_SH], L[P_SW], L[P_PH], L[P_PW], oh, ow, Dbuf,
                   d_in + r0 * H * W * C)


@jit
def _add_column_sums(Dbuf, d0, G, g0, m, n):
    """G[g0:g0+n] += the column sums of the (m, n) block at Dbuf[d0]."""
    K.wide_vectors()
    g = G[g0:g0 + n]
    for r in range(m):
        d = Dbuf[d0 + r * n:d0 + r * n + n]
        for c in range(n):
            g[c] += d[c]


@kernel(nogil=True)
def forward_layers(plan, slopes, P, Abuf, Zbuf, Cbuf, Ibuf, m, fn, last_act):
    """The forward pass of m samples (already in Abuf at the first layer's input) through every
    plan row; ``last_act`` False leaves the last layer's activation out (from-logits losses)."""
    n_layers = plan.shape[0]
    for layer in range(n_layers):
        L = plan[layer]
        kind = L[P_KIND]
        H, W, C = L[P_H], L[P_W], L[P_C]
        if kind == CONV:
            conv_forward(fn, L, plan[min(layer + 1, n_layers - 1)], Abuf, Zbuf, Cbuf, L[P_COLS], P,
                         m, Ibuf)
            rows, n = m * L[P_OH] * L[P_OW], L[P_O]
        elif kind == DENSE:
            _dense_forward(fn, L, Abuf, L[P_AIN], Zbuf, L[P_ZOFF], P, m, C, L[P_O])
            rows, n = m, L[P_O]
        elif kind == MAXPOOL:
            if not L[P_FUSE]:  # else run with the convolution below it
                max_pool_forward(Abuf, L[P_AIN], m, H, W, C, L[P_KH], L[P_KW], L[P_SH],
                                 L[P_SW], L[P_OH], L[P_OW], Abuf, L[P_AOUT], Ibuf, L[P_IDX], False)
            continue
        elif kind == AVGPOOL:
            avg_pool_forward(Abuf, L[P_AIN], m, H, W, C, L[P_KH], L[P_KW], L[P_SH], L[P_SW],
                             L[P_OH], L[P_OW], Abuf, L[P_AOUT])
            continue
        else:
            flatten_forward(Abuf, L[P_AIN], m, H, W, C, Abuf, L[P_AOUT])
            continue
        if (layer < n_layers - 1 or last_act) and not L[P_FUSE]:
            K._activate(L[P_ACT], slopes[layer], Zbuf, L[P_ZOFF], Abuf, L[P_AOUT], rows, n)


# -- one epoch ---------------------------------------------------------------------------------
@kernel(nogil=True)
def _load_batch(X, Y, order, start, m, weights, Abuf, Ybuf, wb):
    """Rows order[start:start + m] of X and Y into Abuf (the first layer's input) and Ybuf, their
    sample weights into wb (when weighted); returns the weights' sum (0 unweighted)."""
    d_in = X.shape[1]
    n_out = Y.shape[1]
    share = 0.0
    for r in range(m):
        j = order[start + r]
        x, xb = X[j], Abuf[r * d_in:r * d_in + d_in]
        for c in range(d_in):
            xb[c] = x[c]
        y, yb = Y[j], Ybuf[r]
        for c in range(n_out):
            yb[c] = y[c]
        if weights.shape[0] > 0:
            wb[r] = weights[j]
            share += weights[j]
    return share


@kernel(nogil=True)
def backward_layers(plan, slopes, P, G, Abuf, Zbuf, Dbuf, Cbuf, DCbuf, Ibuf, m, fn, from_logits):
    """The backward pass of m samples, the loss's gradient already in Dbuf at the last layer's
    output: each layer's dZ, its parameters' gradients into G and its delta passed down
    (``Layer.backward`` in reverse order). The weights are not changed here."""
    last = plan.shape[0] - 1
    for layer in range(last, -1, -1):
        L = plan[layer]
        kind = L[P_KIND]
        H, W, C, O = L[P_H], L[P_W], L[P_C], L[P_O]
        a_in, d0 = L[P_AIN], L[P_AOUT]
        if kind == DENSE:
            if layer < last or not from_logits:
                K._activation_backward(L[P_ACT], slopes[layer], Zbuf, L[P_ZOFF], Abuf, d0,
                                       Dbuf, d0, m, O)
            if layer > 0:
                K._mm_nt(fn, Dbuf, d0, P, L[P_WOFF], Dbuf, a_in, m, C, O)
            K._mm_tn(fn, Abuf, a_in, Dbuf, d0, G, L[P_WOFF], m, C, O)
            if L[P_BIAS] == K.TRAINABLE_BIAS:
                K._column_sums(Dbuf, d0, G, L[P_BOFF], m, O)
        elif kind == CONV:
            if L[P_FUSE] and fn != 0 and m * L[P_OH] * L[P_OW] * C * L[P_KH] * L[P_KW] * O >= K.BLAS_MIN_MACS:
                fused_backward(fn, L, plan[layer + 1], Dbuf, a_in, Zbuf, Cbuf, L[P_COLS], DCbuf,
                               Ibuf, P, G, m, layer > 0)
            else:
                if L[P_FUSE]:
                    Lp = plan[layer + 1]
                    max_pool_backward(Dbuf, Lp[P_AOUT], Ibuf, Lp[P_IDX], m, Lp[P_H], Lp[P_W],
                                      Lp[P_C], Lp[P_KH], Lp[P_KW], Lp[P_SH], Lp[P_SW], Lp[P_OH],
                                      Lp[P_OW], Dbuf, d0, Zbuf, L[P_ZOFF])
                conv_backward(fn, L, Dbuf, a_in, Zbuf, Abuf, Cbuf, L[P_COLS], DCbuf, P, G, m,
                              slopes[layer], layer > 0)
        elif kind == MAXPOOL and L[P_FUSE]:
            continue  # with the convolution below it
        elif kind == MAXPOOL:
            max_pool_backward(Dbuf, d0, Ibuf, L[P_IDX], m, H, W, C, L[P_KH], L[P_KW], L[P_SH],
                              L[P_SW], L[P_OH], L[P_OW], Dbuf, a_in, Zbuf[0:0], 0)
        elif kind == AVGPOOL:
            avg_pool_backward(Dbuf, d0, m, H, W, C, L[P_KH], L[P_KW], L[P_SH], L[P_SW],
                              L[P_OH], L[P_OW], Dbuf, a_in)
        else:
            flatten_backward(Dbuf, d0, m, H, W, C, Dbuf, a_in)


@jit
def _step(plan, P, G, S1, S2, coef, hyper, lr, t, opt, m, n_samples):
    """The optimizer's step on every layer's parameters from the gradients in G (``_update``),
    fit's l2 term at the weights the batch was computed with; returns that term's share of the
    epoch loss."""
    K._coefficients(hyper, lr, t, coef)
    nesterov = hyper[K.H_NESTEROV] != 0
    l2 = hyper[K.H_L2]
    decay = hyper[K.H_DECAY] != 0 or l2 != 0
    extra = 0.0
    if l2 != 0:
        sq = 0.0
        for layer in range(plan.shape[0]):
            L = plan[layer]
            if L[P_KIND] == CONV or L[P_KIND] == DENSE:
                w0 = L[P_WOFF]
                size = L[P_C] * L[P_O] * L[P_KH] * L[P_KW]
                for i in range(size):
                    sq += P[w0 + i] * P[w0 + i]
        extra = 0.5 * l2 * sq / n_samples
        coef[K.C_DECAY] = hyper[K.H_DECAY] + l2 / m
    for layer in range(plan.shape[0] - 1, -1, -1):
        L = plan[layer]
        if L[P_KIND] == CONV or L[P_KIND] == DENSE:
            w0 = L[P_WOFF]
            K._update(opt, P, G, S1, S2, w0, L[P_C] * L[P_O] * L[P_KH] * L[P_KW], coef,
                      nesterov, decay)
            if L[P_BIAS] == K.TRAINABLE_BIAS:
                K._update(opt, P, G, S1, S2, L[P_BOFF], L[P_O], coef, nesterov, False)
    return extra


@jit
def train_conv_epoch(X, Y, order, batch_size, weights, w_total, lrs, t0, plan, slopes,
                     P, G, S1, S2, Abuf, Zbuf, Dbuf, Cbuf, DCbuf, Ibuf, Ybuf, losses, wb, coef,
                     loss_code, from_logits, mean, opt, hyper, gemm_fn):
    """``training.fit``'s epoch on the rows ``order`` of X (flat channels-last samples) in
    batches of ``batch_size``: forward (``forward_layers``), the loss and its gradient, backward
    (``backward_layers``), then the optimizer's step on every layer (``_step``; each layer's
    weights change only after its delta has been passed down, as in ``Network.backward`` then
    the optimizer). Returns the epoch loss as fit defines it."""
    K.wide_vectors()
    n_samples = order.shape[0]
    last = plan.shape[0] - 1
    n_out = Y.shape[1]
    weighted = weights.shape[0] > 0
    total = 0.0
    step = 0
    for start in range(0, n_samples, batch_size):
        m = min(batch_size, n_samples - start)
        share = _load_batch(X, Y, order, start, m, weights, Abuf, Ybuf, wb)
        forward_layers(plan, slopes, P, Abuf, Zbuf, Cbuf, Ibuf, m, gemm_fn, not from_logits)
        Lz = plan[last]
        zl, al = Lz[P_ZOFF], Lz[P_AOUT]
        # the output's gradient goes where the last layer's dA lives (Dbuf mirrors Abuf)
        if from_logits:
            K._loss(loss_code, Zbuf, zl, Ybuf, Dbuf, al, losses, m, n_out)
        else:
            K._loss(loss_code, Abuf, al, Ybuf, Dbuf, al, losses, m, n_out)
        value = K._reduce_loss(losses, Dbuf, al, wb, weighted, mean, m, n_out, coef)
        backward_layers(plan, slopes, P, G, Abuf, Zbuf, Dbuf, Cbuf, DCbuf, Ibuf, m, gemm_fn,
                        from_logits)
        total += _step(plan, P, G, S1, S2, coef, hyper, lrs[step], t0 + step + 1, opt, m,
                       n_samples)
        if mean:
            value *= (share if weighted else m) / w_total
        total += value
        step += 1
    return total


@kernel(nogil=True)
def _half_pass(h, start, m0, m, denom, X, Y, order, weights, plan, slopes, P, G2, A2, Z2, D2, C2,
               DC2, I2, Y2, L2, W2, coef2, loss_code, from_logits, fn, out):
    """Half h of a batch of m rows at order[start] (rows [0, m0) or [m0, m)) through the forward
    pass, the loss and the backward pass in its own buffers (row h of each 2-D buffer), its
    parameters' gradients into G2[h]; its loss sum into out[h]. The loss's gradient is divided
    by ``denom`` (the whole batch's m or weight sum; 0: not divided), as ``_reduce_loss`` divides
    a whole batch's."""
    lo = 0 if h == 0 else m0
    mh = m0 if h == 0 else m - m0
    Abuf, Zbuf, Dbuf, Ybuf, wb = A2[h], Z2[h], D2[h], Y2[h], W2[h]
    _load_batch(X, Y, order, start + lo, mh, weights, Abuf, Ybuf, wb)
    forward_layers(plan, slopes, P, Abuf, Zbuf, C2[h], I2[h], mh, fn, not from_logits)
    Lz = plan[plan.shape[0] - 1]
    zl, al = Lz[P_ZOFF], Lz[P_AOUT]
    n_out = Y.shape[1]
    if from_logits:
        K._loss(loss_code, Zbuf, zl, Ybuf, Dbuf, al, L2[h], mh, n_out)
    else:
        K._loss(loss_code, Abuf, al, Ybuf, Dbuf, al, L2[h], mh, n_out)
    out[h] = K._reduce_loss(L2[h], Dbuf, al, wb, weights.shape[0] > 0, False, mh, n_out, coef2[h])
    if denom != 0 and denom != 1:
        coef2[h, K.C_TMP] = denom
        g = Dbuf[al:al + mh * n_out]
        for i in range(mh * n_out):
            g[i] = g[i] / coef2[h, K.C_TMP]
    backward_layers(plan, slopes, P, G2[h], Abuf, Zbuf, Dbuf, C2[h], DC2[h], I2[h], mh, fn,
                    from_logits)


@kernel(parallel=True)
def train_conv_epoch_halves(X, Y, order, batch_size, weights, w_total, lrs, t0, plan, slopes,
                            P, G, G2, S1, S2, A2, Z2, D2, C2, DC2, I2, Y2, L2, W2, coef2, coef,
                            loss_code, from_logits, mean, opt, hyper, gemm_fn, threads):
    """``train_conv_epoch`` with each batch split in two halves (``_half_pass``) that run on two
    threads (``threads`` 2; 1: one after the other, the same bits), each on one BLAS thread:
    the batch's gradient is the sum of the halves' (G = G2[0] + G2[1]), then one optimizer step
    (``_step``). The split sums each product over a half batch at a time, so the weights differ
    from ``train_conv_epoch``'s by rounding only (the numpy path's sums are split otherwise
    again)."""
    n_samples = order.shape[0]
    weighted = weights.shape[0] > 0
    n_params = P.shape[0]
    out = np.zeros(2)
    total = 0.0
    step = 0
    for start in range(0, n_samples, batch_size):
        m = min(batch_size, n_samples - start)
        m0 = (m + 1) // 2
        halves = 2 if m >= 2 else 1
        share = 0.0
        if weighted:
            for r in range(m):
                share += weights[order[start + r]]
        denom = 0.0
        if mean:
            denom = share if weighted else float(m)
        out[1] = 0.0
        if threads > 1:
            for h in prange(halves):
                _half_pass(h, start, m0, m, denom, X, Y, order, weights, plan, slopes, P, G2, A2,
                           Z2, D2, C2, DC2, I2, Y2, L2, W2, coef2, loss_code, from_logits,
                           gemm_fn, out)
        else:
            for h in range(halves):
                _half_pass(h, start, m0, m, denom, X, Y, order, weights, plan, slopes, P, G2, A2,
                           Z2, D2, C2, DC2, I2, Y2, L2, W2, coef2, loss_code, from_logits,
                           gemm_fn, out)
        g0, g1 = G2[0], G2[1]
        if halves == 2:
            for i in range(n_params):
                G[i] = g0[i] + g1[i]
        else:
            for i in range(n_params):
                G[i] = g0[i]
        value = out[0] + out[1]
        if mean:
            value = value / denom if denom > 0 else 0.0
        total += _step(plan, P, G, S1, S2, coef, hyper, lrs[step], t0 + step + 1, opt, m,
                       n_samples)
        if mean:
            value *= (share if weighted else m) / w_total
        total += value
        step += 1
    return total


@kernel(nogil=True)
def forward_conv(X, plan, slopes, P, Abuf, Zbuf, Cbuf, Ibuf, chunk, fn, Out):
    """Inference: the rows of X (flat channels-last samples) through every plan row, ``chunk``
    at a time through the same buffers; the outputs into Out."""
    n = X.shape[0]
    d_in = X.shape[1]
    L = plan[plan.shape[0] - 1]
    n_out, a_out = L[P_O], L[P_AOUT]
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        src = X[start:start + m].reshape(m * d_in)
        dst = Abuf[0:m * d_in]
        for i in range(m * d_in):
            dst[i] = src[i]
        forward_layers(plan, slopes, P, Abuf, Zbuf, Cbuf, Ibuf, m, fn, True)
        out = Out[start:start + m].reshape(m * n_out)
        res = Abuf[a_out:a_out + m * n_out]
        for i in range(m * n_out):
            out[i] = res[i]
    return n


# -- the runner ----------------------------------------------------------------------------------
class _Plan:
    """The plan rows of a network for batches of ``rows`` samples, the flat buffers' sizes, and
    where each parameter sits in the flat parameter buffer (with its kernel layout). ``fuse``
    False keeps every ReLU + max pool apart (P_FUSE, for the tests)."""

    def __init__(self, network, rows: int, keep_cols: bool = True, fuse: bool = True):
        from .runner import _aligned, activation_code

        n_layers = len(network.layers)
        self.plan = np.zeros((n_layers, N_PLAN), np.int64)
        self.slopes = np.zeros(n_layers)
        self.arrays = []  # (name, layer, offset, kernel-layout shape, to_kernel, to_public)
        p_off = a_end = z_end = c_end = i_end = dc = 0
        a_off = 0  # the network's input at 0
        a_end = rows * network.layers[0].n_inputs
        for l, layer in enumerate(network.layers):
            row = self.plan[l]
            kind = KINDS[type(layer)]
            row[P_KIND] = kind
            row[P_AIN] = a_off
            a_out = _aligned(a_end)
            row[P_AOUT] = a_out
            a_end = a_out + rows * layer.n_outputs
            if isinstance(layer, Dense):
                row[P_C], row[P_H], row[P_W], row[P_O] = layer.n_inputs, 1, 1, layer.n_outputs
                row[P_OH] = row[P_OW] = row[P_KH] = row[P_KW] = 1
            else:
                C, H, W = layer.input_shape
                row[P_C], row[P_H], row[P_W] = C, H, W
                if kind != FLATTEN:
                    O, oh, ow = layer.output_shape
                    row[P_O], row[P_OH], row[P_OW] = O, oh, ow
                if kind == CONV:
                    (row[P_KH], row[P_KW]), (row[P_SH], row[P_SW]) = layer.kernel_size, layer.stride
                    row[P_PH], row[P_PW] = layer.padding
                elif kind in (MAXPOOL, AVGPOOL):
                    (row[P_KH], row[P_KW]), (row[P_SH], row[P_SW]) = layer.pool_size, layer.stride
            if kind in (CONV, DENSE):
                row[P_ACT], self.slopes[l] = activation_code(layer.activation)
                row[P_BIAS] = (K.NO_BIAS if "b" not in layer.params else
                               K.FROZEN_BIAS if "b" in layer.frozen else K.TRAINABLE_BIAS)
                row[P_ZOFF] = _aligned(z_end)
                z_end = row[P_ZOFF] + rows * layer.n_outputs
                p_off = _aligned(p_off)
                row[P_WOFF] = p_off
                W_ = layer.params["W"]
                if kind == CONV:
                    O, C, kh, kw = W_.shape
                    shape = (kh, kw, C, O)
                    self.arrays.append(("W", layer, p_off, shape, (2, 3, 1, 0), (3, 2, 0, 1)))
                    cols = rows * row[P_OH] * row[P_OW] * kh * kw * C
                    row[P_COLS] = _aligned(c_end) if keep_cols else 0
                    c_end = row[P_COLS] + cols
                    dc = max(dc, cols)
                else:
                    self.arrays.append(("W", layer, p_off, W_.shape, None, None))
                p_off += W_.size
                if "b" in layer.params:
                    p_off = _aligned(p_off)
                    row[P_BOFF] = p_off
                    self.arrays.append(("b", layer, p_off, layer.params["b"].shape, None, None))
                    p_off += layer.params["b"].size
                else:
                    row[P_BOFF] = -1
            if kind == MAXPOOL:
                row[P_IDX] = _aligned(i_end)
                i_end = row[P_IDX] + rows * layer.n_outputs
                below = self.plan[l - 1] if l > 0 else None
                if (below is not None and below[P_KIND] == CONV and below[P_ACT] == K.RELU
                        and fuse and row[P_KH] == row[P_SH] and row[P_KW] == row[P_SW]):
                    below[P_FUSE] = row[P_FUSE] = 1  # see P_FUSE
                    row[P_ZOFF] = below[P_ZOFF]
            a_off = a_out
        self.n_params, self.a_size, self.z_size = p_off, a_end, z_end
        self.c_size, self.dc_size, self.i_size = c_end, dc, i_end

    def views(self, flat, arrays):
        """(array, its block of ``flat`` in the kernel's layout, seen in the array's layout) for
        each per-parameter array (``self.arrays`` order; None = skipped)."""
        pairs = []
        for (name, _, offset, shape, _, back), a in zip(self.arrays, arrays):
            if a is None:
                continue
            block = flat[offset:offset + a.size].reshape(shape)
            pairs.append((a, block if back is None else block.transpose(back)))
        return pairs


def largest_gemm_macs(network, rows: int) -> int:
    """Multiply-adds of the largest product of a batch of ``rows`` samples."""
    largest = 0
    for layer in network.layers:
        if isinstance(layer, Conv2D):
            O, C, kh, kw = layer.params["W"].shape
            largest = max(largest, rows * layer.output_shape[1] * layer.output_shape[2] * kh * kw * C * O)
        elif isinstance(layer, Dense):
            largest = max(largest, rows * layer.n_inputs * layer.n_outputs)
    return largest


class ConvRunner:
    """``runner.EpochRunner``'s counterpart for conv networks: flat buffers built once per fit,
    each epoch one call of ``train_conv_epoch`` (or, for batches whose largest product has
    ``HALVES_FROM_MACS`` multiply-adds or more, of ``train_conv_epoch_halves`` on ``threads``
    threads; ``halves`` True/False forces either), parameters and optimizer slots copied in
    before and out after (so the numpy path can take over between epochs). ``fuse`` False keeps
    ReLU and max pool apart (P_FUSE). ``layer.grads`` are not filled."""

    def __init__(self, network, X, Y, loss, optimizer, batch_size: int, weights=None, l2: float = 0.0,
                 fuse: bool = True, halves: bool | None = None, threads: int | None = None):
        from .runner import LOSS_CODES, OPTIMIZER_CODES, aligned_zeros, optimizer_state

        dtype = network.dtype
        self.network, self.optimizer = network, optimizer
        n = X.shape[0]
        self.X = np.ascontiguousarray(X, dtype).reshape(n, -1)
        self.Y = np.ascontiguousarray(Y, dtype)
        self.n, self.batch_size = n, batch_size
        self.n_batches = -(-n // batch_size)
        rows = max(1, min(batch_size, n))
        self.layout = lay = _Plan(network, rows, fuse=fuse)
        self.params = [p for _, p in network.named_parameters()]
        self.P = aligned_zeros(lay.n_params, dtype)
        self.G = aligned_zeros(lay.n_params, dtype)
        self.Abuf = aligned_zeros(lay.a_size, dtype)
        self.Dbuf = aligned_zeros(lay.a_size, dtype)
        self.Zbuf = aligned_zeros(max(lay.z_size, 1), dtype)
        self.Cbuf = aligned_zeros(max(lay.c_size, 1), dtype)
        self.DCbuf = aligned_zeros(max(lay.dc_size, 1), dtype)
        self.Ibuf = np.zeros(lay.i_size, np.int32)
        self.Ybuf = aligned_zeros((rows, network.n_outputs), dtype)
        self.losses = np.zeros(rows)
        self.wb = np.zeros(rows if weights is not None else 0)
        self.coef = np.zeros(K.N_COEF, dtype)
        self.weights = np.zeros(0) if weights is None else np.ascontiguousarray(weights, np.float64)
        self.w_total = float(np.sum(self.weights)) if weights is not None else float(n)
        self.loss_code = LOSS_CODES[type(loss)]
        self.from_logits = bool(loss.from_logits)
        self.mean = loss.reduction == "mean"
        self.opt = OPTIMIZER_CODES[type(optimizer)]
        params, _ = network.trainable()
        self.hyper, slots = optimizer_state(optimizer, params, dtype, l2)
        ids = [id(p) for p in params]
        self.slots = [[dict(zip(ids, arrays)).get(id(p)) for p in self.params] for arrays in slots]
        self.S = [aligned_zeros(lay.n_params if k < len(self.slots) else 0, dtype) for k in range(2)]
        self.uses_blas = largest_gemm_macs(network, rows) >= K.BLAS_MIN_MACS
        # batches in two halves on two threads (``train_conv_epoch_halves``) where the products
        # are large enough to pay for waking a thread per batch
        if halves is None:
            halves = largest_gemm_macs(network, rows) >= HALVES_FROM_MACS and rows >= 2
        if threads is None and halves:  # numba's threads (NUMBA_NUM_THREADS: the CPUs), at most 2
            import numba

            threads = min(2, numba.get_num_threads())
        self.halves, self.threads = bool(halves), int(threads or 1)
        if self.halves:
            self._half_buffers(network, rows, weights is not None, fuse)
        self.gemm_fn = (blas.gemm_address(dtype) or 0) if self.uses_blas else 0
        # the one-thread kernel through its saved machine code (native.py: no 0.4 s numba set-up),
        # or None for its numba dispatcher; the halves (prange) always through the dispatcher
        entry = None if self.halves else native.conv_epoch_entry(dtype)
        empty = self._kernel_args(np.zeros(0, np.int64), np.zeros(0, dtype))  # order, lrs: per call
        self._entry = entry and entry.prepare(**empty)
        self._param_views = lay.views(self.P, self.params)
        self._slot_views = [lay.views(flat, arrays) for flat, arrays in zip(self.S, self.slots)]
        self._arange = np.arange(n, dtype=np.int64)

    def _half_buffers(self, network, rows, weighted, fuse):
        """Two sets of the per-batch buffers, each for half a batch (row h: half h)."""
        from .runner import aligned_zeros

        dtype = network.dtype
        half = (rows + 1) // 2
        self.half_layout = lay = _Plan(network, half, fuse=fuse)

        def two(size, kind=dtype):
            return aligned_zeros((2, -(-max(size, 1) // 16) * 16), kind)

        self.A2, self.Z2, self.D2 = two(lay.a_size), two(lay.z_size), two(lay.a_size)
        self.C2, self.DC2 = two(lay.c_size), two(lay.dc_size)
        self.I2 = np.zeros((2, max(lay.i_size, 1)), np.int32)
        self.G2 = np.zeros((2, self.layout.n_params), dtype)
        self.Y2 = np.zeros((2, half, network.n_outputs), dtype)
        self.L2 = np.zeros((2, half))
        self.W2 = np.zeros((2, half if weighted else 0))
        self.coef2 = np.zeros((2, K.N_COEF), dtype)

    def _kernel_args(self, order, lrs) -> dict:
        """``train_conv_epoch``'s arguments by name (``native.CONV_EPOCH_ARGS``)."""
        lay = self.layout
        return dict(X=self.X, Y=self.Y, order=order, batch_size=self.batch_size,
                    weights=self.weights, w_total=self.w_total, lrs=lrs, t0=self.optimizer.t,
                    plan=lay.plan, slopes=lay.slopes, P=self.P, G=self.G, S1=self.S[0],
                    S2=self.S[1], Abuf=self.Abuf, Zbuf=self.Zbuf, Dbuf=self.Dbuf, Cbuf=self.Cbuf,
                    DCbuf=self.DCbuf, Ibuf=self.Ibuf, Ybuf=self.Ybuf, losses=self.losses,
                    wb=self.wb, coef=self.coef, loss_code=self.loss_code,
                    from_logits=self.from_logits, mean=self.mean, opt=self.opt, hyper=self.hyper,
                    gemm_fn=self.gemm_fn)

    def _learning_rates(self) -> np.ndarray:
        opt = self.optimizer
        if type(opt.schedule) is Constant:
            return np.full(self.n_batches, opt.schedule.lr, dtype=self.network.dtype)
        rates = [opt.schedule.lr_at(opt.t + i) for i in range(self.n_batches)]
        return np.asarray(rates, dtype=self.network.dtype).reshape(self.n_batches)

    def run_epoch(self, rng=None) -> float:
        """One epoch, shuffled by ``rng.permutation(n)`` when rng is given (the numpy path's
        draw); returns the epoch loss and advances ``optimizer.t``."""
        order = rng.permutation(self.n) if rng is not None else self._arange
        return self._run(order, self._learning_rates())

    def _run(self, order, lrs) -> float:
        from .runner import copy_in, copy_out

        copy_in(self._param_views)
        for pairs in self._slot_views:
            copy_in(pairs)
        lay = self.layout
        if self.halves:
            return self._finish(len(lrs), train_conv_epoch_halves(
                self.X, self.Y, np.ascontiguousarray(order, np.int64), self.batch_size,
                self.weights, self.w_total, np.ascontiguousarray(lrs, self.network.dtype),
                self.optimizer.t, self.half_layout.plan, lay.slopes, self.P, self.G, self.G2,
                self.S[0], self.S[1], self.A2, self.Z2, self.D2, self.C2, self.DC2, self.I2, self.Y2,
                self.L2, self.W2, self.coef2, self.coef, self.loss_code, self.from_logits,
                self.mean, self.opt, self.hyper, self.gemm_fn, self.threads))
        order = np.ascontiguousarray(order, np.int64)
        lrs = np.ascontiguousarray(lrs, self.network.dtype)
        if self._entry is not None:
            total = self._entry(order=order, lrs=lrs, t0=self.optimizer.t)
        else:
            args = self._kernel_args(order, lrs)
            total = train_conv_epoch(*(args[name] for name, _ in native.CONV_EPOCH_ARGS))
        return self._finish(len(lrs), total)

    def _finish(self, n_steps, total) -> float:
        from .runner import copy_out

        copy_out(self._param_views)
        for pairs in self._slot_views:
            copy_out(pairs)
        self.optimizer.t += n_steps
        return float(total)

    def warm_up(self) -> None:
        """Compile (or load from the disk cache) the kernel for these types without training."""
        self._run(np.zeros(0, np.int64), np.zeros(0, self.network.dtype))


PREDICT_CHUNK = 256


def predict(network, X, chunk: int = PREDICT_CHUNK) -> np.ndarray:
    """Outputs for a prepared channels-last batch X (n, H, W, C) of ``network.dtype``: the
    compiled forward (``forward_conv``), ``chunk`` samples at a time, in two threads of its own
    when BLAS may use two (each on one BLAS thread), as ``forward.forward_chunked`` does."""
    from .runner import copy_in
    from .threads import blas_thread_count, one_blas_thread

    dtype = network.dtype
    n = X.shape[0]
    X2 = np.ascontiguousarray(X, dtype).reshape(n, -1)
    Out = np.empty((n, network.n_outputs), dtype)
    if n == 0:
        return Out
    rows = max(1, min(chunk, n))
    lay = _Plan(network, rows, keep_cols=False)
    P = np.zeros(lay.n_params, dtype)
    copy_in(lay.views(P, [p for _, p in network.named_parameters()]))
    fn = blas.gemm_address(dtype) or 0
    workers = min(blas_thread_count(), -(-n // rows), 4)
    entry = native.conv_forward_entry(dtype)  # its saved machine code, or None: the dispatcher

    def run(lo, hi):
        args = dict(X=X2[lo:hi], plan=lay.plan, slopes=lay.slopes, P=P,
                    Abuf=np.zeros(lay.a_size, dtype), Zbuf=np.zeros(max(lay.z_size, 1), dtype),
                    Cbuf=np.zeros(max(lay.dc_size, 1), dtype), Ibuf=np.zeros(0, np.int32),
                    chunk=rows, fn=fn, Out=Out[lo:hi])
        if entry is not None:
            entry.prepare(**args)()  # a Call of its own per thread
        else:
            forward_conv(*(args[name] for name, _ in native.CONV_FORWARD_ARGS))

    if workers <= 1:
        run(0, n)
        return Out
    import threading

    bounds = np.linspace(0, n, workers + 1).astype(int)
    with one_blas_thread():
        threads = [threading.Thread(target=run, args=(lo, hi)) for lo, hi in zip(bounds, bounds[1:])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return Out


def predict_if_supported(network, X):
    """``predict``'s outputs for a prepared, checked batch, or None when the compiled forward
    does not apply (numba missing, BACKPROP_FAST=0, or a layer or activation it lacks): then the
    caller runs the numpy layers."""
    from . import available, switched_off

    if switched_off() or not available() or unsupported(network) is not None:
        return None
    return predict(network, X)
