"""Chunked inference (backprop.fast.forward, behind Network.predict for large batches).

Oracle: the reference forward pass (``Network.forward``, layer by layer in numpy). The chunked
forward must give its outputs with either post-product step (numpy, or the compiled kernels), and
must reject exactly the inputs the reference check rejects (``check_finite``, same message),
although it checks them through the first product's sums instead of a pass over X.
"""

import subprocess
import sys

import numpy as np
import pytest

import backprop.fast.forward as fwd
import backprop.network as network_module
from backprop import BackpropError, Dense, Network
from backprop import fast

pytest.importorskip("numba")

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]


def _net(activation="relu", output="softmax", dtype=np.float64, sizes=(5, 40, 30, 3)):
    return Network.from_sizes(list(sizes), activation=activation, output_activation=output, seed=1,
                              dtype=dtype)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(network_module, "PREDICT_CHUNK", 16)


@pytest.fixture(scope="module")
def saved_post():
    """The post-product entries, saved (a fit on the fast path saves them)."""
    from backprop.fast import native

    entries = {np.dtype(t).name: native.entry("post", 0, t) for t in (np.float64, np.float32)}
    assert all(entries.values())
    return entries


@pytest.fixture(params=[1, 3], ids=["1 worker", "3 workers"])
def workers(request, monkeypatch):
    """What ``forward_chunked`` reads as BLAS's threads, hence its workers (with 16-row chunks
    and 50 rows, 3 workers take the chunks at rows 0 and 48, 16, and 32)."""
    from backprop.fast import threads

    monkeypatch.setattr(threads, "blas_thread_count", lambda: request.param)
    return request.param


MODES = [False, True, "native"]
MODE_IDS = ["numpy", "compiled", "native"]


@pytest.fixture(params=MODES, ids=MODE_IDS)
def compiled(request):
    if request.param == "native":
        request.getfixturevalue("saved_post")
    return request.param


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("workers", [1, 3])
def test_every_activation_matches_forward(rng, activation, compiled, workers):
    # Hidden and output activations, chunk smaller than n and not dividing it (last chunk short).
    X = rng.standard_normal((50, 5))
    net = _net(activation, output=activation)
    got = fwd.forward_chunked(net, X, 16, compiled=compiled, workers=workers)
    np.testing.assert_allclose(got, net.forward(X), rtol=1e-12, atol=1e-15)


def test_float32_and_layer_without_bias(rng, compiled):
    net = Network([Dense(5, 7, activation="relu", dtype=np.float32, seed=3),
                   Dense(7, 3, activation="softmax", use_bias=False, dtype=np.float32, seed=4)])
    X = rng.standard_normal((40, 5)).astype(np.float32)
    got = fwd.forward_chunked(net, X, 16, compiled=compiled)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, net.forward(X), rtol=1e-6, atol=1e-7)


def test_public_predict_matches_forward(rng):
    X = rng.standard_normal((50, 5))
    net = _net()
    np.testing.assert_allclose(fast.predict(net, X, chunk=16), net.forward(X), rtol=1e-12, atol=1e-15)


def test_network_predict_chunks_large_batches(rng, small_chunks, monkeypatch):
    # More rows than PREDICT_CHUNK go through the chunked forward; smaller batches do not.
    X = rng.standard_normal((50, 5))
    net = _net("tanh")
    calls = []
    original = fwd.forward_chunked
    monkeypatch.setattr(fwd, "forward_chunked", lambda *a, **k: calls.append(1) or original(*a, **k))
    np.testing.assert_allclose(net.predict(X), net.forward(X), rtol=1e-12, atol=1e-15)
    assert calls == [1]
    net.predict(X[:16])
    assert calls == [1]


def _reference_error(X):
    with pytest.raises(BackpropError) as info:
        _net().predict(X[:10] if len(X) > 10 else X)
    return str(info.value)


def _choose(monkeypatch, mode, saved_post=None):
    """Make the automatic choice (``_post_kind``) pick ``mode`` (False, True or "native")."""
    monkeypatch.setattr(fwd, "kernels_loaded", lambda: mode is True)
    monkeypatch.setattr(fwd, "_saved_post_entry",
                        lambda dtype: saved_post[np.dtype(dtype).name] if mode == "native" else None)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row", [0, 17, 49])  # first chunk, a middle one, the short last one
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_bad_input_rejected_with_the_reference_message(rng, small_chunks, monkeypatch, saved_post, workers,
                                                       bad, row, mode):
    # -inf matters most: relu turns it into 0, so only a check before the activation sees it.
    _choose(monkeypatch, mode, saved_post)
    X = rng.standard_normal((50, 5))
    X[row, 3] = bad
    with pytest.raises(BackpropError) as info:
        _net().predict(X)
    message = str(info.value)
    assert message.startswith("`X` must contain only finite numbers")
    assert f"at index ({row}, 3)" in message
    with pytest.raises(BackpropError) as small:
        _net().predict(X[row:row + 1])  # the reference path's check, on that row alone
    assert str(small.value).replace("(0, 3)", f"({row}, 3)") == message


def test_bad_input_found_even_when_blas_skips_zero_weights(rng, small_chunks, monkeypatch):
    # A BLAS may skip a zero weight, and then inf * 0 never happens. When a row of W1 is all zero,
    # X itself is checked instead. Simulated here by a product that skips zero weights.
    net = _net()
    net.layers[0].params["W"][2] = 0.0
    X = rng.standard_normal((50, 5))
    X[20, 2] = np.inf
    matmul = np.matmul

    def skipping_zeros(A, W, out):
        A = np.where((W != 0).any(axis=1), A, 0.0)
        return matmul(A, W, out=out)

    monkeypatch.setattr(np, "matmul", skipping_zeros)
    with pytest.raises(BackpropError, match=r"at index \(20, 2\)"):
        net.predict(X)


def test_non_finite_weights_fall_back_to_checking_x(rng, small_chunks):
    # A diverged first layer makes every X W sum NaN; X is then checked once, up front, and the
    # outputs are what the reference forward gives.
    net = _net()
    net.layers[0].params["W"][0, 0] = np.nan
    X = rng.standard_normal((50, 5))
    np.testing.assert_array_equal(np.isnan(net.predict(X)), np.isnan(net.forward(X)))
    X[30, 1] = np.nan
    with pytest.raises(BackpropError, match=r"at index \(30, 1\)"):
        net.predict(X)


@pytest.mark.parametrize("sizes", [(5, 40, 30, 3), (5, 1024, 3)], ids=["narrow", "wide"])
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_overflow_is_not_mistaken_for_bad_input(small_chunks, monkeypatch, saved_post, workers, mode,
                                                sizes):
    # Finite inputs whose products overflow float32: no error, the reference's outputs. The
    # overflowing rows sit among ordinary ones, and the biases are not zero: a step that added
    # the bias twice to some rows (before its check failed, and again after X was found finite)
    # would show. With 1024 units, the compiled step's blocks are 4 rows: it stops mid-chunk.
    _choose(monkeypatch, mode, saved_post)
    net = _net("relu", "identity", dtype=np.float32, sizes=sizes)
    for layer in net.layers:
        layer.params["b"][:] = 0.25
    X = np.random.default_rng(0).standard_normal((50, 5)).astype(np.float32)
    X[9] = 3e38  # in the first chunk's third block of 4 rows (wide)
    X[40] = -3e38
    with np.errstate(over="ignore", invalid="ignore"):
        got = net.predict(X)
        want = net.forward(X)
    assert not np.all(np.isfinite(want)) and np.isfinite(want[:9]).all()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("workers", [1, 2])
def test_saved_entry_only_once_this_process_has_loaded_one(monkeypatch, saved_post, workers):
    # After a fit on the fast path (a saved entry loaded: numba's runtime is up), predictions use
    # the saved post-product entry; before, numpy (loading numba would cost more than it saves).
    # Each worker thread binds its own steps to the entry.
    from backprop.fast import native

    monkeypatch.setattr(fwd, "kernels_loaded", lambda: False)
    net = _net()
    monkeypatch.setattr(native, "any_loaded", lambda: False)
    assert fwd._saved_post_entry(np.float64) is None
    monkeypatch.setattr(native, "any_loaded", lambda: True)
    assert fwd._saved_post_entry(np.float64) is saved_post["float64"]
    used = []
    original = fwd._native_post
    monkeypatch.setattr(fwd, "_native_post", lambda layer, entry: used.append(entry) or original(layer, entry))
    X = np.random.default_rng(0).standard_normal((50, 5))
    out = fwd.forward_chunked(net, X, 16, workers=workers)
    np.testing.assert_allclose(out, net.forward(X), rtol=1e-12, atol=1e-15)
    assert used == [saved_post["float64"]] * len(net.layers) * workers
    monkeypatch.setenv(fast.ENV_SWITCH, "0")
    fwd.forward_chunked(net, X, 16, workers=workers)
    assert len(used) == len(net.layers) * workers


def test_compiled_only_when_kernels_already_loaded(rng, monkeypatch):
    # Predicting never loads the kernels itself (numba's import costs more than it saves), and
    # BACKPROP_FAST=0 keeps numpy even when they are loaded.
    used = []
    original = fwd._compiled_post
    monkeypatch.setattr(fwd, "_compiled_post", lambda layer: used.append(1) or original(layer))
    X = rng.standard_normal((50, 5))
    net = _net()
    monkeypatch.setattr(fwd, "kernels_loaded", lambda: False)
    fwd.forward_chunked(net, X, 16)
    assert used == []
    monkeypatch.setattr(fwd, "kernels_loaded", lambda: True)
    monkeypatch.setenv(fast.ENV_SWITCH, "0")
    fwd.forward_chunked(net, X, 16)
    assert used == []
    monkeypatch.delenv(fast.ENV_SWITCH)
    fwd.forward_chunked(net, X, 16, workers=1)
    assert len(used) == len(net.layers)


def test_kernels_loaded_means_numba_has_loaded_one():
    # Importing the kernels is not enough (a fit through native.py imports them without setting
    # up numba's compiler target); one loaded through its dispatcher is.
    code = ("import numpy as np; from backprop.fast import forward as f; print(f.kernels_loaded()); "
            "from backprop.fast import kernels as k; print(f.kernels_loaded()); "
            "z = np.zeros(3); k.dense_forward_rows(0, 0.0, z, z[:0], z.copy(), 1, 3, True); "
            "print(f.kernels_loaded())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_rows_stop_at_the_first_block_that_is_not_finite(dtype):
    # Oracle: numpy's A = relu(Z + b). 1024 columns make blocks of 4 rows; a NaN in row 21 stops
    # the step at row 20: rows 0-19 done, the others untouched; without the check, all done.
    from backprop.fast import kernels

    m, n = 50, 1024
    assert kernels.FORWARD_BLOCK // n == 4
    Z0 = np.random.default_rng(0).standard_normal((m, n)).astype(dtype)
    Z0[21, 7] = np.nan
    b = np.linspace(-1, 1, n).astype(dtype)
    want = np.maximum(Z0 + b, 0)
    for check, done in ((True, 20), (False, m)):
        Z, A = Z0.copy(), np.full((m, n), -7.0, dtype)
        got = kernels.dense_forward_rows(kernels.RELU, 0.0, Z.reshape(-1), b, A.reshape(-1), m, n, check)
        assert got == done
        np.testing.assert_array_equal(A[:done], want[:done])
        np.testing.assert_array_equal(Z[:done], Z0[:done] + b)
        assert (A[done:] == -7.0).all()
        np.testing.assert_array_equal(Z[done:], Z0[done:])


def test_compiled_relu_keeps_numpy_semantics():
    # NaN stays NaN and -0.0 becomes +0.0, as np.maximum(Z, 0) does, bit for bit.
    from backprop.fast import kernels

    Z = np.array([-0.0, 0.0, np.nan, -1.5, 2.5, -np.inf, np.inf] * 3)
    out = np.empty_like(Z)
    kernels.dense_forward_rows(kernels.RELU, 0.0, Z.copy(), np.zeros(0), out, 3, 7, False)
    want = np.maximum(Z, 0)
    np.testing.assert_array_equal(out, want)
    assert not np.signbit(out).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_finite_check_of_a_block(dtype):
    # Oracle: np.isfinite. The step's check (``kernels._finite``) on one row of 37 values, so one
    # block: finite values whose sum would overflow count as finite (the row is done: 1); a bad
    # value anywhere (also in the loop's scalar remainder, the last entries) is found (0 done).
    from backprop.fast import kernels

    def rows_done(z):
        return kernels.dense_forward_rows(kernels.IDENTITY, 0.0, z, z[:0], np.empty_like(z), 1, 37, True)

    big = np.full(37, np.finfo(dtype).max, dtype)
    assert rows_done(big.copy()) == 1
    for bad in (np.nan, np.inf, -np.inf):
        for where in (0, 17, 36):
            a = big.copy()
            a[where] = bad
            assert rows_done(a) == 0


def test_fit_on_the_fast_path_rejects_bad_x_before_training(rng):
    from backprop import SGD

    X = rng.standard_normal((1100, 64))
    X[1099, 5] = np.nan
    Y = rng.standard_normal((1100, 2))
    net = Network.from_sizes([64, 8, 2], seed=0)
    before = net.get_weights()
    with pytest.raises(BackpropError, match=r"`X` must contain only finite numbers.*\(1099, 5\)"):
        net.fit(X, Y, epochs=1, batch_size=1, optimizer=SGD(0.1), fast=True)
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- chunks in threads of their own -----------------------------------------------------------------
def _blas_threads():
    from backprop.fast import threads

    return [lib.num_threads for lib in threads.controller().select(user_api="blas").lib_controllers]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_workers_give_the_outputs_of_one_thread_in_turn(saved_post, dtype, mode):
    # The oracle: the same chunks one after the other, each product on one BLAS thread. The
    # workers must give that, whichever of them takes which chunk, to rounding: in float64 a few
    # entries differ in their last bit between two runs of the same chunks (numpy's and OpenBLAS's
    # vector code can take other paths for buffers at other addresses), where a chunk written to
    # the wrong rows or a product on stale rows would be off by far more.
    from backprop.fast.threads import one_blas_thread

    net = _net("tanh", sizes=(64, 96, 48, 10), dtype=dtype)
    X = np.random.default_rng(5).standard_normal((1000, 64)).astype(dtype)
    with one_blas_thread():
        want = fwd.forward_chunked(net, X, 64, compiled=mode, workers=1)
    before = _blas_threads()
    for workers in (2, 3, 16):  # 16 chunks: 16 workers take one each
        got = fwd.forward_chunked(net, X, 64, compiled=mode, workers=workers)
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=0)
    assert _blas_threads() == before
    np.testing.assert_allclose(want, net.forward(X), rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-15)


def test_workers_follow_blas_threads_and_cut_small_batches_finer(monkeypatch):
    # None: one worker per thread BLAS may use; each worker gets chunks even when the batch is
    # smaller than workers x chunk.
    from backprop.fast import threads

    net = _net()
    X = np.random.default_rng(0).standard_normal((50, 5))
    calls = []
    original = fwd._forward_rows
    monkeypatch.setattr(fwd, "_forward_rows",
                        lambda net, kind, X, out, rows, starts, check: calls.append((rows, list(starts)))
                        or original(net, kind, X, out, rows, starts, check))
    for blas, want in [(1, [(2048, [0])]), (2, [(25, [0]), (25, [25])]),
                       (3, [(17, [0]), (17, [17]), (17, [34])])]:
        monkeypatch.setattr(threads, "blas_thread_count", lambda blas=blas: blas)
        calls.clear()
        np.testing.assert_allclose(fwd.forward_chunked(net, X, 2048), net.forward(X), rtol=1e-12,
                                   atol=1e-15)
        assert sorted(calls) == sorted([(min(rows, 50), starts) for rows, starts in want])


@pytest.mark.parametrize("workers", [None, 1, 3])
def test_empty_batch_gives_empty_outputs(workers):
    net = _net()
    out = fwd.forward_chunked(net, np.zeros((0, 5)), 16, workers=workers)
    assert out.shape == (0, 3)


def test_blas_threads_restored_after_a_bad_input_in_a_worker(rng, small_chunks, workers):
    X = rng.standard_normal((50, 5))
    X[33, 1] = np.nan  # in the chunk at row 32
    before = _blas_threads()
    with pytest.raises(BackpropError, match=r"at index \(33, 1\)"):
        _net().predict(X)
    assert _blas_threads() == before


def test_overlapping_limits_restore_blas_threads():
    # Two uses that overlap in two threads (A enters, B enters, A leaves, B leaves): BLAS stays on
    # one thread until B leaves, then gets its threads back. A limit per use would note one
    # thread when B enters and restore that.
    import threading

    from backprop.fast.threads import blas_thread_count, controller, one_blas_thread

    before = _blas_threads()
    with controller().limit(limits=2, user_api="blas"):
        start = _blas_threads()
        a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
        seen = []

        def a():
            with one_blas_thread():
                a_in.set()
                b_in.wait()
            a_out.set()

        def b():
            a_in.wait()
            with one_blas_thread():
                b_in.set()
                a_out.wait()
                seen.append(blas_thread_count())

        threads = [threading.Thread(target=a), threading.Thread(target=b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert seen == [1]
        assert _blas_threads() == start
    assert _blas_threads() == before


def test_blas_held_to_one_thread_while_workers_run(monkeypatch):
    from backprop.fast import threads

    with threads.controller().limit(limits=2, user_api="blas"):
        if threads.blas_thread_count() < 2:
            pytest.skip("BLAS cannot have two threads here")
        seen = []
        original = fwd._forward_rows
        monkeypatch.setattr(fwd, "_forward_rows",
                            lambda *args: seen.append(threads.blas_thread_count()) or original(*args))
        net = _net()
        X = np.random.default_rng(0).standard_normal((50, 5))
        np.testing.assert_allclose(fwd.forward_chunked(net, X, 16), net.forward(X), rtol=1e-12, atol=1e-15)
        assert seen == [1, 1]  # two workers, each with BLAS on one thread
        assert threads.blas_thread_count() == 2
        seen.clear()
        with threads.one_blas_thread():
            fwd.forward_chunked(net, X, 16)
        assert seen == [1]  # BLAS on one thread already: one worker
