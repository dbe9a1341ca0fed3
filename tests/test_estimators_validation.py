"""The estimators' own validation set (fit's X_val/y_val) and bitwise resume from checkpoints.

Oracles: the estimator's score/predict_proba on the final weights (scikit-learn's metric
functions), a second fit without the validation set (it must not change training), and an
uninterrupted fit for the resumed one.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss

from backprop import Callback, MLPClassifier, MLPRegressor
from backprop.checkpoint import Checkpoint
from backprop._validation import BackpropError


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:300], y[:300], X[300:400], y[300:400]


def small(**kw):
    params = dict(hidden_layer_sizes=(16,), max_iter=8, random_state=0, batch_size=32)
    params.update(kw)
    return MLPClassifier(**params)


def test_validation_set_is_scored_each_epoch_and_does_not_change_training(digits):
    X, y, Xv, yv = digits
    with pytest.warns(Warning):  # 8 epochs: not converged
        clf = small().fit(X, y, X_val=Xv, y_val=yv)
    with pytest.warns(Warning):
        plain = small().fit(X, y)
    for a, b in zip(clf.coefs_ + clf.intercepts_, plain.coefs_ + plain.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert plain.validation_scores_ is None
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_ == 8
    assert clf.validation_scores_[-1] == clf.score(Xv, yv)
    np.testing.assert_allclose(clf.validation_loss_curve_[-1], log_loss(yv, clf.predict_proba(Xv)), rtol=1e-10)


def test_early_stopping_on_the_given_validation_set_keeps_its_best_weights(digits):
    X, y, Xv, yv = digits
    clf = small(max_iter=200, early_stopping=True, n_iter_no_change=3, tol=0.0).fit(X, y, X_val=Xv, y_val=yv)
    assert clf.n_iter_ < 200
    assert clf.best_validation_score_ == max(clf.validation_scores_) == clf.score(Xv, yv)


def test_validation_set_errors_name_the_argument(digits):
    X, y, Xv, yv = digits
    with pytest.raises(BackpropError, match="`X_val` and `y_val` go together"):
        small().fit(X, y, X_val=Xv)
    with pytest.raises(BackpropError, match="`y_val` must have one target per row"):
        small().fit(X, y, X_val=Xv, y_val=yv[:5])
    with pytest.raises(BackpropError, match=r"`y_val` has classes \[99\]"):
        small().fit(X, y, X_val=Xv[:2], y_val=np.array([0, 99]))
    with pytest.raises(BackpropError, match="solver='lbfgs'"):
        small(solver="lbfgs").fit(X, y, X_val=Xv, y_val=yv)


class _CtrlC(Callback):
    """Ctrl-C at the end of epoch ``at`` (0-based), as a user would press it."""

    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, state):
        if state.epoch == self.at:
            raise KeyboardInterrupt


def _resumed_equals_uninterrupted(make, fit_args, tmp_path, stop_at):
    whole = make(callbacks=[Checkpoint(tmp_path / "whole")])
    whole.fit(*fit_args[0], **fit_args[1])
    stop_at = stop_at(whole) if callable(stop_at) else stop_at
    first = make(callbacks=[Checkpoint(tmp_path / "cut"), _CtrlC(stop_at)])
    with pytest.warns(UserWarning, match="interrupted"):
        first.fit(*fit_args[0], **fit_args[1])
    assert first.n_iter_ == stop_at + 1
    resumed = make(callbacks=[Checkpoint(tmp_path / "cut")])
    resumed.fit(*fit_args[0], resume_from=tmp_path / "cut", **fit_args[1])
    for a, b in zip(resumed.coefs_ + resumed.intercepts_, whole.coefs_ + whole.intercepts_):
        np.testing.assert_array_equal(a, b)
    for name in ("n_iter_", "t_", "loss_curve_", "validation_scores_", "validation_loss_curve_",
                 "best_validation_score_", "best_loss_"):
        assert getattr(resumed, name) == getattr(whole, name), name
    return whole, resumed


def test_resume_with_early_stopping_is_bitwise_the_uninterrupted_fit(digits, tmp_path):
    X, y, Xv, yv = digits

    def make(**kw):
        return small(max_iter=60, early_stopping=True, n_iter_no_change=3, tol=0.0, learning_rate_init=0.03, **kw)

    def after_the_best(whole):  # the best weights must come from before the cut, through the checkpoint
        best = int(np.argmax(whole.validation_scores_))
        assert best + 2 < whole.n_iter_ < 60  # it stopped early, and not right after the best epoch
        return best + 1

    whole, _ = _resumed_equals_uninterrupted(make, ((X, y), {"X_val": Xv, "y_val": yv}), tmp_path,
                                             stop_at=after_the_best)


def test_resume_keeps_the_adaptive_learning_rate(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = X @ np.array([1.0, -2.0, 0.5])

    def make(**kw):  # tol so large that no epoch improves: the rate is divided by 5 every 3 epochs
        return MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive", tol=1e6,
                            n_iter_no_change=2, max_iter=12, random_state=1, batch_size=16,
                            learning_rate_init=0.05, **kw)

    whole, resumed = _resumed_equals_uninterrupted(make, ((X, y), {}), tmp_path, stop_at=4)
    assert resumed._optimizer.schedule.lr == whole._optimizer.schedule.lr < 0.05 / 5


def test_resume_refuses_other_callbacks(digits, tmp_path):
    X, y, _, _ = digits
    with pytest.warns(UserWarning, match="interrupted"):
        small(callbacks=[Checkpoint(tmp_path), _CtrlC(1)]).fit(X, y)
    from backprop import Network, fit

    net = Network.from_sizes([64, 16, 10], activation="relu", output_activation="softmax",
                             loss="softmax_cross_entropy", seed=0)
    with pytest.raises(BackpropError, match="callbacks that keep state"):  # the same fit without the rules
        fit(net, X, np.eye(10)[y], epochs=8, batch_size=32, optimizer="adam", lr=0.001, resume_from=tmp_path)
