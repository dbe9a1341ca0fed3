"""numpy's own BLAS, called from compiled code: ``gemm`` is a numba intrinsic that calls
``cblas_sgemm``/``cblas_dgemm`` at an address given at run time, and ``gemm_address`` finds
that address in the OpenBLAS that numpy links (the wheels' ``scipy_openblas64_``).

Why: with it, ``kernels.train_epoch`` runs a whole epoch of large batches in one compiled call
instead of ``batched.BatchRunner``'s Python loop of about twenty calls per batch (W2b: 501 ->
445 ms per epoch, medians of interleaved fits), and without importing SciPy: numba's own
``np.dot`` calls SciPy's BLAS, a second library. Each product is the one numpy's ``matmul``
computes for the same operands (the same function with the same arguments; numpy takes gemv
instead when a side is 1), so it gives the same bits (``tests/test_fast_blas.py``).

The address is an argument, never a constant in the compiled code, so the kernel stays
cacheable on disk. Only 64-bit-integer (ILP64) OpenBLAS builds are used, recognised by the
``64_`` suffix of their symbols; and the function found must reproduce ``np.matmul`` on a small
product before it is used. Anything else (another BLAS, a 32-bit-integer build, a library that
cannot be opened) gives None: then the kernel calls numba's ``np.dot`` and batches large enough
for BLAS to dominate train in ``BatchRunner``, which drives numpy's ``matmul`` from Python.

``axpy`` calls ``cblas_saxpy``/``cblas_daxpy`` of the same library the same way (``axpy_address``;
checked on values whose products and sums are exact, since no numpy function is that function).
SGD with momentum adds the velocity to the weights with it, right after the gemm that wrote the
velocity (``kernels._sgd_gemm_step``). OpenBLAS's threads each write a contiguous half of that
gemm's rows, and its axpy splits the vector into contiguous halves too, so each thread adds what
it has just written and its core still holds. A loop on the calling thread reads the other half
from the other core (W2b's first layer after its gemm: a pass over the first half of the rows
16 us, over the second 27 us; W += scale * U by axpy 30 us, by the loop 56 us; epochs 362
against 384 ms, medians of interleaved fits).
"""

from __future__ import annotations

import ctypes
import logging
import os

import numpy as np
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic

__all__ = ["gemm", "gemm_address", "axpy", "axpy_address", "NO_TRANS", "TRANS"]

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS enum values
_PREFIXES = ("scipy_", "")
_SUFFIXES = ("64_", "_64")
logger = logging.getLogger("backprop.fast")

_addresses: dict | None = None


def _wide(builder, value):
    """An integer as i64 (sign-extended)."""
    return builder.sext(value, ir.IntType(64)) if value.type.width < 64 else value


def _start(context, builder, array, array_type, offset):
    """A pointer to element ``offset`` of a (contiguous) array."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [_wide(builder, offset)])


@intrinsic
def gemm(typingctx, fn, ta, tb, m, n, k, alpha, a, a0, lda, b, b0, ldb, beta, c, c0, ldc):
    """C = alpha * op(A) @ op(B) + beta * C (row major) by the ILP64 ``cblas_?gemm`` at address
    ``fn``, with ``cblas_?gemm``'s own arguments: op(A) is m x k, op(B) k x n, C m x n; each
    matrix starts at element ``x0`` of its (contiguous) array, with leading dimension ``ldx``;
    ``ta``/``tb`` are ``NO_TRANS`` or ``TRANS``. The float type is the arrays' dtype (float32:
    sgemm, float64: dgemm); alpha and beta are rounded to it, as numpy rounds a Python float."""
    arrays = (a, b, c)
    if not all(isinstance(x, types.Array) for x in arrays) or len({x.dtype for x in arrays}) != 1:
        return None
    if a.dtype not in (types.float32, types.float64):
        return None
    if not all(isinstance(x, (types.Float, types.Integer)) for x in (alpha, beta)):
        return None
    sig = types.void(fn, ta, tb, m, n, k, alpha, a, a0, lda, b, b0, ldb, beta, c, c0, ldc)

    def codegen(context, builder, signature, args):
        fn, ta, tb, m, n, k, alpha, a, a0, lda, b, b0, ldb, beta, c, c0, ldc = args
        types_of = signature.args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        dtype = types_of[7].dtype
        real = context.get_value_type(dtype)
        ptr = real.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(),
                               [i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64])

        def wide(value):
            return _wide(builder, value)

        def narrow(value):
            return builder.trunc(value, i32) if value.type.width > 32 else value

        def start(array, array_type, offset):
            return _start(context, builder, array, array_type, offset)

        function = builder.inttoptr(wide(fn), fnty.as_pointer())
        builder.call(function, [
            ir.Constant(i32, ROW_MAJOR), narrow(ta), narrow(tb), wide(m), wide(n), wide(k),
            context.cast(builder, alpha, types_of[6], dtype), start(a, types_of[7], a0), wide(lda),
            start(b, types_of[10], b0), wide(ldb),
            context.cast(builder, beta, types_of[13], dtype), start(c, types_of[14], c0), wide(ldc)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def axpy(typingctx, fn, n, alpha, x, x0, y, y0):
    """y[y0:y0 + n] += alpha * x[x0:x0 + n] by the ILP64 ``cblas_?axpy`` at address ``fn`` (unit
    strides). The float type is the arrays' dtype (float32: saxpy, float64: daxpy); alpha is
    rounded to it."""
    if not all(isinstance(a, types.Array) for a in (x, y)) or x.dtype != y.dtype:
        return None
    if x.dtype not in (types.float32, types.float64):
        return None
    if not isinstance(alpha, (types.Float, types.Integer)):
        return None
    sig = types.void(fn, n, alpha, x, x0, y, y0)

    def codegen(context, builder, signature, args):
        fn, n, alpha, x, x0, y, y0 = args
        types_of = signature.args
        i64 = ir.IntType(64)
        dtype = types_of[3].dtype
        real = context.get_value_type(dtype)
        ptr = real.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i64, real, ptr, i64, ptr, i64])
        one = ir.Constant(i64, 1)
        function = builder.inttoptr(_wide(builder, fn), fnty.as_pointer())
        builder.call(function, [_wide(builder, n), context.cast(builder, alpha, types_of[2], dtype),
                                _start(context, builder, x, types_of[3], x0), one,
                                _start(context, builder, y, types_of[5], y0), one])
        return context.get_dummy_value()

    return sig, codegen


def _openblas_paths() -> list[str]:
    """File paths of the loaded OpenBLAS libraries, numpy's own first."""
    from .threads import controller

    paths = [lib.filepath for lib in controller().lib_controllers
             if lib.internal_api == "openblas" and lib.filepath]
    return sorted(paths, key=lambda path: not any(part.startswith("numpy")
                                                  for part in os.path.normpath(path).split(os.sep)))


def _find(name: str):
    """The address of ILP64 ``cblas_<name>`` in the first loaded OpenBLAS that has it, or None."""
    for path in _openblas_paths():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                function = getattr(library, f"{prefix}cblas_{name}{suffix}", None)
                if function is not None:
                    return ctypes.cast(function, ctypes.c_void_p).value
    return None


def _agrees(address: int, dtype) -> bool:
    """Whether the function at ``address`` computes ``np.matmul`` of a small product (both
    operands transposed or not) bit for bit, called through ctypes as the intrinsic calls it."""
    real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    p, i32, i64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64
    call = ctypes.CFUNCTYPE(None, i32, i32, i32, i64, i64, i64, real, p, i64, p, i64, real, p,
                            i64)(address)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 3)).astype(dtype)
    B = rng.standard_normal((3, 4)).astype(dtype)
    C = np.empty((5, 4), dtype)
    a, b = A.ctypes.data, B.ctypes.data
    call(ROW_MAJOR, NO_TRANS, NO_TRANS, 5, 4, 3, 1.0, a, 3, b, 4, 0.0, C.ctypes.data, 4)
    At = np.ascontiguousarray(A.T)
    D = np.empty((5, 4), dtype)
    call(ROW_MAJOR, TRANS, NO_TRANS, 5, 4, 3, 1.0, At.ctypes.data, 5, b, 4, 0.0, D.ctypes.data, 4)
    return np.array_equal(C, np.matmul(A, B)) and np.array_equal(D, np.matmul(At.T, B))


def _axpy_agrees(address: int, dtype) -> bool:
    """Whether the function at ``address`` adds 0.5 times x to y over its first n elements only,
    called through ctypes as the intrinsic calls it (small integers and halves: every product
    and sum is exact, fused or not)."""
    real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    call = ctypes.CFUNCTYPE(None, i64, real, p, i64, p, i64)(address)
    x = np.arange(-4, 5, dtype=dtype)
    y = np.arange(9, dtype=dtype)[::-1].copy()
    want = y.copy()
    want[:7] += 0.5 * x[:7]
    call(7, 0.5, x.ctypes.data, 1, y.ctypes.data, 1)
    return np.array_equal(y, want)


_CHECKS = {"gemm": _agrees, "axpy": _axpy_agrees}


def _address(routine: str, dtype) -> int | None:
    """The address of numpy's ILP64 ``cblas_s<routine>`` (float32) or ``cblas_d<routine>``
    (float64) once it has passed its check, else None (looked up once per process)."""
    global _addresses
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        return None
    if _addresses is None:
        _addresses = {}
    key = (routine, dtype)
    if key not in _addresses:
        _addresses[key] = None
        name = ("s" if dtype == np.float32 else "d") + routine
        try:
            address = _find(name)
            if address is not None and _CHECKS[routine](address, dtype):
                _addresses[key] = address
        except Exception as error:  # noqa: BLE001 - any failure: the compiled loops instead
            logger.debug("cblas_%s not used: %s", name, error)
    return _addresses[key]


def gemm_address(dtype) -> int | None:
    """The address of numpy's ILP64 ``cblas_sgemm`` (float32) or ``cblas_dgemm`` (float64) for
    ``gemm``, or None when there is none this module can trust (numpy's matmul instead)."""
    return _address("gemm", dtype)


def axpy_address(dtype) -> int | None:
    """The address of numpy's ILP64 ``cblas_saxpy`` or ``cblas_daxpy`` for ``axpy``, or None
    when there is none this module can trust (a compiled loop instead)."""
    return _address("axpy", dtype)
