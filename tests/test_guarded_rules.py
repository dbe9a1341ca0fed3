"""Rules no other test guarded (issue 28): predict_proba's clipping, the stratified early-stopping
split, and ReduceOnPlateau's threshold, each against its written rule."""

import warnings

import numpy as np
import pytest

from backprop import MLPClassifier
from backprop.optimizers import ReduceOnPlateau


def test_predict_proba_clips_logistic_outputs_to_eps():
    # A binary classifier's probabilities lie in [eps, 1 - eps] even when the logit saturates,
    # and each row sums to one; its log-probabilities are then finite.
    X = np.array([[-50.0], [-49.0], [49.0], [50.0]])
    y = np.array([0, 0, 1, 1])
    clf = MLPClassifier(hidden_layer_sizes=(2,), solver="lbfgs", random_state=0, max_iter=200).fit(X, y)
    for W in clf.coefs_:
        W[...] = 40.0  # drive the output unit far into saturation: sigmoid(z) rounds to 0 or 1
    for b in clf.intercepts_:
        b[...] = 0.0
    P = clf.predict_proba(np.array([[-1e3], [1e3]]))
    eps = np.finfo(np.float64).eps
    assert P.min() >= eps and P.max() <= 1 - eps
    assert P[1, 1] == 1 - eps and P[1, 0] == pytest.approx(eps, rel=1e-6)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    assert np.isfinite(clf.predict_log_proba(np.array([[1e3]]))).all()


def test_early_stopping_split_is_stratified():
    # With early_stopping the held-out 20% keeps each class's share: on features that carry no
    # information the network predicts one class for every row, so the validation accuracy is
    # exactly 18/20 or 2/20 (90 rows of class 0, 10 of class 1) for every seed. A split that
    # ignored the classes would hold 2 rows of class 1 in only about a third of the seeds.
    y = np.array([0] * 90 + [1] * 10)
    X = np.zeros((100, 3))
    scores = []
    for seed in range(10):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = MLPClassifier(hidden_layer_sizes=(4,), early_stopping=True, validation_fraction=0.2,
                                random_state=seed, max_iter=1).fit(X, y)
        scores.append(clf.validation_scores_[0])
    assert set(scores) <= {0.9, 0.1}, scores


@pytest.mark.parametrize("threshold", [0.0, 0.05])
def test_reduce_on_plateau_threshold(threshold):
    # An epoch counts as better only when the loss drops by more than `threshold`; `patience`
    # epochs in a row without that multiply the rate by `factor`.
    schedule = ReduceOnPlateau(1.0, factor=0.5, patience=2, threshold=threshold)
    losses = [1.0, 0.97, 0.96, 0.95, 0.5]
    rates = []
    for loss in losses:
        schedule.epoch_end(loss)
        rates.append(schedule.lr)
    best, wait, lr, expected = np.inf, 0, 1.0, []
    for loss in losses:  # the rule as the docstring writes it
        if loss < best - threshold:
            best, wait = loss, 0
        else:
            wait += 1
            if wait >= 2:
                lr, wait = lr * 0.5, 0
        expected.append(lr)
    assert rates == expected
    assert rates == ([1.0] * 5 if threshold == 0.0 else [1.0, 1.0, 0.5, 0.5, 0.5])
