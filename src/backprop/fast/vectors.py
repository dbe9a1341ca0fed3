"""``wide_vectors()``: lets LLVM use the CPU's widest vectors in the function that calls it.

LLVM tunes Intel's server cores with AVX-512 (Skylake-SP and later) to prefer 256-bit vectors,
because 512-bit instructions lowered the clock of the first of them. The loops of the kernels
here are short (10 to a few hundred items) and mostly load, fuse a multiply-add and store; on
this project's benchmark machine (Emerald Rapids) 512-bit code runs the per-sample digits epoch
(W1) in 0.99 ms instead of 1.11 ms.

Numba has no per-function option for this; its process-wide ``NUMBA_CPU_FEATURES`` would change
every other numba user's code. Instead, the intrinsic below, called as the first statement of a
kernel, adds LLVM's ``"prefer-vector-width"="512"`` attribute to the function being compiled,
and to nothing else. A CPU without AVX-512 gets its widest legal vectors (AVX2: 256 bits), and
targets other than x86 ignore the attribute, so the code is correct everywhere; only the width
of the vectors, and with it the order of a product's sums, changes.

A function inlined into a caller keeps the loops it was vectorised with, so each kernel whose
loops should be wide calls ``wide_vectors()`` itself.
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

ATTRIBUTE = '"prefer-vector-width"="512"'


@intrinsic
def wide_vectors(typingctx):
    """Mark the calling kernel's LLVM function with ``ATTRIBUTE`` (no code is emitted)."""

    def codegen(context, builder, signature, args):
        # llvmlite's attribute set accepts only the attributes it knows by name; a string
        # attribute is written into the IR as given. Should a future llvmlite keep attributes
        # differently, the kernel compiles without it (narrower vectors, same results).
        try:
            set.add(builder.function.attributes, ATTRIBUTE)
        except (AttributeError, TypeError):  # pragma: no cover - depends on the llvmlite version
            pass
        return context.get_dummy_value()

    return types.none(), codegen
