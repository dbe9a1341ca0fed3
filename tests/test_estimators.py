"""MLPClassifier / MLPRegressor: parity with scikit-learn's MLP, the penalised gradient, our extras,
model files, pickling and Ctrl-C.

Oracles: scikit-learn itself (same settings and seeds; with ``shuffle=False`` the stochastic
solvers see the same batches in the same order, so trajectories agree to rounding), central
finite differences of the penalised objective, and formulas written out in the tests.
"""

import io
import pickle
import warnings

import numpy as np
import pytest
from sklearn import neural_network as sk
from sklearn.datasets import load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer, StandardScaler

from backprop import BackpropError, Callback, MLPClassifier, MLPRegressor


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def iris(n=None):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return (X, y) if n is None else (X[::150 // n], y[::150 // n])


def regression_data(n=40, n_outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    Y = np.column_stack([np.sin(X[:, 0]) + X[:, 1] * X[:, 2], X[:, 0] - X[:, 2] ** 2][:n_outputs])
    return X, (Y[:, 0] if n_outputs == 1 else Y)


class Recorder(Callback):
    """Keeps copies of the weights at the start of training and after every epoch."""

    def __init__(self, est):
        self.est, self.epochs = est, []

    def on_train_begin(self, state):
        self.initial = [w.copy() for w in self.est.coefs_ + self.est.intercepts_]

    def on_epoch_end(self, state):
        self.epochs.append([w.copy() for w in self.est.coefs_])


def assert_same_fit(ours, theirs, rtol=1e-7, atol=1e-10):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_layers_ == theirs.n_layers_ and ours.n_outputs_ == theirs.n_outputs_
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
        assert ours.t_ == theirs.t_


# -- parity with scikit-learn ----------------------------------------------------------------
def test_initial_weights_are_sklearns_glorot_draws():
    """Initial weights: U(-r, r), r = sqrt(f / (fan_in + fan_out)), f = 2 for logistic else 6,
    drawn from RandomState(seed) layer by layer, weights then biases (a plain re-implementation)."""
    X, y = iris()
    for activation, factor in (("relu", 6.0), ("logistic", 2.0)):
        est = MLPClassifier((5, 4), activation=activation, max_iter=1, random_state=3)
        rec = Recorder(est)
        est.set_params(callbacks=[rec]).fit(X, y)
        rs = np.random.RandomState(3)
        expected_W, expected_b = [], []
        for fan_in, fan_out in [(4, 5), (5, 4), (4, 3)]:
            r = np.sqrt(factor / (fan_in + fan_out))
            expected_W.append(rs.uniform(-r, r, (fan_in, fan_out)))
            expected_b.append(rs.uniform(-r, r, fan_out))
        for got, want in zip(rec.initial, expected_W + expected_b):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("alpha", [1e-4, 0.5])
def test_lbfgs_matches_sklearn(alpha):
    """L-BFGS on the same penalised objective from the same start ends where scikit-learn's does."""
    X, y = iris()
    params = dict(hidden_layer_sizes=(6,), solver="lbfgs", alpha=alpha, max_iter=15,
                  random_state=1, activation="tanh")
    assert_same_fit(MLPClassifier(**params).fit(X, y), sk.MLPClassifier(**params).fit(X, y),
                    rtol=1e-6, atol=1e-8)


def test_lbfgs_regressor_with_sample_weight_matches_sklearn():
    """Weighted L-BFGS regression (penalty divided by the weight sum) agrees with scikit-learn."""
    X, y = regression_data()
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    params = dict(hidden_layer_sizes=(5,), solver="lbfgs", alpha=0.3, max_iter=30, random_state=0)
    ours = MLPRegressor(**params).fit(X, y, sample_weight=w)
    theirs = sk.MLPRegressor(**params).fit(X, y, sample_weight=w)
    assert_same_fit(ours, theirs, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6)


def test_poisson_regressor_matches_sklearn():
    """loss='poisson' (log link, half Poisson deviance) agrees with scikit-learn, loss value included."""
    X, y = regression_data()
    y = np.exp(y / 3)
    params = dict(loss="poisson", hidden_layer_sizes=(4,), solver="lbfgs", max_iter=25, random_state=0)
    ours, theirs = MLPRegressor(**params).fit(X, y), sk.MLPRegressor(**params).fit(X, y)
    assert ours.out_activation_ == "exp"
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-5)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", batch_size=7, alpha=0.1, learning_rate_init=0.05),  # short last batch
        dict(solver="sgd", batch_size=10, nesterovs_momentum=False, learning_rate="invscaling",
             learning_rate_init=0.2, power_t=0.3),
        dict(solver="sgd", batch_size=16, learning_rate="adaptive", learning_rate_init=0.1,
             n_iter_no_change=2, tol=0.05, momentum=0.0),
        dict(solver="adam", batch_size=8, alpha=0.01, learning_rate_init=0.01),
        dict(solver="adam", batch_size=8, early_stopping=True, validation_fraction=0.3,
             n_iter_no_change=3, learning_rate_init=0.01),
        dict(solver="sgd", tol=0.01, n_iter_no_change=2, learning_rate_init=0.05),  # stops early
    ],
)
def test_stochastic_classifier_matches_sklearn_without_shuffling(params):
    """With shuffle=False both see the same batches: weights, loss curve, n_iter_, t_ and the
    validation scores agree with scikit-learn (penalty per batch, schedules, stopping rule)."""
    X, y = iris(50)
    common = dict(hidden_layer_sizes=(5,), shuffle=False, random_state=2, max_iter=30, **params)
    ours, theirs = MLPClassifier(**common).fit(X, y), sk.MLPClassifier(**common).fit(X, y)
    # The engine's Adam adds epsilon after the bias correction (Kingma & Ba's Algorithm 1),
    # scikit-learn's before it: steps on near-zero gradients differ slightly; SGD is exact.
    rtol, atol = (1e-2, 1e-2) if params["solver"] == "adam" else (1e-9, 1e-9)
    assert_same_fit(ours, theirs, rtol=rtol, atol=atol)
    if params.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
        assert ours.best_validation_score_ == theirs.best_validation_score_ and ours.best_loss_ is None
    else:
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=rtol)
    if params.get("learning_rate") == "adaptive":
        assert ours._optimizer.schedule.lr == pytest.approx(theirs._optimizer.learning_rate)
        assert ours._optimizer.schedule.lr < params["learning_rate_init"]  # it was divided


@pytest.mark.parametrize("kind", ["binary", "multilabel", "regression", "multioutput"])
def test_other_targets_match_sklearn(kind):
    """Binary (one logistic output), multilabel and (multi-output) regression agree with scikit-learn."""
    if kind == "binary":
        X, y = iris()
        y = (y == 2).astype(int)
    elif kind == "multilabel":
        X, y = make_multilabel_classification(n_samples=40, n_features=5, n_classes=3, random_state=0)
    else:
        X, y = regression_data(n_outputs=2 if kind == "multioutput" else 1)
    cls_ours, cls_sk = (MLPRegressor, sk.MLPRegressor) if "re" in kind or "multiout" in kind else (
        MLPClassifier, sk.MLPClassifier)
    common = dict(hidden_layer_sizes=(4,), solver="sgd", shuffle=False, batch_size=9, alpha=0.01,
                  max_iter=15, random_state=0, learning_rate_init=0.05)
    ours, theirs = cls_ours(**common).fit(X, y), cls_sk(**common).fit(X, y)
    if kind == "multioutput":
        # scikit-learn reports the squared error averaged over the outputs (its gradient is not);
        # we report the loss our gradient belongs to, summed over outputs: compare the weights
        ours.loss_curve_ = theirs.loss_curve_
    assert_same_fit(ours, theirs, rtol=1e-9, atol=1e-10)
    if cls_ours is MLPRegressor:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9, atol=1e-12)
    else:
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)


def test_regressor_early_stopping_matches_sklearn():
    """Early stopping on the validation R^2 with a coarse tol stops at scikit-learn's epoch, with
    its validation scores and its best weights restored."""
    X, y = regression_data(n=80)
    common = dict(hidden_layer_sizes=(6,), solver="sgd", shuffle=False, batch_size=10, tol=0.02,
                  n_iter_no_change=2, early_stopping=True, max_iter=200, random_state=0,
                  learning_rate_init=0.02)
    ours, theirs = MLPRegressor(**common).fit(X, y), sk.MLPRegressor(**common).fit(X, y)
    assert 3 < ours.n_iter_ < 200
    assert_same_fit(ours, theirs, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)


def test_partial_fit_matches_sklearn():
    """Three partial_fit calls (classes given first) follow scikit-learn's, one epoch each."""
    X, y = iris(60)
    common = dict(hidden_layer_sizes=(4,), solver="sgd", shuffle=False, random_state=0,
                  learning_rate_init=0.05)
    ours, theirs = MLPClassifier(**common), sk.MLPClassifier(**common)
    for part in np.array_split(np.arange(60), 3):
        ours.partial_fit(X[part], y[part], classes=[0, 1, 2])
        theirs.partial_fit(X[part], y[part], classes=[0, 1, 2])
    assert_same_fit(ours, theirs)
    with pytest.raises(BackpropError, match="`classes` must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")


# -- the penalised gradient ------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["leaky_relu", "tanh", "logistic"])
def test_one_sgd_step_is_minus_lr_times_the_penalised_gradient(activation):
    """One full-batch SGD step (no momentum) moves every weight and bias by -lr * dJ/dtheta, with
    J = mean log-loss + alpha/(2n) * sum ||W||^2 differentiated by central finite differences."""
    X, y = iris(30)
    n, alpha, lr = len(y), 0.7, 0.1
    est = MLPClassifier((3,), activation=activation, solver="sgd", momentum=0.0, alpha=alpha,
                        learning_rate_init=lr, batch_size=n, shuffle=False, random_state=0, max_iter=1)
    rec = Recorder(est)
    est.set_params(callbacks=[rec]).fit(X, y)
    after = [w.copy() for w in est.coefs_ + est.intercepts_]
    Y = LabelBinarizer().fit_transform(y)

    def J():
        P = est.predict_proba(X)
        return -np.mean(np.sum(Y * np.log(P), axis=1)) + alpha / (2 * n) * sum(
            np.sum(W**2) for W in est.coefs_)

    params = est.coefs_ + est.intercepts_
    for p, start in zip(params, rec.initial):
        p[...] = start
    assert est.loss_curve_[0] == pytest.approx(J(), rel=1e-10)  # the curve is the penalised loss
    eps = 1e-6
    for p, start, new in zip(params, rec.initial, after):
        grad = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            p[i] = start[i] + eps
            up = J()
            p[i] = start[i] - eps
            grad[i] = (up - J()) / (2 * eps)
            p[i] = start[i]
        np.testing.assert_allclose(new, start - lr * grad, rtol=1e-6, atol=1e-9)


# -- our extras ------------------------------------------------------------------------------
def test_leaky_relu_network_computes_the_written_forward_pass():
    """activation='leaky_relu' applies max(z, 0.01 z) in the hidden layers, softmax at the end."""
    X, y = iris()
    est = MLPClassifier((6, 5), activation="leaky_relu", solver="lbfgs", max_iter=50,
                        random_state=0).fit(X, y)
    A = X
    for W, b in zip(est.coefs_[:-1], est.intercepts_[:-1]):
        Z = A @ W + b
        A = np.where(Z > 0, Z, 0.01 * Z)
    Z = A @ est.coefs_[-1] + est.intercepts_[-1]
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(est.predict_proba(X), P / P.sum(axis=1, keepdims=True), rtol=1e-12)
    assert est.score(X, y) > 0.95
    with pytest.raises(BackpropError, match="`activation` must be one of .*'leaky_relu'.*; got 'swish'"):
        MLPClassifier(activation="swish").fit(X, y)


def test_squared_error_loss_for_classification():
    """loss='squared_error' trains the probabilities on half squared error: the first epoch's
    loss (one full batch) is mean 1/2 ||p - onehot||^2 + alpha/(2n) sum ||W||^2 at the start."""
    X, y = iris(30)
    est = MLPClassifier((4,), loss="squared_error", solver="sgd", batch_size=30, alpha=0.2,
                        max_iter=1, random_state=0, shuffle=False)
    rec = Recorder(est)
    est.set_params(callbacks=[rec]).fit(X, y)
    for p, start in zip(est.coefs_ + est.intercepts_, rec.initial):
        p[...] = start
    P, Y = est.predict_proba(X), LabelBinarizer().fit_transform(y)
    expected = np.mean(0.5 * np.sum((P - Y) ** 2, axis=1)) + 0.2 / 60 * sum(
        np.sum(W**2) for W in est.coefs_)
    assert est.loss_curve_[0] == pytest.approx(expected, rel=1e-12)


def test_class_weight_equals_the_corresponding_sample_weights():
    """class_weight (a dict, or 'balanced' = n / (k * count)) is the same fit as those sample weights."""
    X, y = iris()
    keep = np.r_[0:50, 50:80, 100:110]  # unbalanced: 50 / 30 / 10
    X, y = X[keep], y[keep]
    params = dict(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=30, random_state=0)
    weighted = MLPClassifier(class_weight={0: 0.5, 1: 1.0, 2: 3.0}, **params).fit(X, y)
    by_hand = MLPClassifier(**params).fit(X, y, sample_weight=np.array([0.5, 1.0, 3.0])[y])
    for a, b in zip(weighted.coefs_, by_hand.coefs_):
        np.testing.assert_array_equal(a, b)
    balanced = MLPClassifier(class_weight="balanced", **params).fit(X, y)
    counts = np.bincount(y)
    by_hand = MLPClassifier(**params).fit(X, y, sample_weight=(len(y) / (3 * counts))[y])
    for a, b in zip(balanced.coefs_, by_hand.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    with pytest.raises(BackpropError, match="`class_weight` must be None, 'balanced' or a dict"):
        MLPClassifier(class_weight="heavy", **params).fit(X, y)


def test_validation_loss_curve_is_the_log_loss_on_the_held_out_part():
    """validation_loss_curve_[k] is the mean log-loss on scikit-learn's validation split (drawn
    from random_state after the initial weights, as scikit-learn does) after epoch k."""
    X, y = iris()
    est = MLPClassifier((5,), early_stopping=True, validation_fraction=0.2, max_iter=8,
                        random_state=4, n_iter_no_change=100)

    class Keep(Callback):
        def on_epoch_end(self, state):
            self.__dict__.setdefault("weights", []).append(
                [w.copy() for w in est.coefs_ + est.intercepts_])

    keep = Keep()
    est.set_params(callbacks=[keep]).fit(X, y)
    rs = np.random.RandomState(4)
    for fan_in, fan_out in [(4, 5), (5, 3)]:  # consume the initial draws
        rs.uniform(size=(fan_in, fan_out)), rs.uniform(size=fan_out)
    Y = LabelBinarizer().fit_transform(y)
    _, X_val, _, Y_val = train_test_split(X, Y, random_state=rs, test_size=0.2)
    assert len(est.validation_loss_curve_) == len(est.validation_scores_) == 8
    for weights, value in zip(keep.weights, est.validation_loss_curve_):
        W1, W2, b1, b2 = weights
        Z = np.maximum(X_val @ W1 + b1, 0) @ W2 + b2
        log_p = Z - Z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        assert value == pytest.approx(-np.mean(np.sum(Y_val * log_p, axis=1)), rel=1e-10)
    assert MLPClassifier(max_iter=2).fit(X, y).validation_loss_curve_ is None


def test_dtype_float32_follows_the_data_or_the_parameter():
    """float32 X trains a float32 model (as scikit-learn); dtype= forces either."""
    X, y = iris()
    est = MLPClassifier((4,), max_iter=5, random_state=0).fit(X.astype(np.float32), y)
    assert est.coefs_[0].dtype == np.float32 and est.predict_proba(X).dtype == np.float32
    est = MLPClassifier((4,), max_iter=5, random_state=0, dtype="float64").fit(X.astype(np.float32), y)
    assert est.coefs_[0].dtype == np.float64
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, dtype=np.float32).fit(*regression_data())
    assert est.predict(regression_data()[0]).dtype == np.float32
    with pytest.raises(BackpropError, match="`dtype` must be float32 or float64; got 'int8'"):
        MLPClassifier(dtype="int8").fit(X, y)


def test_callbacks_see_every_epoch_and_can_stop_training():
    """User callbacks get each epoch's logs (penalised loss, validation loss and score) and may stop."""
    X, y = iris()
    seen = []

    class StopAtThree(Callback):
        def on_epoch_end(self, state):
            seen.append(dict(state.logs))
            state.stop_training = state.epoch == 2

    for solver in ("adam", "lbfgs"):
        seen.clear()
        est = MLPClassifier((4,), solver=solver, early_stopping=solver == "adam", random_state=0,
                            callbacks=[StopAtThree()]).fit(X, y)
        assert est.n_iter_ == 3 and len(seen) == 3
        assert [s["loss"] for s in seen] == est.loss_curve_
        if solver == "adam":
            assert [s["val_loss"] for s in seen] == est.validation_loss_curve_
            assert [s["val_score"] for s in seen] == est.validation_scores_
    with pytest.raises(BackpropError, match="`callbacks` must be a list of backprop.Callback"):
        MLPClassifier(callbacks=[print]).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_ctrl_c_ends_training_and_keeps_the_model(solver):
    """KeyboardInterrupt during training: a warning, the epochs done so far, a usable model."""
    X, y = iris()

    class CtrlC(Callback):
        def on_epoch_end(self, state):
            if state.epoch == 3:
                raise KeyboardInterrupt

    est = MLPClassifier((8,), solver=solver, random_state=0, callbacks=[CtrlC()])
    with pytest.warns(UserWarning, match=r"interrupted \(Ctrl-C\)"):
        est.fit(X, y)
    assert est.n_iter_ == 4  # the epoch (or L-BFGS iteration) during which Ctrl-C came completed
    assert len(est.loss_curve_) == 4 and np.all(np.isfinite(est.predict_proba(X)))
    assert est.predict(X).shape == y.shape


def test_divergence_is_reported_never_silent():
    """A run that blows up (huge rate, unscaled inputs) ends in a warning naming the divergence with
    finite weights kept (engine with a divergence guard) or in a clear error, never in silent NaNs."""
    X, y = iris()
    est = MLPRegressor(hidden_layer_sizes=(20,), solver="sgd", learning_rate_init=10.0, momentum=0.9,
                       max_iter=50, random_state=0)
    with np.errstate(all="ignore"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(X * 1e3, y * 1e3)
        except BackpropError as exc:
            assert "non-finite parameter weights" in str(exc)
            return
    assert any("diverged" in str(w.message) and "complete iteration" in str(w.message)
               for w in caught if w.category is ConvergenceWarning)
    assert all(np.all(np.isfinite(w)) for w in est.coefs_ + est.intercepts_)


def test_verbose_progress_reports_on_stderr_not_stdout(capsys):
    """verbose="progress" shows one line per epoch on stderr (a tqdm bar on a terminal); stdout stays clean."""
    X, y = iris()
    MLPClassifier((4,), max_iter=3, verbose="progress", random_state=0).fit(X, y)
    out, err = capsys.readouterr()
    assert out == "" and err.count("epoch") == 3 and "loss=" in err


def test_verbose_true_prints_scikit_learns_iteration_lines(capsys):
    """verbose=True prints scikit-learn's "Iteration N, loss = L" on stdout, L equal to loss_curve_."""
    X, y = iris()
    est = MLPClassifier((4,), max_iter=3, verbose=True, random_state=0).fit(X, y)
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2", "Iteration 3"]
    assert [float(line.split("= ")[1]) for line in lines] == pytest.approx(est.loss_curve_, abs=1e-8)


def test_warm_start_continues_and_refuses_new_classes():
    """warm_start keeps the weights and extends loss_curve_; new classes are refused clearly."""
    X, y = iris()
    est = MLPClassifier((4,), max_iter=5, warm_start=True, random_state=0).fit(X, y)
    first = list(est.loss_curve_)
    est.fit(X, y)
    assert est.loss_curve_[:5] == first and len(est.loss_curve_) == 10
    assert est.loss_curve_[5] < first[0]
    with pytest.raises(BackpropError, match="warm_start can only be used where `y` has the same classes"):
        est.fit(X[y < 2], y[y < 2])


@pytest.mark.parametrize(
    "param, value, message",
    [
        ("alpha", -1, "`alpha` must be a non-negative number; got -1"),
        ("solver", "newton", "`solver` must be one of 'lbfgs', 'sgd', 'adam'; got 'newton'"),
        ("hidden_layer_sizes", (5, 0), "`hidden_layer_sizes` must be a positive integer"),
        ("batch_size", 0, "`batch_size` must be an integer >= 1; got 0"),
        ("learning_rate", "cyclic", "`learning_rate` must be one of"),
        ("loss", "hinge", "`loss` must be one of 'log_loss', 'squared_error'; got 'hinge'"),
        ("validation_fraction", 1.5, "`validation_fraction` must be a number in"),
    ],
)
def test_bad_parameters_get_house_style_errors_at_fit(param, value, message):
    """Each bad hyper-parameter is named in a one-line error raised by fit (not by __init__)."""
    X, y = iris()
    est = MLPClassifier(early_stopping=True, **{param: value})
    with pytest.raises(BackpropError, match=message.replace("(", r"\(").replace(")", r"\)")):
        est.fit(X, y)


def test_one_class_is_fitted_and_negative_poisson_targets_are_refused():
    """A single class fits and is always predicted (as scikit-learn); negative Poisson targets get a clear error."""
    X, y = iris()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(max_iter=2, random_state=0).fit(X[:10], y[:10])
    assert list(est.classes_) == [0] and list(est.predict(X)) == [0] * len(X)
    with pytest.raises(BackpropError, match="`y` must be non-negative for loss='poisson'"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, -y - 1.0)


# -- model files and pickling ----------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: (MLPClassifier((5,), solver="lbfgs", max_iter=30, random_state=0, alpha=1e-3),
                 *iris()),
        lambda: (MLPClassifier((5, 3), max_iter=20, random_state=0, early_stopping=True,
                               activation="leaky_relu", n_iter_no_change=np.inf),
                 iris()[0], np.array(["setosa", "versicolor", "virginica"])[iris()[1]]),
        lambda: (MLPClassifier((4,), max_iter=10, random_state=0, dtype="float32"),
                 *make_multilabel_classification(n_samples=30, n_classes=3, random_state=0)),
        lambda: (MLPRegressor("poisson", hidden_layer_sizes=(4,), max_iter=10, random_state=0),
                 regression_data()[0], np.abs(regression_data()[1])),
    ],
)
def test_save_load_and_pickle_round_trips_predict_bitwise(make, tmp_path):
    """save/load (safetensors + JSON) and pickle both give bitwise-identical predictions and the
    same fitted attributes and hyper-parameters."""
    est, X, y = make()
    est.fit(X, y)
    path = est.save(tmp_path / "model.safetensors")
    loaded = type(est).load(path)
    unpickled = pickle.loads(pickle.dumps(est))
    methods = ["predict"] + (["predict_proba", "predict_log_proba"] if hasattr(est, "classes_") else [])
    for other in (loaded, unpickled):
        for method in methods:
            a, b = getattr(est, method)(X), getattr(other, method)(X)
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        for name in ("n_features_in_", "n_iter_", "t_", "n_outputs_", "n_layers_", "out_activation_",
                     "loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_",
                     "validation_loss_curve_", "loss_"):
            assert getattr(other, name) == getattr(est, name), name
        assert other.get_params() == est.get_params()
        if hasattr(est, "classes_"):
            np.testing.assert_array_equal(other.classes_, est.classes_)
            assert other.classes_.dtype == est.classes_.dtype
        assert other.score(X, y) == est.score(X, y)


def test_loaded_model_can_keep_training_and_files_are_checked(tmp_path):
    """A loaded model trains on with warm_start; loading with the wrong class or a plain network
    file is refused with a clear message."""
    X, y = iris()
    est = MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y)
    path = est.save(tmp_path / "m.safetensors")
    loaded = MLPClassifier.load(path).set_params(warm_start=True, max_iter=3)
    loaded.fit(X, y)
    assert len(loaded.loss_curve_) == 8
    with pytest.raises(BackpropError, match="MLPRegressor.load needs a file written by MLPRegressor.save"):
        MLPRegressor.load(path)
    from backprop import Network

    Network.from_sizes([4, 3], seed=0).save(tmp_path / "net.safetensors")
    with pytest.raises(BackpropError, match="holds no estimator model"):
        MLPClassifier.load(tmp_path / "net.safetensors")


def test_feature_names_are_kept_and_checked(tmp_path):
    """feature_names_in_ (from a DataFrame) survives save/load and is checked at predict time."""
    pd = pytest.importorskip("pandas")
    X, y = iris()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = MLPClassifier((4,), max_iter=5, random_state=0).fit(frame, y)
    loaded = MLPClassifier.load(est.save(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(loaded.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="feature names"):
        loaded.predict(X)


def test_metadata_is_plain_json(tmp_path):
    """The model file's metadata holds hyper-parameters and classes as plain JSON values."""
    import json

    from backprop.io import read_header

    X, y = iris()
    est = MLPClassifier((3,), max_iter=2, random_state=np.int64(7)).fit(X, y.astype(np.int32))
    header, _ = read_header(est.save(tmp_path / "m.safetensors"))
    meta = json.loads(header["__metadata__"]["backprop"])["metadata"]
    assert meta["estimator"] == "MLPClassifier"
    assert meta["fitted"]["classes_"] == [0, 1, 2] and meta["fitted"]["classes_dtype"] == "<i4"
    assert meta["params"]["hidden_layer_sizes"] == [3] and meta["params"]["random_state"] == 7
    assert meta["fitted"]["n_features_in_"] == 4
    assert isinstance(io.StringIO(json.dumps(meta)).read(), str)


def test_poisson_model_file_names_its_loss_and_log_link(tmp_path):
    # loss="poisson": the network ends in exp (the log link's inverse), its file names the loss,
    # and the file read as a plain Network predicts the same rates.
    import json

    from backprop import Network
    from backprop.io import read_header

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0]))
    reg = MLPRegressor(hidden_layer_sizes=(8,), loss="poisson", max_iter=50, random_state=0).fit(X, y)
    path = reg.save(tmp_path / "poisson.safetensors")
    net = Network.load(path)
    assert net.loss_fn.name == "half_poisson_deviance" and net.layers[-1].activation.name == "exp"
    description = json.loads(read_header(path)[0]["__metadata__"]["backprop"])
    assert description["network"]["loss"]["name"] == "half_poisson_deviance"
    np.testing.assert_allclose(net.predict(X).ravel(), reg.predict(X), rtol=1e-12)
    assert np.all(reg.predict(X) > 0)
