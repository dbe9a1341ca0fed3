"""backprop.fast.vectors.wide_vectors: the LLVM attribute lands on the calling function only.

Oracle: the LLVM IR numba generates (``inspect_llvm``) and, on a CPU with AVX-512, the machine
code (512-bit ``zmm`` registers in a vectorised loop). The numbers the kernels compute are
checked against the numpy reference path in test_fast.py and test_fast_batched.py.
"""

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from backprop.fast.vectors import ATTRIBUTE, wide_vectors  # noqa: E402


@numba.njit(fastmath={"contract"})
def _axpy_wide(a, x, y):
    wide_vectors()
    for i in range(x.shape[0]):
        y[i] += a * x[i]


@numba.njit(fastmath={"contract"})
def _axpy_plain(a, x, y):
    for i in range(x.shape[0]):
        y[i] += a * x[i]


def _ir(func):
    func(2.0, np.ones(64), np.zeros(64))
    return func.inspect_llvm(func.signatures[0])


def test_attribute_on_the_caller_only():
    assert ATTRIBUTE in _ir(_axpy_wide)
    assert ATTRIBUTE not in _ir(_axpy_plain)


def test_results_unchanged():
    x, y = np.arange(100.0), np.full(100, 3.0)
    _axpy_wide(0.5, x, y)
    np.testing.assert_array_equal(y, 3.0 + 0.5 * np.arange(100.0))


def test_512_bit_code_where_the_cpu_has_it():
    import llvmlite.binding as llvm

    if "+avx512f" not in llvm.get_host_cpu_features().flatten().split(","):
        pytest.skip("no AVX-512 on this CPU: the attribute leaves 256-bit code, as intended")
    _axpy_wide(2.0, np.ones(64), np.zeros(64))
    asm = _axpy_wide.inspect_asm(_axpy_wide.signatures[0])
    assert "zmm" in asm
