"""Seed 002 (Mazur's worked example) as a golden test: one step from the blog's weights.

The numbers below are typed in from the blog post, not produced by this library.
"""

from decimal import Decimal

import numpy as np
import pytest

from backprop import SGD, Dense, Network

# Blog's printed values after one step at learning rate 0.5, biases fixed.
BLOG_UPDATED = {
    "w1": "0.149780716", "w2": "0.19956143", "w3": "0.24975114", "w4": "0.29950229",
    "w5": "0.35891648", "w6": "0.408666186", "w7": "0.511301270", "w8": "0.561370121",
}
BLOG_FORWARD = {"out_h1": "0.593269992", "out_h2": "0.596884378", "net_o1": "1.105905967",
                "out_o1": "0.75136507", "out_o2": "0.772928465", "E_total": "0.298371109"}


def mazur_network():
    # h1 takes w1, w2; h2 takes w3, w4; o1 takes w5, w6; o2 takes w7, w8. W is (n_in, n_out).
    hidden = Dense(2, 2, "sigmoid", weight_init=[[0.15, 0.25], [0.20, 0.30]], bias_init=0.35,
                   trainable_bias=False)
    output = Dense(2, 2, "sigmoid", weight_init=[[0.40, 0.50], [0.45, 0.55]], bias_init=0.60,
                   trainable_bias=False)
    return Network([hidden, output], loss="half_sse")


def _tol(printed: str) -> float:
    # A number printed with k decimals is exact to half a unit in its last place; the blog's
    # 9-decimal values are therefore checked to 5e-10 (inside the 1e-9).
    decimals = -Decimal(printed).as_tuple().exponent
    return 0.5 * 10.0 ** (-decimals) + 1e-15


def test_forward_pass_matches_blog():
    # net_h1 .. E_total as printed in the blog, at their printed precision.
    net = mazur_network()
    x, t = np.array([0.05, 0.10]), np.array([0.01, 0.99])
    net.forward(x)
    hidden, output = net.layers
    got = {"out_h1": hidden.A[0, 0], "out_h2": hidden.A[0, 1], "net_o1": output.Z[0, 0],
           "out_o1": output.A[0, 0], "out_o2": output.A[0, 1], "E_total": net.loss(x, t)}
    for key, printed in BLOG_FORWARD.items():
        assert abs(got[key] - float(printed)) <= _tol(printed), key


def test_one_step_gives_blog_updated_weights():
    # One SGD step at lr 0.5 with frozen biases gives the blog's w1+ .. w8+.
    net = mazur_network()
    net.train_step([0.05, 0.10], [0.01, 0.99], SGD(0.5))
    W1, b1, W2, b2 = net.get_weights()
    ours = dict(zip(["w1", "w2", "w3", "w4"], W1.T.ravel())) | dict(zip(["w5", "w6", "w7", "w8"], W2.T.ravel()))
    for key, printed in BLOG_UPDATED.items():
        assert abs(ours[key] - float(printed)) <= _tol(printed), (key, ours[key], printed)
    # the frozen biases did not move
    np.testing.assert_array_equal(b1, [0.35, 0.35])
    np.testing.assert_array_equal(b2, [0.60, 0.60])


def test_error_after_one_round_is_the_correct_algorithms():
    # Hidden deltas from the pre-update weights give 0.291027774 (seed 001's code), not the
    # blog's 0.291027924, which came from an older update order.
    net = mazur_network()
    net.train_step([0.05, 0.10], [0.01, 0.99], SGD(0.5))
    assert net.loss([0.05, 0.10], [0.01, 0.99]) == pytest.approx(0.291027774, abs=5e-10)


def test_seed_001_loop_lines():
    # seed 001 prints round(error, 9) after update i; lines 21..40 must match to every digit.
    printed = {21: 0.137205276, 22: 0.131620316, 30: 0.095354325, 39: 0.069045516, 40: 0.066817506}
    net, opt = mazur_network(), SGD(0.5)
    x, t = [0.05, 0.10], [0.01, 0.99]
    for i in range(41):
        net.train_step(x, t, opt)
        if i in printed:
            assert round(net.loss(x, t), 9) == printed[i], i
