"""BLAS's threads, read and limited through threadpoolctl.

Training pins BLAS to one thread for small products (``fast.blas_threads``), and inference in
chunks runs its chunks on as many threads of its own as BLAS may use, each chunk's products on
one BLAS thread (``forward.forward_chunked``). Both limits go through ``one_blas_thread``:
threadpoolctl's limit is process-wide, so uses that overlap (two predictions in two threads,
or a prediction inside a training callback) share one limit, set by the first to enter and lifted
by the last to leave. Taken one by one, the second would note one thread as BLAS's setting
and restore that, leaving BLAS on one thread for good.

OpenBLAS on its own thread pool (numpy's wheels) has one setting for the whole process, and
threadpoolctl lets only the first thread that changed it change it again (others are silently
ignored), so a limit set from a server's worker thread would do nothing. For that BLAS, the
setting is read and written here through OpenBLAS's own functions, from any thread. Any other
BLAS goes through threadpoolctl, and chunks are not given threads of their own
(``blas_thread_count`` is 1): an OpenMP BLAS keeps one setting per thread, which the workers
would not share.
"""

from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager

__all__ = ["controller", "one_blas_thread", "blas_thread_count"]

_controller = None
_functions = None  # [(get, set)] of each OpenBLAS on its own pthreads pool, [] for any other BLAS
_lock = threading.Lock()
_depth = 0
_restore = None


def controller():
    """threadpoolctl's ``ThreadpoolController`` for this process (made once: it lists the loaded
    libraries, a few milliseconds)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def _openblas_functions(library):
    """OpenBLAS's ``openblas_get_num_threads`` and ``openblas_set_num_threads`` in ``library``
    (plain, or as the scipy-openblas wheels name them), or None."""
    for prefix in ("", "scipy_"):
        for suffix in ("", "64_", "_64"):
            get = getattr(library, f"{prefix}openblas_get_num_threads{suffix}", None)
            put = getattr(library, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                return get, put
    return None


def _pthreads_openblas():
    """[(get, set)] for every BLAS threadpoolctl finds, when each is an OpenBLAS on its own
    pthreads pool; else [] (looked up once per process)."""
    global _functions
    if _functions is None:
        found = []
        for lib in controller().select(user_api="blas").lib_controllers:
            pair = None
            if lib.internal_api == "openblas" and getattr(lib, "threading_layer", None) == "pthreads":
                try:
                    pair = _openblas_functions(ctypes.CDLL(lib.filepath))
                except OSError:
                    pair = None
            if pair is None:
                found = []
                break
            found.append(pair)
        _functions = found
    return _functions


@contextmanager
def one_blas_thread():
    """BLAS limited to one thread while the block runs (process wide); overlapping uses share
    the limit, and the last to leave restores BLAS's threads."""
    global _depth, _restore
    with _lock:
        if _depth == 0:
            functions = _pthreads_openblas()
            if functions:
                before = [get() for get, _ in functions]
                for _, put in functions:
                    put(1)
                _restore = lambda: [put(n) for (_, put), n in zip(functions, before)]  # noqa: E731
            else:
                _restore = controller().limit(limits=1, user_api="blas").restore_original_limits
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore()
                _restore = None


def blas_thread_count() -> int:
    """The threads BLAS may use now, when it is OpenBLAS on its own pthreads pool (the most of
    them, if there are several); else 1 (see the module docstring)."""
    return max((get() for get, _ in _pthreads_openblas()), default=1)
