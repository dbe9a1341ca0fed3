"""The conv kernels through their saved machine code (backprop.fast.native: conv_epoch and
conv_forward entries).

Oracles: the numba dispatcher of the same kernels (``conv.train_conv_epoch``, reached when the
entry is refused, and ``conv.forward_conv``), the numpy reference path of fit (fast=False) and
the numpy layers' forward pass; a fresh process with an empty numba cache shows what a second run
loads (numba's compiler target left unset: ``numba.np.arraymath`` never imported).
"""

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop import SGD, Adam, AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Network, fit
from backprop.optimizers import InverseScaling

pytest.importorskip("numba")

from backprop.fast import blas, conv, kernels, native  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")
KINDS = ("conv_epoch", "conv_forward")


def _geometry(name, dtype=np.float64):
    """Small conv networks over every layer kind the kernel compiles, strides and paddings."""
    if name == "pad-fused-avg":  # ReLU conv into a tiling max pool (fused), stride 2, avg pool
        layers = [Conv2D(2, 3, 3, padding=1, activation="relu", seed=1, dtype=dtype), MaxPool2D(2),
                  Conv2D(3, 4, 3, stride=2, padding=1, activation="tanh", seed=2, dtype=dtype),
                  AvgPool2D(2, stride=1), Flatten()]
        shape = (2, 9, 8)
    elif name == "strided-overlapping":  # non-square kernel and strides, overlapping max pool
        layers = [Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(2, 0), activation="sigmoid", seed=1,
                         dtype=dtype), MaxPool2D(3, stride=(2, 1)), Flatten()]
        shape = (2, 9, 8)
    else:  # "blas": products large enough for numpy's gemm by address, in blocks
        layers = [Conv2D(2, 4, 3, padding=1, activation="relu", seed=1, dtype=dtype), MaxPool2D(2),
                  Conv2D(4, 8, 3, padding=1, activation="relu", seed=2, dtype=dtype), MaxPool2D(2),
                  Flatten()]
        shape = (2, 12, 10)
    flat = Network(layers, input_shape=shape).layers[-1].output_shape[0]
    return Network(layers + [Dense(flat, 6, activation="relu", seed=3, dtype=dtype),
                             Dense(6, 3, activation="identity", seed=4, dtype=dtype)],
                   loss="softmax_cross_entropy", input_shape=shape)


def _data(name, n=29, dtype=np.float64, seed=0):
    shape = (2, 12, 10) if name == "blas" else (2, 9, 8)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *shape)).astype(dtype)
    return X, np.eye(3, dtype=dtype)[rng.integers(0, 3, n)]


OPTIMIZERS = {"nesterov-decay": lambda: SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
              "adam-schedule": lambda: Adam(InverseScaling(0.01, power_t=0.5))}


def _count_calls(patch) -> list:
    """The kinds of the entries called from now on (``patch``: a monkeypatch), in order."""
    calls = []
    original = native.Call.__call__
    patch.setattr(native.Call, "__call__",
                  lambda self, **a: calls.append(self.entry.kind) or original(self, **a))
    return calls


def _fit(name, dtype, optimizer, way, monkeypatch, **kw):
    """(weights, per-epoch losses, entry calls) of 3 epochs of fit in batches of 8 (a short last
    one); ``way``: "entry" (the saved machine code), "dispatcher" (the entry refused) or
    "numpy" (fast=False)."""
    with monkeypatch.context() as m:
        calls = _count_calls(m)
        if way == "dispatcher":
            m.setattr(native, "conv_epoch_entry", lambda dtype: None)
        net = _geometry(name, dtype)
        X, Y = _data(name, dtype=dtype)
        history = fit(net, X, Y, epochs=3, batch_size=8, optimizer=OPTIMIZERS[optimizer](), seed=5,
                      fast=way != "numpy", **kw)
    return net.get_weights(), np.array(history.history["loss"]), calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,optimizer,weighted", [("pad-fused-avg", "nesterov-decay", False),
                                                     ("strided-overlapping", "adam-schedule", True),
                                                     ("blas", "adam-schedule", False)])
def test_entry_trains_to_the_dispatchers_and_numpys_weights(name, optimizer, weighted, dtype,
                                                            monkeypatch):
    # Whole training runs through the saved entry (called once per epoch and once to warm up),
    # through the numba dispatcher, and on the numpy path: the same weights and losses, 1e-12
    # between the two compiled ways and 1e-10 against numpy in float64 (float32: its rounding).
    weights = np.random.default_rng(1).uniform(0.5, 2, 29)
    kw = dict(sample_weight=weights, l2=0.01) if weighted else {}
    if name == "blas":
        assert conv.largest_gemm_macs(_geometry(name), 8) >= kernels.BLAS_MIN_MACS
    ours, l_ours, calls = _fit(name, dtype, optimizer, "entry", monkeypatch, **kw)
    ref, l_ref, none = _fit(name, dtype, optimizer, "dispatcher", monkeypatch, **kw)
    numpy_w, l_numpy, _ = _fit(name, dtype, optimizer, "numpy", monkeypatch, **kw)
    assert calls == ["conv_epoch"] * 4 and none == []
    exact, tol = (1e-12, 1e-10) if dtype == np.float64 else (1e-5, 1e-3)
    np.testing.assert_allclose(l_ours, l_ref, rtol=exact)
    np.testing.assert_allclose(l_ours, l_numpy, rtol=tol)
    for a, b, c in zip(ours, ref, numpy_w):
        assert a.dtype == dtype
        scale = max(1.0, float(np.max(np.abs(c))))
        assert np.max(np.abs(a - b)) <= exact * scale
        assert np.max(np.abs(a - c)) <= tol * scale


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["pad-fused-avg", "strided-overlapping", "blas"])
def test_forward_entry_predicts_the_layers_outputs(name, dtype, monkeypatch):
    # conv.predict through the forward entry (chunks of 64 in threads, a short last chunk) gives
    # the dispatcher's outputs and the numpy layers' forward pass.
    net = _geometry(name, dtype)
    X, _ = _data(name, n=300, dtype=dtype)
    Xc = net.prepare(X, np.zeros((300, 3)))[0]
    calls = _count_calls(monkeypatch)
    ours = conv.predict(net, Xc, chunk=64)
    assert calls and set(calls) == {"conv_forward"}
    monkeypatch.setattr(native, "conv_forward_entry", lambda dtype: None)
    ref = conv.predict(net, Xc, chunk=64)
    want = net.forward(X)
    exact, tol = (1e-12, 1e-12) if dtype == np.float64 else (1e-6, 1e-4)
    np.testing.assert_allclose(ours, ref, rtol=exact, atol=exact)
    np.testing.assert_allclose(ours, want, rtol=tol, atol=tol)


def test_batches_in_halves_stay_on_the_dispatcher():
    # The two-thread kernel (prange) has no entry: a runner in halves binds none and trains.
    from backprop.losses import get_loss

    net = _geometry("pad-fused-avg")
    X, Y = net.prepare(*_data("pad-fused-avg"))
    run = conv.ConvRunner(net, X, Y, get_loss("softmax_cross_entropy"), SGD(0.1), 8, halves=True)
    assert run._entry is None and run.halves
    assert np.isfinite(run.run_epoch(np.random.default_rng(0)))
    whole = conv.ConvRunner(net, X, Y, get_loss("softmax_cross_entropy"), SGD(0.1), 8)
    assert whole._entry is not None and not whole.halves


@pytest.fixture(scope="session")
def saved_conv_entries(tmp_path_factory):
    """A NUMBA_CACHE_DIR that holds nothing but this process's saved float64 conv entries
    (built here when missing): a process started with it has no numba cache to fall back on."""
    cache = tmp_path_factory.mktemp("numba-cache")
    (cache / "backprop").mkdir()
    for kind in KINDS:
        assert native.entry(kind, 0, np.float64) is not None
        path = native._cache_file(kind, 0, np.float64, native.cache_key(kind, 0, np.float64))
        shutil.copy(path, cache / "backprop")
    return cache


@pytest.fixture
def conv_cache(saved_conv_entries, tmp_path, monkeypatch):
    """A copy of the saved entries in a cache folder of this test's own, no entry in memory, and
    building forbidden (``builds`` records each attempt): what loads comes from the file."""
    shutil.copytree(saved_conv_entries / "backprop", tmp_path / "backprop")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_entries", {})
    builds = []

    def refused(kind, depth, dtype):
        builds.append(kind)
        raise RuntimeError("no compiler in this test")

    monkeypatch.setattr(native, "_build", refused)
    return tmp_path / "backprop", builds


def _trains_like_numpy(expect_entry: bool):
    """fit on the fast path (entry or dispatcher, as ``expect_entry``) ends with numpy's weights."""
    from backprop.losses import get_loss

    net, ref = _geometry("pad-fused-avg"), _geometry("pad-fused-avg")
    X, Y = _data("pad-fused-avg")
    Xc, Yc = net.prepare(X, Y)
    run = conv.ConvRunner(net, Xc, Yc, get_loss("softmax_cross_entropy"), SGD(0.1, momentum=0.9), 8)
    assert (run._entry is not None) is expect_entry
    fit(net, X, Y, epochs=2, batch_size=8, optimizer=SGD(0.1, momentum=0.9), seed=3, fast=True)
    fit(ref, X, Y, epochs=2, batch_size=8, optimizer=SGD(0.1, momentum=0.9), seed=3, fast=False)
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert np.max(np.abs(a - b)) <= 1e-10 * max(1.0, float(np.max(np.abs(b))))


def test_saved_entry_is_loaded_without_building(conv_cache):
    # The control for the test below: a good file loads (nothing built) and trains. Beside its
    # object code the file keeps a stub module that defines the entry's name alone (numba's
    # whole linking module took most of the load time to parse).
    folder, builds = conv_cache
    entry = native.conv_epoch_entry(np.float64)
    assert entry is not None and builds == []
    defined = [f.name for f in entry.library._shared_module.functions if not f.is_declaration]
    assert len(defined) == 1 and entry.library.get_pointer_to_function(defined[0])
    _trains_like_numpy(expect_entry=True)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other key", "others may write"])
def test_damaged_or_foreign_cache_file_falls_back_to_the_dispatcher(conv_cache, damage):
    # A file that cannot be trusted or read is never loaded; with no compiler to rebuild it the
    # runner trains through numba's dispatcher, to numpy's weights.
    folder, builds = conv_cache
    (path,) = folder.glob("train_conv_epoch-*.nbx")
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a pickle")
    elif damage == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif damage == "other key":
        saved = pickle.loads(data)
        saved["key"] = "0" * 64
        path.write_bytes(pickle.dumps(saved))
    else:
        if not hasattr(os, "getuid"):
            pytest.skip("POSIX permissions")
        path.chmod(0o666)
    assert native.conv_epoch_entry(np.float64) is None and builds == ["conv_epoch"]
    _trains_like_numpy(expect_entry=False)


def test_key_covers_the_conv_kernels_source(tmp_path, monkeypatch):
    # A change to conv.py gives the conv entries a new key (so a stale file is never loaded) and
    # leaves the dense entries' keys alone.
    here = Path(native.__file__).parent
    for name in {n for kind in native.KINDS.values() for n in kind.sources}:
        shutil.copy(here / name, tmp_path / name)
    kinds = ("conv_epoch", "conv_forward", "epoch")
    before = {k: native.cache_key(k, 0, np.float64) for k in kinds}
    monkeypatch.setattr(native, "__file__", str(tmp_path / "native.py"))
    assert {k: native.cache_key(k, 0, np.float64) for k in kinds} == before
    with open(tmp_path / "conv.py", "a") as f:
        f.write("# changed\n")
    after = {k: native.cache_key(k, 0, np.float64) for k in kinds}
    assert after["epoch"] == before["epoch"]
    assert all(after[k] != before[k] for k in ("conv_epoch", "conv_forward"))
    assert native.cache_key("conv_epoch", 0, np.float32) != before["conv_epoch"]


CHILD = r"""
import json, logging, sys
sys.path.insert(0, {src!r})
notices = []
class Keep(logging.Handler):
    def emit(self, record):
        notices.append(record.getMessage())
logging.getLogger("backprop.fast").addHandler(Keep())
logging.getLogger("backprop.fast").setLevel(logging.INFO)
import numpy as np
from backprop import Adam
from backprop.demos.cnn import build_cnn
rng = np.random.default_rng(0)
X, Y = rng.random((100, 1, 8, 8)), np.eye(10)[rng.integers(0, 10, 100)]
net = build_cnn(seed=1)
net.fit(X, Y, epochs=2, batch_size=32, optimizer=Adam(3e-3), seed=2)
predicted = net.predict(np.random.default_rng(1).random((2100, 1, 8, 8)))  # > PREDICT_CHUNK rows
from backprop.fast import native
print(json.dumps({{"arraymath": "numba.np.arraymath" in sys.modules, "notices": notices,
                  "scipy_linalg": "scipy.linalg" in sys.modules,
                  "loaded": sorted(k[0] for k, v in native._entries.items() if v is not None),
                  "weights": [w.ravel().tolist() for w in net.get_weights()],
                  "predicted": predicted.ravel().tolist()}}))
"""


def test_second_process_loads_the_conv_entries_without_numbas_setup(saved_conv_entries):
    # A process with an empty numba cache and the saved entries trains the demo's CNN (batches
    # of 32: numpy's gemm by address) and predicts 2100 images through them: it never sets up
    # numba's compiler target and never compiles (no notice), and gives the numpy path's weights
    # and the numpy layers' outputs.
    from backprop.demos.cnn import build_cnn

    env = dict(os.environ, NUMBA_CACHE_DIR=str(saved_conv_entries))
    env.pop("BACKPROP_FAST", None)
    out = subprocess.run([sys.executable, "-c", CHILD.format(src=SRC)], env=env, check=True,
                         capture_output=True, text=True, timeout=300)
    run = json.loads(out.stdout)
    assert run["loaded"] == list(KINDS) and not run["arraymath"] and run["notices"] == []
    rng = np.random.default_rng(0)
    X, Y = rng.random((100, 1, 8, 8)), np.eye(10)[rng.integers(0, 10, 100)]
    ref = build_cnn(seed=1)
    ref.fit(X, Y, epochs=2, batch_size=32, optimizer=Adam(3e-3), seed=2, fast=False)
    for ours, want in zip(run["weights"], ref.get_weights()):
        np.testing.assert_allclose(ours, want.ravel(), rtol=1e-10, atol=1e-12)
    Xp = np.random.default_rng(1).random((2100, 1, 8, 8))
    np.testing.assert_allclose(run["predicted"], ref.forward(Xp).ravel(), rtol=1e-10, atol=1e-12)
    if blas.gemm_address(np.float64):  # the products call numpy's gemm, not SciPy's BLAS
        assert not run["scipy_linalg"]
