"""Optimizers: one and several steps against the update rules written out here, and schedules."""

import numpy as np
import pytest

from backprop import SGD, Adam, BackpropError, InverseScaling, ReduceOnPlateau


def _params(rng):
    return [rng.standard_normal((3, 2)), rng.standard_normal(2)]


def _run(opt, params, grads_seq):
    for grads in grads_seq:
        opt.step(params, grads)
    return params


@pytest.fixture
def setup(rng):
    p0 = _params(rng)
    grads_seq = [[rng.standard_normal(p.shape) for p in p0] for _ in range(3)]
    return p0, grads_seq


def test_sgd_plain(setup):
    # p <- p - lr * g, three times.
    p0, gs = setup
    got = _run(SGD(0.1), [p.copy() for p in p0], gs)
    for i, p in enumerate(p0):
        want = p - 0.1 * gs[0][i] - 0.1 * gs[1][i] - 0.1 * gs[2][i]
        np.testing.assert_allclose(got[i], want, rtol=1e-14)


def test_sgd_momentum_and_nesterov(setup):
    # v <- mu v - lr g; p <- p + v (classical) or p + mu v - lr g (Nesterov).
    p0, gs = setup
    for nesterov in (False, True):
        got = _run(SGD(0.1, momentum=0.9, nesterov=nesterov), [p.copy() for p in p0], gs)
        for i, p in enumerate(p0):
            p, v = p.copy(), np.zeros_like(p)
            for grads in gs:
                v = 0.9 * v - 0.1 * grads[i]
                p = p + (0.9 * v - 0.1 * grads[i] if nesterov else v)
            np.testing.assert_allclose(got[i], p, rtol=1e-13)


def test_sgd_weight_decay_only_on_matrices(setup):
    # L2 decay adds wd * p to the gradient of weight matrices, not of bias vectors.
    p0, gs = setup
    got = _run(SGD(0.1, weight_decay=0.01), [p.copy() for p in p0], gs[:1])
    np.testing.assert_allclose(got[0], p0[0] - 0.1 * (gs[0][0] + 0.01 * p0[0]), rtol=1e-14)
    np.testing.assert_allclose(got[1], p0[1] - 0.1 * gs[0][1], rtol=1e-14)


def test_adam(setup):
    # Bias-corrected Adam, written out for three steps.
    p0, gs = setup
    got = _run(Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7), [p.copy() for p in p0], gs)
    for i, p in enumerate(p0):
        p, m, v = p.copy(), 0.0, 0.0
        for t, grads in enumerate(gs, start=1):
            g = grads[i]
            m = 0.8 * m + 0.2 * g
            v = 0.99 * v + 0.01 * g * g
            p = p - 0.01 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-7)
        np.testing.assert_allclose(got[i], p, rtol=1e-13)


def test_adam_weight_decay_only_on_matrices(setup):
    # Adam's L2 decay: g + wd * p enters m and v for the weight matrix, plain g for the bias.
    p0, gs = setup
    got = _run(Adam(0.01, weight_decay=0.5), [p.copy() for p in p0], gs)
    for i, p in enumerate(p0):
        p, m, v = p.copy(), 0.0, 0.0
        for t, grads in enumerate(gs, start=1):
            g = grads[i] + (0.5 * p if i == 0 else 0.0)
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            p = p - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(got[i], p, rtol=1e-12)


def test_inverse_scaling_schedule(setup):
    # lr_t = lr / (t + 1) ** power_t with t = 0, 1, 2.
    p0, gs = setup
    got = _run(SGD(InverseScaling(0.5, power_t=0.5)), [p.copy() for p in p0], gs)
    want = p0[0] - sum(0.5 / np.sqrt(t + 1) * gs[t][0] for t in range(3))
    np.testing.assert_allclose(got[0], want, rtol=1e-14)


def test_reduce_on_plateau():
    # The rate drops by `factor` after `patience` epochs without improvement, not before.
    sched = ReduceOnPlateau(1.0, factor=0.5, patience=2, threshold=0.0)
    lrs = []
    for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.5]:
        sched.epoch_end(loss)
        lrs.append(sched.lr_at(0))
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_state_dict_resume_is_exact(setup):
    # Saving and loading optimizer state mid-run gives the same result as an unbroken run.
    p0, gs = setup
    full = _run(Adam(0.01), [p.copy() for p in p0], gs)
    opt = Adam(0.01)
    part = _run(opt, [p.copy() for p in p0], gs[:1])
    opt2 = Adam(0.01)
    opt2.load_state_dict(opt.state_dict())
    _run(opt2, part, gs[1:])
    for a, b in zip(full, part):
        np.testing.assert_array_equal(a, b)


def test_optimizer_argument_errors():
    # Bad hyper-parameters are refused with the argument's name.
    with pytest.raises(BackpropError, match="`lr` must be a positive number; got -0.1"):
        SGD(-0.1)
    with pytest.raises(BackpropError, match="`momentum` must be a number in"):
        SGD(0.1, momentum=1.5)
    with pytest.raises(BackpropError, match="`nesterov` needs a positive `momentum`"):
        SGD(0.1, nesterov=True)
    with pytest.raises(BackpropError, match="`beta_2` must be a number in"):
        Adam(beta_2=1.0)
