"""Conv2D, MaxPool2D, AvgPool2D, Flatten: golden examples worked by hand (issue 20), the layer
contract by finite differences, gradcheck on random conv networks, whole training runs against an
independent plain-loop implementation, and the shape errors."""

import numpy as np
import pytest

from backprop import SGD, AvgPool2D, BackpropError, Conv2D, Dense, Flatten, MaxPool2D, Network, gradcheck
from backprop.layers import layer_from_config
from backprop.layers.base import to_internal, to_public
from conftest import check_layer


def _img(rows):
    """One single-channel image as the channels-last batch (1, H, W, 1) layers take."""
    return np.asarray(rows, dtype=float)[None, :, :, None]


def _plain(A):
    """Channels-last (1, H, W, 1) back to the (H, W) matrix the examples print."""
    return A[0, :, :, 0]


def _conv(K, b=0.0, **kw):
    K = np.asarray(K, dtype=float)
    layer = Conv2D(1, 1, K.shape, weight_init=K[None, None], bias_init=b, **kw)
    return layer


# -- golden examples (numbers from issue 20, verified there independently) ----------------------

def test_golden_b_forward_backward_and_one_sgd_step():
    # Example B: 3x3 input, 2x2 kernel, bias; L = 0.5 sum (Y - T)^2; one SGD step at lr 0.1.
    X = _img([[1, 2, 0], [0, 1, 3], [2, 1, 1]])
    T = np.array([[1.0, 4], [1, 3]])
    net = Network([_conv([[1, -1], [2, 0]], b=1.0), Flatten()], input_shape=(1, 3, 3), loss="half_sse")
    x = to_public(X)
    conv = net.layers[0]
    np.testing.assert_array_equal(net.forward(x).reshape(2, 2), [[0, 5], [4, 1]])
    assert net.loss(x, T.reshape(1, -1)) == 7.5
    grads = net.gradients(x, T.reshape(1, -1))
    np.testing.assert_array_equal(grads[0][0, 0], [[-1, -5], [5, 3]])
    np.testing.assert_array_equal(grads[1], [1.0])
    np.testing.assert_array_equal(_plain(conv.dZ), [[-1, 1], [3, -2]])
    dX = net.backward(conv.A.reshape(1, -1) - T.reshape(1, -1))  # dL/dout of half_sse = Y - T
    np.testing.assert_array_equal(dX[0, 0], [[-1, 2, -1], [1, -3, 2], [6, -4, 0]])
    net.train_step(x, T.reshape(1, -1), SGD(0.1))
    np.testing.assert_allclose(conv.params["W"][0, 0], [[1.1, -0.5], [1.5, -0.3]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(conv.params["b"], [0.9], rtol=0, atol=1e-15)
    np.testing.assert_allclose(net.forward(x).reshape(2, 2), [[0.7, 3.7], [3.1, 1.7]], atol=1e-14)
    assert net.loss(x, T.reshape(1, -1)) == pytest.approx(3.14, abs=1e-13)


def test_golden_c_stride_2_padding_1():
    # Example C: 4x4 input, 3x3 kernel, stride 2, padding 1, no bias value; G given.
    X = _img(np.arange(1, 17).reshape(4, 4))
    layer = _conv([[1, 2, 0], [0, 1, -1], [-1, 0, 1]], stride=2, padding=1)
    np.testing.assert_array_equal(_plain(layer.forward(X)), [[5, 1], [23, 21]])
    dX = layer.backward(_img([[1, -1], [2, 0.5]]))
    np.testing.assert_array_equal(layer.grads["W"][0, 0], [[3, 13.5, 16], [3, 21.5, 24], [1, 31.5, 34]])
    np.testing.assert_array_equal(layer.grads["b"], [2.5])
    np.testing.assert_array_equal(_plain(dX), [[1, -1, -1, 1], [4, 2.5, 1, -1], [2, -2, 0.5, -0.5], [0, 1.5, 0, 0.5]])


def test_golden_e_max_pool_sends_the_gradient_to_the_first_maximum():
    # Example E: 2x2 max-pool, stride 2, with ties (5 vs 6 no tie; 2,2 and 7,7 and 3,3 ties).
    layer = MaxPool2D(2)
    X = _img([[1, 3, 2, 2], [5, 6, 1, 0], [7, 2, 3, 1], [0, 7, 2, 3]])
    np.testing.assert_array_equal(_plain(layer.forward(X)), [[6, 2], [7, 3]])
    dX = layer.backward(_img([[10, 20], [30, 40]]))
    np.testing.assert_array_equal(_plain(dX), [[0, 0, 20, 0], [0, 10, 0, 0], [30, 0, 40, 0], [0, 0, 0, 0]])


def test_golden_d2l_transposed_convolution_example():
    # Dive into Deep Learning: X = arange(9), K = [[0,1],[2,3]]; dL/dX is its transposed conv.
    layer = _conv([[0, 1], [2, 3]])
    np.testing.assert_array_equal(_plain(layer.forward(_img(np.arange(9.0).reshape(3, 3)))), [[19, 25], [37, 43]])
    dX = layer.backward(_img([[0, 1], [2, 3]]))
    np.testing.assert_array_equal(_plain(dX), [[0, 0, 1], [0, 4, 6], [4, 12, 9]])


# -- the layer contract ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kernel, stride, padding, activation",
    [(3, 1, 0, "identity"), ((2, 3), 2, 1, "tanh"), (1, 1, 0, "sigmoid"), (5, 1, 2, "leaky_relu"),
     ((3, 1), (2, 1), (0, 2), "relu"), (2, 3, 2, "identity")],
)
def test_conv_contract(kernel, stride, padding, activation, rng):
    # Conv2D's dX, dW and db equal finite differences (strides 1-3, padding 0-2, odd kernels).
    layer = Conv2D(3, 2, kernel, stride=stride, padding=padding, activation=activation, seed=1,
                   bias_init=0.1, input_shape=(3, 6, 5))
    X = rng.standard_normal((2, 6, 5, 3))
    X[np.abs(X) < 1e-2] = 0.3  # keep relu's kink away from the differences
    check_layer(layer, X)


@pytest.mark.parametrize("pool, size, stride", [(MaxPool2D, 2, None), (MaxPool2D, 3, 1), (MaxPool2D, (2, 3), (1, 2)),
                                                (AvgPool2D, 2, None), (AvgPool2D, 3, 2), (AvgPool2D, (1, 2), 1)])
def test_pool_contract(pool, size, stride, rng):
    # Pools (overlapping windows too) pass the contract; distinct inputs keep max-pool differentiable.
    layer = pool(size, stride=stride, input_shape=(2, 5, 6))
    X = rng.permutation(2 * 5 * 6 * 3).reshape(3, 5, 6, 2) / 7.0
    check_layer(layer, X)


def test_flatten_is_pytorchs_chw_order():
    # Flatten of a channels-last batch lists X[c, y, x] at c*H*W + y*W + x, as torch.flatten does.
    X = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)  # (n, C, H, W)
    layer = Flatten(input_shape=(3, 4, 5))
    np.testing.assert_array_equal(layer.forward(to_internal(X)), X.reshape(2, -1))
    np.testing.assert_array_equal(to_public(layer.backward(X.reshape(2, -1))), X)


# -- whole networks ---------------------------------------------------------------------------------

NETWORKS = {
    "stride2-pad1-max": lambda: [Conv2D(2, 3, 3, stride=2, padding=1, activation="tanh", seed=1), MaxPool2D(2, stride=1),
                                 Flatten(), Dense(12, 3, seed=2)],
    "nonsquare-avg-overlap": lambda: [Conv2D(2, 4, (3, 2), padding=(1, 0), activation="sigmoid", seed=3),
                                      AvgPool2D(3, stride=2), Conv2D(4, 2, 1, activation="relu", seed=4),
                                      Flatten(), Dense(8, 3, seed=5)],
    "5x5-pad2": lambda: [Conv2D(2, 2, 5, padding=2, activation="leaky_relu", seed=6), MaxPool2D((2, 3)),
                         Flatten(), Dense(12, 3, seed=7)],
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "half_sse"])
def test_gradcheck_on_conv_networks(name, loss, rng):
    # Backprop through every layer kind equals central differences (issue 20's gradcheck list).
    layers = NETWORKS[name]()
    if loss == "softmax_cross_entropy":
        layers[-1] = Dense(layers[-1].n_inputs, 3, activation="softmax", seed=8)
    net = Network(layers, input_shape=(2, 6, 6), loss=loss)
    X = rng.standard_normal((3, 2, 6, 6))
    Y = np.eye(3)[[0, 2, 1]]
    errors = gradcheck(net, X, Y)
    assert max(errors.values()) < 1e-6, errors


# An independent implementation: public NCHW layouts and a loop over every index, no im2col, no
# channels-last, no vectorised pooling.

def _loop_conv(X, W, b, stride, padding, act):
    n, C, H, Wd = X.shape
    O, _, kh, kw = W.shape
    (sh, sw), (ph, pw) = stride, padding
    Xp = np.zeros((n, C, H + 2 * ph, Wd + 2 * pw))
    Xp[:, :, ph:ph + H, pw:pw + Wd] = X
    oh, ow = (H + 2 * ph - kh) // sh + 1, (Wd + 2 * pw - kw) // sw + 1
    Z = np.zeros((n, O, oh, ow))
    for s in range(n):
        for o in range(O):
            for p in range(oh):
                for q in range(ow):
                    total = b[o]
                    for c in range(C):
                        for i in range(kh):
                            for j in range(kw):
                                total += W[o, c, i, j] * Xp[s, c, p * sh + i, q * sw + j]
                    Z[s, o, p, q] = total
    return Z, Xp, act(Z)


def _loop_conv_backward(G, Xp, W, stride, padding, x_shape):
    n, C, H, Wd = x_shape
    O, _, kh, kw = W.shape
    (sh, sw), (ph, pw) = stride, padding
    dW, db, dXp = np.zeros_like(W), np.zeros(O), np.zeros_like(Xp)
    for s in range(n):
        for o in range(O):
            for p in range(G.shape[2]):
                for q in range(G.shape[3]):
                    g = G[s, o, p, q]
                    db[o] += g
                    for c in range(C):
                        for i in range(kh):
                            for j in range(kw):
                                dW[o, c, i, j] += g * Xp[s, c, p * sh + i, q * sw + j]
                                dXp[s, c, p * sh + i, q * sw + j] += g * W[o, c, i, j]
    return dW, db, dXp[:, :, ph:ph + H, pw:pw + Wd]


def _loop_maxpool(X, size, stride):
    n, C, H, Wd = X.shape
    oh, ow = (H - size) // stride + 1, (Wd - size) // stride + 1
    Y, where = np.zeros((n, C, oh, ow)), {}
    for s in range(n):
        for c in range(C):
            for p in range(oh):
                for q in range(ow):
                    best = None
                    for i in range(size):
                        for j in range(size):
                            v = X[s, c, p * stride + i, q * stride + j]
                            if best is None or v > best:
                                best, where[s, c, p, q] = v, (p * stride + i, q * stride + j)
                    Y[s, c, p, q] = best
    return Y, where


def _loop_step(params, X, T, lr):
    """One SGD step of conv(relu) -> maxpool 2 stride 1 -> conv 1x1 (tanh) -> flatten -> dense
    (identity), half_sse summed over outputs, mean over samples."""
    W1, b1, W2, b2, W3, b3 = params
    n = X.shape[0]
    relu = lambda Z: np.maximum(Z, 0)
    Z1, Xp1, A1 = _loop_conv(X, W1, b1, (1, 1), (1, 1), relu)
    P, where = _loop_maxpool(A1, 2, 1)
    Z2, Xp2, A2 = _loop_conv(P, W2, b2, (1, 1), (0, 0), np.tanh)
    F = A2.reshape(n, -1)
    out = F @ W3 + b3
    G = (out - T) / n
    dW3, db3 = F.T @ G, G.sum(0)
    dA2 = (G @ W3.T).reshape(A2.shape)
    dW2, db2, dP = _loop_conv_backward(dA2 * (1 - A2 ** 2), Xp2, W2, (1, 1), (0, 0), P.shape)
    dA1 = np.zeros_like(A1)
    for (s, c, p, q), (y, x) in where.items():
        dA1[s, c, y, x] += dP[s, c, p, q]
    dW1, db1, _ = _loop_conv_backward(dA1 * (Z1 > 0), Xp1, W1, (1, 1), (1, 1), X.shape)
    grads = (dW1, db1, dW2, db2, dW3, db3)
    return [p - lr * g for p, g in zip(params, grads)]


def test_training_run_equals_a_plain_loop_implementation(rng):
    # 12 SGD steps of a conv net (mini-batches of 3) give the loop implementation's weights to 1e-10.
    net = Network(
        [Conv2D(2, 3, 3, padding=1, activation="relu", seed=1, bias_init=0.05), MaxPool2D(2, stride=1),
         Conv2D(3, 2, 1, activation="tanh", seed=2), Flatten(), Dense(2 * 4 * 3, 2, seed=3)],
        input_shape=(2, 5, 4), loss={"name": "half_sse", "reduction": "mean"},
    )
    X = rng.standard_normal((6, 2, 5, 4))
    T = rng.standard_normal((6, 2))
    params = net.get_weights()
    for epoch in range(6):
        for start in (0, 3):
            params = _loop_step(params, X[start:start + 3], T[start:start + 3], lr=0.05)
    net.fit(X, T, epochs=6, batch_size=3, shuffle=False, optimizer=SGD(0.05), fast=False)
    for ours, theirs in zip(net.get_weights(), params):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


# -- shapes, configs and errors ----------------------------------------------------------------------

def test_shapes_chain_and_summary_lists_each_layer():
    # Shapes are inferred layer by layer; summary() names each output shape and parameter count.
    net = Network([Conv2D(1, 16, 3, padding=1, activation="relu"), MaxPool2D(2), Conv2D(16, 32, 3, padding=1),
                   MaxPool2D(2), Flatten(), Dense(128, 10)], input_shape=(1, 8, 8))
    assert [l.output_shape for l in net.layers] == [(16, 8, 8), (16, 4, 4), (32, 4, 4), (32, 2, 2), (128,), (10,)]
    text = net.summary()
    assert "(16, 8, 8)" in text and "4,640" in text and "1,290" in text  # 16*9*32+32, 128*10+10
    assert net.n_params() == 160 + 4640 + 1290 and "Network (1, 8, 8) -> 10" in repr(net)


def test_inputs_in_every_accepted_layout(rng):
    # (n, C, H, W), one (C, H, W) sample and flat C-H-W rows give the same outputs.
    net = Network([Conv2D(2, 2, 2, seed=0), Flatten(), Dense(2 * 2 * 3, 1, seed=1)], input_shape=(2, 3, 4))
    X = rng.standard_normal((4, 2, 3, 4))
    out = net.predict(X)
    np.testing.assert_array_equal(net.predict(X.reshape(4, -1)), out)
    np.testing.assert_array_equal(net.forward(X[1]), out[1])


def test_config_roundtrip_names_every_shape():
    # A layer's config carries its input and output shapes and rebuilds the same layer.
    for layer in (Conv2D(3, 4, (3, 2), stride=(2, 1), padding=1, activation="relu", input_shape=(3, 9, 7)),
                  MaxPool2D(3, stride=2, input_shape=(4, 9, 7)), AvgPool2D(2, input_shape=(4, 9, 7)),
                  Flatten(input_shape=(4, 2, 3))):
        config = layer.config()
        assert config["input_shape"] and config["output_shape"] == list(layer.output_shape)
        assert layer_from_config(config).config() == config
    bad = dict(Conv2D(1, 2, 3, input_shape=(1, 5, 5)).config(), output_shape=[2, 4, 4])
    with pytest.raises(BackpropError, match="names output shape"):
        layer_from_config(bad)


def test_bad_shapes_and_arguments_get_one_clear_line(rng):
    # Mismatched batches, kernels and pools that do not fit, strides of 0, missing Flatten.
    net = Network([Conv2D(1, 2, 3), Flatten(), Dense(2 * 6 * 6, 1)], input_shape=(1, 8, 8))
    with pytest.raises(BackpropError, match=r"`X` must have shape \(n_samples, 1, 8, 8\).*got shape \(2, 1, 7, 8\)"):
        net.predict(rng.standard_normal((2, 1, 7, 8)))
    with pytest.raises(BackpropError, match=r"kernel_size` 5x5 is larger than the padded input 4x4"):
        Network([Conv2D(1, 1, 5, padding=1), Flatten()], input_shape=(1, 2, 2))
    with pytest.raises(BackpropError, match=r"`stride` must be an integer >= 1 or a pair of them; got 0"):
        Conv2D(1, 1, 3, stride=0)
    with pytest.raises(BackpropError, match=r"`padding` must be an integer >= 0"):
        Conv2D(1, 1, 3, padding=-1)
    with pytest.raises(BackpropError, match=r"layer 2 \(MaxPool2D\(3x3\)\).*`pool_size` 3x3 does not fit the input 2x2"):
        Network([Conv2D(1, 1, 3), MaxPool2D(3), Flatten()], input_shape=(1, 4, 4))
    with pytest.raises(BackpropError, match=r"layer 3 \(Dense.*put a Flatten\(\) before it"):
        Network([Conv2D(1, 2, 3), MaxPool2D(2), Dense(2, 1)], input_shape=(1, 4, 4))
    with pytest.raises(BackpropError, match=r"expects 3 input channel\(s\); got input shape \(1, 4, 4\)"):
        Network([Conv2D(3, 1, 3), Flatten()], input_shape=(1, 4, 4))
    with pytest.raises(BackpropError, match="`input_shape` is needed"):
        Network([Conv2D(1, 1, 3), Flatten()])
    with pytest.raises(BackpropError, match="end with Flatten"):
        Network([Conv2D(1, 1, 3)], input_shape=(1, 4, 4))
    with pytest.raises(BackpropError, match="must be element-wise"):
        Conv2D(1, 1, 3, activation="softmax")


# -- PyTorch as a second implementation (when installed) and the docs ------------------------------

def test_outputs_and_gradients_equal_pytorchs(rng):
    # The same weights in torch.nn give the same outputs and parameter gradients (float64), every kind.
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = Network([Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), activation="relu", seed=1),
                   MaxPool2D(2, stride=1), Conv2D(3, 4, 1, activation="tanh", seed=2), AvgPool2D((2, 1)),
                   Flatten(), Dense(4 * 1 * 3, 3, activation="softmax", seed=3)],
                  input_shape=(2, 7, 5), loss="softmax_cross_entropy")
    c1, _, c2, _, _, d = net.layers
    twin = nn.Sequential(nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)), nn.ReLU(), nn.MaxPool2d(2, stride=1),
                         nn.Conv2d(3, 4, 1), nn.Tanh(), nn.AvgPool2d((2, 1)), nn.Flatten(), nn.Linear(12, 3)).double()
    with torch.no_grad():
        for mod, layer in ((twin[0], c1), (twin[3], c2)):
            mod.weight.copy_(torch.tensor(layer.params["W"]))
            mod.bias.copy_(torch.tensor(layer.params["b"]))
        twin[7].weight.copy_(torch.tensor(d.params["W"].T))
        twin[7].bias.copy_(torch.tensor(d.params["b"]))
    X = rng.standard_normal((5, 2, 7, 5))
    y = np.array([0, 2, 1, 1, 0])
    logits = twin(torch.tensor(X))
    np.testing.assert_allclose(net.predict(X), torch.softmax(logits, 1).detach().numpy(), rtol=1e-12, atol=1e-14)
    nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
    ours = net.gradients(X, np.eye(3)[y])
    theirs = [twin[0].weight.grad, twin[0].bias.grad, twin[3].weight.grad, twin[3].bias.grad,
              twin[7].weight.grad.T, twin[7].bias.grad]
    for g, t in zip(ours, theirs):
        np.testing.assert_allclose(g, t.numpy(), rtol=1e-10, atol=1e-13)


def test_the_cnn_page_example_prints_what_it_says(capsys):
    # docs/cnn.md's first Python block runs and prints its documented output.
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "cnn.md").read_text()
    code, shown = re.findall(r"```python\n(.*?)```", text, re.S)[0], re.findall(r"```\n(#  layer.*?)```", text, re.S)[0]
    exec(compile(code, "docs/cnn.md", "exec"), {})
    assert capsys.readouterr().out == shown
