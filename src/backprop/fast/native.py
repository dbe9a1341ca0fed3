"""The epoch kernels' machine code, saved once and loaded without numba's start-up cost.

Loading a kernel from numba's own disk cache first sets up numba's whole compiler target: its
typing and lowering registries for all of numpy (``numba.np.arraymath`` alone imports
``scipy.linalg``). That took 0.26-0.38 s of a warm ``backprop demo digits`` start on this
project's benchmark machine, more than the rest of the start together, and 0.4-0.5 s of a warm
``backprop demo cnn``.

This module skips it for the epoch kernels of ``runner.EpochRunner`` and ``conv.ConvRunner``,
and for inference's compiled steps. For each it generates a C-callable entry (``numba.cfunc``)
that takes raw pointers and sizes, makes the arrays the kernel takes, and calls it. Each kind of
entry is one row of ``KINDS`` (the kernel, its arguments, the sources its code depends on):

- "online", ``kernels.train_online`` (per-sample plain SGD, the tutorials' algorithm): one entry
  per network depth and dtype, since the kernel takes a tuple of per-layer views
  (``online_entry``, ``online_source``);
- "epoch", ``kernels.train_epoch`` (everything else): flat buffers only, one entry per dtype
  (``epoch_entry``). Its BLAS-sized products call numpy's gemm at the address it is given
  (``blas.py``), or, where that cannot be had, SciPy's BLAS, which numba's helper loads on first
  use;
- "post", ``kernels.dense_forward_rows`` (``forward.forward_chunked``'s check, bias and
  activation between two products): one entry per dtype (``post_entry``), which a fit with
  batches builds and saves along with its own (``save_post_entry``) and a prediction loads only
  when it is saved and this process has already loaded an entry (``any_loaded``);
- "conv_epoch", ``conv.train_conv_epoch`` (a conv network's epoch on one thread, every batch
  below ``conv.HALVES_FROM_MACS``), and "conv_forward", ``conv.forward_conv`` (``conv.predict``):
  flat buffers and the layers' plan, one entry per dtype (``conv_epoch_entry``,
  ``conv_forward_entry``). The epoch in two halves on two threads (``train_conv_epoch_halves``,
  ``prange``, for big batches) stays on its numba dispatcher: its machine code calls numba's
  threading layer, which numba loads and links when it compiles or loads a parallel kernel,
  and its epochs take seconds, so the set-up's 0.4 s matters little there.

The compiled library (object code, numba's own cache format, with a stub in place of the LLVM
module numba keeps for inlining: ``_serialized``) is saved once in a file of its own. A later
process hands that file to numba's JIT (``unserialize_library``, the call numba's cache makes
after its set-up), starts numba's runtime (NRT, 25-40 ms, once) and calls the entry through
ctypes (which releases the GIL: ``conv.predict``'s threads run side by side): 3-5 ms per entry
after that, instead of 0.3-0.5 s (and 45-70 ms with numba's whole module beside the object
code, the conv epoch's file 670 KB instead of 200 KB). The machine code is the
kernel's own, so the weights are those of the numba dispatcher (tested to 1e-12). Building an
entry costs the first run more: LLVM optimises and compiles the kernel a second time, linked
into the entry (about 2.5 s for ``train_epoch``, 8 s for ``train_conv_epoch``, 2 s for
``forward_conv``); it is announced like numba's own compilations (``fast.COMPILING_MESSAGE``).

The cache file sits next to numba's cache (``NUMBA_CACHE_DIR/backprop`` when set, else this
package's ``__pycache__``, else ``~/.cache/backprop``). Its name and contents carry a key over the
kernel's sources (``Kind.sources``: ``conv.py`` too for the conv entries), the numba, llvmlite,
numpy and Python versions, the CPU and its features and every ``NUMBA_*`` setting; anything
else is never loaded. It is written to a temporary file and renamed, so a crash never leaves half
a file; a file of another user, or one that others may write, is never loaded (``trusted``). Any
failure to build, load or save falls back to the dispatcher (``entry`` returns None) and is
logged at DEBUG on ``backprop.fast``.
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
from typing import NamedTuple

import numpy as np

__all__ = ["online_entry", "epoch_entry", "post_entry", "conv_epoch_entry", "conv_forward_entry",
           "any_loaded", "Entry", "Call", "ONLINE_ARGS", "EPOCH_ARGS", "POST_ARGS", "CONV_EPOCH_ARGS",
           "CONV_FORWARD_ARGS", "KINDS", "cache_dir", "cache_key", "source", "online_source",
           "call_source", "meta_array", "trusted"]

FORMAT = 2  # 2: the stub module beside the object code (``_serialized``)
logger = logging.getLogger("backprop.fast")
_entries: dict = {}  # (kind, depth, dtype name) -> Entry or None, once per process
_saved: set = set()  # post entries found saved by ``save_post_entry`` (not loaded)

# An entry's arguments, in order: arrays of the network's dtype ("R"), int64 ("I"), int32 ("J")
# or float64 ("F") with their number of dimensions; scalars int ("i"), float ("f") or bool ("b", passed as
# an int). The C function takes a pointer per array, then one to the int64 array of all their
# shapes (in this order), then the scalars.
# ``kernels.train_epoch``'s own arguments:
EPOCH_ARGS = (("X", "R2"), ("Y", "R2"), ("order", "I1"), ("batch_size", "i"), ("weights", "F1"),
              ("w_total", "f"), ("lrs", "R1"), ("t0", "i"), ("sizes", "I1"), ("w_off", "I1"),
              ("b_off", "I1"), ("a_off", "I1"), ("z_off", "I1"), ("acts", "I1"), ("slopes", "F1"),
              ("bias_mode", "I1"), ("P", "R1"), ("G", "R1"), ("S1", "R1"), ("S2", "R1"),
              ("Abuf", "R1"), ("Zbuf", "R1"), ("Dbuf", "R1"), ("Ybuf", "R2"), ("losses", "F1"),
              ("wb", "F1"), ("coef", "R1"), ("loss_code", "i"), ("from_logits", "b"), ("mean", "b"),
              ("opt", "i"), ("hyper", "F1"), ("gemm_fn", "i"), ("axpy_fn", "i"))
# ``kernels.train_online``'s, with the flat buffers and their layout (``meta_array``) in place of
# its per-layer views, which the entry makes:
ONLINE_ARGS = (("X", "R2"), ("Y", "R2"), ("order", "I1"), ("w_total", "f"), ("lrs", "R1"),
               ("P", "R1"), ("A", "R1"), ("Z", "R1"), ("D", "R1"), ("meta", "I1"), ("acts", "I1"),
               ("slopes", "F1"), ("bias_mode", "I1"), ("Ybuf", "R2"), ("losses", "F1"),
               ("loss_code", "i"), ("from_logits", "b"), ("mean", "b"))
# The post-product step of inference (``forward.forward_chunked``) on an (m, n) block:
# ``kernels.dense_forward_rows`` (with ``check``, X W checked too), returning the rows it did.
POST_ARGS = (("code", "i"), ("slope", "f"), ("Z", "R1"), ("b", "R1"), ("A", "R1"), ("m", "i"),
             ("n", "i"), ("check", "b"))
# ``conv.train_conv_epoch``'s (one epoch of a conv network on one thread) and ``conv.forward_conv``'s
# (inference) own arguments:
CONV_EPOCH_ARGS = (("X", "R2"), ("Y", "R2"), ("order", "I1"), ("batch_size", "i"), ("weights", "F1"),
                   ("w_total", "f"), ("lrs", "R1"), ("t0", "i"), ("plan", "I2"), ("slopes", "F1"),
                   ("P", "R1"), ("G", "R1"), ("S1", "R1"), ("S2", "R1"), ("Abuf", "R1"),
                   ("Zbuf", "R1"), ("Dbuf", "R1"), ("Cbuf", "R1"), ("DCbuf", "R1"), ("Ibuf", "J1"),
                   ("Ybuf", "R2"), ("losses", "F1"), ("wb", "F1"), ("coef", "R1"), ("loss_code", "i"),
                   ("from_logits", "b"), ("mean", "b"), ("opt", "i"), ("hyper", "F1"), ("gemm_fn", "i"))
CONV_FORWARD_ARGS = (("X", "R2"), ("plan", "I2"), ("slopes", "F1"), ("P", "R1"), ("Abuf", "R1"),
                     ("Zbuf", "R1"), ("Cbuf", "R1"), ("Ibuf", "J1"), ("chunk", "i"), ("fn", "i"),
                     ("Out", "R2"))


class Kind(NamedTuple):
    """What an entry of one kernel is made of: the kernel (``function`` of the module
    ``backprop.fast.<module>``), the entry's arguments (``spec``), the start of its cache file's
    name, and the files (in this folder) its machine code is compiled from."""

    module: str
    function: str
    spec: tuple
    prefix: str
    sources: tuple


_DENSE_SOURCES = ("kernels.py", "blas.py", "vexp.py", "vectors.py", "native.py")
_CONV_SOURCES = _DENSE_SOURCES + ("conv.py",)
KINDS = {
    "online": Kind("kernels", "train_online", ONLINE_ARGS, "train", _DENSE_SOURCES),
    "epoch": Kind("kernels", "train_epoch", EPOCH_ARGS, "train", _DENSE_SOURCES),
    "post": Kind("kernels", "dense_forward_rows", POST_ARGS, "forward", _DENSE_SOURCES),
    "conv_epoch": Kind("conv", "train_conv_epoch", CONV_EPOCH_ARGS, "train", _CONV_SOURCES),
    "conv_forward": Kind("conv", "forward_conv", CONV_FORWARD_ARGS, "forward", _CONV_SOURCES),
}


def _arrays(spec):
    return [(name, code) for name, code in spec if code[0].isupper()]


def _scalars(spec):
    return [(name, code) for name, code in spec if code[0].islower()]


def meta_array(layout) -> np.ndarray:
    """The int64 array the online entry reads the layers' sizes and offsets from (a
    ``runner._Layout``): sizes, w_off, b_off, a_off, z_off."""
    return np.concatenate([layout.sizes, layout.w_off, layout.b_off, layout.a_off,
                           layout.z_off]).astype(np.int64)


def _header(spec) -> str:
    """The entry's ``def`` line and the lines that make its arguments: each array from its pointer
    and its shape, each bool from its int."""
    pointers = [f"{name}_p" for name, _ in _arrays(spec)]
    scalars = [f"{name}_i" if code == "b" else name for name, code in _scalars(spec)]
    lines, at = [], 0
    for name, code in _arrays(spec):
        dims = [f"shapes[{at + d}]" for d in range(int(code[1]))]
        at += len(dims)
        shape = ", ".join(dims) + ("," if len(dims) == 1 else "")
        lines.append(f"    {name} = carray({name}_p, ({shape}))")
    lines += [f"    {name} = {name}_i != 0" for name, code in _scalars(spec) if code == "b"]
    return "\n".join([f"def entry({', '.join(pointers + ['shapes_p'] + scalars)}):",
                      f"    shapes = carray(shapes_p, ({at},))", *lines])


def online_source(depth: int) -> str:
    """Python source of the entry of ``train_online`` for ``depth`` layers: the per-layer views
    of the flat buffers (as ``runner.EpochRunner._views_for_online`` makes them), then the call."""
    L = depth

    def at(block, i):
        start = {"size": 0, "w": L + 1, "b": 2 * L + 1, "a": 3 * L + 1, "z": 4 * L + 2}[block]
        return f"meta[{start + i}]"

    s = [at("size", i) for i in range(L + 1)]
    views = {
        "Wts": [f"P[{at('w', l)}:{at('w', l)} + {s[l]} * {s[l + 1]}].reshape(({s[l + 1]}, {s[l]}))"
                for l in range(L)],
        "bs": [f"(P[{at('b', l)}:{at('b', l)} + {s[l + 1]}] if {at('b', l)} >= 0 else P[0:0])"
               for l in range(L)],
        "As": [f"A[{at('a', l)}:{at('a', l)} + {s[l]}]" for l in range(L + 1)],
        "Zs": [f"Z[{at('z', l)}:{at('z', l)} + {s[l + 1]}]" for l in range(L)],
        "Ds": [f"D[{at('z', l)}:{at('z', l)} + {s[l + 1]}]" for l in range(L)],
    }
    lines = [f"    {name} = ({', '.join(items)},)" for name, items in views.items()]
    return "\n".join([_header(ONLINE_ARGS), *lines,
                      "    return train_online(X, Y, order, w_total, lrs, Wts, bs, As, Zs, Ds, acts, "
                      "slopes, bias_mode, Ybuf, losses, loss_code, from_logits, mean)", ""])


def call_source(kind: str) -> str:
    """Python source of the entry of a kernel that takes the entry's own arguments (every kind
    but "online"): the arguments made, then the call, its result as a float."""
    k = KINDS[kind]
    names = ", ".join(name for name, _ in k.spec)
    return "\n".join([_header(k.spec), f"    return float({k.function}({names}))", ""])


def source(kind: str, depth: int = 0) -> str:
    """Python source of the entry of ``kind`` (``depth``: the network's, for "online" only)."""
    return online_source(depth) if kind == "online" else call_source(kind)


def _signature(kind: str, dtype):
    from numba import types

    real = types.float32 if np.dtype(dtype) == np.float32 else types.float64
    element = {"R": real, "I": types.int64, "J": types.int32, "F": types.float64}
    spec = KINDS[kind].spec
    pointers = [types.CPointer(element[code[0]]) for _, code in _arrays(spec)]
    scalars = [types.float64 if code == "f" else types.int64 for _, code in _scalars(spec)]
    return types.float64(*pointers, types.CPointer(types.int64), *scalars)


def _c_arguments(kind: str):
    spec = KINDS[kind].spec
    scalars = [ctypes.c_double if code == "f" else ctypes.c_int64 for _, code in _scalars(spec)]
    return [ctypes.c_void_p] * (len(_arrays(spec)) + 1) + scalars


def cache_key(kind: str, depth: int, dtype) -> str:
    """SHA-256 over everything the machine code of ``kind``'s entry depends on."""
    import llvmlite
    import llvmlite.binding as llvm
    import numba

    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in KINDS[kind].sources:
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
    prefix = KINDS[kind].prefix
    return os.path.join(cache_dir(), f"{prefix}_{kind}-{depth}-{np.dtype(dtype).name}-{key[:16]}.nbx")


class Entry:
    """A kernel's entry (``kind``, one of ``KINDS``; one dtype) called through a C
    function pointer; keeps the library that holds the code alive as long as it is. ``prepare``
    binds it to one set of arrays."""

    def __init__(self, library, name: str, kind: str, dtype):
        self.library, self.kind, self.dtype = library, kind, np.dtype(dtype)
        self.spec = KINDS[kind].spec
        address = library.get_pointer_to_function(name)
        if not address:
            raise RuntimeError(f"entry {name} not found in its library")
        self.function = ctypes.CFUNCTYPE(ctypes.c_double, *_c_arguments(kind))(address)

    def prepare(self, **args) -> "Call":
        """A ``Call`` with these arguments (every name of the spec)."""
        return Call(self, args)


class Call:
    """An entry bound to one set of arguments, each array checked and converted once (its
    dtype, dimensions and C order: the compiled code trusts the pointers blindly). Calling it
    with some of them replaced (``call(order=..., lrs=..., t0=...)``) checks and converts only
    those, so a call costs about what numba's own dispatch does."""

    def __init__(self, entry: Entry, args: dict):
        spec = entry.spec
        if set(args) != {name for name, _ in spec}:
            missing = sorted({name for name, _ in spec} - set(args))
            extra = sorted(set(args) - {name for name, _ in spec})
            raise TypeError(f"the {entry.kind} entry needs {[n for n, _ in spec]}; "
                            f"missing {missing}, unexpected {extra}")
        self.entry, self.function = entry, entry.function
        self._element = {"R": entry.dtype, "I": np.dtype(np.int64), "J": np.dtype(np.int32),
                         "F": np.dtype(np.float64)}
        self._where = {}  # name -> (index in the C arguments, first index in shapes, code)
        arrays, scalars, n_dims = _arrays(spec), _scalars(spec), 0
        for i, (name, code) in enumerate(arrays):
            self._where[name] = (i, n_dims, code)
            n_dims += int(code[1])
        for i, (name, code) in enumerate(scalars):
            self._where[name] = (len(arrays) + 1 + i, None, code)
        self._shapes = np.zeros(n_dims, np.int64)
        self._c = [None] * (len(arrays) + 1 + len(scalars))
        self._c[len(arrays)] = self._shapes.ctypes.data
        self._keep = {}  # the arrays stay alive as long as their pointers are used (``_set``)
        self._set(args)

    def _set(self, args: dict) -> None:
        for name, value in args.items():
            index, shape_at, code = self._where[name]
            if shape_at is None:
                self._c[index] = float(value) if code == "f" else int(value)
                continue
            want = self._element[code[0]]
            if value.dtype != want or value.ndim != int(code[1]) or not value.flags.c_contiguous:
                raise TypeError(f"{self.entry.kind} entry argument {name}: expected a C-contiguous "
                                f"{code[1]}-d {want.name} array, got {value.dtype.name} {value.shape}")
            self._shapes[shape_at:shape_at + value.ndim] = value.shape
            self._c[index] = value.ctypes.data
            self._keep[name] = value

    def __call__(self, **changes) -> float:
        if changes:
            self._set(changes)
        return self.function(*self._c)


def _codegen():
    from numba.core.registry import cpu_target
    from numba.core.runtime import nrt

    context = cpu_target.target_context
    nrt.rtsys.initialize(context)  # the entry's views reference numba's runtime
    return context.codegen()


def _build(kind: str, depth: int, dtype):
    """Compile the entry (and its kernel, through the kernel's dispatcher and numba's cache)."""
    import importlib

    from numba import carray, cfunc
    from numba.core import event

    k = KINDS[kind]
    kernel = getattr(importlib.import_module(f"{__package__}.{k.module}"), k.function)
    namespace = {"carray": carray, k.function: kernel, "__name__": __name__}
    code = compile(source(kind, depth), f"<backprop.fast.native {kind} entry, depth {depth}>", "exec")
    exec(code, namespace)
    signature = _signature(kind, dtype)
    # numba's compile event, with the kernel as its dispatcher, so that the first-run notice is
    # shown (``fast._announce_compilation``) even when the kernel itself is in numba's cache
    details = {"dispatcher": kernel, "args": signature.args, "return_type": signature.return_type}
    with event.trigger_event("numba:compile", data=details):
        compiled = cfunc(signature, error_model="numpy")(namespace["entry"])
    return compiled._library, compiled.native_name


def trusted(path: str) -> bool:
    """Whether a cache file may be loaded: it becomes machine code in this process, so on POSIX
    it must belong to this user or to root and be writable by nobody else (the fallback cache
    folder lies in the shared temporary directory)."""
    if not hasattr(os, "getuid"):
        return True
    info = os.stat(path)
    return info.st_uid in (os.getuid(), 0) and not info.st_mode & 0o022


def _load(path: str, key: str):
    """(library, name) from a cache file with this key, or None."""
    try:
        if not trusted(path):
            logger.debug("native entry cache %s ignored: not this user's, or writable by others", path)
            return None
        with open(path, "rb") as f:
            saved = pickle.load(f)
    except FileNotFoundError:
        return None
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    return _codegen().unserialize_library(saved["library"]), saved["name"]


def _serialized(library, name: str):
    """numba's object-code serialisation of the library, with the LLVM module numba keeps beside
    the object code (for inlining into other libraries) replaced by a stub that defines only the
    entry's name: loading reads that module for the names it defines (``get_pointer_to_function``
    finds only those), the entry is never linked into anything, and parsing the whole module took
    70 ms of the conv epoch entry's 95 ms load."""
    import llvmlite.binding as llvm
    from llvmlite import ir

    lib_name, kind, (object_code, _) = library.serialize_using_object_code()
    stub = ir.Module(name=lib_name)
    function = ir.Function(stub, ir.FunctionType(ir.VoidType(), []), name=name)
    ir.IRBuilder(function.append_basic_block()).ret_void()
    return lib_name, kind, (object_code, llvm.parse_assembly(str(stub)).as_bitcode())


def _save(path: str, key: str, library, name: str) -> None:
    """Write atomically: a temporary file in the same folder, then a rename."""
    if library.has_dynamic_globals:  # addresses of this process's objects: not reusable
        return
    data = pickle.dumps({"key": key, "name": name, "library": _serialized(library, name)},
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


def conv_epoch_entry(dtype) -> Entry | None:
    """The entry of ``conv.train_conv_epoch`` for ``dtype`` (any conv network; see ``entry``)."""
    return entry("conv_epoch", 0, dtype)


def conv_forward_entry(dtype) -> Entry | None:
    """The entry of ``conv.forward_conv`` (inference) for ``dtype`` (see ``entry``)."""
    return entry("conv_forward", 0, dtype)


def post_entry(dtype, build: bool = False) -> Entry | None:
    """The entry of the post-product step of inference for ``dtype`` (see ``entry``); with
    ``build=False`` only when it is already loaded or saved (predicting never compiles)."""
    return entry("post", 0, dtype, build=build)


def save_post_entry(dtype) -> None:
    """Build and save the post-product entry for ``dtype`` when its file is missing; nothing is
    loaded when it is there. A fit calls this, so that a prediction after it (in this process
    or a later one) finds the entry saved. Once per process and dtype."""
    slot = ("post", 0, np.dtype(dtype).name)
    if slot in _entries or slot in _saved:
        return
    _saved.add(slot)
    try:
        present = os.path.exists(_cache_file("post", 0, dtype, cache_key("post", 0, dtype)))
    except Exception as exc:  # noqa: BLE001 - no entry: inference uses numpy
        logger.debug("native post entry unavailable (%s: %s)", type(exc).__name__, exc)
        return
    if not present:
        entry("post", 0, dtype, build=True)


def any_loaded() -> bool:
    """True when this process has loaded (or built) an entry: numba and its runtime are then set
    up, and loading one more saved entry costs a few milliseconds."""
    return any(e is not None for e in _entries.values())


def entry(kind: str, depth: int, dtype, build: bool = True) -> Entry | None:
    """The entry: loaded from the cache file, else compiled and saved; None (the caller uses
    the dispatcher) when that fails, or when there is no file and ``build`` is False. Once per
    process (a None from ``build=False`` is not remembered: a later call may build)."""
    slot = (kind, depth, np.dtype(dtype).name)
    if slot not in _entries:
        found = _find_or_build(kind, depth, dtype, build)
        if found is None and not build:
            return None
        _entries[slot] = found
    return _entries[slot]


def _find_or_build(kind: str, depth: int, dtype, build: bool = True) -> Entry | None:
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
    if not build:
        return None
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
