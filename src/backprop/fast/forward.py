"""Inference in chunks: a large batch goes through the network ``chunk`` rows at a time with
preallocated buffers, so only the output and one chunk's activations are allocated and each
chunk's activations stay in the CPU cache between layers.

The products are numpy's (BLAS). Between them, bias and activation run in numpy, or in the
compiled ``kernels.dense_forward_rows`` (a block of rows at a time): through numba's dispatcher
when it has already loaded the kernels in this process (``kernels_loaded``), else through the
saved machine code of ``native.post_entry`` when this process has already loaded a saved entry,
as a fit on the fast path does (loading one more then costs a few milliseconds; a fit with
batches saves this entry along with its own). Predicting never loads numba itself: importing it
costs about 0.15 s and setting up its dispatcher 0.3 s more, more than the compiled step saves
on any batch short of millions of rows. All give the reference forward's outputs (the compiled
softmax's exp is within 1 ulp of numpy's).

The input check is folded in too (``check``): instead of a pass over all of X (7 ms for 60000 x
784 float32 by ``check_finite``'s row sums), each chunk's first product X W is checked. A NaN
or infinity in a row of X makes that row of X W NaN or infinite as long as the matching row of W
has a weight that is not zero (a product with it is ±inf or NaN, and no sum brings that back to
a finite number), so a finite X W (its sum in numpy; each entry, compiled) proves the chunk
finite. When it is not (an overflow, or a bad input), X itself is checked once, which names the
first bad entry, and the step finishes the rows it had left. A first
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
_NATIVE = "backprop.fast.native"


def kernels_loaded() -> bool:
    """True when the compiled kernels are imported and numba has already loaded one of them in
    this process (``kernels.dispatched``); a fit through ``native.py`` alone leaves numba's
    compiler target unset, and setting it up (0.3 s) costs more than the kernels save here."""
    kernels = sys.modules.get(_KERNELS)
    return kernels is not None and kernels.dispatched()


def _numpy_post(layer):
    """A = f(Z + b), in numpy, for this layer (Z is overwritten); see ``_posts``."""
    act = layer.activation

    def post(Z, A, check: bool) -> int:
        if check and not _finite_sum(Z):
            return 0
        if "b" in layer.params:
            Z += layer.params["b"]
        if type(act) is ReLU:
            np.maximum(Z, 0, out=A)
        elif type(act) is Identity:
            A[...] = Z
        else:
            A[...] = act.forward(Z)
        return Z.shape[0]

    return post


def _codes(layer):
    """(activation code, slope, flat bias) for the compiled step, or None when the activation
    has no kernel code."""
    from .runner import ACTIVATION_CODES, activation_code

    if type(layer.activation) not in ACTIVATION_CODES:
        return None
    code, slope = activation_code(layer.activation)
    b = layer.params["b"].reshape(-1) if "b" in layer.params else np.zeros(0, layer.params["W"].dtype)
    return code, slope, b


def _compiled_post(layer):
    """``_numpy_post`` compiled (``kernels.dense_forward_rows``, through numba's dispatcher: the
    check, bias and activation a block of rows at a time), or None when the activation has no
    kernel code. A must not be Z: LLVM then cannot prove the two apart and keeps the loops
    scalar (an in-place softmax took twice as long)."""
    from . import kernels

    codes = _codes(layer)
    if codes is None:
        return None
    code, slope, b = codes

    def post(Z, A, check: bool) -> int:
        return kernels.dense_forward_rows(code, slope, Z.reshape(-1), b, A.reshape(-1), Z.shape[0],
                                          Z.shape[1], check)

    return post


def _native_post(layer, entry):
    """``_compiled_post`` through the saved entry ``entry`` (``native.post_entry``): the same
    machine code, called through ctypes, without numba's set-up."""
    codes = _codes(layer)
    if codes is None:
        return None
    code, slope, b = codes
    calls = []

    def post(Z, A, check: bool) -> int:
        args = dict(Z=Z.reshape(-1), A=A.reshape(-1), m=Z.shape[0], n=Z.shape[1], check=check)
        if not calls:
            calls.append(entry.prepare(b=b, code=code, slope=slope, **args))
            return int(calls[0]())
        return int(calls[0](**args))

    return post


def _saved_post_entry(dtype):
    """The saved entry of the post-product step (``native.post_entry``) when this process has
    already loaded a saved entry (a fit on the fast path has: numba and its runtime are set up,
    and loading one more costs a few milliseconds), else None."""
    native = sys.modules.get(_NATIVE)
    if native is None or not native.any_loaded():
        return None
    return native.post_entry(dtype)


def _post_kind(network, compiled):
    """``compiled`` as ``forward_chunked`` takes it, with None resolved: False, True or "native"."""
    if compiled is not None:
        return compiled
    from . import switched_off

    if switched_off():
        return False
    if kernels_loaded():
        return True
    return "native" if _saved_post_entry(network.dtype) is not None else False


def _posts(network, kind):
    """One post-product step per layer, of ``kind`` (``_post_kind``'s False, True or "native"):
    ``post(Z, A, check) -> rows done`` applies bias and activation (A = f(Z + b), Z overwritten)
    to the rows of Z; with ``check``, Z = X W is checked first (see the module docstring), and
    the step stops at the first block of rows that is not finite: it returns how many leading
    rows it did (all of them: Z.shape[0]). The steps keep state between calls (the saved entry's
    bound arguments): one list per thread."""
    if kind == "native":
        from . import native

        entry = native.post_entry(network.dtype)
        if entry is None:
            raise RuntimeError("the saved post-product entry is not available")
        make = lambda layer: _native_post(layer, entry)  # noqa: E731
    elif kind:
        make = _compiled_post
    else:
        make = _numpy_post
    return [make(layer) or _numpy_post(layer) for layer in network.layers]


def _needs_plain_check(W) -> bool:
    """True when a bad input could be hidden from X W's sum (see the module docstring)."""
    return not bool(np.all(np.isfinite(W))) or not bool(np.all(np.any(W != 0, axis=1)))


def _finite_sum(Z) -> bool:
    """True when Z's sum is finite (which proves every entry finite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(Z.sum()))


def forward_chunked(network, X, chunk: int = 2048, *, check: str | None = None,
                    compiled: bool | str | None = None, workers: int | None = None) -> np.ndarray:
    """Outputs of ``network`` for the 2-D batch X (already of ``network.dtype``): the same
    operations as ``Dense.forward``, with bias and activation applied in place.

    ``check``: the argument's name, to verify that X is finite (the error names it); None when
    the caller has checked. ``compiled``: the post-product step: False numpy, True the compiled
    kernels through numba's dispatcher, ``"native"`` through their saved entry; None picks the
    dispatcher when it has loaded the kernels (``kernels_loaded``), else the saved entry when a
    saved entry is already loaded in this process, else numpy, and numpy when the fast path is
    switched off.

    ``workers``: threads that take the chunks in turn (the calling thread is one of them), each
    chunk's products on one BLAS thread; None: as many as BLAS may use now
    (``threads.blas_thread_count``), so a BLAS held to one thread gives one worker, with BLAS's
    own threads in each product. With more than one, X is cut into at least as many chunks, and
    BLAS is held to one thread until every worker has finished (``threads.one_blas_thread``).
    Between the products (bias, activation, the check) BLAS's other threads would wait; here
    every thread has work all the time (W3, interleaved medians, four runs: 1.14-1.20 -> 1.08-1.19
    times its three products alone). One BLAS thread per product changes the outputs by rounding
    only (W3 in float32: 4e-7)."""
    n = X.shape[0]
    if workers is None:
        from .threads import blas_thread_count

        workers = blas_thread_count()
    rows = max(1, min(chunk, -(-n // max(1, int(workers)))))
    starts = range(0, n, rows)
    workers = max(1, min(int(workers), len(starts)))  # an empty X: one worker, no chunk
    if check is not None and _needs_plain_check(network.layers[0].params["W"]):
        check_finite(check, X)
        check = None
    kind = _post_kind(network, compiled)
    out = np.empty((n, network.n_outputs), network.dtype)
    if workers == 1:
        _forward_rows(network, kind, X, out, rows, starts, check)
        return out
    from concurrent.futures import ThreadPoolExecutor

    from .threads import one_blas_thread

    errors = np.geterr()

    def work(starts):  # numpy's error state is per thread: the caller's, in every worker
        with np.errstate(**errors):
            _forward_rows(network, kind, X, out, rows, starts, check)

    with one_blas_thread(), ThreadPoolExecutor(workers - 1) as pool:
        futures = [pool.submit(work, starts[w::workers]) for w in range(1, workers)]
        try:
            _forward_rows(network, kind, X, out, rows, starts[::workers], check)
        finally:
            raised = [future.exception() for future in futures]  # waits for every worker
    for error in raised:
        if error is not None:
            raise error
    return out


def _forward_rows(network, kind, X, out, rows: int, starts, check: str | None) -> None:
    """``forward_chunked``'s work for the chunks of ``rows`` rows of X at ``starts`` into ``out``,
    with buffers and post-product steps of its own (one call per thread)."""
    dtype = network.dtype
    layers = network.layers
    posts = _posts(network, kind)
    Zs = [np.empty((rows, layer.params["W"].shape[1]), dtype) for layer in layers]
    As = [np.empty_like(Z) for Z in Zs[:-1]]
    n = X.shape[0]
    for start in starts:
        m = min(rows, n - start)
        A = X[start:start + m]
        for i, (layer, post) in enumerate(zip(layers, posts)):
            Z = np.matmul(A, layer.params["W"], out=Zs[i][:m])
            A = As[i][:m] if i < len(As) else out[start:start + m]
            done = post(Z, A, i == 0 and check is not None)
            if done < m:
                check_finite(check, X)  # raises for a bad input; an overflow goes on
                check = None
                post(Z[done:], A[done:], False)
