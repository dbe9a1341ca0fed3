"""The per-sample kernel's machine code, saved once and loaded without numba's start-up cost.

Loading a kernel from numba's own disk cache first sets up numba's whole compiler target: its
typing and lowering registries for all of numpy (``numba.np.arraymath`` alone imports
``scipy.linalg``). That took 0.26-0.38 s of a warm ``backprop demo digits`` start on this
project's benchmark machine, more than the rest of the start together.

This module skips it for ``kernels.train_online`` (per-sample plain SGD, the tutorials'
algorithm). For a network of a given depth and dtype it generates a C-callable entry
(``numba.cfunc``) that takes raw pointers and sizes, builds the per-layer views the kernel takes,
and calls it. The compiled library (object code, numba's own cache format) is saved once in a
file of its own. A later process hands that file to numba's JIT (``unserialize_library``, the call
numba's cache makes after its set-up), starts numba's runtime (NRT, about 20 ms) and calls the
entry through ctypes: 30-40 ms instead of 0.3 s. The machine code is the kernel's own, so the
weights are those of the numba dispatcher.

The cache file sits next to numba's cache (``NUMBA_CACHE_DIR/backprop`` when set, else this
package's ``__pycache__``, else ``~/.cache/backprop``). Its name and contents carry a key over the
kernels' sources, the numba, llvmlite, numpy and Python versions, the CPU and its features and
every ``NUMBA_*`` setting; anything else is never loaded. It is written to a temporary file and
renamed, so a crash never leaves half a file. Any failure to build, load or save falls back to
the dispatcher (``online_entry`` returns None) and is logged at DEBUG on ``backprop.fast``.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import pickle
import platform
import sys
import tempfile

import numpy as np

__all__ = ["online_entry", "OnlineEntry", "cache_dir", "cache_key", "entry_source", "meta_array"]

FORMAT = 1
logger = logging.getLogger("backprop.fast")
_SOURCES = ("kernels.py", "vexp.py", "vectors.py", "native.py")
_entries: dict = {}  # (depth, dtype name) -> OnlineEntry or None, once per process
# The entry's arguments: 14 pointers, w_total, loss_code, from_logits, mean.
_POINTERS = ("X", "Y", "order", "lrs", "P", "A", "Z", "D", "Ybuf", "losses", "acts", "slopes",
             "bias_mode", "meta")
_META_HEAD = 5  # n, steps, n_params, a_size, z_size; then sizes, w_off, b_off, a_off, z_off


def meta_array(layout, n: int) -> np.ndarray:
    """The int64 array the entry reads its sizes and offsets from (``runner._Layout``); slot 1,
    the number of steps, is set per call."""
    head = [n, 0, layout.n_params, layout.a_size, layout.z_size]
    return np.concatenate([head, layout.sizes, layout.w_off, layout.b_off, layout.a_off,
                           layout.z_off]).astype(np.int64)


def entry_source(depth: int) -> str:
    """Python source of the entry for ``depth`` layers: views of the flat buffers (as
    ``runner.EpochRunner._views_for_online`` makes them), then ``train_online``."""
    L = depth

    def at(block, i):
        start = {"size": 0, "w": L + 1, "b": 2 * L + 1, "a": 3 * L + 1, "z": 4 * L + 2}[block]
        return f"meta[{_META_HEAD + start + i}]"

    sizes = [at("size", i) for i in range(L + 1)]
    wts = [f"P[{at('w', l)}:{at('w', l)} + {sizes[l]} * {sizes[l + 1]}].reshape(({sizes[l + 1]}, {sizes[l]}))"
           for l in range(L)]
    bs = [f"(P[{at('b', l)}:{at('b', l)} + {sizes[l + 1]}] if {at('b', l)} >= 0 else P[0:0])"
          for l in range(L)]
    As = [f"A[{at('a', l)}:{at('a', l)} + {sizes[l]}]" for l in range(L + 1)]
    Zs = [f"Z[{at('z', l)}:{at('z', l)} + {sizes[l + 1]}]" for l in range(L)]
    Ds = [f"D[{at('z', l)}:{at('z', l)} + {sizes[l + 1]}]" for l in range(L)]
    n_meta = _META_HEAD + 5 * L + 2
    tup = lambda items: "(" + ", ".join(items) + ",)"
    return f"""
def entry({", ".join(p + "_p" for p in _POINTERS)}, w_total, loss_code, from_logits, mean):
    meta = carray(meta_p, ({n_meta},))
    n, steps, n_params, a_size, z_size = meta[0], meta[1], meta[2], meta[3], meta[4]
    P = carray(P_p, (n_params,))
    A = carray(A_p, (a_size,))
    Z = carray(Z_p, (z_size,))
    D = carray(D_p, (z_size,))
    return train_online(
        carray(X_p, (n, {sizes[0]})), carray(Y_p, (n, {sizes[L]})), carray(order_p, (steps,)), w_total,
        carray(lrs_p, (steps,)), {tup(wts)}, {tup(bs)}, {tup(As)}, {tup(Zs)}, {tup(Ds)},
        carray(acts_p, ({L},)), carray(slopes_p, ({L},)), carray(bias_mode_p, ({L},)),
        carray(Ybuf_p, (1, {sizes[L]})), carray(losses_p, (1,)), loss_code, from_logits != 0, mean != 0)
"""


def _signature(dtype):
    from numba import types

    real = types.float32 if np.dtype(dtype) == np.float32 else types.float64
    ptr = types.CPointer
    kinds = {"order": types.int64, "acts": types.int64, "bias_mode": types.int64, "meta": types.int64,
             "slopes": types.float64, "losses": types.float64}
    args = [ptr(kinds.get(name, real)) for name in _POINTERS]
    return types.float64(*args, types.float64, types.int64, types.int64, types.int64)


def cache_key(depth: int, dtype) -> str:
    """SHA-256 over everything the machine code depends on."""
    import llvmlite
    import llvmlite.binding as llvm
    import numba

    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in _SOURCES:
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    settings = sorted((k, v) for k, v in os.environ.items()
                      if k.startswith("NUMBA_") and k != "NUMBA_CACHE_DIR")
    parts = [FORMAT, depth, np.dtype(dtype).name, numba.__version__, llvmlite.__version__, np.__version__,
             sys.version, platform.machine(), llvm.get_host_cpu_name(),
             llvm.get_host_cpu_features().flatten(), settings]
    h.update(repr(parts).encode())
    return h.hexdigest()


def cache_dir() -> str:
    """Where the entries are saved (see the module's docstring)."""
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return os.path.join(env, "backprop")
    here = os.path.dirname(os.path.abspath(__file__))
    pycache = os.path.join(here, "__pycache__")
    if os.access(pycache if os.path.isdir(pycache) else here, os.W_OK):
        return pycache
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(home, "backprop")


def _cache_file(depth: int, dtype, key: str) -> str:
    return os.path.join(cache_dir(), f"train_online-{depth}-{np.dtype(dtype).name}-{key[:16]}.nbx")


class OnlineEntry:
    """``kernels.train_online`` for one depth and dtype, called through a C function pointer.
    Keeps the library that holds the code alive as long as it is."""

    def __init__(self, library, name: str):
        self.library = library
        address = library.get_pointer_to_function(name)
        if not address:
            raise RuntimeError(f"entry {name} not found in its library")
        c_args = [ctypes.c_void_p] * len(_POINTERS) + [ctypes.c_double] + [ctypes.c_int64] * 3
        self.function = ctypes.CFUNCTYPE(ctypes.c_double, *c_args)(address)

    def __call__(self, pointers, w_total: float, loss_code: int, from_logits: bool, mean: bool) -> float:
        """``pointers``: the data addresses of the arrays named in ``_POINTERS``, in that order."""
        return self.function(*pointers, w_total, loss_code, int(from_logits), int(mean))


def _codegen():
    from numba.core.registry import cpu_target
    from numba.core.runtime import nrt

    context = cpu_target.target_context
    nrt.rtsys.initialize(context)  # the entry's views reference numba's runtime
    return context.codegen()


def _build(depth: int, dtype):
    """Compile the entry (and ``train_online``, through its dispatcher and numba's cache)."""
    from numba import carray, cfunc

    from . import kernels

    namespace = {"carray": carray, "train_online": kernels.train_online, "__name__": __name__}
    exec(compile(entry_source(depth), f"<backprop.fast.native entry, depth {depth}>", "exec"), namespace)
    compiled = cfunc(_signature(dtype), error_model="numpy")(namespace["entry"])
    return compiled._library, compiled.native_name


def _load(path: str, key: str):
    """(library, name) from a cache file with this key, or None."""
    try:
        with open(path, "rb") as f:
            saved = pickle.load(f)
    except FileNotFoundError:
        return None
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    return _codegen().unserialize_library(saved["library"]), saved["name"]


def _save(path: str, key: str, library, name: str) -> None:
    """Write atomically: a temporary file in the same folder, then a rename."""
    if library.has_dynamic_globals:  # addresses of this process's objects: not reusable
        return
    data = pickle.dumps({"key": key, "name": name, "library": library.serialize_using_object_code()},
                        protocol=pickle.HIGHEST_PROTOCOL)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".nbx")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def online_entry(depth: int, dtype) -> OnlineEntry | None:
    """The entry for ``depth`` layers of ``dtype``: loaded from the cache file, else compiled and
    saved; None (the caller uses the dispatcher) when that fails. Once per process."""
    slot = (depth, np.dtype(dtype).name)
    if slot not in _entries:
        _entries[slot] = _find_or_build(depth, dtype)
    return _entries[slot]


def _find_or_build(depth: int, dtype) -> OnlineEntry | None:
    try:
        key = cache_key(depth, dtype)
        path = _cache_file(depth, dtype, key)
    except Exception as exc:  # noqa: BLE001 - any failure means: use the dispatcher
        logger.debug("native entry unavailable (%s: %s)", type(exc).__name__, exc)
        return None
    try:
        found = _load(path, key)
        if found is not None:
            return OnlineEntry(*found)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: build a new one
        logger.debug("native entry cache %s not loaded (%s: %s)", path, type(exc).__name__, exc)
    try:
        library, name = _build(depth, dtype)
        entry = OnlineEntry(library, name)
    except Exception as exc:  # noqa: BLE001
        logger.debug("native entry not built (%s: %s)", type(exc).__name__, exc)
        return None
    try:
        _save(path, key, library, name)
    except OSError as exc:  # read-only cache: this process still uses the entry
        logger.debug("native entry not saved to %s (%s)", path, exc)
    return entry
