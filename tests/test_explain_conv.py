"""`backprop explain --conv`: issue 20's golden examples B, C and E through the JSON, every term
re-summed to its total, the full-convolution reading of dL/dX, a plain-loop implementation of
the same step for multi-channel networks, every format, and bad input."""

import json

import numpy as np
import pytest

from backprop.cli import main
from backprop.explain.conv import MAX_PRODUCTS, conv_network, example_b, explain_conv, parse_tensor


def _json(capsys, *argv):
    assert main(["explain", "--conv", "--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def _matrix(a) -> str:
    """A (C, H, W) or (O, C, H, W) array in the command line's syntax."""
    a = np.asarray(a)
    if a.ndim == 2:
        return ";".join(",".join(repr(float(v)) for v in row) for row in a)
    if a.ndim == 3:
        return "|".join(_matrix(ch) for ch in a)
    return "/".join(_matrix(f) for f in a)


# the golden examples of issue 20 (numbers verified independently there)
B_X = [[1, 2, 0], [0, 1, 3], [2, 1, 1]]
C_X = np.arange(1, 17, dtype=float).reshape(4, 4)
C_K = [[1, 2, 0], [0, 1, -1], [-1, 0, 1]]
C_G = np.array([[1, -1], [2, 0.5]])
C_Y = np.array([[5, 1], [23, 21]], dtype=float)
E_X = [[1, 3, 2, 2], [5, 6, 1, 0], [7, 2, 3, 1], [0, 7, 2, 3]]
E_G = np.array([[10, 20], [30, 40]], dtype=float)
E_Y = np.array([[6, 2], [7, 3]], dtype=float)


def _close(got, expected):
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float), rtol=0, atol=1e-12)


def test_example_b_is_the_default(capsys):
    # With no values, --conv works example B; every number the issue gives comes out of the JSON.
    d = _json(capsys)
    q, a = d["quantities"], d["arrays"]
    _close(a["Y"], [[0, 5], [4, 1]])
    assert d["L"] == pytest.approx(7.5, abs=1e-12)
    _close(a["dL/dY"], [[-1, 1], [3, -2]])
    _close(a["dL/dK"], [[-1, -5], [5, 3]])
    _close(a["dL/db"], [1])
    _close(a["dL/dX"], [[-1, 2, -1], [1, -3, 2], [6, -4, 0]])
    _close(a["K+"], [[1.1, -0.5], [1.5, -0.3]])
    _close(a["b+"], [0.9])
    _close(a["Y+"], [[0.7, 3.7], [3.1, 1.7]])
    assert d["L+"] == pytest.approx(3.14, abs=1e-12)
    # the named quantities carry the same numbers
    assert q["Y[0,1]"]["value"] == 5.0 and q["dL/dK[1,0]"]["value"] == 5.0
    assert q["dL/dX[2,0]"]["value"] == 6.0 and q["dL/db"]["value"] == 1.0
    assert q["K+[0,0]"]["value"] == pytest.approx(1.1, abs=1e-15) and q["b+"]["value"] == pytest.approx(0.9, abs=1e-15)
    assert d["network"]["lr"] == 0.1 and d["network"]["loss"]["name"] == "half_sse"
    # the terms of Y[0,1] are its window's products plus the bias, in row-major order
    terms = q["Y[0,1]"]["terms"]
    assert [t["factors"] for t in terms] == [[["X[0,1]", 2.0], ["K[0,0]", 1.0]], [["X[0,2]", 0.0], ["K[0,1]", -1.0]],
                                             [["X[1,1]", 1.0], ["K[1,0]", 2.0]], [["X[1,2]", 3.0], ["K[1,1]", 0.0]],
                                             [["b", 1.0]]]


def test_example_c_stride_2_padding_1(capsys):
    # Example C: the target T = Y - G makes the half_sse gradient G.
    d = _json(capsys, "--input", _matrix(C_X), "--kernel", _matrix(C_K), "--bias", "0", "--stride", "2",
              "--padding", "1", "--target", _matrix(C_Y - C_G))
    a = d["arrays"]
    _close(a["Y"], C_Y)
    _close(a["dL/dY"], C_G)
    _close(a["dL/dK"], [[3, 13.5, 16], [3, 21.5, 24], [1, 31.5, 34]])
    _close(a["dL/db"], [2.5])
    _close(a["dL/dX"], [[1, -1, -1, 1], [4, 2.5, 1, -1], [2, -2, 0.5, -0.5], [0, 1.5, 0, 0.5]])
    # products with the zero padding are left out: the corner output reads only X[0,0], X[0,1], X[1,0], X[1,1]
    assert [f[0][0] for f in (t["factors"] for t in d["quantities"]["Y[0,0]"]["terms"][:-1])] == \
        ["X[0,0]", "X[0,1]", "X[1,0]", "X[1,1]"]


def test_example_e_max_pool_ties(capsys):
    # Example E (a 1x1 kernel of 1 and no bias, so the conv passes X through): ties go to the
    # first maximum in row-major order, and the routing is in the JSON.
    d = _json(capsys, "--input", _matrix(E_X), "--kernel", "1", "--bias", "none", "--pool", "max", "2",
              "--target", _matrix(E_Y - E_G))
    a, q = d["arrays"], d["quantities"]
    _close(a["P"], E_Y)
    _close(a["dL/dP"], E_G)
    _close(a["dL/dX"], [[0, 0, 20, 0], [0, 10, 0, 0], [30, 0, 40, 0], [0, 0, 0, 0]])
    assert q["P[0,1]"]["note"] == "first maximum: Y[0,2]"  # 2, 2 in the top row: the first one
    assert q["P[1,0]"]["note"] == "first maximum: Y[2,0]"  # 7 at (2,0) and (3,1)
    assert q["dL/dY[0,2]"]["terms"] == [{"factors": [["dL/dP[0,1]", 20.0]]}]
    assert q["dL/dY[0,3]"]["terms"] == [] and q["dL/dY[0,3]"]["value"] == 0.0
    assert "dL/db" not in q


def _check_terms(d: dict) -> int:
    """Every quantity made of terms equals their sum; every function quantity its function; every
    factor that names a quantity holds that quantity's value. Returns how many were checked."""
    q = d["quantities"]
    checked = 0
    for name, entry in q.items():
        if "terms" in entry:
            total = sum(t.get("coefficient", 1.0) * np.prod([v for _, v in t["factors"]]) for t in entry["terms"])
            assert total == pytest.approx(entry["value"], rel=1e-12, abs=1e-12), name
            for t in entry["terms"]:
                for factor, value in t["factors"]:
                    if factor in q:
                        assert q[factor]["value"] == value, (name, factor)
            checked += 1
        elif "function" in entry:
            args = [v for _, v in entry["arguments"]]
            expected = {"max": max(args), "relu": max(0.0, args[0]), "relu'": float(args[0] > 0),
                        "tanh": np.tanh(args[0]), "tanh'": 1 - np.tanh(args[0]) ** 2}[entry["function"]]
            assert entry["value"] == pytest.approx(expected, rel=1e-12, abs=1e-12), name
            checked += 1
    return checked


def _full_convolution(d: dict):
    """dL/dX from the JSON's Gpad and Krot by a valid cross-correlation written here; and each
    dX term's Gpad/Krot positions hold its two factors."""
    a, q = d["arrays"], d["quantities"]
    ch = d["network"]["channel_indices"]
    gpad, krot = np.array(a["Gpad"], float), np.array(a["Krot"], float)
    K = np.array(a["K"], float)
    if not ch:
        gpad, krot, K = gpad[None], krot[None, None], K[None, None]
    _close(krot, K[:, :, ::-1, ::-1])
    O, C, kh, kw = K.shape
    ph, pw = d["network"]["layers"][0]["padding"]
    Hp, Wp = gpad.shape[1] - kh + 1, gpad.shape[2] - kw + 1
    dxp = np.zeros((C, Hp, Wp))
    for c, y, x in np.ndindex(C, Hp, Wp):
        dxp[c, y, x] = sum(gpad[o, y + u, x + v] * krot[o, c, u, v] for o in range(O) for u in range(kh) for v in range(kw))
    dX = np.array(a["dL/dX"], float).reshape(C, Hp - 2 * ph, Wp - 2 * pw)
    _close(dxp[:, ph:Hp - ph, pw:Wp - pw], dX)
    for name, entry in q.items():
        if name.startswith("dL/dX"):
            for t in entry["terms"]:
                (_, g), (_, k) = t["factors"]
                at_g, at_k = t["at"]["Gpad"], t["at"]["Krot"]
                assert gpad[tuple(at_g if ch else [0] + at_g)] == g
                assert krot[tuple(at_k if ch else [0, 0] + at_k)] == k


@pytest.mark.parametrize("argv", [
    [],
    ["--input", _matrix(C_X), "--kernel", _matrix(C_K), "--bias", "0", "--stride", "2", "--padding", "1",
     "--target", _matrix(C_Y - C_G)],
    ["--input", _matrix(E_X), "--kernel", "1", "--bias", "none", "--pool", "max", "2", "--target", _matrix(E_Y - E_G)],
    ["--seed", "4", "--pool", "avg", "2", "--pool-stride", "1", "--activation", "relu"],
    ["--input", "1,2,0;0,1,3;2,1,1 | 0,1,1;2,-1,0;1,0,2", "--kernel", "1,-1;2,0 | 0,1;1,0 / 0,0;1,1 | -1,0;0,1",
     "--bias", "1,-0.5", "--padding", "1", "--activation", "tanh", "--pool", "max", "2", "--seed", "0"],
])
def test_terms_sum_to_the_engines_totals(capsys, argv):
    # Every number's terms, re-summed here, give the printed total; dL/dX is the full
    # convolution of Gpad with Krot (the kernel rotated 180 degrees).
    d = _json(capsys, *argv)
    assert _check_terms(d) > 20
    _full_convolution(d)


def _loops(X, K, b, s, p, act, pool, T, lr):
    """The same SGD step by plain loops over every index (an implementation independent of the
    engine's im2col): returns Y, out, L, dK, db, dX, K+, b+."""
    C, H, W = X.shape
    O, _, kh, kw = K.shape
    Xp = np.zeros((C, H + 2 * p, W + 2 * p))
    Xp[:, p:p + H, p:p + W] = X
    oh, ow = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
    Y = np.zeros((O, oh, ow))
    for o, y, x in np.ndindex(O, oh, ow):
        Y[o, y, x] = b[o] + sum(K[o, c, i, j] * Xp[c, y * s + i, x * s + j]
                                for c in range(C) for i in range(kh) for j in range(kw))
    A = np.tanh(Y) if act == "tanh" else Y
    kind, size = pool
    P = np.zeros((O, oh // size, ow // size))
    dA = np.zeros_like(A)
    for o, y, x in np.ndindex(*P.shape):
        cells = [(y * size + i, x * size + j) for i in range(size) for j in range(size)]
        vals = [A[o, r, c] for r, c in cells]
        P[o, y, x] = max(vals) if kind == "max" else sum(vals) / len(vals)
    dP = P - T
    for o, y, x in np.ndindex(*P.shape):
        cells = [(y * size + i, x * size + j) for i in range(size) for j in range(size)]
        vals = [A[o, r, c] for r, c in cells]
        if kind == "max":
            r, c = cells[vals.index(max(vals))]  # the first maximum
            dA[o, r, c] += dP[o, y, x]
        else:
            for r, c in cells:
                dA[o, r, c] += dP[o, y, x] / len(cells)
    G = dA * (1 - np.tanh(Y) ** 2) if act == "tanh" else dA
    dK = np.zeros_like(K)
    dXp = np.zeros_like(Xp)
    for o, y, x in np.ndindex(O, oh, ow):
        for c, i, j in np.ndindex(C, kh, kw):
            dK[o, c, i, j] += G[o, y, x] * Xp[c, y * s + i, x * s + j]
            dXp[c, y * s + i, x * s + j] += G[o, y, x] * K[o, c, i, j]
    db = G.sum(axis=(1, 2))
    return Y, P, 0.5 * np.sum(dP ** 2), dK, db, dXp[:, p:p + H, p:p + W], K - lr * dK, b - lr * db


@pytest.mark.parametrize("seed, kind, act, stride, pad", [(0, "max", "tanh", 1, 1), (1, "avg", "identity", 2, 1),
                                                           (2, "max", "identity", 1, 0)])
def test_multichannel_step_equals_plain_loops(capsys, seed, kind, act, stride, pad):
    # Two input channels and two filters typed in the '|' and '/' syntax: every recorded array
    # equals the plain-loop step's.
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2, 5, 5)).round(3)
    K = rng.normal(size=(2, 2, 2, 2)).round(3)
    b = rng.normal(size=2).round(3)
    net = conv_network(K, b, X.shape, stride, pad, act, (kind, 2))
    T = rng.normal(size=net.layers[1].output_shape).round(3)
    lr = 0.05
    d = _json(capsys, "--input", _matrix(X), "--kernel", _matrix(K), "--bias", ",".join(repr(float(v)) for v in b),
              "--target", _matrix(T), "--stride", str(stride), "--padding", str(pad), "--pool", kind, "2",
              "--activation", act, "--lr", str(lr), "--force")
    Y, P, L, dK, db, dX, K1, b1 = _loops(X, K, b, stride, pad, act, (kind, 2), T, lr)
    a = d["arrays"]
    for got, expected in ((a["Y"], Y), (a["P"], P), (a["dL/dK"], dK), (a["dL/db"], db), (a["dL/dX"], dX),
                          (a["K+"], K1), (a["b+"], b1)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert d["L"] == pytest.approx(L, rel=1e-12)
    assert "K[1,0,1,1]" in d["quantities"] and "dL/dX[1,4,4]" in d["quantities"] and "b[1]" in d["quantities"]


def test_python_api_leaves_the_network_alone():
    # explain_conv copies the network; steps() lists every equation with the engine's value.
    net = conv_network(np.array([[[[1.0, -1.0], [2.0, 0.0]]]]), 1.0, (1, 3, 3))
    before = net.get_weights()
    d = explain_conv(net, np.array(B_X, float), np.array([[1.0, 4.0], [1.0, 3.0]]), lr=0.1)
    for w0, w1 in zip(before, net.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    steps = d.steps()
    assert [s["name"] for s in steps][:4] == ["Y[0,0]", "Y[0,1]", "Y[1,0]", "Y[1,1]"]
    by_name = {s["name"]: s for s in steps}
    assert by_name["dL/dX[1,1]"]["value"] == -3.0 and by_name["dL/dX[1,1]"]["section"] == "input_gradient"
    assert by_name["dL/dX[1,1]"]["text"].endswith("= -3") and "Krot[0,0]" in by_name["dL/dX[1,1]"]["text"]
    assert by_name["Y[0,1]"]["uses"] == ["X[0,1]", "K[0,0]", "X[0,2]", "K[0,1]", "X[1,1]", "K[1,0]", "X[1,2]", "K[1,1]", "b"]
    assert example_b().to_dict() == d.to_dict()


@pytest.mark.parametrize("fmt, markers", [
    ("text", ["Y[0,1] = X[0,1]·K[0,0] + X[0,2]·K[0,1] + X[1,1]·K[1,0] + X[1,2]·K[1,1] + b",
              "= 2·1 + 0·(-1) + 1·2 + 3·0 + 1 = 5", "rotated by 180 degrees", "∂L/∂X[2,0] = Gpad[2,1]·Krot[0,1]",
              "K⁺[0,0] = K[0,0] − η·∂L/∂K[0,0] = 1 − 0.1·(-1) = 1.1", "= 3.14"]),
    ("markdown", ["$$", r"\frac{\partial L}{\partial X_{2,0}}", r"K^{\mathrm{rot}}_{0,1}", "| X | 0 | 1 | 2 |"]),
    ("latex", [r"\documentclass", r"\begin{align*}", r"\frac{1}{2}", r"\end{document}"]),
    ("json", ['"format": "backprop.explain.conv"']),
])
def test_formats(capsys, fmt, markers):
    # Each --format writes its own kind of document, with example B's numbers in it.
    assert main(["explain", "--conv", "--format", fmt]) == 0
    out = capsys.readouterr().out
    for marker in markers:
        assert marker in out, marker


def test_pool_and_channels_render_in_every_format(capsys):
    # A two-channel network with an activation and a pool renders in every format (the routing
    # and the activation's derivative are in them).
    argv = ["explain", "--conv", "--seed", "2", "--input", "1,2,0;0,1,3;2,1,1 | 0,1,1;2,-1,0;1,0,2", "--kernel",
            "1,-1;2,0 | 0,1;1,0 / 0,0;1,1 | -1,0;0,1", "--padding", "1", "--activation", "relu", "--pool", "avg", "2"]
    for fmt, marker in (("text", "∂L/∂A[1,3,3] = 1/4·∂L/∂P[1,1,1]"), ("markdown", r"\frac{\partial A_{0,0,0}}"),
                        ("latex", r"\operatorname{relu}'"), ("json", '"dA/dY[1,3,3]"')):
        assert main([*argv, "--format", fmt]) == 0
        assert marker in capsys.readouterr().out, fmt


def test_seed_draws_a_reproducible_small_example(capsys):
    # --seed draws small integers for what is not given; the same seed gives the same step.
    a, b, c = _json(capsys, "--seed", "3"), _json(capsys, "--seed", "3"), _json(capsys, "--seed", "4")
    assert a == b and a["arrays"]["X"] != c["arrays"]["X"]
    X = np.array(a["arrays"]["X"])
    assert X.shape == (4, 4) and np.all(X == X.round())
    k = _json(capsys, "--seed", "3", "--kernel", "1,0;0,1")
    assert k["arrays"]["K"] == [[1.0, 0.0], [0.0, 1.0]] and k["arrays"]["X"] == a["arrays"]["X"]


def test_size_limit_needs_force(capsys):
    # Beyond MAX_PRODUCTS multiply-adds the derivation is refused with the count, unless --force.
    big = _matrix(np.ones((8, 8)))
    assert main(["explain", "--conv", "--input", big, "--kernel", _matrix(np.ones((3, 3))), "--seed", "1"]) == 1
    err = capsys.readouterr().err
    assert f"at most {MAX_PRODUCTS} products" in err and "got 324" in err and "--force" in err and err.count("\n") == 1
    d = _json(capsys, "--input", big, "--kernel", _matrix(np.ones((3, 3))), "--seed", "1", "--force")
    assert len(d["arrays"]["dL/dX"]) == 8


@pytest.mark.parametrize("argv, code, expected", [
    (["--kernel", "1,2,3;1,2,3;1,2,3;1,2,3"], 1, "`kernel_size` 4x3 is larger than the padded input 3x3"),
    (["--stride", "0"], 2, "--stride must be a positive integer or a pair HxW of them; got '0'"),
    (["--padding", "x"], 2, "--padding must be an integer >= 0 or a pair HxW of them; got 'x'"),
    (["--pool", "max", "3"], 1, "`pool_size` 3x3 does not fit the input 2x2"),
    (["--pool", "min", "2"], 2, "--pool: KIND must be 'max' or 'avg' (e.g. --pool max 2); got 'min'"),
    (["--pool", "max", "0"], 2, "--pool SIZE must be a positive integer"),
    (["--pool-stride", "1"], 2, "`--pool-stride` needs `--pool KIND SIZE`"),
    (["--input", "1,2;3"], 2, "--input must be a matrix (numbers separated by ',', rows by ';', channels by '|') with "
                              "rows of one length; got '1,2;3' (rows of 2, 1 numbers)"),
    (["--kernel", "1,x;2,0"], 2, "--kernel must be a matrix"),
    (["--input", "1,2;3,4|5,6"], 2, "--input must have channels of one shape"),
    (["--target", "1,2"], 1, "`target` must have the output's shape 2x2; got shape 1x2"),
    (["--input", "1,2,0,1;0,1,3,1;2,1,1,1"], 1, "`--target` is needed: the output is 2x3"),
    (["--input", "1,2;3,4 | 5,6;7,8"], 1, "`--kernel` is needed for an input of 2 channels"),
    (["--layers", "2,3,1"], 2, "drop --layers"),
    (["--format", "html", "--steps", "0"], 2, "argument --steps: must be an integer >= 1; got '0'"),
    (["--lr", "-1"], 2, "argument --lr: must be a positive number; got '-1'"),
    (["--bias", "inf"], 2, "--bias must be finite numbers separated by ','"),
])
def test_bad_input_is_one_clear_line(capsys, argv, code, expected):
    # Bad input: one error line naming the argument; exit 2 for usage, 1 for values that do not fit.
    assert main(["explain", "--conv", *argv]) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and expected in lines[0], err


def test_conv_options_need_conv(capsys):
    # A conv option without --conv is a usage error naming both.
    assert main(["explain", "--kernel", "1,0;0,1"]) == 2
    assert capsys.readouterr().err == "backprop: error: `--kernel` describes a convolution and needs `--conv`\n"


def test_parse_tensor_syntax():
    # Rows by ';', numbers by ',', channels by '|', filters by '/'.
    np.testing.assert_array_equal(parse_tensor("1,2;3,4", "m"), [[[1, 2], [3, 4]]])
    np.testing.assert_array_equal(parse_tensor("1;2 | -3;.5", "m"), [[[1], [2]], [[-3], [0.5]]])
    k = parse_tensor("1|2 / 3|4 / 5|6", "k", filters=True)
    assert k.shape == (3, 2, 1, 1) and k[2, 1, 0, 0] == 6
    with pytest.raises(ValueError, match="must hold finite numbers"):
        parse_tensor("1e999", "m")


def test_output_file(tmp_path, capsys):
    # --output writes the document atomically and a failing run leaves the file as it was.
    path = tmp_path / "conv.md"
    assert main(["explain", "--conv", "--format", "markdown", "--output", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# One convolution training step") and [p.name for p in tmp_path.iterdir()] == ["conv.md"]
    assert main(["explain", "--conv", "--stride", "9", "--output", str(path)]) == 1
    assert path.read_text(encoding="utf-8") == text
