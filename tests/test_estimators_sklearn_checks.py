"""scikit-learn's own estimator checks (``parametrize_with_checks``) on MLPClassifier and MLPRegressor."""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from backprop import MLPClassifier, MLPRegressor

# Small, quick settings as scikit-learn uses for its own MLP (it runs them with max_iter=100);
# lbfgs instances cover the full-batch solver. No check is expected to fail, so no
# `expected_failed_checks` is given: a failure of any check fails the suite. (The check data
# have fewer than 200 samples, so "auto" batches are the full batch and even the sample-weight
# equivalence check holds for sgd/adam; with real mini-batches it would not, as for scikit-learn.)
ESTIMATORS = [
    MLPClassifier(hidden_layer_sizes=(20,), max_iter=100),
    MLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=50),
    MLPRegressor(hidden_layer_sizes=(20,), max_iter=100),
    MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=50),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    """Each scikit-learn estimator check passes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
