"""The numpy batch runner (backprop.fast.batched, used for BLAS-sized batches) against the numpy
reference path of fit, and its selection.

The oracle is the reference path (Dense.forward/backward, Loss, SGD/Adam; checked by gradchecks
and golden steps elsewhere): the same network, data, shuffling and optimizer must give the same
weights, optimizer state and per-epoch losses to 1e-12 in float64. The runner is forced here with
``NUMPY_FROM_MACS = 0`` (fixture ``numpy_runner`` in conftest.py) so that small test networks
exercise it; the activation cases run against both runners in test_fast.py.
"""

import numpy as np
import pytest

from backprop import SGD, Dense, Network, get_loss
from backprop import fast
from backprop.fast.batched import BatchRunner

pytest.importorskip("numba")

from fast_parity import LOSS_CASES, OPTIMIZERS, _assert_same, _both, _data  # noqa: E402




@pytest.mark.parametrize("loss,kind,out_act", LOSS_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_losses_match_numpy(numpy_runner, rng, loss, kind, out_act, reduction):
    # Every loss, both reductions, with a batch size that does not divide n (last batch short).
    X, Y = _data(rng, kind=kind)
    make = lambda: Network.from_sizes([5, 8, 3], activation="relu", output_activation=out_act,  # noqa: E731
                                      loss=get_loss(loss, reduction=reduction), seed=4)
    _assert_same(*_both(make, X, Y, epochs=3, batch_size=5, seed=2))


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("shuffle", [True, False])
def test_optimizers_match_numpy(numpy_runner, rng, make_optimizer, shuffle):
    # SGD variants and Adam, with schedules: same weights and same optimizer state (in place).
    X, Y = _data(rng)
    make = lambda: Network.from_sizes([5, 6, 3], activation="relu", output_activation="sigmoid",  # noqa: E731
                                      seed=5)
    _assert_same(*_both(make, X, Y, make_optimizer=make_optimizer, epochs=4, batch_size=6, seed=3,
                        shuffle=shuffle))


def test_frozen_and_missing_biases_and_sample_weights(numpy_runner, rng):
    # A frozen bias is used but never changed; use_bias=False works; sample weights scale alike.
    X, Y = _data(rng)
    w = rng.random(len(X)) + 0.5

    def make():
        return Network([Dense(5, 4, "relu", bias_init=0.35, trainable_bias=False, seed=1),
                        Dense(4, 3, "sigmoid", use_bias=False, seed=2)])

    nets, hists, opts = _both(make, X, Y, make_optimizer=lambda: SGD(0.1, momentum=0.9), epochs=3,
                              batch_size=4, seed=0, sample_weight=w)
    _assert_same(nets, hists, opts)
    np.testing.assert_array_equal(nets[1].layers[0].params["b"], 0.35)


def test_float32_stays_float32_and_matches(numpy_runner, rng):
    # float32 end to end: parameters, optimizer slots and the result of the float32 reference.
    X, Y = _data(rng, n=64, d=20, k=4, kind="onehot")
    make = lambda: Network.from_sizes([20, 16, 4], activation="relu", output_activation="softmax",  # noqa: E731
                                      loss="softmax_cross_entropy", seed=8, dtype=np.float32)
    nets, hists, opts = _both(make, X.astype(np.float32), Y.astype(np.float32),
                              make_optimizer=lambda: SGD(0.05, momentum=0.9), epochs=3, batch_size=16, seed=1)
    for p in nets[1].parameters() + opts[1].state["velocity"]:
        assert p.dtype == np.float32
    _assert_same(nets, hists, opts, rtol=1e-5, atol=1e-6)


def test_input_is_not_copied(numpy_runner, rng):
    # The runner gathers batches from the caller's X itself: no per-fit or per-epoch copy.
    X, Y = _data(rng, n=40)
    net = Network.from_sizes([5, 6, 3], seed=0)
    X2, Y2 = net.prepare(X, Y)
    runner = fast.make_runner(net, X2, Y2, net.loss_fn, SGD(0.1), 8)
    assert runner.runner.X is X2


def test_selection_by_batch_size(monkeypatch):
    # Every batch goes to the compiled kernel while numpy's gemm can be called from it; without
    # it, BLAS-sized batches go to the numpy runner. Threads by size.
    from backprop.fast import blas

    net = Network.from_sizes([784, 256, 128, 10], seed=0)
    if blas.gemm_address(net.dtype):
        assert fast.choose_runner(net, 128, 60000) == "compiled"
    monkeypatch.setattr(blas, "gemm_address", lambda dtype: None)
    assert fast.choose_runner(net, 1, 60000) == "compiled"
    assert fast.choose_runner(net, 128, 60000) == "numpy"
    assert fast.choose_runner(net, 128, 1) == "compiled"  # a single row is a per-sample product
    assert fast.choose_runner(net, 16, 60000) == "compiled"  # 16 x 234752 multiply-adds
    small = Network.from_sizes([64, 32, 16, 10], seed=0)
    assert fast.choose_runner(small, 1, 1000) == "compiled"
    assert fast.choose_runner(small, 32, 1000) == "compiled"
    assert fast.blas_threads(small, 32, 1000) == 1
    assert fast.blas_threads(net, 128, 60000) is None  # 128 x 784 x 256: BLAS's own threads
    runner = fast.make_runner(net, np.zeros((300, 784)), np.zeros((300, 10)), net.loss_fn, SGD(0.1), 128)
    assert type(runner.runner) is BatchRunner
