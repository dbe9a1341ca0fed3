"""Every loss against central differences for every kind of target it accepts (issue 27): one-hot,
soft (rows summing to one), unnormalised and all-zero rows, multi-label 0/1 rows, and sample
weights with zeros in them, on the reference path, on every fast runner and through a tiny conv
network, in float64.

The oracle is written here and shares no code with the library: a plain numpy forward pass of the
Dense layers' parameters, each loss's textbook formula (scipy's log_softmax, log_expit and xlogy),
the reductions spelled out, and central differences of that objective. On the fast runners one
epoch of plain SGD with lr (shuffle off) must equal the same number of steps W <- W - lr * the
numeric gradient of each batch's loss, and the epoch's loss the one ``fit`` documents. Targets
whose rows do not sum to one are what distinguish softmax cross-entropy's gradient
softmax(z) * sum(t) - t from the one-hot shortcut softmax(z) - t.
"""

import numpy as np
import pytest
from scipy.special import expit, log_expit, log_softmax, softmax, xlogy

from backprop import SGD, AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Network, get_loss

N, D, K = 6, 3, 3
EPS = 1e-5

# -- the oracle ---------------------------------------------------------------------------------------
ACTS = {
    "identity": lambda z: z,
    "sigmoid": expit,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "softmax": lambda z: softmax(z, axis=1),
    "exp": np.exp,
}
# per-sample losses of outputs o (or logits z for the from-logits ones) against targets t
PER_SAMPLE = {
    "half_sse": lambda o, t: 0.5 * np.sum((t - o) ** 2, axis=1),
    "sse": lambda o, t: np.sum((t - o) ** 2, axis=1),
    "mse": lambda o, t: np.mean((t - o) ** 2, axis=1),
    "binary_cross_entropy": lambda z, t: -np.sum(t * log_expit(z) + (1 - t) * log_expit(-z), axis=1),
    "softmax_cross_entropy": lambda z, t: -np.sum(t * log_softmax(z, axis=1), axis=1),
    "half_poisson_deviance": lambda z, t: np.sum(xlogy(t, t) - t * z - t + np.exp(z), axis=1),
}
FROM_LOGITS = {"binary_cross_entropy", "softmax_cross_entropy", "half_poisson_deviance"}


def reduce(losses, reduction, w=None):
    """sum: sum_i w_i L_i; mean: that over sum_i w_i (0 when every weight is 0); w_i = 1 unweighted."""
    w = np.ones(len(losses)) if w is None else np.asarray(w, float)
    total = float(np.dot(w, losses))
    if reduction == "sum":
        return total
    return total / w.sum() if w.sum() > 0 else 0.0


def objective(params, acts, name, reduction, X, T, w=None):
    """The reduced loss of a stack of Dense layers given as [W1, b1, W2, b2, ...]."""
    A = X
    for layer, act in enumerate(acts):
        Z = A @ params[2 * layer] + params[2 * layer + 1]
        A = ACTS[act](Z)
    out = Z if name in FROM_LOGITS else A
    return reduce(PER_SAMPLE[name](out, T), reduction, w)


def numeric_gradient(params, f):
    """Central differences of f() with respect to every entry of every array in params."""
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + EPS
            plus = f()
            p[i] = old - EPS
            minus = f()
            p[i] = old
            g[i] = (plus - minus) / (2 * EPS)
        grads.append(g)
    return grads


# -- the targets and weights --------------------------------------------------------------------------
def targets(kind, k=K, n=N, seed=0):
    rng = np.random.default_rng(seed)
    onehot = np.eye(k)[np.arange(n) * 2 % k]
    if kind == "onehot":
        return onehot
    if kind == "soft":  # label-smoothing-like rows, each summing to one
        return rng.dirichlet(np.ones(k), n)
    if kind == "unnormalised":  # rows summing to 0.2 ... 3
        return rng.dirichlet(np.ones(k), n) * rng.uniform(0.2, 3.0, (n, 1))
    if kind == "zero-rows":  # one-hot with all-zero rows, the last two of them a whole batch of 2
        T = onehot.copy()
        T[[1, n - 2, n - 1]] = 0.0
        return T
    if kind == "multilabel":  # several labels per row (and one row without any)
        rows = np.array([[1, 0, 1], [1, 1, 1], [0, 1, 0], [0, 0, 0], [1, 1, 0], [0, 1, 1]], float)
        return np.resize(rows, (n, k))
    raise ValueError(kind)


TARGET_KINDS = ["onehot", "soft", "unnormalised", "zero-rows", "multilabel"]
# zeros: the first two samples weigh nothing (a whole batch of 2), and one more further on
WEIGHTS = {"unweighted": None, "zero-weights": np.array([0.0, 0.0, 1.5, 0.5, 2.0, 0.0])}

# (loss, hidden activation, output activation): every loss, each from-logits loss with its link
# fused and with identity, and squared errors through softmax and exp outputs (their derivatives)
CASES = [
    ("half_sse", "sigmoid", "sigmoid"),
    ("sse", "tanh", "tanh"),
    ("mse", "relu", "identity"),
    ("mse", "leaky_relu", "softmax"),
    ("binary_cross_entropy", "tanh", "sigmoid"),
    ("binary_cross_entropy", "sigmoid", "identity"),
    ("softmax_cross_entropy", "tanh", "softmax"),
    ("softmax_cross_entropy", "relu", "identity"),
    ("half_poisson_deviance", "tanh", "exp"),
    ("half_poisson_deviance", "sigmoid", "identity"),
    ("half_sse", "tanh", "exp"),  # the log link's derivative, outside the Poisson loss
]
# the compiled path has neither the Poisson loss nor the exp activation: reference path only
FAST_CASES = [c for c in CASES if c[0] != "half_poisson_deviance" and c[2] != "exp"]


def _ids(case):
    return "-".join(case)


def make_network(name, hidden, out, reduction, sizes=(D, 4, K), seed=0):
    layers = [Dense(a, b, hidden, seed=seed + i) for i, (a, b) in enumerate(zip(sizes[:-2], sizes[1:-1]))]
    layers.append(Dense(sizes[-2], sizes[-1], out, seed=seed + 9))
    return Network(layers, loss=get_loss(name, reduction=reduction))


def _data(d=D, n=N, seed=1):
    return np.random.default_rng(seed).standard_normal((n, d)) * 0.8


def _params(net):
    return [p.copy() for p in net.parameters()]


# -- the losses alone ---------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", sorted(PER_SAMPLE))
def test_loss_value_and_gradient_for_every_target_kind(name, reduction):
    # Loss.value equals the textbook formula and Loss.gradient its central differences, for
    # every target kind, unweighted and with zero weights.
    loss = get_loss(name, reduction=reduction)
    out = np.random.default_rng(2).standard_normal((N, K))
    for kind in TARGET_KINDS:
        T = targets(kind)
        for wname, w in WEIGHTS.items():
            where = f"{name}/{reduction}/{kind}/{wname}"
            assert loss.value(out, T, w) == pytest.approx(reduce(PER_SAMPLE[name](out, T), reduction, w),
                                                          rel=1e-12, abs=1e-14), where
            O = out.copy()
            num = numeric_gradient([O], lambda: reduce(PER_SAMPLE[name](O, T), reduction, w))[0]
            np.testing.assert_allclose(loss.gradient(out, T, w), num, rtol=1e-7, atol=1e-9, err_msg=where)


def test_softmax_cross_entropy_gradient_scales_with_the_row_sum():
    # Hand derivation: dE/dz = softmax(z) * sum(t) - t, so a row of zeros has gradient 0 and a
    # row of 2 * one-hot twice the one-hot gradient.
    z = np.array([[1.0, -0.5, 0.25], [0.3, 0.2, -1.0], [2.0, 0.0, -2.0]])
    T = np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 1.0, 0.0]])
    g = get_loss("softmax_cross_entropy", reduction="sum").gradient(z, T)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(g[0], 0.0)
    np.testing.assert_allclose(g[1], 2 * p[1] - [0, 2, 0], rtol=1e-14)
    np.testing.assert_allclose(g[2], p[2] - [0, 1, 0], rtol=1e-14)


# -- the reference path -------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_reference_gradients_for_every_target_kind(case, reduction):
    # Network.loss and Network.gradients (numpy reference path) equal the oracle's value and
    # its central differences.
    name, hidden, out = case
    net = make_network(name, hidden, out, reduction)
    X = _data()
    params = _params(net)
    acts = [hidden, out]
    for kind in TARGET_KINDS:
        T = targets(kind)
        for wname, w in WEIGHTS.items():
            where = f"{_ids(case)}/{reduction}/{kind}/{wname}"
            f = lambda: objective(params, acts, name, reduction, X, T, w)  # noqa: E731
            assert net.loss(X, T, sample_weight=w) == pytest.approx(f(), rel=1e-12, abs=1e-14), where
            for (pname, _), got, want in zip(net.named_parameters(), net.gradients(X, T, sample_weight=w),
                                             numeric_gradient(params, f)):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=f"{where}/{pname}")


# -- every fast runner ----------------------------------------------------------------------------------
def sgd_by_finite_differences(params, acts, name, reduction, X, T, w, lr, batch_size):
    """One unshuffled epoch of W <- W - lr * numeric gradient, batch by batch; returns the
    parameters after it and the epoch loss as fit defines it (each batch's loss before its
    step; for mean losses weighted by the batch's share of the rows, or of the weights)."""
    params = [p.copy() for p in params]
    total, n = 0.0, X.shape[0]
    w_total = n if w is None else float(np.sum(w))
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        wb = None if w is None else w[sl]
        f = lambda: objective(params, acts, name, reduction, X[sl], T[sl], wb)  # noqa: E731
        value = f()
        if reduction == "mean":
            value *= (len(X[sl]) if wb is None else float(np.sum(wb))) / w_total
        total += value
        for p, g in zip(params, numeric_gradient(params, f)):
            p -= lr * g
    return params, total


# (runner, batch size, which weights): train_online (batch 1, unweighted, plain SGD);
# train_epoch per sample (batch 1 with weights) and in mini-batches (2: a batch weighing 0;
# 4: a short last batch); the numpy batch runner (forced by conftest's numpy_runner)
RUNNERS = [
    ("online", 1, ["unweighted"]),
    ("epoch-per-sample", 1, ["zero-weights"]),
    ("epoch-batch2", 2, list(WEIGHTS)),
    ("epoch-batch4", 4, list(WEIGHTS)),
    ("numpy-batch2", 2, list(WEIGHTS)),
    ("numpy-batch4", 4, list(WEIGHTS)),
]


def _fast_runner_kind(net, X, T, loss, batch_size, w):
    """Which runner and kernel fit's fast path picks for this run (checked, so that each case
    really exercises the runner it names)."""
    from backprop import fast

    runner = fast.make_runner(net.copy(), X, T, loss, SGD(0.1), batch_size, w).runner
    if type(runner).__name__ == "BatchRunner":
        return "numpy"
    return "online" if runner.online else "epoch"


def _check_fast_epoch(case, reduction, batch_size, weight_names, sizes=(D, 4, K), lr=0.3, kinds=TARGET_KINDS,
                      expect=None, n=N):
    name, hidden, out = case
    X = _data(sizes[0], n=n)
    for kind in kinds:
        T = targets(kind, k=sizes[-1], n=n)
        for wname in weight_names:
            w = None if WEIGHTS[wname] is None else np.resize(WEIGHTS[wname], n)
            where = f"{_ids(case)}/{reduction}/{kind}/{wname}/batch{batch_size}"
            net = make_network(name, hidden, out, reduction, sizes=sizes)
            if expect is not None:
                assert _fast_runner_kind(net, X, T, net.loss_fn, batch_size, w) == expect, where
            want, want_loss = sgd_by_finite_differences(
                _params(net), [hidden] * (len(sizes) - 2) + [out], name, reduction, X, T, w, lr, batch_size)
            hist = net.fit(X, T, epochs=1, batch_size=batch_size, optimizer=SGD(lr), shuffle=False,
                           sample_weight=w, fast=True)
            for (pname, got), p in zip(net.named_parameters(), want):
                np.testing.assert_allclose(got, p, rtol=1e-7, atol=1e-8, err_msg=f"{where}/{pname}")
            assert hist.loss[0] == pytest.approx(want_loss, rel=1e-9, abs=1e-12), where


@pytest.mark.parametrize("runner", RUNNERS, ids=[r[0] for r in RUNNERS])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", FAST_CASES, ids=_ids)
def test_fast_runners_step_by_the_numeric_gradient(case, reduction, runner, request):
    # One epoch of plain SGD on each fast runner equals W - lr * (central differences of the
    # oracle's loss) batch after batch, for every target kind and with zero weights; the
    # epoch's loss equals the oracle's.
    pytest.importorskip("numba")
    kind, batch_size, weight_names = runner
    if kind.startswith("numpy"):
        request.getfixturevalue("numpy_runner")
    _check_fast_epoch(case, reduction, batch_size, weight_names,
                      expect="numpy" if kind.startswith("numpy") else kind.split("-")[0])


@pytest.mark.parametrize("case", [c for c in FAST_CASES if c[2] != "tanh"][::2], ids=_ids)
def test_blas_sized_batches_step_by_the_numeric_gradient(case):
    # Batches big enough for the epoch kernel's BLAS products (gemm into the weights for plain
    # SGD, the bias folded into the forward gemm): the same oracle, weighted and not.
    pytest.importorskip("numba")
    from backprop import fast
    from backprop.fast import blas

    sizes, batch_size, n = (40, 24, K), 12, 24
    net = make_network(case[0], case[1], case[2], "mean", sizes=sizes)
    made = fast.make_runner(net, _data(sizes[0], n=n), targets("onehot", n=n), net.loss_fn, SGD(0.1),
                            batch_size).runner
    assert made.uses_blas and made.gemm_fn == (blas.gemm_address(np.float64) or 0)
    _check_fast_epoch(case, "mean", batch_size, list(WEIGHTS), sizes=sizes, lr=0.2,
                      kinds=["unnormalised", "multilabel"], expect="epoch", n=n)


# -- a tiny conv network (reference path) ---------------------------------------------------------------
CONV_CASES = [
    ("half_sse", "sigmoid"),
    ("mse", "softmax"),
    ("binary_cross_entropy", "identity"),
    ("softmax_cross_entropy", "identity"),
    ("softmax_cross_entropy", "softmax"),
    ("half_poisson_deviance", "identity"),
]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name,out", CONV_CASES)
def test_conv_network_gradients_for_every_target_kind(name, out, reduction):
    # Conv2D -> MaxPool2D -> AvgPool2D -> Flatten -> Dense: Network.gradients equal central
    # differences of the oracle's loss of the network's outputs (logits: its last net input).
    n = 4
    net = Network([Conv2D(1, 2, 3, padding=1, activation="tanh", seed=1), MaxPool2D(2), AvgPool2D(2, stride=1),
                   Flatten(), Dense(2, K, out, seed=2)], input_shape=(1, 5, 5),
                  loss=get_loss(name, reduction=reduction))
    X = np.random.default_rng(3).standard_normal((n, 1, 5, 5))
    last = net.layers[-1]

    def f(T, w):
        net.forward(X)
        return reduce(PER_SAMPLE[name](last.Z if name in FROM_LOGITS else last.A, T), reduction, w)

    for kind in TARGET_KINDS:
        T = targets(kind, n=n)
        for wname, w in (("unweighted", None), ("zero-weights", np.array([0.0, 1.5, 0.0, 0.5]))):
            where = f"{name}/{out}/{reduction}/{kind}/{wname}"
            grads = net.gradients(X, T, sample_weight=w)
            numeric = numeric_gradient(net.parameters(), lambda: f(T, w))
            for (pname, _), got, want in zip(net.named_parameters(), grads, numeric):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=f"{where}/{pname}")
