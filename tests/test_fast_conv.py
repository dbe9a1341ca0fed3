"""The compiled conv fast path (backprop.fast.conv) against the numpy reference path of fit.

The oracle is the numpy channels-last layers (themselves checked against golden examples, finite
differences and a plain-loop implementation in tests/test_layers_conv.py): the same network, data,
shuffling and optimizer must give the same weights and per-epoch losses to 1e-10 in float64 for
every layer kind, stride, padding, pool, activation, loss and optimizer the kernel supports.
"""

import numpy as np
import pytest

from backprop import (SGD, Adam, AvgPool2D, BackpropError, Conv2D, Dense, Flatten, MaxPool2D,
                      Network, fit)
from backprop import fast

pytest.importorskip("numba")

TOL = 1e-10


def _net(conv1=None, pool1=None, conv2=None, pool2=None, act="relu", out_act="identity",
         n_out=3, loss="softmax_cross_entropy", dtype=np.float64, shape=(2, 9, 8), bias=True):
    """A tiny conv network; each argument overrides one layer's settings."""
    layers = [Conv2D(shape[0], 3, **(conv1 or dict(kernel_size=3, padding=1)), activation=act,
                     seed=1, dtype=dtype, use_bias=bias)]
    layers.append(MaxPool2D(**(pool1 or dict(pool_size=2))))
    layers.append(Conv2D(3, 4, **(conv2 or dict(kernel_size=(2, 3), stride=1)), activation=act,
                         seed=2, dtype=dtype))
    if pool2 is not False:
        layers.append((pool2 or (lambda: AvgPool2D(2, stride=1)))())
    layers += [Flatten()]
    net = Network(layers, input_shape=shape)  # shapes inferred, then the Dense layers added
    flat = net.layers[-1].output_shape[0]
    return Network(layers + [Dense(flat, 5, activation=act, seed=3, dtype=dtype),
                             Dense(5, n_out, activation=out_act, seed=4, dtype=dtype)],
                   loss=loss, input_shape=shape)


def _data(n=23, shape=(2, 9, 8), n_out=3, seed=0, kind="onehot"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *shape))
    if kind == "onehot":
        Y = np.eye(n_out)[rng.integers(0, n_out, n)]
    elif kind == "binary":
        Y = (rng.random((n, n_out)) > 0.5).astype(float)
    else:
        Y = rng.standard_normal((n, n_out))
    return X, Y


def _both(make, X, Y, optimizer=lambda: SGD(0.05, momentum=0.9), epochs=3, batch_size=4, **kw):
    """(fast network, its history, numpy network, its history) after the same fit."""
    a, b = make(), make()
    ha = fit(a, X, Y, epochs=epochs, batch_size=batch_size, optimizer=optimizer(), seed=7, fast=True, **kw)
    hb = fit(b, X, Y, epochs=epochs, batch_size=batch_size, optimizer=optimizer(), seed=7, fast=False, **kw)
    return a, ha, b, hb


def _assert_same(a, ha, b, hb, tol=TOL):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert np.max(np.abs(p - q)) <= tol * max(1.0, np.max(np.abs(q))), name
    assert np.allclose(ha.history["loss"], hb.history["loss"], rtol=tol, atol=0)


@pytest.mark.parametrize("conv1,pool1", [
    (dict(kernel_size=3, padding=1), dict(pool_size=2)),                       # the demo's
    (dict(kernel_size=3, stride=2, padding=2), dict(pool_size=2, stride=1)),   # overlapping pool
    (dict(kernel_size=(1, 1)), dict(pool_size=(3, 2), stride=(2, 1))),         # 1x1, non-square
    (dict(kernel_size=(5, 4), stride=(1, 2), padding=(2, 1)), dict(pool_size=(2, 1))),
])
def test_layer_geometry_matches_numpy(conv1, pool1):
    # Strides 1 and 2, paddings 0/1/2, 1x1 and 5x4 kernels, overlapping and non-square pools:
    # whole training runs give the numpy path's weights and losses.
    X, Y = _data()
    _assert_same(*_both(lambda: _net(conv1=conv1, pool1=pool1), X, Y))


def test_max_pools_with_ties_match_numpy():
    # Inputs with many ties (integer pixels, blank borders): the gradient goes to the same
    # first maximum as on the numpy path, through max pools at both levels.
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, (20, 2, 9, 8)).astype(float)
    X[:, :, :2] = 0.0
    Y = np.eye(3)[rng.integers(0, 3, 20)]
    make = lambda: _net(pool2=lambda: MaxPool2D(2, stride=1))  # noqa: E731
    _assert_same(*_both(make, X, Y))


@pytest.mark.parametrize("act", ["identity", "sigmoid", "tanh", "relu",
                                 {"name": "leaky_relu", "negative_slope": 0.1}])
def test_activations_match_numpy(act):
    # Every element-wise activation in conv and dense layers.
    X, Y = _data()
    _assert_same(*_both(lambda: _net(act=act), X, Y))


@pytest.mark.parametrize("loss,out_act,kind", [
    ("softmax_cross_entropy", "identity", "onehot"),
    ("half_sse", "softmax", "onehot"),
    ("sse", "sigmoid", "real"),
    ("mse", "identity", "real"),
    ("binary_cross_entropy", "identity", "binary"),
])
def test_losses_match_numpy(loss, out_act, kind):
    # Every loss, from logits or through the output's activation.
    X, Y = _data(kind=kind)
    _assert_same(*_both(lambda: _net(loss=loss, out_act=out_act), X, Y))


@pytest.mark.parametrize("optimizer", [
    lambda: SGD(0.05),
    lambda: SGD(0.05, momentum=0.9),
    lambda: SGD(0.05, momentum=0.8, nesterov=True),
    lambda: SGD(0.05, momentum=0.9, weight_decay=0.01),
    lambda: Adam(0.01),
    lambda: Adam(0.01, weight_decay=0.001),
])
def test_optimizers_match_numpy(optimizer):
    # SGD (plain, momentum, Nesterov, weight decay) and Adam, batches of 4 with a short last one.
    X, Y = _data()
    _assert_same(*_both(lambda: _net(), X, Y, optimizer=optimizer))


def test_sample_weights_l2_per_sample_and_no_bias_match_numpy():
    # Sample weights, fit's l2, a conv layer without bias, and per-sample batches.
    X, Y = _data(n=13)
    w = np.random.default_rng(1).random(13)
    make = lambda: _net(bias=False)  # noqa: E731
    _assert_same(*_both(make, X, Y, batch_size=5, sample_weight=w, l2=0.01))
    _assert_same(*_both(make, X, Y, batch_size=1, epochs=2))


def test_float32_close_to_numpy():
    # float32 trains on the fast path too, within float32 rounding of the numpy path.
    X, Y = _data()
    a, ha, b, hb = _both(lambda: _net(dtype=np.float32), X.astype(np.float32), Y.astype(np.float32))
    for p, q in zip(a.parameters(), b.parameters()):
        assert p.dtype == np.float32
        np.testing.assert_allclose(p, q, rtol=1e-3, atol=1e-4)


def test_conv_networks_are_chosen_automatically_and_can_be_refused(monkeypatch):
    # The conv fast path applies by default, BACKPROP_FAST=0 and fast=False turn it off, and
    # fast=True names what it does not support.
    net = _net()
    loss = net._resolve_loss(None)
    assert fast.why_not(net, loss, SGD(0.1)) is None
    assert fast.use_fast_path(None, net, loss, SGD(0.1))
    assert not fast.use_fast_path(False, net, loss, SGD(0.1))
    monkeypatch.setenv("BACKPROP_FAST", "0")
    assert not fast.use_fast_path(None, net, loss, SGD(0.1))
    monkeypatch.delenv("BACKPROP_FAST")
    flat_last = Network([Conv2D(1, 2, 3, seed=0), Flatten()], input_shape=(1, 4, 4))
    with pytest.raises(BackpropError, match="the last layer is Flatten"):
        fast.use_fast_path(True, flat_last, flat_last._resolve_loss(None), SGD(0.1))
    frozen = _net()
    frozen.layers[0].frozen.add("W")
    with pytest.raises(BackpropError, match="layer 1 has a frozen weight matrix"):
        fast.use_fast_path(True, frozen, frozen._resolve_loss(None), SGD(0.1))


def test_predict_matches_the_layers_forward():
    # predict on a conv network (the compiled forward in chunks, in threads) gives the numpy
    # layers' outputs, for a batch of several chunks with a short last one.
    from backprop.fast import conv

    net = _net(out_act="softmax", loss="half_sse")
    X, _ = _data(n=300)
    want = net.forward(X)
    got = conv.predict(net, net.prepare(X, np.zeros((300, 3)))[0], chunk=64)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.predict(X), want, rtol=1e-12, atol=1e-14)


def _runner_weights(make, X, Y, epochs=2, **runner_kw):
    """The flat parameters after ``epochs`` epochs of a ConvRunner (SGD momentum, batch 4)."""
    from backprop.fast import conv
    from backprop.losses import get_loss

    net = make()
    Xc, Yc = net.prepare(X, Y)
    runner = conv.ConvRunner(net, Xc, Yc, get_loss("softmax_cross_entropy"), SGD(0.05, momentum=0.9), 4, **runner_kw)
    for e in range(epochs):
        runner.run_epoch(np.random.default_rng(e))
    return runner.P.copy()


@pytest.mark.parametrize("pool1", [dict(pool_size=2), dict(pool_size=(3, 2))])
def test_fused_relu_max_pool_is_the_unfused_pair(pool1):
    # A ReLU convolution into a max pool that tiles it (stride = pool size; 9x8 images, so the
    # pool leaves an uncovered edge) trains fused (the pool reads Z and writes dZ) to the same
    # bits as the separate ReLU and pool kernels, ties (integer pixels, blank rows) included.
    from backprop.fast import conv

    rng = np.random.default_rng(5)
    X = rng.integers(-2, 3, (18, 2, 9, 8)).astype(float)
    X[:, :, :2] = 0.0
    Y = np.eye(3)[rng.integers(0, 3, 18)]
    make = lambda: _net(pool1=pool1, pool2=lambda: MaxPool2D(2))  # noqa: E731
    net = make()
    plan = conv._Plan(net, 4).plan
    assert plan[0, conv.P_FUSE] == plan[1, conv.P_FUSE] == 1  # the pair is fused
    assert plan[2, conv.P_FUSE] == 1 and plan[3, conv.P_FUSE] == 1
    fused = _runner_weights(make, X, Y)
    apart = _runner_weights(make, X, Y, fuse=False)
    assert np.array_equal(fused, apart)
    assert not np.array_equal(fused, _runner_weights(make, X, Y, epochs=1))  # it trained


def test_blas_sized_fused_pairs_in_blocks_match_numpy():
    # Convolutions large enough for BLAS run their products over blocks of a few samples
    # (conv.DW_CHUNK_ROWS im2col rows), a fused ReLU + max pool's forward and backward block by
    # block with them (conv.fused_backward), the second one passing its delta down through
    # col2im block by block: batches of 24 make blocks of 4 samples (first layer, 120 rows each)
    # and of 17 + 7 (second, 30 rows each), and the last batch of 5 a short block; the pools
    # leave uncovered edges (12x10 -> 6x5 -> 3x2).
    from backprop.fast import conv

    def make():
        layers = [Conv2D(2, 4, 3, padding=1, activation="relu", seed=1), MaxPool2D(2),
                  Conv2D(4, 8, 3, padding=1, activation="relu", seed=2), MaxPool2D(2), Flatten(),
                  Dense(48, 6, activation="relu", seed=3), Dense(6, 3, seed=4)]
        return Network(layers, loss="softmax_cross_entropy", input_shape=(2, 12, 10))

    net = make()
    assert conv.largest_gemm_macs(net, 5) >= fast.kernels.BLAS_MIN_MACS  # even the short batch
    assert 24 * 30 > conv.DW_CHUNK_ROWS and 24 * 120 > conv.DW_CHUNK_ROWS  # several blocks
    X, Y = _data(n=53, shape=(2, 12, 10))
    _assert_same(*_both(make, X, Y, batch_size=24, epochs=2))


@pytest.mark.parametrize("weighted", [False, True])
def test_batches_in_two_halves_on_two_threads(weighted):
    # train_conv_epoch_halves: two threads give the bits of the same halves run one after the
    # other, and both agree with the whole-batch kernel to rounding (1e-12) and so with numpy;
    # a batch of 5 splits 3 + 2, the last batch of 1 runs as one half.
    rng = np.random.default_rng(2)
    X, Y = _data(n=21)
    kw = dict(weights=rng.uniform(0.5, 2.0, 21)) if weighted else {}

    def weights(**runner_kw):
        from backprop.fast import conv
        from backprop.losses import get_loss

        net = _net(pool2=lambda: MaxPool2D(2))
        Xc, Yc = net.prepare(X, Y)
        runner = conv.ConvRunner(net, Xc, Yc, get_loss("softmax_cross_entropy"),
                                 SGD(0.05, momentum=0.9), 5, **kw, **runner_kw)
        losses = [runner.run_epoch(np.random.default_rng(e)) for e in range(3)]
        return runner.P.copy(), np.array(losses)

    two, l_two = weights(halves=True, threads=2)
    one, l_one = weights(halves=True, threads=1)
    whole, l_whole = weights(halves=False)
    assert np.array_equal(two, one) and np.array_equal(l_two, l_one)
    assert np.max(np.abs(two - whole)) <= 1e-12 * np.max(np.abs(whole))
    np.testing.assert_allclose(l_two, l_whole, rtol=1e-12)
    assert not np.array_equal(two, whole)  # the halves ran: sums split differently
