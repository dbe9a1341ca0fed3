"""Model files: safetensors for the weights, the architecture and user metadata as JSON inside it.

A file holds one tensor per parameter (``W1``, ``b1``, ...) and one metadata entry, ``backprop``,
whose value is a JSON object::

    {"format": "backprop.network", "version": 1,
     "network": {"layers": [...layer.config()...], "loss": {...}, "input_shape": [...]},
     "metadata": {...anything JSON the caller adds: preprocessing, class labels, settings...}}

Each layer's config names its type and sizes; image layers (Conv2D, MaxPool2D, AvgPool2D,
Flatten) also name their ``input_shape`` and ``output_shape`` (C, H, W), and conv kernels are
stored in PyTorch's (out_channels, in_channels, kh, kw) layout, so a reader can rebuild the
network without this code (docs/model-format.md).

Writes are atomic: the bytes go to a temporary file in the same folder, are flushed to disk, and
the file is renamed over the target, so a crash never leaves a half-written model. Reading never
unpickles anything; the header is checked before any tensor is read.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

from ._validation import BackpropError, describe
from .layers import layer_from_config
from .network import Network

__all__ = ["save_network", "load_network", "atomic_write_bytes", "current_umask", "read_header", "read_safetensors",
           "parse_json", "FORMAT", "VERSION", "MAX_FILE_BYTES"]

FORMAT = "backprop.network"
VERSION = 1
MAX_HEADER_BYTES = 16 * 1024 * 1024  # safetensors' own limit is 100 MB; ours are tiny
MAX_FILE_BYTES = 2 * 1024**3  # the whole file is read into memory once; refuse anything larger
MAX_DIMS = 8
_DTYPES = {"F32": np.float32, "F64": np.float64}


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename (never half-written).

    The file gets the permissions a plain ``open(path, "wb")`` would give: ``0o666`` less the
    umask for a new file, the old mode for a file it replaces. A symbolic link is written
    through: its target is replaced and the link kept. Any failure is one BackpropError naming
    ``path`` as given (never the temporary file).
    """
    path = Path(path)
    target = Path(os.path.realpath(path))  # through any symbolic links, to the file to replace
    folder = target.parent
    if not folder.is_dir():
        shown = path.parent if str(path.parent) else Path(".")
        raise BackpropError(f"cannot write `{path}`: folder `{shown}` does not exist")
    if target.is_dir():
        raise BackpropError(f"cannot write `{path}`: it is a folder; give a file name")
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~current_umask()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)  # mkstemp makes 0o600
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
        _fsync_folder(folder)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__  # never the temporary file's name
        raise BackpropError(f"cannot write `{path}`: {reason}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``/proc/self/status``);
    elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); folders cannot be opened this way on Windows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_network(network: Network, path, metadata: dict | None = None) -> Path:
    """Save weights and architecture (plus JSON-able ``metadata``) to a .safetensors file."""
    from safetensors.numpy import save

    if metadata is not None and not isinstance(metadata, dict):
        raise BackpropError(f"`metadata` must be a dict (a JSON object) or None; got {describe(metadata)}")
    for name, p in network.named_parameters():
        if not np.isfinite(p).all():
            raise BackpropError(
                f"cannot save `{path}`: weights `{name}` hold NaN or infinite values (did training diverge? "
                f"lower the learning rate or scale the features, then train again)"
            )
    description = {"format": FORMAT, "version": VERSION, "network": network.config(),
                   "metadata": metadata or {}}
    try:
        text = json.dumps(description, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BackpropError(f"`metadata` must be JSON-serialisable; {exc}") from None
    tensors = {name: np.ascontiguousarray(p) for name, p in network.named_parameters()}
    return atomic_write_bytes(path, save(tensors, metadata={"backprop": text}))


def _no_duplicates(pairs: list) -> dict:
    """json object hook: refuse an object that names a key twice (JSON allows it; we do not)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(ValueError):
    pass


def parse_json(text: str | bytes, what: str, path) -> object:
    """Strict JSON: no duplicate keys, no runaway nesting; any failure is a BackpropError."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise BackpropError(f"`{path}`: {what} names the key {exc.args[0]!r} twice (corrupted or hostile file)") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BackpropError(f"`{path}` is not a valid model file: {what} is not JSON (is it a safetensors file?)") from None
    except RecursionError:
        raise BackpropError(f"`{path}`: {what} is nested too deeply to be a model description") from None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_header(raw: bytes, data_size: int, path) -> dict:
    """Check a safetensors header (the JSON after the 8-byte length) against the data it describes.

    Every tensor must be float32/float64 with a sane shape, its byte range must match its shape,
    and the ranges must tile the data section exactly (no overlap, no gap, nothing left over),
    as safetensors itself requires. Nothing here allocates more than the header's own size.
    """
    header = parse_json(raw, "its header", path)
    if not isinstance(header, dict):
        raise BackpropError(f"`{path}` is not a valid model file: its header is not a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise BackpropError(f"`{path}`: the `__metadata__` entry must map names to strings")
    ranges = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info.get("dtype") if isinstance(info, dict) else None
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            got = describe(dtype) if isinstance(info, dict) else describe(info)
            raise BackpropError(f"`{path}`: tensor `{name}` must be float32 (F32) or float64 (F64); got {got}")
        offsets, shape = info.get("data_offsets"), info.get("shape")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)
                or not isinstance(shape, list) or len(shape) > MAX_DIMS
                or not all(_is_int(s) and s >= 0 for s in shape)):
            raise BackpropError(
                f"`{path}`: tensor `{name}` must have a list of at most {MAX_DIMS} non-negative integer sizes "
                f"and two integer offsets; got shape {describe(shape)} and offsets {describe(offsets)}"
            )
        start, end = offsets
        itemsize = np.dtype(_DTYPES[info["dtype"]]).itemsize
        n_bytes = math.prod(shape) * itemsize  # Python ints: no overflow, no allocation
        if not (0 <= start <= end <= data_size) or end - start != n_bytes:
            raise BackpropError(
                f"`{path}`: tensor `{name}` claims shape {shape} ({n_bytes} bytes at offsets {start}..{end}) "
                f"but the file holds {data_size} bytes of data (truncated or corrupted)"
            )
        ranges.append((start, end, name))
    position = 0
    for start, end, name in sorted(ranges):
        if start != position:
            problem = "overlaps another tensor" if start < position else f"leaves a gap of {start - position} bytes before it"
            raise BackpropError(f"`{path}`: tensor `{name}` {problem} (corrupted or hostile file)")
        position = end
    if position != data_size:
        raise BackpropError(
            f"`{path}`: the file has {data_size - position} bytes after the last tensor (corrupted or not a model file)"
        )
    return header


def _open_checked(path) -> tuple[Path, int]:
    path = Path(path)
    if not path.is_file():
        raise BackpropError(f"model file `{path}` does not exist or is not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise BackpropError(
            f"`{path}` is {size} bytes; model files larger than {MAX_FILE_BYTES} bytes are refused "
            f"(raise backprop.io.MAX_FILE_BYTES if this is really a model)"
        )
    if size < 8:
        raise BackpropError(f"`{path}` is not a model file: {size} bytes is too short for a safetensors header")
    return path, size


def _header_length(head: bytes, size: int, path) -> int:
    (n,) = struct.unpack("<Q", head[:8])
    if n > size - 8:
        raise BackpropError(
            f"`{path}` is not a valid model file: its header claims {n} bytes but the file has {size - 8} after the length"
        )
    if n > MAX_HEADER_BYTES:
        raise BackpropError(
            f"`{path}`: its header claims {n} bytes, more than the {MAX_HEADER_BYTES} a model file may use"
        )
    return n


def read_header(path) -> tuple[dict, int]:
    """Read and check the safetensors header of ``path`` without reading any tensor.

    Returns (header dict, file size). Raises BackpropError for anything that is not a
    well-formed safetensors file.
    """
    path, size = _open_checked(path)
    with path.open("rb") as fh:
        n = _header_length(fh.read(8), size, path)
        raw = fh.read(n)
    return _check_header(raw, size - 8 - n, path), size


def read_safetensors(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a checked safetensors file: (header, {name: array}). Reads the file once (so it cannot
    change between the check and the read) and never more than MAX_FILE_BYTES."""
    from safetensors.numpy import load

    path, size = _open_checked(path)
    with path.open("rb") as fh:
        data = fh.read(size + 1)  # not MAX_FILE_BYTES: read(n) reserves n bytes up front
    if len(data) != size:
        raise BackpropError(f"`{path}` changed while it was being read; try again")
    n = _header_length(data, size, path)
    header = _check_header(data[8 : 8 + n], size - 8 - n, path)
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise BackpropError(f"`{path}` could not be read as safetensors: {exc}") from None
    for name, array in tensors.items():
        if not np.isfinite(array).all():
            raise BackpropError(f"`{path}`: tensor `{name}` holds NaN or infinite values (corrupted file?)")
    return header, tensors


def _check_sizes(config, header: dict, path) -> None:
    """Refuse a description whose layers claim more weights than the file stores, before any
    layer is built (so a hostile description cannot make us allocate gigabytes)."""
    stored = sum(math.prod(info["shape"]) for name, info in header.items() if name != "__metadata__")
    claimed = 0
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not layers:
        raise BackpropError(f"`{path}`: the network description must list its layers; got {describe(layers)}")
    for i, layer in enumerate(layers, start=1):
        claimed += _claimed_values(layer, i, path)
        if claimed > stored:
            raise BackpropError(
                f"`{path}`: the layers claim more weights ({claimed} at layer {i}) than the file stores ({stored})"
            )


def _claimed_values(layer, i: int, path) -> int:
    """How many parameter values a layer's description claims (checked to be positive ints)."""
    kind = layer.get("type", "Dense") if isinstance(layer, dict) else None
    if kind in ("MaxPool2D", "AvgPool2D", "Flatten"):
        return 0
    if kind == "Conv2D":
        sizes = [layer.get(k) for k in ("in_channels", "out_channels")]
        kernel = layer.get("kernel_size")
        if isinstance(kernel, list):
            sizes += kernel
        if len(sizes) != 4 or not all(_is_int(s) and s >= 1 for s in sizes):
            raise BackpropError(
                f"`{path}`: layer {i} (Conv2D) must give positive integer in_channels, out_channels and kernel_size"
            )
        return math.prod(sizes) + (sizes[1] if layer.get("use_bias", True) else 0)
    sizes = [layer.get(k) for k in ("n_inputs", "n_outputs")] if isinstance(layer, dict) else [None]
    if not all(_is_int(s) and s >= 1 for s in sizes):
        raise BackpropError(f"`{path}`: layer {i} must give positive integer n_inputs and n_outputs")
    return sizes[0] * sizes[1] + (sizes[1] if layer.get("use_bias", True) else 0)


def load_network(path) -> tuple[Network, dict]:
    """Load a model saved by :func:`save_network`; returns (network, metadata).

    Every failure (not a safetensors file, truncated, corrupted, wrong dtype, hostile header or
    description) is a BackpropError; nothing is unpickled or executed, and no allocation is larger
    than the file itself.
    """
    path = Path(path)
    header, tensors = read_safetensors(path)
    meta = header.get("__metadata__", {})
    if "backprop" not in meta:
        raise BackpropError(f"`{path}` is a safetensors file but not a backprop model (no `backprop` metadata)")
    description = parse_json(meta["backprop"], "the `backprop` metadata", path)
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise BackpropError(f"`{path}`: the `backprop` metadata must be a JSON object with format {FORMAT!r}")
    if description.get("version") != VERSION:
        raise BackpropError(
            f"`{path}` was written by format version {description.get('version')!r}; this backprop reads version {VERSION}"
        )
    config = description.get("network")
    _check_sizes(config, header, path)
    try:
        layers = [layer_from_config(c) for c in config["layers"]]
        network = Network(layers, loss=config.get("loss", "half_sse"), input_shape=config.get("input_shape"))
    except (TypeError, KeyError, AttributeError, ValueError, RecursionError) as exc:
        raise BackpropError(f"`{path}`: the network description is malformed ({exc})") from None
    expected = dict(network.named_parameters())
    if set(tensors) != set(expected):
        raise BackpropError(
            f"`{path}`: tensors {sorted(tensors)} do not match the architecture's {sorted(expected)}"
        )
    for name, p in expected.items():
        if tensors[name].shape != p.shape or tensors[name].dtype != p.dtype:
            raise BackpropError(
                f"`{path}`: tensor `{name}` must have shape {p.shape} and dtype {p.dtype}; "
                f"got shape {tensors[name].shape} and {tensors[name].dtype}"
            )
    network.set_weights([tensors[name] for name in expected])
    metadata = description.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BackpropError(f"`{path}`: `metadata` must be a JSON object")
    return network, metadata
