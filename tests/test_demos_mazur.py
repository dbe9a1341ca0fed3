"""`backprop demo mazur` (seeds 001, 002): the blog's printed numbers, seed 001's loop lines, a
plain-Python neuron-by-neuron oracle for both update orders, and finite differences."""

import json
import math
from decimal import Decimal

import pytest

from backprop import SGD, gradcheck
from backprop.cli import main
from backprop.demos import mazur

# Typed in from the blog post (seed 002), at its printed precision.
BLOG_FORWARD = {
    "net_h1": "0.3775", "out_h1": "0.593269992", "out_h2": "0.596884378", "net_o1": "1.105905967",
    "out_o1": "0.75136507", "out_o2": "0.772928465", "E_o1": "0.274811083", "E_o2": "0.023560026",
    "E_total": "0.298371109",
}
BLOG_BACKWARD = {
    "dE_total/dout_o1": "0.74136507", "dout_o1/dnet_o1": "0.186815602", "dnet_o1/dw5": "0.593269992",
    "dE_total/dw5": "0.082167041", "dE_o1/dnet_o1": "0.138498562", "dnet_o1/dout_h1": "0.40",
    "dE_o1/dout_h1": "0.055399425", "dE_total/dout_h1": "0.036350306",
    "dout_h1/dnet_h1": "0.241300709", "dnet_h1/dw1": "0.05", "dE_total/dw1": "0.000438568",
}
BLOG_UPDATED = {
    "w1": "0.149780716", "w2": "0.19956143", "w3": "0.24975114", "w4": "0.29950229",
    "w5": "0.35891648", "w6": "0.408666186", "w7": "0.511301270", "w8": "0.561370121",
}
# Seed 001's printed loop lines: update index i (from 0), round(E_total, 9) after it.
SEED_001_LINES = """21 0.137205276
22 0.131620316
23 0.126279262
24 0.121179847
25 0.116318143
26 0.111688831
27 0.107285459
28 0.103100677
29 0.099126464
30 0.095354325
31 0.091775464
32 0.088380932
33 0.085161757
34 0.082109043
35 0.079214055
36 0.076468284
37 0.073863495
38 0.071391768
39 0.069045516
40 0.066817506"""


def _tol(printed: str) -> float:
    # A number printed with k decimals is exact to half a unit in its last place.
    return 0.5 * 10.0 ** Decimal(printed).as_tuple().exponent + 1e-15


def _oracle(iterations, blog_order=False):
    """Mazur's algorithm neuron by neuron in plain Python (seed 001's structure). Returns the
    error after every update, the final weights w1..w8 and the final outputs."""
    sig = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    i1, i2, t1, t2, lr = 0.05, 0.10, 0.01, 0.99, 0.5
    wh = [[0.15, 0.20], [0.25, 0.30]]  # h1: w1, w2; h2: w3, w4
    wo = [[0.40, 0.45], [0.50, 0.55]]  # o1: w5, w6; o2: w7, w8

    def forward():
        h = [sig(w[0] * i1 + w[1] * i2 + 0.35) for w in wh]
        o = [sig(w[0] * h[0] + w[1] * h[1] + 0.60) for w in wo]
        return h, o

    errors = []
    for _ in range(iterations):
        h, o = forward()
        d_o = [(o[k] - t) * o[k] * (1 - o[k]) for k, t in enumerate((t1, t2))]

        def update_output():
            for k in range(2):
                for j in range(2):
                    wo[k][j] -= lr * d_o[k] * h[j]

        if blog_order:
            update_output()
        d_h = [sum(d_o[k] * wo[k][j] for k in range(2)) * h[j] * (1 - h[j]) for j in range(2)]
        if not blog_order:
            update_output()
        for j in range(2):
            for m, x in enumerate((i1, i2)):
                wh[j][m] -= lr * d_h[j] * x
        h, o = forward()
        errors.append(0.5 * (t1 - o[0]) ** 2 + 0.5 * (t2 - o[1]) ** 2)
    return errors, wh[0] + wh[1] + wo[0] + wo[1], o


def test_forward_and_backward_match_the_blog():
    # Every number the blog prints in its forward and backward pass, at its printed precision.
    result = mazur.walkthrough()
    for key, printed in BLOG_FORWARD.items():
        assert abs(result["forward"][key] - float(printed)) <= _tol(printed), key
    for key, printed in BLOG_BACKWARD.items():
        assert abs(result["backward"][key] - float(printed)) <= _tol(printed), key


def test_the_hand_rounded_value_is_the_documented_exception():
    # The blog's dE_o2/dout_h1 = -0.019049119 is off in its last digit; the exact value is
    # -0.0190491183 (checked here against a finite difference of E_o2 in out_h1).
    value = mazur.walkthrough()["backward"]["dE_o2/dout_h1"]
    assert abs(value - -0.0190491183) <= 0.5e-10
    assert abs(value - -0.019049119) > 0.5e-9
    out_h1, out_h2 = 0.593269992456, 0.596884378259  # plus finite differences around out_h1

    def e_o2(h1):
        return 0.5 * (0.99 - 1 / (1 + math.exp(-(0.50 * h1 + 0.55 * out_h2 + 0.60)))) ** 2

    eps = 1e-6
    assert value == pytest.approx((e_o2(out_h1 + eps) - e_o2(out_h1 - eps)) / (2 * eps), abs=1e-9)


def test_gradients_agree_with_finite_differences():
    # The backward pass the demo prints is the engine's, and it agrees with central differences.
    errors = gradcheck(mazur.network(), mazur.INPUT, mazur.TARGET)
    assert max(errors.values()) < 1e-7


def test_updated_weights_and_first_round():
    # w1+..w8+ as the blog prints them; the error after one round is the correct algorithm's
    # 0.291027774, and --variant blog gives the blog's 0.291027924.
    correct = mazur.train(iterations=1)
    for key, printed in BLOG_UPDATED.items():
        assert abs(correct["updated_weights"][key] - float(printed)) <= _tol(printed), key
    assert abs(correct["error_after_first_round"] - 0.291027774) <= 0.5e-9
    blog = mazur.train(iterations=1, variant="blog")
    assert abs(blog["error_after_first_round"] - 0.291027924) <= 0.5e-9
    for key in ("w5", "w6", "w7", "w8"):  # the output update is the same in both orders
        assert blog["updated_weights"][key] == correct["updated_weights"][key]


def test_seed_001_loop_lines_match_to_every_digit():
    # Lines 21..40 that seed 001 prints, round(error, 9) after update i, digit for digit.
    printed = [line.split() for line in SEED_001_LINES.splitlines()]
    result = mazur.train(iterations=41, show=range(21, 41))
    assert [(str(i), str(round(e, 9))) for i, e in result["errors"]] == [tuple(p) for p in printed]


@pytest.mark.parametrize("variant", ["correct", "blog"])
def test_loop_agrees_with_a_plain_python_oracle(variant):
    # 300 updates through the engine vs Mazur's neuron-by-neuron algorithm written out above.
    errors, final_w, final_out = _oracle(300, blog_order=variant == "blog")
    result = mazur.train(iterations=300, variant=variant, show=range(300))
    assert [i for i, _ in result["errors"]] == list(range(300))
    for (_, ours), theirs in zip(result["errors"], errors):
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    assert list(result["final_weights"].values()) == pytest.approx(final_w, rel=1e-12)
    assert result["final_outputs"] == pytest.approx(final_out, rel=1e-12)


def test_blog_variant_reproduces_the_blogs_10000_round_outputs():
    # The blog's outputs after 10,000 rounds (0.015912196, 0.984065734) come from the older order;
    # the correct order gives different ones.
    blog = mazur.train(iterations=10000, variant="blog", show=())
    assert abs(blog["final_outputs"][0] - 0.015912196) <= 0.5e-9
    assert abs(blog["final_outputs"][1] - 0.984065734) <= 0.5e-9
    correct = mazur.train(iterations=10000, show=())
    assert abs(correct["final_outputs"][0] - 0.015912196) > 1e-7


def test_layerwise_needs_a_stateless_optimizer():
    # layerwise_step refuses optimizers with state, with a one-line message.
    from backprop.demos.conventions import layerwise_step

    net = mazur.network()
    with pytest.raises(ValueError, match="`layerwise` updates need SGD without momentum"):
        layerwise_step(net, mazur.INPUT, mazur.TARGET, SGD(0.5, momentum=0.9))


def test_cli_text_and_json(capsys):
    # The text output carries seed 001's lines and the two explanations; --json is parseable.
    assert main(["demo", "mazur"]) == 0
    out = capsys.readouterr().out
    assert "21 0.137205276\n" in out and "40 0.066817506\n" in out
    assert "the blog prints -0.019049119, rounded by hand; exact: -0.0190491183" in out
    assert "the blog's 0.291027924 came from an older update order" in out
    assert main(["demo", "mazur", "--json", "--iterations", "50", "--variant", "blog"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["variant"] == "blog" and data["iterations"] == 50
    assert data["forward"]["E_total"] == pytest.approx(0.298371109, abs=5e-10)
    assert main(["demo", "mazur", "--iterations", "0"]) == 2  # a usage error, from argparse
    assert "argument --iterations: must be an integer >= 1; got '0'" in capsys.readouterr().err


def test_layerwise_order_on_a_deeper_softmax_network():
    # layerwise_step on a 3-layer tanh/softmax network with a from-logits loss equals updating
    # each layer, written out in numpy, before computing the delta of the layer below.
    import numpy as np

    from backprop import Network

    rng = np.random.default_rng(1)
    X, Y = rng.random((5, 3)), np.eye(2)[[0, 1, 1, 0, 1]]
    net = Network.from_sizes([3, 4, 3, 2], activation="tanh", output_activation="softmax",
                             loss="softmax_cross_entropy", bias_init=0.1, seed=0)
    Ws = [layer.params["W"].copy() for layer in net.layers]
    bs = [layer.params["b"].copy() for layer in net.layers]
    A = [X]
    for i, (W, b) in enumerate(zip(Ws, bs)):
        Z = A[-1] @ W + b
        A.append(np.tanh(Z) if i < 2 else np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True))
    dZ = (A[-1] - Y) / len(X)
    for i in reversed(range(3)):
        Ws[i] -= 0.3 * A[i].T @ dZ
        bs[i] -= 0.3 * dZ.sum(axis=0)
        dZ = (dZ @ Ws[i].T) * (1 - A[i] ** 2)  # with the updated weights
    from backprop.demos.conventions import layerwise_step

    opt = SGD(0.3)
    layerwise_step(net, X, Y, opt)
    assert opt.t == 1
    for layer, W, b in zip(net.layers, Ws, bs):
        np.testing.assert_allclose(layer.params["W"], W, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(layer.params["b"], b, rtol=1e-12, atol=1e-15)
