"""The compiled fast path: whole training epochs of Dense networks in one numba kernel.

The design as a whole (which runner when, the numerical contract with the reference path, how to
add a layer kind, how to benchmark) is in docs/performance.md; this docstring keeps the rule.

``training.fit`` uses it automatically where it applies and falls back to the numpy reference
path otherwise; both give the same weights to rounding (``tests/test_fast.py`` checks 1e-12 in
float64 for every supported activation, loss and optimizer).

The rule (``why_not`` returns the reason it does not apply, or None):

- every layer is a ``Dense`` with activation identity, sigmoid, tanh, relu, leaky_relu or
  softmax; float32 or float64; no frozen weight matrix (frozen biases are fine);
- the loss is one of half_sse, sse, mse, binary/softmax cross-entropy (any reduction, sample
  weights allowed); the optimizer is ``SGD`` (momentum, Nesterov, weight decay) or ``Adam``
  with any learning-rate schedule;
- no callback overrides ``on_batch_end`` (callbacks then run once per epoch, as before);
- numba can be imported, and the environment variable ``BACKPROP_FAST`` is not ``0``.

Conv networks (any layer other than Dense: Conv2D, MaxPool2D, AvgPool2D, Flatten, Dense, the last
one Dense) follow the same rule with ``conv.unsupported`` and train in ``conv.ConvRunner``
(``conv.train_conv_epoch``: one kernel per concern, each the twin of a numpy layer, see
``conv.py``); ``Network.predict`` runs large batches through ``conv.forward_conv``.

Any batch size is fine. ``runner.EpochRunner`` runs each epoch in one compiled kernel
(``kernels.train_online`` for per-sample plain SGD, loops only; ``kernels.train_epoch``
otherwise, whose BLAS-sized products call numpy's own gemm through its address, ``blas.py``).
Where that address cannot be had (numpy built with another BLAS), batches of at least
``NUMPY_FROM_MACS`` multiply-adds go to ``batched.BatchRunner`` instead, which drives numpy's
``matmul`` from Python with preallocated buffers and compiled code between the products
(``choose_runner``). ``blas_threads`` pins BLAS to one thread for small products.
``fit(..., fast=False)`` forces numpy, ``fast=True`` raises a clear error when the fast path does
not apply.

Compiled kernels are cached on disk (numba ``cache=True``), next to this file or, when that is
read-only, in numba's per-user cache directory; when neither can be written, in a temporary
directory (set ``NUMBA_CACHE_DIR`` to choose). The epoch kernels (dense and conv) and the conv
forward pass are also saved as machine code of their own (``native.py``), which a later process
loads without setting up numba's compiler (0.3-0.5 s of the start otherwise). The first compilation takes a while: it is
announced once per process on the ``backprop.fast`` logger at INFO level ("compiling kernels
(first run only)..."); the core never prints, the command line shows it.
"""

from __future__ import annotations

import logging
import os
import tempfile

from .._validation import BackpropError, describe

__all__ = ["ENV_SWITCH", "available", "switched_off", "why_not", "use_fast_path",
           "make_runner", "predict", "COMPILING_MESSAGE"]

ENV_SWITCH = "BACKPROP_FAST"
# Without numpy's gemm for compiled code (blas.py), batches with at least this many multiply-adds
# (forward pass) train in numpy with BLAS (batched.BatchRunner) (measured: bench/, docs/benchmarks.md).
NUMPY_FROM_MACS = 1 << 23
# BLAS uses more than one thread only for products with at least this many multiply-adds.
MULTI_THREAD_FROM_MACS = 1 << 24
COMPILING_MESSAGE = "compiling kernels (first run only)..."
logger = logging.getLogger("backprop.fast")

_runner_module = None
_import_error: str | None = None


def _ensure_cache_dir() -> None:
    """Point numba at a writable cache when neither this package nor the user cache is writable."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    user_cache = os.path.join(os.path.expanduser("~"), ".cache")
    if os.access(here, os.W_OK) or os.access(user_cache, os.W_OK):
        return
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"backprop-numba-{os.getuid()}")


def _announce_compilation() -> None:
    from numba.core import event

    class _Notice(event.Listener):
        said = False

        def on_start(self, ev):
            func = getattr(ev.data.get("dispatcher"), "py_func", None)
            if not self.said and getattr(func, "__module__", "").startswith(__name__):
                self.said = True
                logger.info(COMPILING_MESSAGE)

        def on_end(self, ev):
            pass

    event.register("numba:compile", _Notice())


def _runner():
    """The runner module, imported (with numba) on first use; None when numba is unavailable."""
    global _runner_module, _import_error
    if _runner_module is None and _import_error is None:
        try:
            _ensure_cache_dir()
            from . import runner

            _announce_compilation()
            _runner_module = runner
        except ImportError as exc:  # numba missing or broken: numpy path only
            _import_error = f"numba cannot be imported ({exc})"
    return _runner_module


def available() -> bool:
    """True when the compiled kernels can be used (numba imports)."""
    return _runner() is not None


def _overrides(callback, hook: str) -> bool:
    from ..callbacks import Callback

    return getattr(type(callback), hook, None) is not getattr(Callback, hook)


def why_not(network, loss=None, optimizer=None, callbacks=()) -> str | None:
    """Why the fast path cannot train this configuration, or None when it can."""
    runner = _runner()
    if runner is None:
        return _import_error
    for cb in callbacks:
        if _overrides(cb, "on_batch_end"):
            return f"callback {type(cb).__name__} needs per-batch hooks (on_batch_end)"
    if not getattr(network, "is_dense", True):  # conv networks: fast/conv.py
        from . import conv

        return conv.unsupported(network, loss, optimizer)
    return runner.unsupported(network, loss, optimizer)


def switched_off() -> bool:
    """True when the environment variable ``BACKPROP_FAST`` turns the fast path off."""
    return os.environ.get(ENV_SWITCH, "").strip().lower() in ("0", "false", "no", "off")


def use_fast_path(fast, network, loss, optimizer, callbacks=()) -> bool:
    """Decide ``fit``'s ``fast`` argument: None = automatic (unless BACKPROP_FAST=0), True =
    required (error if it does not apply), False = numpy reference path."""
    if fast is False:
        return False
    if fast is None:
        if switched_off():
            return False
        return why_not(network, loss, optimizer, callbacks) is None
    if fast is not True:
        raise BackpropError(f"`fast` must be True, False or None (automatic); got {describe(fast)}")
    reason = why_not(network, loss, optimizer, callbacks)
    if reason is not None:
        raise BackpropError(
            f"`fast=True` needs a configuration the compiled path supports; got {reason} "
            "(use fast=None to fall back to numpy automatically)"
        )
    return True


def batch_macs(network, batch_size: int, n_samples: int) -> int:
    """Multiply-adds of one batch's forward pass (the size the runner is chosen by)."""
    rows = max(1, min(batch_size, n_samples))
    sizes = network.sizes
    return rows * sum(a * b for a, b in zip(sizes, sizes[1:]))


def choose_runner(network, batch_size: int, n_samples: int) -> str:
    """``"compiled"`` (``runner.EpochRunner``), unless a batch has at least ``NUMPY_FROM_MACS``
    multiply-adds and numpy's own gemm cannot be called from compiled code (``blas.py``): then
    ``"numpy"`` (``batched.BatchRunner``), since the kernel's products would go to SciPy's BLAS."""
    if batch_macs(network, batch_size, n_samples) < NUMPY_FROM_MACS:
        return "compiled"
    from . import blas

    return "compiled" if blas.gemm_address(network.dtype) else "numpy"


def make_runner(network, X, Y, loss, optimizer, batch_size, weights=None, l2: float = 0.0):
    """A runner ready to train: ``runner.EpochRunner`` (its kernel compiled or loaded from the
    cache) or ``batched.BatchRunner``, by ``choose_runner``; BLAS threads by ``blas_threads``.
    Conv networks get ``conv.ConvRunner`` on one BLAS thread whatever the product sizes: the
    epoch's non-GEMM loops run on the calling thread between products, and OpenBLAS's second
    thread waiting through them cost W5 (products up to 285M multiply-adds) 4.7 s against 0.85 s
    for ten batches on a loaded 2-core machine."""
    if not getattr(network, "is_dense", True):
        from . import conv

        _runner()  # numba set up, compilation announced
        runner = conv.ConvRunner(network, X, Y, loss, optimizer, batch_size, weights, l2)
        runner.warm_up()
        return _ThreadLimited(runner, 1 if runner.uses_blas else None)
    if choose_runner(network, batch_size, X.shape[0]) == "numpy":
        from .batched import BatchRunner

        runner = BatchRunner(network, X, Y, loss, optimizer, batch_size, weights, l2)
    else:
        runner = _runner().EpochRunner(network, X, Y, loss, optimizer, batch_size, weights, l2)
    runner.warm_up()
    threads = blas_threads(network, batch_size, X.shape[0]) if runner.uses_blas else None
    return _ThreadLimited(runner, threads)


def blas_threads(network, batch_size: int, n_samples: int) -> int | None:
    """BLAS threads for training: one below ``MULTI_THREAD_FROM_MACS`` multiply-adds in the
    largest product of a batch (waking threads costs more than it saves), None (BLAS's own
    setting) above."""
    rows = max(1, min(batch_size, n_samples))
    sizes = network.sizes
    largest = max(rows * a * b for a, b in zip(sizes, sizes[1:]))
    return None if largest >= MULTI_THREAD_FROM_MACS else 1


class _ThreadLimited:
    """A runner whose epochs run with BLAS limited to ``threads`` (None: unchanged; 1: one thread,
    by ``threads.one_blas_thread``)."""

    def __init__(self, runner, threads):
        self.runner, self.threads = runner, threads

    def run_epoch(self, rng=None) -> float:
        if self.threads is None:
            return self.runner.run_epoch(rng)
        from .threads import one_blas_thread

        with one_blas_thread():
            return self.runner.run_epoch(rng)


def predict(network, X, chunk: int = 2048, compiled: bool | None = None):
    """Outputs for a 2-D batch of ``network.dtype`` (checked by the caller), ``chunk`` rows at
    a time through preallocated buffers (``forward.forward_chunked``: BLAS products, and bias
    and activation compiled when ``compiled``, or by default when the kernels are loaded)."""
    from .forward import forward_chunked

    return forward_chunked(network, X, chunk, compiled=compiled)
