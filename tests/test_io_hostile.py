"""Hostile and damaged model files: every one fails with a clear BackpropError, nothing is executed,
and no allocation grows with a number the file claims. Property tests: random bytes, and
mutations (bit flips, truncations, header edits) of a real model file."""

from __future__ import annotations

import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backprop import BackpropError, Network
from backprop import io as bio
from backprop.io import load_network, read_header


def _model_bytes() -> bytes:
    net = Network.from_sizes([3, 4, 2], activation="tanh", output_activation="sigmoid", seed=0)
    from safetensors.numpy import save

    description = {"format": bio.FORMAT, "version": bio.VERSION, "network": net.config(), "metadata": {"k": 1}}
    return save(dict(net.named_parameters()), metadata={"backprop": json.dumps(description)})


MODEL = _model_bytes()


def _split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _craft(header, payload: bytes = b"") -> bytes:
    """A safetensors-shaped file from a header (dict or raw JSON text) and data bytes."""
    raw = (header if isinstance(header, (str, bytes)) else json.dumps(header))
    raw = raw.encode() if isinstance(raw, str) else raw
    return struct.pack("<Q", len(raw)) + raw + payload


def _write(tmp_path, data: bytes, name="m.safetensors"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _refused(tmp_path, data: bytes, match: str):
    with pytest.raises(BackpropError, match=match):
        load_network(_write(tmp_path, data))


def _peak_while_refused(path, match: str) -> int:
    """Peak traced memory (bytes) while loading ``path``, which must be refused with ``match``."""
    tracemalloc.start()
    try:
        with pytest.raises(BackpropError, match=match):
            load_network(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_real_file_loads(tmp_path):
    # The unmodified file used by the mutations below loads (so the refusals below are real).
    net, meta = load_network(_write(tmp_path, MODEL))
    assert net.sizes == [3, 4, 2] and meta == {"k": 1}


def test_wrong_dtype_is_refused(tmp_path):
    # A tensor stored as float16 or int64 is refused by name.
    from safetensors.numpy import save

    header, _ = _split(MODEL)
    data = save({"W1": np.zeros((3, 4), np.float16)}, metadata=header["__metadata__"])
    _refused(tmp_path, data, r"tensor `W1` must be float32 \(F32\) or float64 \(F64\); got 'F16'")
    data = save({"W1": np.zeros((3, 4), np.int64)}, metadata=header["__metadata__"])
    _refused(tmp_path, data, "got 'I64'")


def test_duplicate_keys_are_refused(tmp_path):
    # JSON lets a key appear twice (the last wins); a model header that does so is refused.
    header, payload = _split(MODEL)
    text = json.dumps(header)
    dup = text[:-1] + ', "W1": ' + json.dumps(header["W1"]) + "}"
    _refused(tmp_path, _craft(dup, payload), "names the key 'W1' twice")


def test_overlapping_and_gapped_offsets_are_refused(tmp_path):
    # Two tensors sharing bytes, a gap between tensors, and bytes after the last are all refused.
    header, payload = _split(MODEL)
    over = json.loads(json.dumps(header))
    over["b1"]["data_offsets"] = over["W1"]["data_offsets"][:1] + [over["W1"]["data_offsets"][0] + 32]
    _refused(tmp_path, _craft(over, payload), "overlaps another tensor|leaves a gap")
    _refused(tmp_path, _craft(header, payload + b"\0" * 8), "8 bytes after the last tensor")
    gap = {"W1": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]}}
    _refused(tmp_path, _craft(gap, b"\0" * 16), "leaves a gap of 8 bytes")


def test_absurd_shapes_allocate_nothing(tmp_path):
    # A header claiming a 10^12 x 10^12 tensor is refused by arithmetic on its claimed size, long
    # before anything is allocated (peak traced memory stays tiny).
    hostile = {"W1": {"dtype": "F64", "shape": [10**12, 10**12], "data_offsets": [0, 8 * 10**24]}}
    assert _peak_while_refused(_write(tmp_path, _craft(hostile, b"\0" * 64)), "truncated or corrupted") < 1_000_000


def test_description_claiming_huge_layers_allocates_nothing(tmp_path):
    # A valid file whose description claims a 100000 x 100000 layer (80 GB of weights) is refused
    # before a layer is built; peak memory stays far below the claim.
    header, payload = _split(MODEL)
    description = json.loads(header["__metadata__"]["backprop"])
    description["network"]["layers"][0].update(n_inputs=100_000, n_outputs=100_000)
    header["__metadata__"]["backprop"] = json.dumps(description)
    assert _peak_while_refused(_write(tmp_path, _craft(header, payload)), "the layers claim more weights") < 5_000_000


def test_huge_layer_count_is_refused_quickly(tmp_path):
    # A description listing 6000 layers (more than the stored weights can hold) is refused, and a
    # header over the 16 MB limit is refused from its length alone.
    header, payload = _split(MODEL)
    description = json.loads(header["__metadata__"]["backprop"])
    description["network"]["layers"] *= 3000
    header["__metadata__"]["backprop"] = json.dumps(description)
    _refused(tmp_path, _craft(header, payload), "the layers claim more weights")
    big = _craft(b" " * (bio.MAX_HEADER_BYTES + 1))
    _refused(tmp_path, big, "more than the 16777216 a model file may use")


def test_deeply_nested_json_is_refused(tmp_path):
    # Nesting deep enough to exhaust Python's recursion limit is a clear error, not a crash.
    header, payload = _split(MODEL)
    header["__metadata__"]["backprop"] = "[" * 100_000 + "]" * 100_000
    _refused(tmp_path, _craft(header, payload), "nested too deeply")
    _refused(tmp_path, _craft("[" * 50_000 + "]" * 50_000), "nested too deeply")


@pytest.mark.parametrize("meta", ['[1, 2]', '"text"', "null"])
def test_metadata_entry_not_an_object(tmp_path, meta):
    # `__metadata__` that is not a JSON object of strings is refused.
    header, payload = _split(MODEL)
    header["__metadata__"] = json.loads(meta)
    _refused(tmp_path, _craft(header, payload), "`__metadata__` entry must map names to strings")


def test_non_finite_weights_are_refused(tmp_path):
    # A stored NaN (e.g. a flipped exponent bit) is refused rather than loaded into a network.
    header, payload = _split(MODEL)
    start = header["W1"]["data_offsets"][0]
    bad = payload[:start] + struct.pack("<d", float("nan")) + payload[start + 8 :]
    _refused(tmp_path, _craft(header, bad), "tensor `W1` holds NaN or infinite values")


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    # Files above MAX_FILE_BYTES are refused from their size alone.
    monkeypatch.setattr(bio, "MAX_FILE_BYTES", len(MODEL) - 1)
    _refused(tmp_path, MODEL, f"{len(MODEL)} bytes; model files larger than {len(MODEL) - 1} bytes are refused")


def test_other_formats_are_refused(tmp_path):
    # A zip (PyTorch's .pt format), an empty file, a folder, and plain text are all refused.
    zpath = tmp_path / "model.pt"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("data.pkl", b"\x80\x04K\x01.")
    with pytest.raises(BackpropError, match="not a valid model file"):
        load_network(zpath)
    _refused(tmp_path, b"", "too short")
    with pytest.raises(BackpropError, match="does not exist or is not a file"):
        load_network(tmp_path)
    _refused(tmp_path, b"W1,b1\n1,2\n" * 10, "not a valid model file")


def test_read_header_agrees_with_load(tmp_path):
    # read_header (used to peek at a model) applies the same checks and returns the file size.
    header, size = read_header(_write(tmp_path, MODEL))
    assert size == len(MODEL) and set(header) == {"__metadata__", "W1", "b1", "W2", "b2"}
    header, payload = _split(MODEL)
    with pytest.raises(BackpropError, match="bytes after the last tensor"):
        read_header(_write(tmp_path, _craft(header, payload + b"x")))


# -- property tests ----------------------------------------------------------------------------
def _outcome(path):
    """Load; a success must be a real, finite network; any failure must be a BackpropError."""
    try:
        net, meta = load_network(path)
    except BackpropError:
        return "refused"
    assert isinstance(net, Network) and isinstance(meta, dict)
    for layer, (n_in, n_out) in zip(net.layers, zip(net.sizes, net.sizes[1:])):
        assert layer.params["W"].shape == (n_in, n_out)
    assert all(np.isfinite(w).all() for w in net.get_weights())
    return "loaded"


PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROFILE
@given(st.binary(max_size=3000))
def test_random_bytes_never_crash(tmp_path, data):
    # Arbitrary bytes are refused with a BackpropError (never another exception, never a crash).
    assert _outcome(_write(tmp_path, data)) == "refused"


@PROFILE
@given(st.binary(max_size=400).map(lambda b: struct.pack("<Q", len(b)) + b) | st.binary(max_size=50).map(
    lambda b: struct.pack("<Q", min(len(b), 40)) + b))
def test_random_bytes_behind_plausible_length(tmp_path, data):
    # Random bytes behind a header length that fits the file (so the JSON parser sees them).
    assert _outcome(_write(tmp_path, data)) == "refused"


@PROFILE
@given(st.lists(st.integers(0, len(MODEL) * 8 - 1), min_size=1, max_size=8))
def test_bit_flips(tmp_path, bits):
    # Flipping bits anywhere (length, header, weights) either loads a valid network or is refused.
    data = bytearray(MODEL)
    for bit in bits:
        data[bit // 8] ^= 1 << (bit % 8)
    _outcome(_write(tmp_path, bytes(data)))


@PROFILE
@given(st.integers(0, len(MODEL) - 1))
def test_truncations(tmp_path, keep):
    # Every truncation is refused.
    assert _outcome(_write(tmp_path, MODEL[:keep])) == "refused"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _set(root, path, value):
    if not path:
        return value
    node = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return root


_HEADER, _PAYLOAD = _split(MODEL)
_DESCRIPTION = json.loads(_HEADER["__metadata__"]["backprop"])
_HEADER_PATHS = [p for p in _paths(_HEADER) if p[:2] != ("__metadata__", "backprop")]
_DESCRIPTION_PATHS = list(_paths(_DESCRIPTION))


@PROFILE
@given(st.sampled_from(_HEADER_PATHS), _json_values)
def test_header_edits(tmp_path, path, value):
    # Replacing any value of the safetensors header (offsets, shapes, dtypes...) with another JSON
    # value, length fixed up, either loads a valid network or is refused.
    header = _set(json.loads(json.dumps(_HEADER)), path, value)
    _outcome(_write(tmp_path, _craft(header, _PAYLOAD)))


@PROFILE
@given(st.sampled_from(_DESCRIPTION_PATHS), _json_values)
def test_description_edits(tmp_path, path, value):
    # Replacing any value of the network description (layer sizes, activations, loss, dtype...)
    # either loads a valid network or is refused.
    description = _set(json.loads(json.dumps(_DESCRIPTION)), path, value)
    header = json.loads(json.dumps(_HEADER))
    header["__metadata__"]["backprop"] = json.dumps(description)
    _outcome(_write(tmp_path, _craft(header, _PAYLOAD)))
