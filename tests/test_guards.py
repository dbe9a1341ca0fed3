"""Divergence: fit stops on a NaN/inf/exploding loss or non-finite weights, names the likely cause,
keeps the last good weights, and lets no numpy warning through."""

import warnings

import numpy as np
import pytest

from backprop import SGD, LambdaCallback, Network, fit
from backprop.guards import EXPLODE_FACTOR


def _recorder():
    """A callback keeping a copy of the weights at every (accepted) epoch end: the oracle for
    "the last good weights"."""
    seen = []
    return seen, LambdaCallback(lambda state: seen.append(state.network.get_weights()))


def _linear_data(rng, n=40, scale=1.0):
    X = rng.standard_normal((n, 3)) * scale
    Y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.1
    return X, Y


def test_high_learning_rate_diverges_cleanly(rng):
    # A learning rate far too high makes the loss blow up; fit stops, blames the rate, keeps the
    # weights of the last accepted epoch, and no RuntimeWarning escapes.
    X, Y = _linear_data(rng)
    net = Network.from_sizes([3, 8, 1], activation="relu", output_activation="identity", seed=0)
    seen, rec = _recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = fit(net, X, Y, epochs=200, batch_size=4, lr=1.0, seed=0, callbacks=[rec])
    assert hist.diverged and not hist.interrupted
    assert "learning rate (1) is probably too high" in hist.stop_reason
    assert len(hist) < 200 and len(hist) == len(seen)
    kept = seen[-1] if seen else None
    assert kept is not None, "expected at least one good epoch before the blow-up"
    for w, k in zip(net.get_weights(), kept):
        np.testing.assert_array_equal(w, k)
    assert all(np.isfinite(w).all() for w in net.get_weights())
    assert all(np.isfinite(hist.loss))


def test_unscaled_features_are_named(rng):
    # Features in the thousands with an ordinary rate diverge; the message says to scale them and
    # quotes the largest |X|; the initial weights are kept when not even one epoch succeeds.
    X, Y = _linear_data(rng, scale=1.0)
    X[:, 0] *= 5000.0
    net = Network.from_sizes([3, 4, 1], activation="relu", output_activation="identity", seed=0)
    initial = net.get_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = fit(net, X, Y, epochs=50, batch_size=8, lr=0.01, seed=0)
    assert hist.diverged and len(hist) == 0
    assert "features are probably not scaled" in hist.stop_reason
    assert f"{np.max(np.abs(X)):.4g}" in hist.stop_reason
    assert "kept the initial weights" in hist.stop_reason
    # the diagnosis alone (what the command line prints, as it saves nothing) is the reason less that
    assert hist.stop_reason == f"{hist.divergence}; kept the initial weights" and "kept" not in hist.divergence
    for w, k in zip(net.get_weights(), initial):
        np.testing.assert_array_equal(w, k)


def test_exploding_loss_stops_before_overflow(rng):
    # Linear least squares with a rate just above the stability limit grows the loss by a steady
    # factor per epoch: fit stops at the first epoch above 1e6 x max(first loss, 1) while every
    # number is still finite, and keeps the weights of the epoch before.
    from backprop import Dense

    X, Y = _linear_data(rng, n=32)
    net = Network([Dense(3, 1, weight_init="zeros")], loss="half_sse")
    # Full-batch gradient descent on mean half-SSE is stable iff lr < 2 / lambda_max(X^T X / n).
    lr = 2.6 / np.linalg.eigvalsh(X.T @ X / len(X)).max()
    seen, rec = _recorder()
    hist = fit(net, X, Y, epochs=500, batch_size=len(X), lr=lr, shuffle=False, callbacks=[rec])
    assert hist.diverged and "exploded" in hist.stop_reason
    limit = EXPLODE_FACTOR * max(hist.loss[0], 1.0)
    assert max(hist.loss) <= limit and len(hist) < 500
    # Oracle, by hand: with one full batch per epoch, an epoch's loss is the loss of the weights
    # entering it, i.e. of the kept weights (those after the last accepted epoch); it is the
    # value the message quotes, and above the limit.
    for w, k in zip(net.get_weights(), seen[-1]):
        np.testing.assert_array_equal(w, k)
    W, b = seen[-1]
    tripped = 0.5 * np.mean((X @ W + b - Y) ** 2)
    assert tripped > limit and f"exploded at epoch {len(hist) + 1}: {tripped:.4g}" in hist.stop_reason


def test_non_finite_weights_after_a_step_are_caught(rng):
    # An optimizer that writes NaN into a weight on its 7th step (a loss that is still finite)
    # is caught at the epoch end, and the previous epoch's weights come back.
    class Poisoned(SGD):
        def _update(self, params, grads, lr):
            super()._update(params, grads, lr)
            if self.t == 6:
                params[0][0, 0] = np.nan

    X, Y = _linear_data(rng, n=12)
    net = Network.from_sizes([3, 2, 1], output_activation="identity", seed=0)
    seen, rec = _recorder()
    hist = fit(net, X, Y, epochs=10, batch_size=4, optimizer=Poisoned(0.01), shuffle=False, callbacks=[rec])
    # 3 batches per epoch: step 7 (t == 6) is the first of epoch 3; its NaN reaches the loss of
    # the next batch, which the per-batch check catches.
    assert hist.diverged and len(hist) == 2
    assert "the loss became nan at epoch 3, batch 2" in hist.stop_reason
    for w, k in zip(net.get_weights(), seen[-1]):
        np.testing.assert_array_equal(w, k)


def test_nan_in_last_step_of_epoch_is_caught_by_weight_check(rng):
    # A NaN written by the last step of an epoch never shows in a loss of that epoch: the
    # per-epoch weight check catches it and names the weight.
    class Poisoned(SGD):
        def _update(self, params, grads, lr):
            super()._update(params, grads, lr)
            if self.t == 5:  # the 6th step: the last batch of epoch 2
                params[2][0, 0] = np.inf

    X, Y = _linear_data(rng, n=12)
    net = Network.from_sizes([3, 2, 1], output_activation="identity", seed=0)
    hist = fit(net, X, Y, epochs=10, batch_size=4, optimizer=Poisoned(0.01), shuffle=False)
    assert hist.diverged and len(hist) == 1
    assert "weights `W2` became NaN or infinite at epoch 2" in hist.stop_reason


def test_healthy_training_is_untouched(rng):
    # The guard changes nothing in a run that does not diverge: fit equals manual train steps.
    X, Y = rng.random((9, 2)), rng.random((9, 1))
    a = Network.from_sizes([2, 3, 1], seed=0)
    b = a.copy()
    hist = fit(a, X, Y, epochs=3, batch_size=1, lr=0.5, shuffle=False, fast=False)  # bitwise: numpy path
    opt = SGD(0.5)
    for _ in range(3):
        for i in range(9):
            b.train_step(X[i : i + 1], Y[i : i + 1], opt)
    assert not hist.diverged and hist.stop_reason == ""
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_warnings_outside_fit_are_not_silenced():
    # The guard silences numpy's warnings only while fit runs: afterwards an overflow warns again.
    X, Y = np.ones((2, 1)), np.ones((2, 1))
    fit(Network.from_sizes([1, 1], seed=0), X, Y, epochs=1)
    with pytest.warns(RuntimeWarning):
        np.exp(np.array([1000.0]))
