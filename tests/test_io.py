"""Model files: bitwise round trips, atomic writes, and clear refusals of files that are not ours."""

import json
import pickle
import struct

import numpy as np
import pytest

from backprop import BackpropError, Network
from backprop.io import load_network, save_network


def _net(dtype=np.float64):
    return Network.from_sizes([3, 5, 2], activation="relu", output_activation="softmax",
                              loss="softmax_cross_entropy", bias_init=0.1, seed=0, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roundtrip_is_bitwise(tmp_path, rng, dtype):
    # Saved and loaded networks give bitwise-identical predictions, config and metadata.
    net = _net(dtype)
    X = rng.standard_normal((7, 3))
    path = tmp_path / "m.safetensors"
    net.save(path, metadata={"classes": ["a", "b"], "scale": [1.5, 2.0]})
    back = Network.load(path)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert back.config() == net.config() and back.metadata["classes"] == ["a", "b"]


def test_frozen_bias_survives_roundtrip(tmp_path):
    # trainable_bias=False is part of the saved architecture.
    net = Network.from_sizes([2, 2, 2], trainable_bias=False, bias_init=0.35, seed=0)
    net.save(tmp_path / "m.safetensors")
    assert Network.load(tmp_path / "m.safetensors").layers[0].frozen == {"b"}


def test_write_is_atomic(tmp_path, monkeypatch):
    # A failure while writing leaves the old file intact and no temporary file behind, and is
    # one error naming the file asked for.
    path = tmp_path / "m.safetensors"
    _net().save(path)
    before = path.read_bytes()
    import os

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(BackpropError, match=r"^cannot write `.*m\.safetensors`: disk full$"):
        Network.from_sizes([3, 2], seed=1).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_truncated_file_is_refused(tmp_path):
    # Cutting the file short gives a clear error, not a crash.
    path = tmp_path / "m.safetensors"
    _net().save(path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(BackpropError, match="truncated or corrupted"):
        load_network(path)


def test_pickle_renamed_is_refused_without_executing(tmp_path):
    # A pickle named .safetensors is rejected by its header; nothing is unpickled.
    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(BackpropError, match="not a valid model file"):
        load_network(path)
    assert not (tmp_path / "pwned").exists()


def test_absurd_header_length_is_refused(tmp_path):
    # A header length larger than the file is refused before anything is allocated.
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    with pytest.raises(BackpropError, match="header claims"):
        load_network(path)


def test_metadata_not_an_object(tmp_path):
    # Metadata that is valid JSON but not a backprop description is refused.
    from safetensors.numpy import save

    path = tmp_path / "m.safetensors"
    path.write_bytes(save({"W1": np.zeros((2, 2))}, metadata={"backprop": json.dumps([1, 2])}))
    with pytest.raises(BackpropError, match="must be a JSON object"):
        load_network(path)


def test_missing_file_and_folder(tmp_path):
    # Missing files and folders are named in the error.
    with pytest.raises(BackpropError, match="does not exist"):
        load_network(tmp_path / "nope.safetensors")
    with pytest.raises(BackpropError, match="folder .* does not exist"):
        save_network(_net(), tmp_path / "no" / "m.safetensors")
