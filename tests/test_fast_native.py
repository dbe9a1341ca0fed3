"""The per-sample kernel through its saved machine code (backprop.fast.native).

Oracles: the numpy reference path of fit (fast=False) and the numba dispatcher of the same kernel
(``kernels.train_online``, reached with ``EpochRunner._entry`` cleared) give the weights; a fresh
process shows what a second run loads (numba's compiler target left unset: ``numba.np.arraymath``
never imported).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop import SGD, Dense, Network, get_loss

pytest.importorskip("numba")

from backprop.fast import blas, native, runner  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _network(depth, dtype, seed=0, use_bias=True, trainable_bias=True):
    sizes = [6, 5, 4, 7, 3][:depth + 1]
    layers = [Dense(a, b, activation="sigmoid" if i < depth - 1 else "softmax", seed=seed + i,
                    dtype=dtype, use_bias=use_bias or i == 0, trainable_bias=trainable_bias or i != 1,
                    bias_init=0.1)
              for i, (a, b) in enumerate(zip(sizes, sizes[1:]))]
    return Network(layers)


def _data(rng, net, n=23):
    X = rng.standard_normal((n, net.n_inputs)).astype(net.dtype)
    Y = np.eye(net.n_outputs, dtype=net.dtype)[rng.integers(0, net.n_outputs, n)]
    return X, Y


def _train(net, X, Y, loss, entry: bool, epochs=3, optimizer=None, batch_size=1, weights=None):
    """(per-epoch losses, weights) of ``epochs`` epochs of an EpochRunner (plain SGD per sample
    unless told otherwise), through the entry or, with ``entry=False``, the dispatcher."""
    run = runner.EpochRunner(net, X, Y, loss, optimizer or SGD(0.2), batch_size, weights)
    assert run.online is (optimizer is None and batch_size == 1)
    if not entry:
        run._entry = None
    assert (run._entry is not None) is entry
    rng = np.random.default_rng(7)
    losses = [run.run_epoch(rng) for _ in range(epochs)]
    return losses, net.get_weights()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("depth,use_bias,trainable_bias", [(1, True, True), (2, False, True),
                                                           (3, True, False), (4, True, True)])
@pytest.mark.parametrize("loss", ["half_sse", "softmax_cross_entropy"])
def test_entry_gives_the_dispatchers_weights(rng, dtype, depth, use_bias, trainable_bias, loss):
    # Depths 1-4, with a layer without bias or with a frozen one, a from-logits loss and a mean
    # reduction: the saved entry and the dispatcher train to the same weights and losses.
    make = lambda: _network(depth, dtype, use_bias=use_bias, trainable_bias=trainable_bias)  # noqa: E731
    X, Y = _data(rng, make())
    loss_fn = get_loss(loss, reduction="mean" if loss == "half_sse" else "sum")
    ours = _train(make(), X, Y, loss_fn, entry=True)
    ref = _train(make(), X, Y, loss_fn, entry=False)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours[0], ref[0], rtol=rtol)
    for a, b in zip(ours[1], ref[1]):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def test_fit_uses_the_entry_and_matches_the_reference_path(rng, monkeypatch):
    # fit(batch_size=1) on the fast path calls the entry once per epoch (and once to warm up),
    # never the dispatcher, and ends with the numpy reference path's weights.
    calls = []
    original = native.Call.__call__
    monkeypatch.setattr(native.Call, "__call__",
                        lambda self, **a: calls.append(1) or original(self, **a))
    assert native.online_entry(3, np.float64) is not None  # built (it compiles the kernel) first
    monkeypatch.setattr(runner.K, "train_online", None)  # the dispatcher, unusable
    nets = [_network(3, np.float64, seed=2) for _ in range(2)]
    X, Y = _data(rng, nets[0], n=31)
    for net, fast in zip(nets, (True, False)):
        net.fit(X, Y, epochs=4, batch_size=1, optimizer=SGD(0.1), seed=3, fast=fast)
    assert len(calls) == 5
    for a, b in zip(*(net.get_weights() for net in nets)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


_BUILT = {}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", ["nesterov-decay", "adam-schedule"])
@pytest.mark.parametrize("batch_size,width,weighted", [(4, 5, False), (6, 5, True), (32, 64, False)])
def test_epoch_entry_gives_the_dispatchers_weights(rng, dtype, optimizer, batch_size, width, weighted):
    # Mini-batches through train_epoch's entry and its dispatcher: loops only (batch 4 and 6,
    # sample weights) and BLAS products (batch 32 x 64 x 64: numba's np.dot, SciPy's BLAS).
    from backprop import Adam
    from backprop.optimizers import InverseScaling

    makers = {"nesterov-decay": lambda: SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
              "adam-schedule": lambda: Adam(InverseScaling(0.01, power_t=0.5))}
    sizes = [width, width, width // 2 + 1, 3]
    make = lambda: Network.from_sizes(sizes, activation="tanh", output_activation="softmax",  # noqa: E731
                                      seed=9, dtype=dtype)
    X, Y = _data(rng, make(), n=71)
    weights = rng.random(71) + 0.5 if weighted else None
    loss = get_loss("softmax_cross_entropy")
    ours, ref = (_train(make(), X, Y, loss, entry, optimizer=makers[optimizer](), batch_size=batch_size,
                        weights=weights) for entry in (True, False))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours[0], ref[0], rtol=rtol)
    for a, b in zip(ours[1], ref[1]):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def test_fit_in_mini_batches_uses_the_epoch_entry(rng, monkeypatch):
    calls = []
    original = native.Call.__call__
    monkeypatch.setattr(native.Call, "__call__",
                        lambda self, **a: calls.append(self.entry.kind) or original(self, **a))
    assert native.epoch_entry(np.float64) is not None  # built (it compiles the kernel) first
    monkeypatch.setattr(runner.K, "train_epoch", None)  # the dispatcher, unusable
    nets = [_network(3, np.float64, seed=4) for _ in range(2)]
    X, Y = _data(rng, nets[0], n=31)
    for net, fast in zip(nets, (True, False)):
        net.fit(X, Y, epochs=3, batch_size=4, optimizer=SGD(0.1, momentum=0.9), seed=3, fast=fast)
    assert calls == ["epoch"] * 4
    for a, b in zip(*(net.get_weights() for net in nets)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_entry_refuses_arrays_it_would_misread(rng):
    # The compiled code trusts its pointers, so a Call checks each array when it is bound.
    net = _network(2, np.float64)
    X, Y = _data(rng, net)
    run = runner.EpochRunner(net, X, Y, get_loss("half_sse"), SGD(0.1, momentum=0.5), 4)
    call = run._entry
    args = run._kernel_args(np.arange(5), np.zeros(2))
    args["X"] = np.asfortranarray(X)
    with pytest.raises(TypeError, match="epoch entry argument X: expected a C-contiguous 2-d float64 "
                                        r"array, got float64 \(23, 6\)"):
        call.entry.prepare(**args)
    with pytest.raises(TypeError, match="argument order: .* 1-d int64 array, got int32"):
        call(order=np.arange(4, dtype=np.int32))
    with pytest.raises(TypeError, match="argument lrs: .* 1-d float64 array, got float64 \\(2, 2\\)"):
        call(lrs=np.zeros((2, 2)))
    del args["hyper"]
    args["extra"] = 1
    with pytest.raises(TypeError, match=r"missing \['hyper'\], unexpected \['extra'\]"):
        call.entry.prepare(**args)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache folder, no entry in memory, and ``_build`` counted (its first real result
    is kept for the module's tests: a build takes 2 s, and the tests here are about the cache)."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_entries", {})
    builds = []
    real = native._build

    def counted(kind, depth, dtype):
        builds.append((kind, depth, np.dtype(dtype).name))
        if (kind, depth, dtype) not in _BUILT:
            _BUILT[(kind, depth, dtype)] = real(kind, depth, dtype)
        return _BUILT[(kind, depth, dtype)]

    monkeypatch.setattr(native, "_build", counted)
    return tmp_path / "backprop", builds


def _works(entry, rng):
    """The entry trains: one run through it equals one through the dispatcher."""
    net, ref = _network(2, np.float64), _network(2, np.float64)
    X, Y = _data(rng, net)
    run = runner.EpochRunner(net, X, Y, get_loss("half_sse"), SGD(0.2), 1)
    run._entry = entry.prepare(**run._kernel_args(np.zeros(0, np.int64), np.zeros(0)))
    run.run_epoch(np.random.default_rng(7))  # _train's first shuffle
    _train(ref, X, Y, get_loss("half_sse"), entry=False, epochs=1)
    for a, b in zip(net.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_cache_is_written_once_and_loaded(fresh_cache, rng):
    folder, builds = fresh_cache
    entry = native.online_entry(2, np.float64)
    files = sorted(p.name for p in folder.iterdir())
    assert builds == [("online", 2, "float64")] and len(files) == 1 and files[0].endswith(".nbx")
    assert native.online_entry(2, np.float64) is entry  # once per process
    native._entries.clear()  # as in a new process
    loaded = native.online_entry(2, np.float64)
    assert builds == [("online", 2, "float64")] and loaded is not entry
    _works(loaded, rng)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other key"])
def test_damaged_or_foreign_cache_file_is_rebuilt(fresh_cache, rng, damage):
    folder, builds = fresh_cache
    native.online_entry(2, np.float64)
    (path,) = folder.iterdir()
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a pickle")
    elif damage == "truncated":
        path.write_bytes(data[:len(data) // 2])
    else:
        import pickle

        saved = pickle.loads(data)
        saved["key"] = "0" * 64
        path.write_bytes(pickle.dumps(saved))
    native._entries.clear()
    entry = native.online_entry(2, np.float64)
    assert len(builds) == 2
    _works(entry, rng)
    assert path.read_bytes() == data  # replaced by a good file
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_cache_file_others_may_write_is_not_loaded(fresh_cache, rng):
    # Loading a file runs its machine code: one that others could have written is rebuilt.
    folder, builds = fresh_cache
    native.online_entry(2, np.float64)
    (path,) = folder.iterdir()
    assert native.trusted(str(path))
    path.chmod(0o666)
    assert not native.trusted(str(path))
    native._entries.clear()
    _works(native.online_entry(2, np.float64), rng)
    assert len(builds) == 2 and native.trusted(str(path))  # replaced by this user's own file


def test_unwritable_cache_still_gives_an_entry(fresh_cache, rng, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocker))  # its "backprop" folder cannot be made
    entry = native.online_entry(2, np.float64)
    assert entry is not None
    _works(entry, rng)


def test_build_failure_falls_back_to_the_dispatcher(fresh_cache, rng, monkeypatch):
    def broken(kind, depth, dtype):
        raise RuntimeError("no compiler today")

    monkeypatch.setattr(native, "_build", broken)
    assert native.online_entry(2, np.float64) is None
    net, ref = _network(2, np.float64), _network(2, np.float64)
    X, Y = _data(rng, net)
    net.fit(X, Y, epochs=2, batch_size=1, optimizer=SGD(0.1), seed=1)
    ref.fit(X, Y, epochs=2, batch_size=1, optimizer=SGD(0.1), seed=1, fast=False)
    for a, b in zip(net.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_key_follows_what_the_code_depends_on(monkeypatch):
    base = native.cache_key("online", 3, np.float64)
    assert native.cache_key("online", 3, np.float64) == base
    assert native.cache_key("online", 3, np.float32) != base
    assert native.cache_key("online", 2, np.float64) != base
    monkeypatch.setenv("NUMBA_OPT", "1")
    assert native.cache_key("online", 3, np.float64) != base
    monkeypatch.delenv("NUMBA_OPT")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/elsewhere")  # where it is kept is not what it is
    assert native.cache_key("online", 3, np.float64) == base


def test_online_source_builds_the_runners_views():
    # The generated entry reads the layers' sizes and offsets where meta_array writes them, and
    # each array's shape where a Call writes it.
    net = _network(3, np.float64)
    lay = runner._Layout(net, 1)
    meta = native.meta_array(lay)
    source = native.online_source(3)
    assert len(meta) == 5 * 3 + 2
    assert list(meta[:4]) == list(lay.sizes) and meta[4 + 2] == lay.w_off[2]
    assert meta[4 + 3 + 2] == lay.b_off[2] and meta[4 + 6 + 3] == lay.a_off[3]
    assert meta[4 + 6 + 4 + 2] == lay.z_off[2]
    # last W from its offset and the sizes of its two layers; X from shapes 0 and 1, Y from 2, 3
    assert "P[meta[6]:meta[6] + meta[2] * meta[3]].reshape((meta[3], meta[2]))" in source
    assert "(P[meta[9]:meta[9] + meta[3]] if meta[9] >= 0 else P[0:0])" in source
    assert "X = carray(X_p, (shapes[0], shapes[1]))" in source
    assert "Y = carray(Y_p, (shapes[2], shapes[3]))" in source
    assert "from_logits = from_logits_i != 0" in source


CHILD = r"""
import json, sys
sys.path.insert(0, {src!r})
import numpy as np
from backprop import SGD, Network
net = Network.from_sizes([8, 6, 5, 4], activation="sigmoid", seed=1)
rng = np.random.default_rng(0)
X, Y = rng.random((40, 8)), rng.random((40, 4))
net.fit(X, Y, epochs=3, batch_size=1, optimizer=SGD(0.3), shuffle=False)
big = Network.from_sizes([64, 64, 4], activation="relu", seed=2)
big.fit(np.tile(X, (1, 8)), Y, epochs=2, batch_size=32, optimizer=SGD(0.1, momentum=0.9), seed=0)
predicted = big.predict(np.random.default_rng(1).random((2100, 64)))  # chunked: > PREDICT_CHUNK rows
from backprop.fast import native
print(json.dumps({{"arraymath": "numba.np.arraymath" in sys.modules,
                  "post": [k[0] for k, v in native._entries.items() if v is not None],
                  "predicted": predicted.ravel().tolist(),
                  "scipy_linalg": "scipy.linalg" in sys.modules,
                  "weights": [w.ravel().tolist() for w in net.get_weights()],
                  "batches": [w.ravel().tolist() for w in big.get_weights()]}}))
"""


def test_second_process_loads_the_entries_without_numbas_setup(tmp_path):
    # The first process compiles and saves both training entries (per sample; batches of 32 with
    # BLAS products) and, with them, inference's post-product entry; the second loads the saved
    # code, never sets up numba's compiler target, trains to the same weights as the first and
    # as numpy, and predicts a large batch through the saved post-product entry, with the
    # outputs of the reference forward pass.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    env.pop("BACKPROP_FAST", None)
    runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD.format(src=SRC)], env=env, check=True,
                                      capture_output=True, text=True).stdout) for _ in range(2)]
    assert runs[0]["arraymath"] and not runs[1]["arraymath"]
    if blas.gemm_address(np.float64):  # the products call numpy's gemm, not SciPy's BLAS
        assert not runs[1]["scipy_linalg"]
    assert len(list((tmp_path / "backprop").glob("*.nbx"))) == 3
    assert "post" in runs[1]["post"]
    assert runs[0]["weights"] == runs[1]["weights"] and runs[0]["batches"] == runs[1]["batches"]
    net = Network.from_sizes([8, 6, 5, 4], activation="sigmoid", seed=1)
    rng = np.random.default_rng(0)
    X, Y = rng.random((40, 8)), rng.random((40, 4))
    net.fit(X, Y, epochs=3, batch_size=1, optimizer=SGD(0.3), shuffle=False, fast=False)
    big = Network.from_sizes([64, 64, 4], activation="relu", seed=2)
    big.fit(np.tile(X, (1, 8)), Y, epochs=2, batch_size=32, optimizer=SGD(0.1, momentum=0.9), seed=0,
            fast=False)
    for ours, ref in zip(runs[1]["weights"] + runs[1]["batches"], net.get_weights() + big.get_weights()):
        np.testing.assert_allclose(ours, ref.ravel(), rtol=1e-12, atol=1e-15)
    Xp = np.random.default_rng(1).random((2100, 64))
    np.testing.assert_allclose(runs[1]["predicted"], big.forward(Xp).ravel(), rtol=1e-12, atol=1e-15)
