"""Inference in chunks: a large batch goes through the network ``chunk`` rows at a time with
preallocated buffers, so only the output and one chunk's activations are allocated and each
chunk's activations stay in the CPU cache between layers.

The products are numpy's (BLAS). Between them, bias and activation run in numpy, or in the
compiled ``kernels.dense_forward_post`` (one pass instead of two or more) when numba has already
loaded those kernels in this process (``kernels_loaded``), by training on the fast path.
Predicting never loads them itself: importing numba and loading the kernels costs about 0.5 s,
more than they save on any batch short of millions of rows. Both give the reference forward's
outputs (the compiled softmax's exp is within 1 ulp of numpy's).

The input check is folded in too (``check``): instead of a pass over all of X (25 ms for 60000 x
784 float32, a fifth of the whole prediction), each chunk's first product X W is summed. A NaN
or infinity in a row of X makes that row of X W NaN or infinite as long as the matching row of W
has a weight that is not zero (a product with it is ±inf or NaN, and no sum brings that back to
a finite number), so a finite sum proves the chunk finite. When the sum is not finite (an
overflow, or a bad input), X itself is checked once, which names the first bad entry. A first
weight matrix with an all-zero row (a BLAS may skip zero weights) or a non-finite entry gets the
plain check of X up front instead.
"""

from __future__ import annotations

import sys

import numpy as np

from .._validation import check_finite
from ..activations import Identity, ReLU

__all__ = ["forward_chunked", "kernels_loaded"]

_KERNELS = "backprop.fast.kernels"


def kernels_loaded() -> bool:
    """True when the compiled kernels are imported and numba has already loaded one of them in
    this process (``kernels.dispatched``); a fit through ``native.py`` alone leaves numba's
    compiler target unset, and setting it up (0.3 s) costs more than the kernels save here."""
    kernels = sys.modules.get(_KERNELS)
    return kernels is not None and kernels.dispatched()


def _numpy_post(layer):
    """A = f(Z + b), in numpy, for this layer (Z is overwritten)."""
    act = layer.activation

    def post(Z, A):
        if "b" in layer.params:
            Z += layer.params["b"]
        if type(act) is ReLU:
            np.maximum(Z, 0, out=A)
        elif type(act) is Identity:
            A[...] = Z
        else:
            A[...] = act.forward(Z)

    return post


def _compiled_post(layer):
    """``_numpy_post`` as one compiled pass, or None when the activation has no kernel code.
    A must not be Z: LLVM then cannot prove the two apart and keeps the loops scalar (an
    in-place softmax took twice as long)."""
    from . import kernels
    from .runner import ACTIVATION_CODES, activation_code

    if type(layer.activation) not in ACTIVATION_CODES:
        return None
    code, slope = activation_code(layer.activation)
    b = layer.params["b"].reshape(-1) if "b" in layer.params else np.zeros(0, layer.params["W"].dtype)

    def post(Z, A):
        kernels.dense_forward_post(code, slope, Z.reshape(-1), b, A.reshape(-1), Z.shape[0], Z.shape[1])

    return post


def _needs_plain_check(W) -> bool:
    """True when a bad input could be hidden from X W's sum (see the module docstring)."""
    return not bool(np.all(np.isfinite(W))) or not bool(np.all(np.any(W != 0, axis=1)))


def _finite_sum(Z) -> bool:
    """True when Z's sum is finite (which proves every entry finite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(Z.sum()))


def _compiled_all_finite(Z) -> bool:
    from . import kernels

    return kernels.all_finite(Z.reshape(-1))


def forward_chunked(network, X, chunk: int = 2048, *, check: str | None = None,
                    compiled: bool | None = None) -> np.ndarray:
    """Outputs of ``network`` for the 2-D batch X (already of ``network.dtype``): the same
    operations as ``Dense.forward``, with bias and activation applied in place.

    ``check``: the argument's name, to verify that X is finite (the error names it); None when
    the caller has checked. ``compiled``: None picks the compiled post-product kernels when
    they are loaded (``kernels_loaded``) and the fast path is not switched off."""
    if compiled is None:
        from . import switched_off

        compiled = kernels_loaded() and not switched_off()
    n = X.shape[0]
    rows = max(1, min(chunk, n))
    dtype = network.dtype
    layers = network.layers
    posts = [(compiled and _compiled_post(layer)) or _numpy_post(layer) for layer in layers]
    finite = _compiled_all_finite if compiled else _finite_sum
    if check is not None and _needs_plain_check(layers[0].params["W"]):
        check_finite(check, X)
        check = None
    Zs = [np.empty((rows, layer.params["W"].shape[1]), dtype) for layer in layers]
    As = [np.empty_like(Z) for Z in Zs[:-1]]
    out = np.empty((n, network.n_outputs), dtype)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        A = X[start:start + m]
        for i, (layer, post) in enumerate(zip(layers, posts)):
            Z = np.matmul(A, layer.params["W"], out=Zs[i][:m])
            if i == 0 and check is not None and not finite(Z):
                check_finite(check, X)  # raises for a bad input; an overflow goes on
                check = None
            A = As[i][:m] if i < len(As) else out[start:start + m]
            post(Z, A)
    return out
