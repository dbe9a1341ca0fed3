"""The epoch kernels' machine code, saved once and loaded without numba's start-up cost.

Loading a kernel from numba's own disk cache first sets up numba's whole compiler target: its
typing and lowering registries for all of numpy (``numba.np.arraymath`` alone imports
``scipy.linalg``). That took 0.26-0.38 s of a warm ``backprop demo digits`` start on this
project's benchmark machine, more than the rest of the start together.

This module skips it for the two epoch kernels of ``runner.EpochRunner``. For each it
generates a C-callable entry (``numba.cfunc``) that takes raw pointers and sizes, makes the arrays
the kernel takes, and calls it:

- ``kernels.train_online`` (per-sample plain SGD, the tutorials' algorithm): one entry per network
  depth and dtype, since the kernel takes a tuple of per-layer views (``online_entry``);
- ``kernels.train_epoch`` (everything else): flat buffers only, one entry per dtype
  (``epoch_entry``). Its mid-sized products still call SciPy's BLAS, which numba's helper loads
  on first use.

The compiled library (object code, numba's own cache format) is saved once in a
file of its own. A later process hands that file to numba's JIT (``unserialize_library``, the call
numba's cache makes after its set-up), starts numba's runtime (NRT, about 20 ms) and calls the
entry through ctypes: 30-40 ms instead of 0.3 s. The machine code is the kernel's own, so the
weights are those of the numba dispatcher.

The cache file sits next to numba's cache (``NUMBA_CACHE_DIR/backprop`` when set, else this
package's ``__pycache__``, else ``~/.cache/backprop``). Its name and contents carry a key over the
kernels' sources, the numba, llvmlite, numpy and Python versions, the CPU and its features and
every ``NUMBA_*`` setting; anything else is never loaded. It is written to a temporary file and
renamed, so a crash never leaves half a file. Any failure to build, load or save falls back to
the dispatcher (``entry`` returns None) and is logged at DEBUG on ``backprop.fast``.
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

__all__ = ["online_entry", "epoch_entry", "Entry", "EPOCH_ARGS", "cache_dir", "cache_key",
           "entry_source", "epoch_source", "meta_array"]

FORMAT = 1
logger = logging.getLogger("backprop.fast")
_SOURCES = ("kernels.py", "vexp.py", "vectors.py", "native.py")
_entries: dict = {}  # (kind, depth, dtype name) -> Entry or None, once per process
# The online entry's arguments: 14 pointers, w_total, loss_code, from_logits, mean.
_POINTERS = ("X", "Y", "order", "lrs", "P", "A", "Z", "D", "Ybuf", "losses", "acts", "slopes",
             "bias_mode", "meta")
# ``kernels.train_epoch``'s arguments, in order: arrays of the network's dtype ("R"), int64 ("I")
# or float64 ("F") with their number of dimensions; scalars int ("i"), float ("f"), bool ("b").
EPOCH_ARGS = (("X", "R2"), ("Y", "R2"), ("order", "I1"), ("batch_size", "i"), ("weights", "F1"),
              ("w_total", "f"), ("lrs", "R1"), ("t0", "i"), ("sizes", "I1"), ("w_off", "I1"),
              ("b_off", "I1"), ("a_off", "I1"), ("z_off", "I1"), ("acts", "I1"), ("slopes", "F1"),
              ("bias_mode", "I1"), ("P", "R1"), ("G", "R1"), ("S1", "R1"), ("S2", "R1"),
              ("Abuf", "R1"), ("Zbuf", "R1"), ("Dbuf", "R1"), ("Ybuf", "R2"), ("losses", "F1"),
              ("wb", "F1"), ("coef", "R1"), ("loss_code", "i"), ("from_logits", "b"), ("mean", "b"),
              ("opt", "i"), ("hyper", "F1"))
_EPOCH_ARRAYS = [(name, code) for name, code in EPOCH_ARGS if code[0].isupper()]
_EPOCH_SCALARS = [(name, code) for name, code in EPOCH_ARGS if code[0].islower()]
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
    wts = [f"P[{at('w', l)}:{at('w', l)} + {sizes[l]} * {sizes[l + 1]}]"
           f".reshape(({sizes[l + 1]}, {sizes[l]}))" for l in range(L)]
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


def epoch_source() -> str:
    """Python source of the entry of ``train_epoch``: each array from its pointer and its shape
    (read from ``shapes``, in argument order), then the kernel."""
    pointers = [f"{name}_p" for name, _ in _EPOCH_ARRAYS]
    scalars = [name for name, _ in _EPOCH_SCALARS]
    shape_at, args = 0, []
    for name, code in EPOCH_ARGS:
        if code[0].islower():
            args.append(f"{name} != 0" if code == "b" else name)
            continue
        dims = ", ".join(f"shapes[{shape_at + d}]" for d in range(int(code[1])))
        shape_at += int(code[1])
        args.append(f"carray({name}_p, ({dims},))")
    call = ",\n        ".join(args)
    return f"""
def entry({", ".join(pointers)}, shapes_p, {", ".join(scalars)}):
    shapes = carray(shapes_p, ({shape_at},))
    return train_epoch(
        {call})
"""


def _types(dtype):
    from numba import types

    real = types.float32 if np.dtype(dtype) == np.float32 else types.float64
    return types, real


def _online_signature(dtype):
    types, real = _types(dtype)
    kinds = {"order": types.int64, "acts": types.int64, "bias_mode": types.int64, "meta": types.int64,
             "slopes": types.float64, "losses": types.float64}
    args = [types.CPointer(kinds.get(name, real)) for name in _POINTERS]
    return types.float64(*args, types.float64, types.int64, types.int64, types.int64)


def _epoch_signature(dtype):
    types, real = _types(dtype)
    element = {"R": real, "I": types.int64, "F": types.float64}
    pointers = [types.CPointer(element[code[0]]) for _, code in _EPOCH_ARRAYS]
    scalars = [types.float64 if code == "f" else types.int64 for _, code in _EPOCH_SCALARS]
    return types.float64(*pointers, types.CPointer(types.int64), *scalars)


def _c_arguments(kind: str):
    if kind == "online":
        return [ctypes.c_void_p] * len(_POINTERS) + [ctypes.c_double] + [ctypes.c_int64] * 3
    scalars = [ctypes.c_double if code == "f" else ctypes.c_int64 for _, code in _EPOCH_SCALARS]
    return [ctypes.c_void_p] * (len(_EPOCH_ARRAYS) + 1) + scalars


def cache_key(kind: str, depth: int, dtype) -> str:
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
    parts = [FORMAT, kind, depth, np.dtype(dtype).name, numba.__version__, llvmlite.__version__,
             np.__version__, sys.version, platform.machine(), llvm.get_host_cpu_name(),
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


def _cache_file(kind: str, depth: int, dtype, key: str) -> str:
    return os.path.join(cache_dir(), f"train_{kind}-{depth}-{np.dtype(dtype).name}-{key[:16]}.nbx")


class Entry:
    """A kernel called through a C function pointer; keeps the library that holds the code
    alive as long as it is. ``kind``: "online" (``train_online``: ``__call__`` takes the data
    addresses of the arrays named in ``_POINTERS``, then w_total, loss_code, from_logits, mean)
    or "epoch" (``train_epoch``: ``__call__`` takes its own arguments, ``EPOCH_ARGS``)."""

    def __init__(self, library, name: str, kind: str, dtype):
        self.library, self.kind, self.dtype = library, kind, np.dtype(dtype)
        address = library.get_pointer_to_function(name)
        if not address:
            raise RuntimeError(f"entry {name} not found in its library")
        self.function = ctypes.CFUNCTYPE(ctypes.c_double, *_c_arguments(kind))(address)

    def __call__(self, *args) -> float:
        if self.kind == "online":
            pointers, w_total, loss_code, from_logits, mean = args
            return self.function(*pointers, w_total, loss_code, int(from_logits), int(mean))
        return self.function(*self._epoch_arguments(args))

    def _epoch_arguments(self, args) -> list:
        """Pointers, the shapes array's pointer and the scalars; every array is checked for its
        dtype and C order first, as the compiled code trusts them blindly."""
        if len(args) != len(EPOCH_ARGS):
            raise TypeError(f"train_epoch takes {len(EPOCH_ARGS)} arguments, got {len(args)}")
        element = {"R": self.dtype, "I": np.dtype(np.int64), "F": np.dtype(np.float64)}
        pointers, shapes, scalars = [], [], []
        for (name, code), value in zip(EPOCH_ARGS, args):
            if code[0].islower():
                scalars.append(int(value) if code != "f" else float(value))
                continue
            if (value.dtype != element[code[0]] or value.ndim != int(code[1])
                    or not value.flags.c_contiguous):
                want = f"{int(code[1])}-d {element[code[0]].name}"
                raise TypeError(f"train_epoch argument {name}: expected a C-contiguous {want} "
                                f"array, got {value.dtype.name} {value.shape}")
            pointers.append(value.ctypes.data)
            shapes.extend(value.shape)
        self._shapes = np.array(shapes, np.int64)  # kept alive until the next call
        return [*pointers, self._shapes.ctypes.data, *scalars]


def _codegen():
    from numba.core.registry import cpu_target
    from numba.core.runtime import nrt

    context = cpu_target.target_context
    nrt.rtsys.initialize(context)  # the entry's views reference numba's runtime
    return context.codegen()


def _build(kind: str, depth: int, dtype):
    """Compile the entry (and its kernel, through the kernel's dispatcher and numba's cache)."""
    from numba import carray, cfunc

    from . import kernels

    namespace = {"carray": carray, "train_online": kernels.train_online,
                 "train_epoch": kernels.train_epoch, "__name__": __name__}
    source = entry_source(depth) if kind == "online" else epoch_source()
    exec(compile(source, f"<backprop.fast.native {kind} entry, depth {depth}>", "exec"), namespace)
    signature = _online_signature(dtype) if kind == "online" else _epoch_signature(dtype)
    compiled = cfunc(signature, error_model="numpy")(namespace["entry"])
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


def online_entry(depth: int, dtype) -> Entry | None:
    """The entry of ``train_online`` for ``depth`` layers of ``dtype`` (see ``entry``)."""
    return entry("online", depth, dtype)


def epoch_entry(dtype) -> Entry | None:
    """The entry of ``train_epoch`` for ``dtype`` (any depth; see ``entry``)."""
    return entry("epoch", 0, dtype)


def entry(kind: str, depth: int, dtype) -> Entry | None:
    """The entry: loaded from the cache file, else compiled and saved; None (the caller uses
    the dispatcher) when that fails. Once per process."""
    slot = (kind, depth, np.dtype(dtype).name)
    if slot not in _entries:
        _entries[slot] = _find_or_build(kind, depth, dtype)
    return _entries[slot]


def _find_or_build(kind: str, depth: int, dtype) -> Entry | None:
    try:
        key = cache_key(kind, depth, dtype)
        path = _cache_file(kind, depth, dtype, key)
    except Exception as exc:  # noqa: BLE001 - any failure means: use the dispatcher
        logger.debug("native entry unavailable (%s: %s)", type(exc).__name__, exc)
        return None
    try:
        found = _load(path, key)
        if found is not None:
            return Entry(*found, kind, dtype)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: build a new one
        logger.debug("native entry cache %s not loaded (%s: %s)", path, type(exc).__name__, exc)
    try:
        library, name = _build(kind, depth, dtype)
        built = Entry(library, name, kind, dtype)
    except Exception as exc:  # noqa: BLE001
        logger.debug("native entry not built (%s: %s)", type(exc).__name__, exc)
        return None
    try:
        _save(path, key, library, name)
    except OSError as exc:  # read-only cache: this process still uses the entry
        logger.debug("native entry not saved to %s (%s)", path, exc)
    return built
