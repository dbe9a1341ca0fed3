"""The estimators with a convolutional network (conv=..., input_shape=...): they learn, keep the
kernels in PyTorch's layout, save and load exactly, clone, and refuse what does not fit."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits

from backprop import BackpropError, MLPClassifier, MLPRegressor, Network


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _clf(**kw):
    params = dict(hidden_layer_sizes=(32,), conv="8x3p1,max2", input_shape=(1, 8, 8), max_iter=8,
                  batch_size=32, learning_rate_init=3e-3, random_state=0)
    params.update(kw)
    return MLPClassifier(**params)


def test_conv_classifier_learns_and_saves(digits, tmp_path):
    # Held-out accuracy well above chance; the file holds the conv network and loads exactly.
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = _clf().fit(X[:1347], y[:1347])
    assert clf.score(X[1347:], y[1347:]) > 0.85
    assert [k.shape for k in clf.conv_coefs_] == [(8, 1, 3, 3)] and clf.coefs_[0].shape == (128, 32)
    path = clf.save(tmp_path / "cnn.safetensors")
    back = MLPClassifier.load(path)
    np.testing.assert_array_equal(back.predict_proba(X[1347:]), clf.predict_proba(X[1347:]))
    net = Network.load(path)  # a plain Network reads it too
    assert type(net.layers[0]).__name__ == "Conv2D" and net.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(net.layers[0].params["W"], clf.conv_coefs_[0])


def test_early_stopping_restores_the_best_kernels(digits):
    # With early stopping the conv kernels go back to those of the epoch with the best validation
    # score, as the Dense weights do (recorded after every epoch by a callback).
    from backprop import LambdaCallback

    X, y = digits
    seen = []
    record = LambdaCallback(lambda state: seen.append([l.params["W"].copy() for l in state.network.layers
                                                       if type(l).__name__ in ("Conv2D", "Dense")]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = _clf(early_stopping=True, max_iter=6, learning_rate_init=0.1, callbacks=[record]).fit(X, y)
    best = int(np.argmax(clf.validation_scores_))
    assert len(seen) == clf.n_iter_ and best < len(seen) - 1  # the last epoch was not the best
    np.testing.assert_array_equal(clf.conv_coefs_[0], seen[best][0])
    np.testing.assert_array_equal(clf.coefs_[0], seen[best][1])


def test_conv_regressor_and_clone(digits):
    # MLPRegressor takes the same options; clone keeps them (scikit-learn's get_params).
    X, y = digits
    reg = MLPRegressor(hidden_layer_sizes=(8,), conv="4x3,avg2", input_shape=(1, 8, 8), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X[:300], y[:300].astype(float))
    assert reg.predict(X[:5]).shape == (5,)
    copy = clone(reg)
    assert copy.conv == "4x3,avg2" and copy.input_shape == (1, 8, 8) and not hasattr(copy, "coefs_")


@pytest.mark.parametrize("kw, message", [
    (dict(input_shape=None), "`conv` and `input_shape` go together"),
    (dict(solver="lbfgs"), "`solver` must be 'adam' or 'sgd' for a convolutional network"),
    (dict(conv="8x9"), "is larger than the padded input"),
    (dict(conv="8y3"), "is not a layer"),
    (dict(input_shape=(1, 8, 7)), "needs X with 56 columns"),
])
def test_bad_conv_options(digits, kw, message):
    # Each mistake is one clear message naming the argument.
    X, y = digits
    with pytest.raises(BackpropError, match=message):
        _clf(**kw).fit(X[:50], y[:50])
