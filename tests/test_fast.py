"""The compiled fast path (backprop.fast) against the numpy reference path of fit.

The oracle is the numpy path (itself checked by gradchecks and golden steps elsewhere): the same
network, data, shuffling and optimizer must give the same weights and per-epoch losses to 1e-12
in float64 for every activation, loss and optimizer the kernel supports.
"""

import numpy as np
import pytest

from backprop import SGD, BackpropError, Callback, Dense, EarlyStopping, Network
from backprop import fast

pytest.importorskip("numba")

from fast_parity import (ACTIVATIONS, LOSS_CASES, OPTIMIZERS, RTOL,  # noqa: E402
                         _assert_same, _both, _data)


@pytest.fixture(params=["compiled", "numpy"])
def runner(request):
    """Which fast runner a test exercises: the compiled kernels (chosen by default for these
    small networks) or the numpy batch runner (forced by the ``numpy_runner`` fixture)."""
    if request.param == "numpy":
        request.getfixturevalue("numpy_runner")
    return request.param


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batch_size", [1, 4])
def test_activations_match_numpy(runner, rng, activation, batch_size):
    # Every hidden/output activation gives the numpy path's weights (per-sample and mini-batch),
    # on both fast runners.
    X, Y = _data(rng)
    act = {"name": "leaky_relu", "negative_slope": 0.1} if activation == "leaky_relu" else activation
    make = lambda: Network.from_sizes([5, 7, 6, 3], activation=act, seed=3)  # noqa: E731
    _assert_same(*_both(make, X, Y, epochs=3, batch_size=batch_size, seed=1))


@pytest.mark.parametrize("loss,kind,out_act", LOSS_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_losses_match_numpy(rng, loss, kind, out_act, reduction):
    # Every loss, both reductions, with a mini-batch that does not divide n (last batch short).
    from backprop import get_loss

    X, Y = _data(rng, kind=kind)
    make = lambda: Network.from_sizes([5, 8, 3], activation="tanh", output_activation=out_act,  # noqa: E731
                                      loss=get_loss(loss, reduction=reduction), seed=4)
    _assert_same(*_both(make, X, Y, epochs=3, batch_size=5, seed=2, lr=None))


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("batch_size", [1, 6])
def test_optimizers_match_numpy(rng, make_optimizer, batch_size):
    # SGD variants and Adam, with schedules, keep the same weights and the same optimizer state.
    X, Y = _data(rng)
    make = lambda: Network.from_sizes([5, 6, 3], activation="sigmoid", seed=5)  # noqa: E731
    # _assert_same compares the optimizers' step counts and state slots too
    _assert_same(*_both(make, X, Y, epochs=4, batch_size=batch_size, seed=3, make_optimizer=make_optimizer))


def test_digits_network_1e12_and_shuffling(rng):
    # Seed 003's 64-32-16-10 sigmoid network, per-sample shuffled SGD: 1e-12 after 3 epochs.
    from backprop.datasets import load_digits, one_hot

    X, y = load_digits()
    X, Y = X[:300], one_hot(y[:300], 10)
    make = lambda: Network.from_sizes([64, 32, 16, 10], activation="sigmoid", seed=42)  # noqa: E731
    nets, hists, opts = _both(make, X, Y, epochs=3, batch_size=1, seed=42)
    _assert_same(nets, hists, opts)
    # a different shuffling seed gives different weights: the order really is the rng's
    other = make()
    other.fit(X, Y, epochs=3, batch_size=1, lr=0.1, seed=43, fast=True)
    assert not np.allclose(other.parameters()[0], nets[1].parameters()[0], rtol=1e-6)


def test_unshuffled_and_blas_sized_batches(rng):
    # shuffle=False, and batches big enough that the kernel calls BLAS for the products.
    X, Y = _data(rng, n=150, d=40, k=10, kind="onehot")
    make = lambda: Network.from_sizes([40, 64, 10], activation="relu", output_activation="softmax",  # noqa: E731
                                      loss="softmax_cross_entropy", seed=6)
    _assert_same(*_both(make, X, Y, epochs=3, batch_size=64, shuffle=False,
                        make_optimizer=lambda: SGD(0.05, momentum=0.9)))


def test_frozen_and_missing_biases(rng):
    # A frozen bias is used in the forward pass but never changed; use_bias=False works too.
    X, Y = _data(rng)

    def make():
        return Network([Dense(5, 4, "sigmoid", bias_init=0.35, trainable_bias=False, seed=1),
                        Dense(4, 3, "sigmoid", use_bias=False, seed=2)])

    nets, hists, opts = _both(make, X, Y, epochs=3, batch_size=1, seed=0)
    _assert_same(nets, hists, opts)
    np.testing.assert_array_equal(nets[1].layers[0].params["b"], 0.35)


def test_sample_weights(rng):
    # Sample weights scale gradients and losses the same way on both paths.
    X, Y = _data(rng)
    w = rng.random(len(X)) + 0.5
    make = lambda: Network.from_sizes([5, 6, 3], activation="tanh", seed=7)  # noqa: E731
    _assert_same(*_both(make, X, Y, epochs=3, batch_size=4, seed=1, sample_weight=w))


def test_float32_is_float32_and_close(rng):
    # float32 networks train in float32 end to end and stay close to the numpy float32 path.
    X, Y = _data(rng)
    make = lambda: Network.from_sizes([5, 6, 3], activation="sigmoid", seed=8, dtype=np.float32)  # noqa: E731
    nets, hists, opts = _both(make, X, Y, epochs=3, batch_size=2, seed=1)
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert q.dtype == np.float32
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)


def test_validation_and_early_stopping_still_run(rng):
    # Epoch-level callbacks and validation logs are the same on the fast path.
    X, Y = _data(rng)
    make = lambda: Network.from_sizes([5, 6, 3], activation="sigmoid", seed=9)  # noqa: E731
    nets, hists, opts = _both(make, X, Y, epochs=6, batch_size=3, seed=1, validation_data=(X, Y),
                              callbacks=[EarlyStopping(patience=50)])
    _assert_same(nets, hists, opts)
    np.testing.assert_allclose(hists[1].val_loss, hists[0].val_loss, rtol=RTOL)


def test_predict_kernel_matches_numpy(rng):
    # The chunked compiled forward gives the numpy forward's outputs (chunk smaller than n).
    X = rng.standard_normal((50, 5))
    net = Network.from_sizes([5, 40, 30, 3], activation="relu", output_activation="softmax", seed=1)
    np.testing.assert_allclose(fast.predict(net, X, chunk=16), net.predict(X), rtol=1e-12, atol=1e-15)


class _PerBatch(Callback):
    def on_batch_end(self, state):
        pass


def test_selection_rule(rng, monkeypatch):
    # Auto mode falls back where the kernel does not apply; fast=True then says why; the
    # environment switch turns auto mode off.
    net = Network.from_sizes([2, 3, 1], seed=0)
    loss, opt = net.loss_fn, SGD(0.1)
    assert fast.use_fast_path(None, net, loss, opt)
    assert not fast.use_fast_path(None, net, loss, opt, [_PerBatch()])
    with pytest.raises(BackpropError, match="on_batch_end"):
        fast.use_fast_path(True, net, loss, opt, [_PerBatch()])
    with pytest.raises(BackpropError, match="`fast` must be"):
        fast.use_fast_path("yes", net, loss, opt)
    monkeypatch.setenv(fast.ENV_SWITCH, "0")
    assert not fast.use_fast_path(None, net, loss, opt)
    assert fast.use_fast_path(True, net, loss, opt)


def test_fast_true_errors_on_unsupported_optimizer(rng):
    # An optimizer the kernel does not know: fast=True raises, fast=None trains with numpy.
    class MySGD(SGD):
        pass

    X, Y = _data(rng, k=1)
    net = Network.from_sizes([5, 3, 1], seed=0)
    with pytest.raises(BackpropError, match="fast=True"):
        net.fit(X, Y, epochs=1, optimizer=MySGD(0.1), fast=True)
    net.fit(X, Y, epochs=1, optimizer=MySGD(0.1))


def test_per_batch_callback_uses_numpy_path(rng):
    # A callback with on_batch_end still sees every batch (auto mode picks the numpy path).
    class Count(Callback):
        n = 0

        def on_batch_end(self, state):
            Count.n += 1

    X, Y = _data(rng, n=10)
    Network.from_sizes([5, 3, 3], seed=0).fit(X, Y, epochs=2, batch_size=3, callbacks=[Count()])
    assert Count.n == 8


def test_compile_notice_is_logged_once(caplog):
    # The first compilation in a process is announced on the backprop.fast logger (never printed).
    import logging

    from numba.core import event

    caplog.set_level(logging.INFO, logger="backprop.fast")
    fast.available()
    # simulate numba starting to compile one of our kernels
    from backprop.fast import kernels

    listeners = [l for l in event._registered["numba:compile"] if type(l).__name__ == "_Notice"]
    assert listeners
    listeners[0].said = False
    ev = event.Event("numba:compile", event.EventStatus.START, data={"dispatcher": kernels.train_epoch})
    listeners[0].on_start(ev)
    listeners[0].on_start(ev)
    assert [r.getMessage() for r in caplog.records].count(fast.COMPILING_MESSAGE) == 1


def test_kernels_ask_only_for_options_numba_knows():
    # An option numba does not know fails only at the first compilation (KeyError), so the
    # kernels check before asking for LLVM inlining. Oracle: numba's own option table.
    from backprop.fast import kernels

    assert kernels._numba_knows("fastmath")
    assert not kernels._numba_knows("no_such_option")
    assert kernels.INLINE in ({"forceinline": True}, {})
