"""exp(x) and tanh(x) that compile to vector code inside a numba loop.

``math.exp`` in a numba loop is a call into the C library, one element at a time (about 6 ns
here), and a call keeps LLVM from vectorising the loop around it; the sigmoids of the digits
network (78,000 per epoch) then cost as much as the rest of the epoch. ``exp`` below is plain
arithmetic, so a loop of it becomes AVX code (about 2 ns per element, and the sigmoid loop
0.84 -> 0.2 ms per epoch). Its error is at most 1 ulp against numpy's ``np.exp`` (tested over
the whole range, including overflow to inf, underflow through the subnormals to 0, inf, -inf and
NaN), so it changes results by rounding only, as the order of a sum does.

The method is the textbook one: x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2
(Cody and Waite's two-part ln2 keeps r exact); e^r by its Taylor polynomial to degree 13 (the
first omitted term is below 4e-18 relative), by Horner's rule with each step one fused
multiply-add where the CPU has them (``_muladd``; n and r too); 2^n built from its bits, as two
factors so that results in the subnormal range round once. Fused, the polynomial's chain of
thirteen steps waits for thirteen instructions instead of twenty-six. The per-sample kernel
waits on its sigmoids one layer after another: a chain of sigmoids of 16 values took
70 -> 47 ns, of 32 values 88 -> 53 ns (W1's kernel 0.94 -> 0.85 ms per epoch, medians of
separate runs). It also rounds closer to numpy: 92% of the range test's values equal np.exp's,
against 89%. Estrin's scheme (four levels instead of thirteen) took 44 ns for 16 values and 58
for 32, and matched np.exp less often (89%); not used.

``tanh`` (``math.tanh`` is a C library call too; a tanh network's epoch spent most of its time
there) uses the rational approximation of Cephes' tanh for |x| < 0.625, x + x z P(z) / Q(z)
with z = x * x (its approximation error is below 3e-17), and 1 - 2 / (e^{2|x|} + 1) with the
sign of x above. Both are computed and one is selected, so the loop stays vector code. Its error
is at most 2 ulp against ``np.tanh`` (tested, with ±0, ±inf, NaN and subnormal inputs).

For whoever edits this file: numba's disk cache of a kernel in ``kernels.py`` is checked against
``kernels.py`` alone, so kernels compiled with the old ``exp`` stay in use until
``src/backprop/fast/__pycache__`` is cleared (``native.py``'s entries hash this file and
rebuild themselves; an installed package has new files, and so new stamps, everywhere).
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 with its low 32 bits zero: n * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
ROUNDER = 6755399441055744.0  # 1.5 * 2**52: adding and subtracting it rounds to an integer
X_MAX = 710.0  # exp(710) overflows to inf
X_MIN = -746.0  # exp(-746) underflows to 0
(C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13) = (1.0 / math.factorial(k) for k in range(2, 14))
# Cephes tanh.c, |x| < 0.625: tanh(x) = x + x z P(z) / Q(z), z = x * x, Q monic
TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
TANH_SMALL = 0.625
P0, P1, P2 = TANH_P
Q0, Q1, Q2 = TANH_Q


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits`` (a bit cast, no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _muladd(typingctx, a, b, c):
    """a * b + c in float64 as one fused multiply-add where the CPU has one (LLVM's fmuladd), as
    a multiply and an add where it has not. Fused, a step of Horner's rule waits for one
    instruction instead of two, and rounds once instead of twice."""

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fmuladd", [d], ir.FunctionType(d, [d, d, d]))
        return builder.call(fn, [context.cast(builder, v, t, types.float64)
                                 for v, t in zip(args, signature.args)])

    return types.float64(types.float64, types.float64, types.float64), codegen


@njit(cache=True, inline="always", error_model="numpy")
def exp(x):
    """e**x in float64, within 1 ulp of ``np.exp``; inf, -inf and NaN as ``np.exp``."""
    x = float(x)
    if x > X_MAX:
        x = X_MAX
    if x < X_MIN:  # NaN is left as it is (and gives NaN through r)
        x = X_MIN
    finite = x if x == x else 0.0  # n from a NaN would be an undefined conversion
    n_float = _muladd(finite, LOG2E, ROUNDER) - ROUNDER
    r = _muladd(-n_float, LN2_LO, _muladd(-n_float, LN2_HI, x))
    p = _muladd(C13, r, C12)
    p = _muladd(p, r, C11)
    p = _muladd(p, r, C10)
    p = _muladd(p, r, C9)
    p = _muladd(p, r, C8)
    p = _muladd(p, r, C7)
    p = _muladd(p, r, C6)
    p = _muladd(p, r, C5)
    p = _muladd(p, r, C4)
    p = _muladd(p, r, C3)
    p = _muladd(p, r, C2)
    p = _muladd(p, r, 1.0)
    p = _muladd(p, r, 1.0)
    n = int(n_float)
    half = n >> 1  # 2**n = 2**half * 2**(n - half): both factors are normal numbers
    return p * _float_from_bits((half + 1023) << 52) * _float_from_bits((n - half + 1023) << 52)


@njit(cache=True, inline="always", error_model="numpy")
def tanh(x):
    """tanh(x) in float64, within 2 ulp of ``np.tanh``; ±0, ±inf and NaN as ``np.tanh``."""
    x = float(x)
    a = abs(x)
    large = math.copysign(1.0 - 2.0 / (exp(2.0 * a) + 1.0), x)  # exp overflows to inf: exactly ±1
    z = x * x
    p = (P0 * z + P1) * z + P2
    q = ((z + Q0) * z + Q1) * z + Q2
    small = x + x * z * p / q  # tiny x exact (x * z underflows to 0)
    small = small if x != 0.0 else x  # -0.0 + 0.0 would be +0.0
    return small if a < TANH_SMALL else large
