"""fit's ``l2`` (scikit-learn's L2 penalty scaled by batch size): one step against its written rule,
and the same training on the reference path and every fast runner (1e-12, float64)."""

import numpy as np
import pytest

from backprop import SGD, Adam, BackpropError, Network
from fast_parity import OPTIMIZERS, _assert_same, _both, _data


def _net(seed=1, out="identity"):
    return Network.from_sizes([5, 6, 4, 3], activation="tanh", output_activation=out,
                              weight_init="glorot", bias_init=0.1, loss="mse", seed=seed)


def test_one_step_is_the_written_rule(rng):
    # One batch of m rows: W <- W - lr (dL/dW + l2 W / m), b <- b - lr dL/db, and the epoch's loss
    # is the data loss + 0.5 l2 ||W||^2 / m (one batch: its share is 1); reference path.
    X, Y = _data(rng, n=8)
    net, l2, lr = _net(), 0.3, 0.05
    before = net.get_weights()
    grads = net.gradients(X, Y)
    data_loss = net.loss(X, Y)
    squared = sum(float(np.sum(w * w)) for w in before[0::2])
    history = net.fit(X, Y, epochs=1, batch_size=8, shuffle=False, optimizer=SGD(lr), l2=l2, fast=False)
    for k, (w, g, after) in enumerate(zip(before, grads, net.get_weights())):
        expected = w - lr * (g + (l2 / 8) * w if w.ndim == 2 else g)
        np.testing.assert_allclose(after, expected, rtol=1e-14, atol=1e-15, err_msg=str(k))
    assert history.loss[0] == pytest.approx(data_loss + 0.5 * l2 * squared / 8, rel=1e-14)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "momentum-decay", "invscaling"])
@pytest.mark.parametrize("batch_size", [1, 7, 37])
def test_fast_path_equals_reference(optimizer, batch_size, rng):
    # The compiled epoch kernel (batch 1 goes there too: l2 is not plain SGD) equals numpy; the
    # last batch of 37 rows in 7s is shorter, so its l2 / m differs.
    X, Y = _data(rng)
    nets, hists, opts = _both(_net, X, Y, OPTIMIZERS[optimizer], epochs=3, batch_size=batch_size,
                              seed=0, l2=0.02)
    _assert_same(nets, hists, opts)


@pytest.mark.parametrize("batch_size", [4, 37])
def test_numpy_runner_equals_reference(numpy_runner, batch_size, rng):
    # The fast path's numpy runner (batched.BatchRunner) applies the same rule.
    X, Y = _data(rng)
    nets, hists, opts = _both(_net, X, Y, lambda: Adam(0.01), epochs=3, batch_size=batch_size, seed=0,
                              l2=0.05, sample_weight=rng.uniform(0.5, 2, 37))
    _assert_same(nets, hists, opts)


def test_l2_must_be_non_negative(rng):
    # A negative penalty is refused by name.
    X, Y = _data(rng)
    with pytest.raises(BackpropError, match="`l2` must be a non-negative number; got -1"):
        _net().fit(X, Y, l2=-1)
