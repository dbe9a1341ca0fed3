"""Model files: safetensors for the weights, the architecture and user metadata as JSON inside it.

A file holds one tensor per parameter (``W1``, ``b1``, ...) and one metadata entry, ``backprop``,
whose value is a JSON object::

    {"format": "backprop.network", "version": 1,
     "network": {"layers": [...layer.config()...], "loss": {...}},
     "metadata": {...anything JSON the caller adds: preprocessing, class labels, settings...}}

Writes are atomic: the bytes go to a temporary file in the same folder, are flushed to disk, and
the file is renamed over the target, so a crash never leaves a half-written model. Reading never
unpickles anything; the header is checked before any tensor is read.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

from ._validation import BackpropError
from .layers import layer_from_config
from .network import Network

__all__ = ["save_network", "load_network", "atomic_write_bytes", "read_header", "FORMAT", "VERSION"]

FORMAT = "backprop.network"
VERSION = 1
MAX_HEADER_BYTES = 16 * 1024 * 1024  # safetensors' own limit is 100 MB; ours are tiny
_DTYPES = {"F32": np.float32, "F64": np.float64}


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename (never half-written)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise BackpropError(f"cannot write `{path}`: folder `{folder}` does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def save_network(network: Network, path, metadata: dict | None = None) -> Path:
    """Save weights and architecture (plus JSON-able ``metadata``) to a .safetensors file."""
    from safetensors.numpy import save

    description = {"format": FORMAT, "version": VERSION, "network": network.config(),
                   "metadata": metadata or {}}
    try:
        text = json.dumps(description, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BackpropError(f"`metadata` must be JSON-serialisable; {exc}") from None
    tensors = {name: np.ascontiguousarray(p) for name, p in network.named_parameters()}
    return atomic_write_bytes(path, save(tensors, metadata={"backprop": text}))


def read_header(path) -> tuple[dict, int]:
    """Read and check the safetensors header of ``path`` without reading any tensor.

    Returns (header dict, file size). Raises BackpropError for anything that is not a
    well-formed safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise BackpropError(f"model file `{path}` does not exist or is not a file")
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise BackpropError(f"`{path}` is not a model file: {size} bytes is too short for a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise BackpropError(
                f"`{path}` is not a valid model file: its header claims {n} bytes but the file has {size - 8} after the length"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BackpropError(f"`{path}` is not a valid model file: its header is not JSON (is it a safetensors file?)") from None
    if not isinstance(header, dict):
        raise BackpropError(f"`{path}` is not a valid model file: its header is not a JSON object")
    data_size = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in _DTYPES:
            raise BackpropError(
                f"`{path}`: tensor `{name}` must be float32 or float64; got {info.get('dtype') if isinstance(info, dict) else info!r}"
            )
        offsets, shape = info.get("data_offsets"), info.get("shape")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape)):
            raise BackpropError(f"`{path}`: tensor `{name}` has a malformed shape or offsets")
        start, end = offsets
        itemsize = np.dtype(_DTYPES[info["dtype"]]).itemsize
        if not (0 <= start <= end <= data_size) or end - start != int(np.prod(shape, dtype=object)) * itemsize:
            raise BackpropError(
                f"`{path}`: tensor `{name}` claims shape {shape} but its bytes do not fit the file (truncated or corrupted)"
            )
    return header, size


def load_network(path) -> tuple[Network, dict]:
    """Load a model saved by :func:`save_network`; returns (network, metadata)."""
    from safetensors.numpy import load

    path = Path(path)
    header, _ = read_header(path)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or "backprop" not in meta:
        raise BackpropError(f"`{path}` is a safetensors file but not a backprop model (no `backprop` metadata)")
    try:
        description = json.loads(meta["backprop"])
    except (TypeError, json.JSONDecodeError):
        raise BackpropError(f"`{path}`: the `backprop` metadata is not valid JSON") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise BackpropError(f"`{path}`: the `backprop` metadata must be a JSON object with format {FORMAT!r}")
    if description.get("version") != VERSION:
        raise BackpropError(
            f"`{path}` was written by format version {description.get('version')!r}; this backprop reads version {VERSION}"
        )
    config = description.get("network")
    try:
        layers = [layer_from_config(c) for c in config["layers"]]
        network = Network(layers, loss=config["loss"])
    except (TypeError, KeyError, AttributeError) as exc:
        raise BackpropError(f"`{path}`: the network description is malformed ({exc})") from None
    expected = {name: p for name, p in network.named_parameters()}
    stored = {k: v for k, v in header.items() if k != "__metadata__"}
    if set(stored) != set(expected):
        raise BackpropError(
            f"`{path}`: tensors {sorted(stored)} do not match the architecture's {sorted(expected)}"
        )
    for name, p in expected.items():
        if tuple(stored[name]["shape"]) != p.shape or np.dtype(_DTYPES[stored[name]["dtype"]]) != p.dtype:
            raise BackpropError(
                f"`{path}`: tensor `{name}` must have shape {p.shape} and dtype {p.dtype}; "
                f"got shape {tuple(stored[name]['shape'])} and {stored[name]['dtype']}"
            )
    try:
        tensors = load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own error types
        raise BackpropError(f"`{path}` could not be read as safetensors: {exc}") from None
    network.set_weights([tensors[name] for name in expected])
    metadata = description.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BackpropError(f"`{path}`: `metadata` must be a JSON object")
    return network, metadata
