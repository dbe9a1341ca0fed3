"""scikit-learn compatible ``MLPClassifier`` and ``MLPRegressor``: a thin adapter over the engine.

The constructor parameters, their defaults and the fitted attributes are scikit-learn's
(``sklearn.neural_network``), so replacing its import with ``from backprop import MLPClassifier``
is enough. Training runs through :class:`backprop.Network` and :func:`backprop.fit`; the rules
that make the results comparable with scikit-learn's live here:

- initial weights and biases U(-r, r), r = sqrt(f / (fan_in + fan_out)), f = 2 for a logistic
  hidden activation and 6 otherwise, drawn from ``random_state`` layer by layer (weights, then
  biases) - the same draws scikit-learn makes for the same seed;
- the objective is the mean data loss (half squared error for regression, log-loss for
  classification: softmax for several classes, one logistic output for two, logistic outputs for
  multilabel) plus ``alpha * ||W||^2 / (2 * n)`` over the weight matrices (biases are not
  penalised), with n the batch's size (the sum of its sample weights when weighted);
- the stopping rule: stop (or, with ``learning_rate="adaptive"``, divide the rate by 5) once the
  training loss - or with ``early_stopping`` the validation score - has not improved by ``tol``
  for more than ``n_iter_no_change`` epochs; ``"invscaling"`` sets the rate to
  ``learning_rate_init / (t_ + 1) ** power_t`` after each epoch, ``t_`` counting samples seen;
- ``solver="lbfgs"`` minimises the full-batch objective with scipy's L-BFGS-B.

Beyond scikit-learn: more hidden activations (``leaky_relu`` and the engine's others), a ``loss``
choice, ``class_weight``, ``validation_loss_curve_``, ``callbacks`` (the engine's Callback
objects, for every solver), ``dtype``, ``save``/``load`` through :mod:`backprop.io`, and Ctrl-C,
which ends training cleanly and keeps the model (with a warning). ``verbose=True`` prints
scikit-learn's "Iteration N, loss = L" lines on stdout (its users and its tests read them);
``verbose="progress"`` shows the engine's progress bar on stderr instead. Nothing else prints.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.optimize
from scipy.special import xlogy
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._validation import (
    BackpropError,
    check_choice,
    check_dtype,
    check_int,
    check_non_negative,
    check_positive,
    check_probability,
    describe,
)
from .activations import ACTIVATIONS
from .callbacks import Callback, History, TrainState
from .layers import Dense
from .losses import LOSSES, HalfPoissonDeviance, Loss, get_loss
from .network import Network
from .optimizers import SGD, Adam, Constant
from .preprocessing import ESTIMATOR_FORMAT
from .training import fit as engine_fit

__all__ = ["MLPClassifier", "MLPRegressor"]

_STOCHASTIC = ("sgd", "adam")
_HIDDEN_ACTIVATIONS = tuple(sorted({"logistic", *ACTIVATIONS} - {"softmax", "exp"}))
# scikit-learn's names for the output activations -> the engine's
_OUT_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax", "exp": "exp"}
_FORMAT = ESTIMATOR_FORMAT
_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large values "
               "and need to be preprocessed.")  # scikit-learn's message


def _squared_norm(arrays) -> float:
    return float(sum(np.dot(a.ravel(), a.ravel()) for a in arrays))


def _jsonable(value):
    """numpy scalars/arrays/tuples -> plain JSON types; infinities as the strings "inf"/"-inf"."""
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _unjson_float(value):
    """Undo ``_jsonable`` for numbers (element-wise for lists)."""
    if isinstance(value, list):
        return [_unjson_float(v) for v in value]
    return float(value) if isinstance(value, str) and value in ("inf", "-inf", "nan") else value


class _SklearnRules(Callback):
    """The per-epoch bookkeeping of scikit-learn's stochastic solvers, as an engine callback.

    The L2 penalty is the engine's own ``fit(l2=...)`` (alpha / mean sample weight: scikit-learn's
    alpha / (n_batch * mean weight) per batch), so the epoch's loss already includes it and no
    per-batch hook is needed: the fit runs on the fast path. This callback records the curves,
    applies the learning-rate schedule and the stopping rule, and keeps the best weights for
    ``early_stopping``.
    """

    def __init__(self, est, n, validation):
        self.est, self.n = est, n  # n: training rows (scikit-learn's t_ counts samples)
        self.validation = validation  # (X_val, y_val labels, sample_weight_val) or None
        self.converged = False

    def on_epoch_end(self, state):
        est = self.est
        loss = state.logs["loss"]
        est.loss_curve_.append(loss)
        est.loss_ = loss
        est.n_iter_ += 1
        est.t_ += self.n
        if self.validation is not None:  # early_stopping's split, or fit's X_val and y_val
            X_val, y_val, sw_val = self.validation
            est.validation_loss_curve_.append(state.logs["val_loss"])
            score = est._score_raw(est._output(state.network, X_val), y_val, sw_val)
            est.validation_scores_.append(score)
            state.logs["val_score"] = score
        if est.early_stopping:
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_params = [p.copy() for p in est._params()]
        else:
            if loss > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            est.best_loss_ = min(est.best_loss_, loss)
        schedule = state.optimizer.schedule
        sgd = est.solver == "sgd"
        if sgd and est.learning_rate == "invscaling":
            schedule.lr = est.learning_rate_init / (est.t_ + 1) ** est.power_t
        if est._no_improvement_count > est.n_iter_no_change:
            if sgd and est.learning_rate == "adaptive" and schedule.lr > 1e-6:
                schedule.lr /= 5.0
                est._no_improvement_count = 0
            else:
                what = "validation score" if est.early_stopping else "training loss"
                state.stop_training = self.converged = True
                state.history.stop_reason = (
                    f"{what} did not improve by tol={est.tol:g} for {est.n_iter_no_change} "
                    "consecutive epochs"
                )

    # what a checkpoint keeps (``backprop.checkpoint``), so that a resumed fit is bitwise the same
    _STATE = ("n_iter_", "t_", "loss_", "loss_curve_", "best_loss_", "validation_scores_",
              "best_validation_score_", "validation_loss_curve_")

    def state_dict(self):
        est = self.est
        values = {name: _jsonable(getattr(est, name, None)) for name in self._STATE}
        values.update(no_improvement=est._no_improvement_count, lr=float(est._optimizer.schedule.lr),
                      converged=self.converged)
        values.update({f"best_{i}": p for i, p in enumerate(est._best_params)})
        return values

    def load_state_dict(self, state):
        est = self.est
        for name in self._STATE:
            value = state[name]
            setattr(est, name, _unjson_float(value))
        est._no_improvement_count = int(state["no_improvement"])
        est._optimizer.schedule.lr = float(state["lr"])
        self.converged = bool(state["converged"])
        for i, p in enumerate(est._best_params):
            p[...] = state[f"best_{i}"]


class _VerboseLines(Callback):
    """scikit-learn's ``verbose=True`` output: "Iteration N, loss = L" on stdout after each epoch.

    The estimators are a drop-in for scikit-learn's, whose users (and whose own tests) read these
    lines, so this adapter prints them; the engine underneath still never prints.
    """

    def on_epoch_end(self, state):
        print(f"Iteration {state.epoch + 1}, loss = {state.logs['loss']:.8f}", flush=True)


class _BaseMLP(BaseEstimator):
    """Shared machinery; use MLPClassifier or MLPRegressor."""

    _loss_names: tuple[str, ...] = ()

    # -- parameters ----------------------------------------------------------------------------
    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            sizes = None
        if sizes is None or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise BackpropError(
                "`hidden_layer_sizes` must be a positive integer or a sequence of positive "
                f"integers; got {describe(self.hidden_layer_sizes)}"
            )
        return [int(s) for s in sizes]

    def _check_params(self) -> None:
        """House-style errors for every hyper-parameter (raised by fit, never by __init__)."""
        self._hidden_sizes()
        if not isinstance(self.activation, str) or self.activation.lower() not in _HIDDEN_ACTIVATIONS:
            raise BackpropError(
                f"`activation` must be one of {', '.join(map(repr, _HIDDEN_ACTIVATIONS))}; "
                f"got {describe(self.activation)}"
            )
        check_choice("solver", self.solver, ("lbfgs", "sgd", "adam"))
        if not isinstance(self.loss, str) and self._loss_names[0] == "squared_error":
            raise BackpropError(
                f"`loss` must be one of {', '.join(map(repr, self._loss_names))}; got "
                f"{describe(self.loss)} (MLPRegressor's first positional parameter is `loss`, as in "
                "scikit-learn: pass hidden_layer_sizes=... by name)"
            )
        check_choice("loss", self.loss, self._loss_names)
        check_non_negative("alpha", self.alpha)
        if self.batch_size != "auto":
            check_int("batch_size", self.batch_size)
        check_choice("learning_rate", self.learning_rate, ("constant", "invscaling", "adaptive"))
        check_positive("learning_rate_init", self.learning_rate_init)
        check_non_negative("power_t", self.power_t)
        check_int("max_iter", self.max_iter)
        check_non_negative("tol", self.tol)
        check_probability("momentum", self.momentum)
        check_probability("beta_1", self.beta_1)
        check_probability("beta_2", self.beta_2)
        check_positive("epsilon", self.epsilon)
        if self.n_iter_no_change != np.inf:
            check_int("n_iter_no_change", self.n_iter_no_change)
        check_int("max_fun", self.max_fun)
        if self.early_stopping:
            fraction = check_probability("validation_fraction", self.validation_fraction)
            if fraction == 0:
                raise BackpropError(
                    "`validation_fraction` must be a number in (0, 1) with early_stopping=True; got 0"
                )
        if self.dtype is not None:
            check_dtype("dtype", self.dtype)
        if (self.conv is None) != (self.input_shape is None):
            raise BackpropError(
                "`conv` and `input_shape` go together (a convolutional network needs both); got "
                f"conv={self.conv!r} and input_shape={self.input_shape!r}"
            )
        if self.conv is not None:
            from .layers.base import spatial_shape
            from .layers.spec import parse_conv_spec

            parse_conv_spec(self.conv)
            spatial_shape("input_shape", tuple(self.input_shape) if isinstance(self.input_shape, (list, tuple))
                          else self.input_shape)
            if self.solver == "lbfgs":
                raise BackpropError("`solver` must be 'adam' or 'sgd' for a convolutional network; got 'lbfgs'")
        for cb in self._callbacks():
            if not isinstance(cb, Callback):
                raise BackpropError(
                    f"`callbacks` must be a list of backprop.Callback objects; got {describe(cb)}"
                )

    def _callbacks(self) -> list:
        cbs = self.callbacks
        if cbs is None:
            return []
        return [cbs] if isinstance(cbs, Callback) else list(cbs)

    # -- the network ---------------------------------------------------------------------------
    def _loss_fn(self) -> Loss:
        raise NotImplementedError

    def _conv_layers(self, dtype) -> list:
        """The layers ``conv`` describes (Conv2D values zero; ``_network`` binds the live arrays)."""
        from .layers.spec import conv_network

        probe = conv_network(tuple(self.input_shape), self.conv, (), 1, activation=self._hidden_act(), dtype=dtype)
        return probe.layers[:-1]  # the conv part and its Flatten, without the probe's output layer

    def _conv_width(self, n_features: int, dtype) -> int:
        """Values out of the conv part's Flatten; X's columns must be the C*H*W pixels."""
        C, H, W = self.input_shape
        if n_features != C * H * W:
            raise BackpropError(
                f"`input_shape` {tuple(self.input_shape)} needs X with {C * H * W} columns (the pixels "
                f"in C-H-W order); got {n_features}"
            )
        return self._conv_layers(dtype)[-1].output_shape[0]

    def _hidden_act(self) -> str:
        act = self.activation.lower()
        return "sigmoid" if act == "logistic" else act

    def _params(self) -> list:
        """Every trained array: conv kernels and biases, then ``coefs_`` and ``intercepts_``."""
        return [*getattr(self, "conv_coefs_", []), *getattr(self, "conv_intercepts_", []),
                *self.coefs_, *self.intercepts_]

    def _network(self) -> Network:
        """A Network whose parameters ARE ``coefs_`` and ``intercepts_`` (and ``conv_coefs_``,
        ``conv_intercepts_``): training updates them in place."""
        n_layers = len(self.coefs_)
        layers = []
        if self.conv is not None:
            from .layers import Conv2D

            conv = self._conv_layers(self.coefs_[0].dtype)
            kernels = iter(zip(self.conv_coefs_, self.conv_intercepts_))
            for layer in conv:
                if isinstance(layer, Conv2D):
                    layer.params["W"], layer.params["b"] = next(kernels)
            layers.extend(conv)
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            last = i == n_layers - 1
            act = _OUT_ACTIVATIONS[self.out_activation_] if last else self.activation
            layer = Dense(W.shape[0], W.shape[1], activation=act, weight_init="zeros", dtype=W.dtype)
            layer.params["W"], layer.params["b"] = W, b
            layers.append(layer)
        loss = self._loss_fn()
        input_shape = None if self.conv is None else tuple(self.input_shape)
        return Network(layers, loss=loss if loss.name in LOSSES else "half_sse", input_shape=input_shape)

    def _init_weights(self, sizes: list[int], rs: np.random.RandomState, dtype) -> None:
        factor = 2.0 if self.activation.lower() in ("logistic", "sigmoid") else 6.0
        if self.conv is not None:  # scikit-learn's Glorot-uniform rule, fans counted per kernel
            from .layers import Conv2D

            self.conv_coefs_, self.conv_intercepts_ = [], []
            for layer in self._conv_layers(dtype):
                if isinstance(layer, Conv2D):
                    O, C, kh, kw = layer.params["W"].shape
                    bound = np.sqrt(factor / (C * kh * kw + O * kh * kw))
                    self.conv_coefs_.append(np.ascontiguousarray(rs.uniform(-bound, bound, (O, C, kh, kw)), dtype))
                    self.conv_intercepts_.append(np.ascontiguousarray(rs.uniform(-bound, bound, O), dtype))
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(sizes, sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            W = rs.uniform(-bound, bound, (fan_in, fan_out))
            b = rs.uniform(-bound, bound, fan_out)
            self.coefs_.append(np.ascontiguousarray(W, dtype=dtype))
            self.intercepts_.append(np.ascontiguousarray(b, dtype=dtype))

    @property
    def n_layers_(self) -> int:
        check_is_fitted(self, "coefs_")
        return len(self.coefs_) + 1

    # -- fitting -------------------------------------------------------------------------------
    def _checked_X_y(self, X, y, reset, **checks):
        """scikit-learn's checks of X and y (dense or CSR/CSC X of float64 or float32; sparse
        made dense) with a column-vector y flattened, warning as scikit-learn does; ``checks``
        go to ``validate_data`` (the regressor's ``y_numeric``)."""
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset, **checks)
        if hasattr(X, "toarray"):
            X = X.toarray()
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _fit(self, X, y, sample_weight=None, incremental=False, validation=None, resume_from=None):
        """``validation``: fit's (X_val, y_val, sample_weight_val) or None; ``resume_from``: a
        checkpoint folder (stochastic solvers)."""
        self._check_params()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        sample_weight = self._weighted(sample_weight, incremental)
        dtype = self.coefs_[0].dtype if not first_pass else (
            check_dtype("dtype", self.dtype) if self.dtype is not None else X.dtype)
        X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(Y, dtype=dtype)
        n_in = X.shape[1]
        if self.conv is not None:
            n_in = self._conv_width(X.shape[1], dtype)
        sizes = [n_in, *self._hidden_sizes(), Y.shape[1]]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, sizes, rs, dtype)
        elif [W.shape[1] for W in self.coefs_] != sizes[1:]:
            raise BackpropError(
                f"the fitted layer sizes {[W.shape[1] for W in self.coefs_]} do not match "
                f"hidden_layer_sizes and the targets ({sizes[1:]}); refit with warm_start=False"
            )
        network = self._network()
        given = None if validation is None else self._checked_validation(*validation, dtype=dtype)
        if self.solver == "lbfgs":
            if given is not None or resume_from is not None:
                raise BackpropError("`X_val`/`y_val` and `resume_from` need solver='adam' or 'sgd' (they work "
                                    "per epoch); got solver='lbfgs'")
            self._fit_lbfgs(network, X, Y, sample_weight, rs)
        else:
            self._fit_stochastic(network, X, Y, sample_weight, rs, incremental, given, resume_from)
        if not all(np.all(np.isfinite(p)) for p in self._params()):
            raise BackpropError(_NON_FINITE)
        return self

    def _weighted(self, sample_weight, incremental):
        """Fold class weights into the sample weights (classifier only)."""
        return sample_weight

    def _checked_validation(self, X_val, y_val, sample_weight_val, dtype):
        """fit's X_val, y_val (and sample_weight_val) checked against the training data: the same
        features (names too), targets the model can score. Returns (X_val, Y_val, sw_val)."""
        if X_val is None or y_val is None:
            raise BackpropError("`X_val` and `y_val` go together; got "
                                f"X_val={describe(X_val)} and y_val={describe(y_val)}")
        X_val = validate_data(self, X_val, accept_sparse=["csr", "csc"], reset=False,
                              dtype=(np.float64, np.float32))
        if hasattr(X_val, "toarray"):
            X_val = X_val.toarray()
        y_val = np.asarray(y_val)
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = y_val.ravel()
        if len(y_val) != X_val.shape[0]:
            raise BackpropError(f"`y_val` must have one target per row of X_val ({X_val.shape[0]}); got {len(y_val)}")
        if X_val.shape[0] < 1:
            raise BackpropError("`X_val` must have at least one row; got 0")
        if sample_weight_val is not None:
            sample_weight_val = _check_sample_weight(sample_weight_val, X_val, dtype=np.float64)
        Y_val = np.ascontiguousarray(self._validation_targets(y_val), dtype=dtype)
        return np.ascontiguousarray(X_val, dtype=dtype), Y_val, sample_weight_val

    def _validation_targets(self, y_val):
        raise NotImplementedError

    def _initialize(self, Y, sizes, rs, dtype) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.out_activation_ = self._out_activation()
        self._init_weights(sizes, rs, dtype)
        self._best_params = [p.copy() for p in self._params()]
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self.validation_loss_curve_ = None
        if self.solver in _STOCHASTIC and self.early_stopping:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _make_optimizer(self):
        lr = Constant(self.learning_rate_init)
        if self.solver == "sgd":
            return SGD(lr, momentum=self.momentum,
                       nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)
        return Adam(lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)

    def _progress(self) -> list:
        """``verbose="progress"``: a progress bar on stderr; any other true ``verbose``:
        scikit-learn's "Iteration N, loss = ..." lines on stdout (see _VerboseLines)."""
        if not self.verbose:
            return []
        if isinstance(self.verbose, str) and self.verbose == "progress":
            from .progress import ProgressBar

            return [ProgressBar(desc=type(self).__name__)]
        return [_VerboseLines()]

    def _fit_stochastic(self, network, X, Y, sample_weight, rs, incremental, given=None, resume_from=None):
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        if self.early_stopping and incremental:
            raise BackpropError("partial_fit does not support early_stopping=True; use fit()")
        validation = None
        if given is not None:  # fit's X_val and y_val: scored every epoch (early_stopping stops on them)
            X_val, Y_val, sw_val = given
            if self.validation_scores_ is None:
                self.validation_scores_, self.validation_loss_curve_ = [], []
            validation = (X_val, self._targets_for_score(Y_val), sw_val)
        elif self.early_stopping:
            # as scikit-learn: stratify on the binarized labels as booleans
            stratify = Y.astype(bool) if self._stratify() else None
            arrays = [X, Y] + ([] if sample_weight is None else [sample_weight])
            parts = train_test_split(*arrays, random_state=rs, test_size=self.validation_fraction,
                                     stratify=stratify)
            X, X_val, Y, Y_val = parts[:4]
            sample_weight, sw_val = (parts[4], parts[5]) if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise BackpropError(  # scikit-learn's wording
                    f"The validation set is too small ({X_val.shape[0]} sample(s)). Increase "
                    "'validation_fraction' or the size of your dataset."
                )
            validation = (X_val, self._targets_for_score(Y_val), sw_val)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    f"`batch_size` ({self.batch_size}) is larger than the number of samples "
                    f"({n}); using {n}", UserWarning, stacklevel=3,
                )
            batch_size = min(self.batch_size, n)
        w_total = float(n if sample_weight is None else np.sum(sample_weight))
        rules = _SklearnRules(self, n, validation)
        self.n_iter_ = 0
        history = engine_fit(
            network, X, Y,
            epochs=1 if incremental else self.max_iter,
            batch_size=batch_size,
            optimizer=self._optimizer,
            loss=self._loss_fn(),
            shuffle=self.shuffle,
            seed=np.random.default_rng(rs.randint(np.iinfo(np.int32).max)),
            validation_data=None if validation is None else (validation[0], Y_val),
            callbacks=[rules, *self._callbacks(), *self._progress()],
            sample_weight=sample_weight,
            l2=self.alpha * n / w_total,  # alpha / mean weight
            resume_from=resume_from,
        )
        self._finish(history)
        if self.early_stopping:
            for live, best in zip(self._params(), self._best_params):
                live[...] = best
        if not (incremental or rules.converged or history.interrupted):
            if self.n_iter_ == self.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                    "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3,
                )

    def _finish(self, history: History) -> None:
        if getattr(history, "diverged", False) and not self.early_stopping:
            # scikit-learn's rule and wording: weights that blew up are an error
            raise BackpropError(_NON_FINITE + f" ({history.stop_reason})")
        if getattr(history, "diverged", False):  # the engine's divergence guard kept good weights
            # as scikit-learn: the diverged epoch scores NaN; the best weights are restored below
            if self.validation_scores_ is not None:
                self.validation_scores_.append(float("nan"))
            warnings.warn(
                f"{history.stop_reason} (the model has {self.n_iter_} complete iteration(s))",
                ConvergenceWarning, stacklevel=4,
            )
        if history.interrupted:
            warnings.warn(
                f"training interrupted (Ctrl-C) after {self.n_iter_} complete iteration(s); "
                "the model keeps the weights it had then", UserWarning, stacklevel=4,
            )

    def _fit_lbfgs(self, network, X, Y, sample_weight, rs):
        loss_fn = self._loss_fn()
        params = self.coefs_ + self.intercepts_
        grads = [layer.grads["W"] for layer in network.layers] + [layer.grads["b"] for layer in network.layers]
        bounds = np.cumsum([0] + [p.size for p in params])
        sw_sum = float(X.shape[0] if sample_weight is None else np.sum(sample_weight))
        alpha = self.alpha

        def unpack(theta):
            for p, start, end in zip(params, bounds[:-1], bounds[1:]):
                p[...] = theta[start:end].reshape(p.shape)

        def objective(theta):
            unpack(theta)
            network.forward_batch(X, training=True)
            value = network.backward_batch(Y, loss_fn, sample_weight)
            value += 0.5 * alpha * _squared_norm(self.coefs_) / sw_sum
            flat = [g + (alpha / sw_sum) * W for g, W in zip(grads, self.coefs_)]
            flat += grads[len(self.coefs_):]
            return value, np.concatenate([g.ravel() for g in flat]).astype(np.float64)

        history = History()
        state = TrainState(network=network, optimizer=None, history=history,
                           rng=np.random.default_rng(rs.randint(np.iinfo(np.int32).max)),
                           epochs=self.max_iter)
        callbacks = [*self._callbacks(), *self._progress()]
        best = {"x": np.concatenate([p.ravel() for p in params]).astype(np.float64)}

        def after_iteration(intermediate_result):
            best["x"] = np.array(intermediate_result.x)
            self.loss_ = float(intermediate_result.fun)
            self.loss_curve_.append(self.loss_)
            self.n_iter_ = state.epoch + 1
            state.logs = {"loss": self.loss_}
            history.record(state.epoch, state.logs)
            for cb in callbacks:
                cb.on_epoch_end(state)
            state.epoch += 1
            if state.stop_training:
                raise StopIteration

        self.n_iter_, self.loss_ = 0, np.nan
        for cb in callbacks:
            cb.on_train_begin(state)
        try:
            result = scipy.optimize.minimize(
                objective, best["x"], method="L-BFGS-B", jac=True, callback=after_iteration,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            )
        except KeyboardInterrupt:
            history.interrupted = True
            result = None
            unpack(best["x"])  # the last complete iterate, not a line-search trial point
        finally:
            for cb in callbacks:
                cb.on_train_end(state)
        if result is None:
            self._finish(history)
            return
        unpack(result.x)
        self.n_iter_ = min(int(result.nit), self.max_iter)
        self.loss_ = self.best_loss_ = float(result.fun)
        if result.status != 0 and not state.stop_training:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status="
                f"{result.status}): {result.message}; increase `max_iter` or scale the data",
                ConvergenceWarning, stacklevel=3,
            )

    # -- prediction ----------------------------------------------------------------------------
    def _validated_X(self, X):
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                          dtype=(np.float64, np.float32))
        if hasattr(X, "toarray"):
            X = X.toarray()
        return np.ascontiguousarray(X, dtype=self.coefs_[0].dtype)

    def _output(self, network, X) -> np.ndarray:
        """The network's outputs (rates e^z for the log link: its output layer is ``exp``),
        large batches in chunks through preallocated buffers (``Network.predict``)."""
        return network.predict(X)

    def _forward(self, X) -> np.ndarray:
        X = self._validated_X(X)
        return self._output(self._network(), X)

    # -- model files ---------------------------------------------------------------------------
    _FITTED = ("n_features_in_", "n_iter_", "t_", "n_outputs_", "out_activation_", "loss_",
               "loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_",
               "validation_loss_curve_")

    def _extra_state(self) -> dict:
        return {}

    def save(self, path, metadata=None):
        """Save the fitted model to a .safetensors file (weights) with its hyper-parameters and
        fitted attributes as JSON metadata; the write is atomic. Returns the path.
        ``metadata``: more JSON entries to store beside them (``backprop train`` adds its
        preprocessing, training settings and scores); the estimator's own keys cannot be replaced."""
        check_is_fitted(self, "coefs_")
        params = self.get_params(deep=False)
        params["callbacks"] = None  # live objects: not part of a model file
        if not (params["random_state"] is None or isinstance(params["random_state"], numbers.Integral)):
            params["random_state"] = None
        if params["dtype"] is not None:
            params["dtype"] = check_dtype("dtype", params["dtype"]).name
        fitted = {name: _jsonable(getattr(self, name, None)) for name in self._FITTED}
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = _jsonable(self.feature_names_in_)
        fitted.update(self._extra_state())
        own = {"format": _FORMAT, "estimator": type(self).__name__,
               "params": {k: _jsonable(v) for k, v in params.items()}, "fitted": fitted}
        clash = sorted(set(own) & set(metadata or {}))
        if clash:
            raise BackpropError(f"`metadata` must not set the estimator's own entries; got {', '.join(clash)}")
        return self._network().save(path, metadata={**(metadata or {}), **own})

    def to_onnx(self, path, dtype=None):
        """Write the fitted model to ``path`` as an ONNX graph (atomic; needs ``pip install
        backprop[onnx]``); returns the path. The graph takes X (n_samples, n_features) and gives
        ``label`` and ``probabilities`` (classifiers, as skl2onnx's MLP converter) or ``variable``
        (regressors). ``dtype``: the graph's float type, default the model's (``"float32"`` for a
        float64 conv model). See :func:`backprop.interop.to_onnx`."""
        from .interop.onnx_export import to_onnx

        return to_onnx(self, path, dtype=dtype)

    @classmethod
    def load(cls, path):
        """Load a model written by ``save``: ``MLPClassifier.load("model.safetensors")``."""
        network = Network.load(path)
        meta = network.metadata
        if meta.get("format") != _FORMAT and "task" in meta:
            return cls._from_train_file(path, network, meta)
        if meta.get("format") != _FORMAT or meta.get("estimator") != cls.__name__:
            raise BackpropError(
                f"`{path}` holds {meta.get('estimator') or 'no estimator'!s} model; "
                f"{cls.__name__}.load needs a file written by {cls.__name__}.save"
            )
        params = dict(meta["params"])
        params["n_iter_no_change"] = _unjson_float(params["n_iter_no_change"])
        if isinstance(params["hidden_layer_sizes"], list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        if isinstance(params.get("input_shape"), list):
            params["input_shape"] = tuple(params["input_shape"])
        est = cls(**params)
        fitted = dict(meta["fitted"])
        for name in cls._FITTED:
            setattr(est, name, _unjson_float(fitted.get(name)))
        if "feature_names_in_" in fitted:
            est.feature_names_in_ = np.array(fitted["feature_names_in_"], dtype=object)
        from .layers import Conv2D

        dense = [layer for layer in network.layers if isinstance(layer, Dense)]
        conv = [layer for layer in network.layers if isinstance(layer, Conv2D)]
        est.coefs_ = [layer.params["W"] for layer in dense]
        est.intercepts_ = [layer.params["b"] for layer in dense]
        if conv:
            est.conv_coefs_ = [layer.params["W"] for layer in conv]
            est.conv_intercepts_ = [layer.params["b"] for layer in conv]
        est._restore_extra_state(fitted)
        return est

    def _restore_extra_state(self, fitted: dict) -> None:
        pass

    _TASK = ""  # the `task` of a `backprop train` file this class reads

    @classmethod
    def _from_train_file(cls, path, network, meta):
        """The estimator of a file written by `backprop train` before it fitted estimators (a
        Network with `task` and `training` metadata, no `params`): its parameters from the
        training settings, its weights the network's, its classes the class indices (the file's
        `classes` name them), for predicting on the encoded, standardised columns
        (``backprop.preprocessing.load_model`` gives the preprocessor)."""
        from .layers import Conv2D

        if meta.get("task") != cls._TASK:
            other = "MLPClassifier" if cls._TASK == "regress" else "MLPRegressor"
            raise BackpropError(f"`{path}` holds a `backprop train` model with task {meta.get('task')!r}; "
                                f"load it with {other}.load")
        training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
        dense = [layer for layer in network.layers if isinstance(layer, Dense)]
        conv = [layer for layer in network.layers if isinstance(layer, Conv2D)]
        hidden = dense[0].activation.name if len(dense) > 1 else training.get("activation", "relu")
        est = cls(hidden_layer_sizes=tuple(layer.n_outputs for layer in dense[:-1]), activation=hidden,
                  solver=training.get("optimizer", "adam"), learning_rate_init=training.get("lr", 0.001),
                  batch_size=training.get("batch_size", "auto"), max_iter=training.get("epochs", 200),
                  random_state=training.get("seed"), conv=training.get("conv") if conv else None,
                  input_shape=tuple(network.input_shape) if conv else None)
        est.coefs_ = [layer.params["W"] for layer in dense]
        est.intercepts_ = [layer.params["b"] for layer in dense]
        if conv:
            est.conv_coefs_ = [layer.params["W"] for layer in conv]
            est.conv_intercepts_ = [layer.params["b"] for layer in conv]
        history = meta.get("history") if isinstance(meta.get("history"), dict) else {}
        est.n_features_in_ = network.n_inputs
        est.n_outputs_ = network.n_outputs
        est.n_iter_ = int(training.get("epochs_run", 0))
        est.t_ = est.n_iter_ * int(training.get("n_train", 0))
        est.loss_curve_ = [float(v) for v in history.get("loss", [])]
        est.loss_ = est.loss_curve_[-1] if est.loss_curve_ else None
        est.best_loss_ = min(est.loss_curve_) if est.loss_curve_ else None
        est.validation_loss_curve_ = [float(v) for v in history["val_loss"]] if history.get("val_loss") else None
        est.validation_scores_ = est.best_validation_score_ = None
        est._train_file_state(network)
        return est

    def _train_file_state(self, network) -> None:
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, scikit-learn's ``MLPClassifier`` on this engine.

    Parameters are scikit-learn's (same names, defaults and meaning), plus:

    - ``activation`` also accepts ``"leaky_relu"`` and ``"sigmoid"`` (= ``"logistic"``);
    - ``loss``: ``"log_loss"`` (default, scikit-learn's) or ``"squared_error"`` (half squared
      error on the probabilities);
    - ``class_weight``: None, ``"balanced"`` or ``{label: weight}``, multiplied into the sample
      weights;
    - ``callbacks``: backprop Callback objects (e.g. ``ProgressBar``, ``EarlyStopping``);
    - ``dtype``: None (follow X: float32 stays float32), ``"float32"`` or ``"float64"``;
    - ``conv`` and ``input_shape``: a convolutional network. ``input_shape=(C, H, W)`` reads
      each row of X as an image (C*H*W values in C-H-W order) and ``conv`` lists the layers
      before the hidden Dense ones, e.g. ``"16x3p1,max2,32x3p1,max2"`` (``backprop.layers.spec``).
      The Dense layers stay in ``coefs_``/``intercepts_``; the kernels are in ``conv_coefs_``
      (out_channels, in_channels, kh, kw) and ``conv_intercepts_``. Stochastic solvers only.

    scikit-learn's parameters, in brief (its documentation has the full text):

    - ``hidden_layer_sizes``: sizes of the hidden layers, e.g. ``(100,)`` or ``(64, 32)``.
    - ``activation``: hidden activation, ``"relu"`` (default), ``"tanh"``, ``"logistic"``,
      ``"identity"``, and ours ``"leaky_relu"``, ``"sigmoid"``.
    - ``solver``: ``"adam"`` (default), ``"sgd"`` or ``"lbfgs"``.
    - ``alpha``: L2 penalty, 0.5 * alpha * ||W||^2 / n_samples per batch (default 1e-4).
    - ``batch_size``: ``"auto"`` (min(200, n_samples)) or an int.
    - ``learning_rate``: SGD schedule, ``"constant"``, ``"invscaling"`` (with ``power_t``) or
      ``"adaptive"``; ``learning_rate_init``: the initial rate (default 1e-3).
    - ``max_iter``: epochs (stochastic solvers) or iterations (L-BFGS); ``max_fun``: L-BFGS's
      limit on loss evaluations.
    - ``shuffle``: shuffle every epoch; ``random_state``: seed of the weights, shuffling and split.
    - ``tol`` and ``n_iter_no_change``: stop when the loss (or the validation score) has not
      improved by ``tol`` for that many epochs.
    - ``verbose``: print progress; ``warm_start``: continue from the previous fit.
    - ``momentum`` and ``nesterovs_momentum``: SGD's momentum.
    - ``early_stopping`` with ``validation_fraction``: hold out that fraction and stop on its score.
    - ``beta_1``, ``beta_2``, ``epsilon``: Adam's moment decays and its epsilon.

    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(solver="lbfgs", random_state=0, max_iter=500).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True
    """

    _loss_names = ("log_loss", "squared_error")

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        loss="log_loss",
        class_weight=None,
        callbacks=None,
        dtype=None,
        conv=None,
        input_shape=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.loss = loss
        self.class_weight = class_weight
        self.callbacks = callbacks
        self.dtype = dtype
        self.conv = conv
        self.input_shape = input_shape

    # -- targets -------------------------------------------------------------------------------
    def _validate_input(self, X, y, incremental, reset):
        X, y = self._checked_X_y(X, y, reset)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental and set(classes) != set(self.classes_):
                raise BackpropError(  # scikit-learn's wording (its test_mlp.py matches it)
                    "warm_start can only be used where `y` has the same classes as in the "
                    f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                )
            if len(np.setdiff1d(classes, self.classes_)):
                raise BackpropError(
                    f"`y` has classes {list(np.setdiff1d(classes, self.classes_))} that are not in "
                    f"`classes_` {list(self.classes_)}"
                )
        self._y_type = self._label_binarizer.y_type_
        # a single class is accepted, as scikit-learn does (its test_mlp.py fits one); it is predicted always
        if self._y_type not in ("binary", "multiclass", "multilabel-indicator"):
            raise BackpropError(
                f"`y` must hold at least two classes; got {len(self.classes_)} class "
                f"({describe(self.classes_.tolist())})"
            )
        self._fit_labels = y
        return X, self._label_binarizer.transform(y)

    def _weighted(self, sample_weight, incremental):
        if self.class_weight is None:
            return sample_weight
        if self._y_type == "multilabel-indicator":
            raise BackpropError("`class_weight` is not supported for multilabel targets; got "
                                f"{describe(self.class_weight)}")
        if incremental and self.class_weight == "balanced":
            raise BackpropError("`class_weight='balanced'` needs all the data; partial_fit sees "
                                "one batch: pass a dict of class weights")
        if not (self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise BackpropError(
                f"`class_weight` must be None, 'balanced' or a dict {{label: weight}}; "
                f"got {describe(self.class_weight)}"
            )
        weights = compute_sample_weight(self.class_weight, self._fit_labels)
        return weights if sample_weight is None else weights * sample_weight

    def _validation_targets(self, y_val):
        if self._y_type != "multilabel-indicator":
            unseen = np.setdiff1d(unique_labels(y_val), self.classes_)
            if len(unseen):
                raise BackpropError(f"`y_val` has classes {unseen.tolist()} that are not in the training "
                                    f"labels {self.classes_.tolist()}")
        return self._label_binarizer.transform(y_val)

    def _stratify(self) -> bool:
        return self.n_outputs_ == 1  # as scikit-learn: binary targets only

    def _out_activation(self) -> str:
        return "softmax" if self._y_type == "multiclass" else "logistic"

    def _loss_fn(self) -> Loss:
        if self.loss == "squared_error":
            return get_loss("half_sse")
        if self.out_activation_ == "softmax":
            return get_loss("softmax_cross_entropy")
        return get_loss("binary_cross_entropy")

    def _decode(self, out: np.ndarray) -> np.ndarray:
        """Outputs -> labels: argmax of the softmax, or a 0.5 threshold per logistic output."""
        if self._y_type == "multiclass":
            return self.classes_[np.argmax(out, axis=1)]
        if self._y_type == "binary" and len(self.classes_) == 1:
            return np.repeat(self.classes_, len(out))
        if self._y_type == "binary":
            return self.classes_[(out[:, 0] > 0.5).astype(int)]
        return (out > 0.5).astype(int)

    def _targets_for_score(self, Y):
        return self._decode(Y)

    def _score_raw(self, out, y, sample_weight) -> float:
        if not np.all(np.isfinite(out)):
            return np.nan
        return accuracy_score(y, self._decode(out), sample_weight=sample_weight)

    # -- public API ----------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None,
            resume_from=None):
        """Train on X (n_samples, n_features) and labels y; returns self.

        Beyond scikit-learn (stochastic solvers): ``X_val``/``y_val`` (and ``sample_weight_val``)
        are a validation set of your own, scored after every epoch into ``validation_scores_``
        and ``validation_loss_curve_``; with ``early_stopping=True`` the stopping rule uses them
        instead of a split of X. ``resume_from=DIR`` continues a fit whose ``callbacks`` held a
        ``backprop.Checkpoint(DIR)``, bitwise (same data and parameters)."""
        validation = None if X_val is None and y_val is None else (X_val, y_val, sample_weight_val)
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, validation=validation,
                         resume_from=resume_from)

    @available_if(lambda est: est.solver in _STOCHASTIC)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y). The first call needs ``classes`` (every label there will be)."""
        first = getattr(self, "classes_", None) is None or not hasattr(self, "coefs_")
        if first and classes is None:
            raise BackpropError("`classes` must be passed on the first call to partial_fit "
                                "(all the labels the model will see); got None")
        if first:
            from sklearn.utils.multiclass import type_of_target

            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise BackpropError(
                f"`classes` must be the same as on the first call to partial_fit, "
                f"{list(self.classes_)}; got {list(unique_labels(classes))}"
            )
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted labels (an indicator matrix for multilabel targets)."""
        return self._decode(self._forward(X))

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Logistic outputs are clipped to [eps, 1 - eps] (eps of the dtype), so a probability is
        never exactly 0 or 1; softmax outputs are returned as they are.
        """
        out = self._forward(X)
        if self._y_type == "multiclass":
            return out
        eps = np.finfo(out.dtype).eps
        out = np.clip(out, eps, 1 - eps)
        return np.hstack([1 - out, out]) if self._y_type == "binary" else out

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def _extra_state(self):
        kind = "object" if self.classes_.dtype == object else self.classes_.dtype.str
        return {"classes_": _jsonable(self.classes_), "classes_dtype": kind, "y_type": self._y_type}

    def _restore_extra_state(self, fitted):
        self.classes_ = np.array(fitted["classes_"], dtype=np.dtype(fitted["classes_dtype"])
                                 if fitted["classes_dtype"] != "object" else object)
        self._y_type = fitted["y_type"]
        self._label_binarizer = LabelBinarizer()
        if self._y_type == "multilabel-indicator":
            self._label_binarizer.fit(np.eye(len(self.classes_), dtype=int))
        else:
            self._label_binarizer.fit(self.classes_)

    _TASK = "classify"

    def _train_file_state(self, network) -> None:
        # the old `backprop train` put every class, two as well, on a softmax output: argmax decodes it
        self.out_activation_ = "softmax"
        self._y_type = "multiclass"
        self.classes_ = np.arange(network.n_outputs)
        self._label_binarizer = LabelBinarizer().fit(self.classes_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, scikit-learn's ``MLPRegressor`` on this engine.

    Parameters are scikit-learn's (same names, defaults and meaning, ``loss`` =
    ``"squared_error"`` or ``"poisson"``), plus ``activation="leaky_relu"``/``"sigmoid"``,
    ``callbacks``, ``dtype``, ``conv`` and ``input_shape`` as for :class:`MLPClassifier`.

    scikit-learn's parameters, in brief (its documentation has the full text):

    - ``hidden_layer_sizes``: sizes of the hidden layers, e.g. ``(100,)`` or ``(64, 32)``.
    - ``activation``: hidden activation, ``"relu"`` (default), ``"tanh"``, ``"logistic"``,
      ``"identity"``, and ours ``"leaky_relu"``, ``"sigmoid"``.
    - ``solver``: ``"adam"`` (default), ``"sgd"`` or ``"lbfgs"``.
    - ``alpha``: L2 penalty, 0.5 * alpha * ||W||^2 / n_samples per batch (default 1e-4).
    - ``batch_size``: ``"auto"`` (min(200, n_samples)) or an int.
    - ``learning_rate``: SGD schedule, ``"constant"``, ``"invscaling"`` (with ``power_t``) or
      ``"adaptive"``; ``learning_rate_init``: the initial rate (default 1e-3).
    - ``max_iter``: epochs (stochastic solvers) or iterations (L-BFGS); ``max_fun``: L-BFGS's
      limit on loss evaluations.
    - ``shuffle``: shuffle every epoch; ``random_state``: seed of the weights, shuffling and split.
    - ``tol`` and ``n_iter_no_change``: stop when the loss (or the validation score) has not
      improved by ``tol`` for that many epochs.
    - ``verbose``: print progress; ``warm_start``: continue from the previous fit.
    - ``momentum`` and ``nesterovs_momentum``: SGD's momentum.
    - ``early_stopping`` with ``validation_fraction``: hold out that fraction and stop on its score.
    - ``beta_1``, ``beta_2``, ``epsilon``: Adam's moment decays and its epsilon.

    >>> import numpy as np
    >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
    >>> reg = MLPRegressor(hidden_layer_sizes=(10,), solver="lbfgs", random_state=0)
    >>> reg = reg.fit(X, 2 * X[:, 0] + 1)
    >>> reg.score(X, 2 * X[:, 0] + 1) > 0.99
    True
    """

    _loss_names = ("squared_error", "poisson")

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        callbacks=None,
        dtype=None,
        conv=None,
        input_shape=None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.callbacks = callbacks
        self.dtype = dtype
        self.conv = conv
        self.input_shape = input_shape

    def _validate_input(self, X, y, incremental, reset):
        X, y = self._checked_X_y(X, y, reset, y_numeric=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise BackpropError(
                f"`y` must be non-negative for loss='poisson'; got a minimum of {np.min(y)}"
            )
        return X, (y.reshape(-1, 1) if y.ndim == 1 else y)

    def _validation_targets(self, y_val):
        y_val = np.asarray(y_val, dtype=np.float64)
        return y_val.reshape(-1, 1) if y_val.ndim == 1 else y_val

    _TASK = "regress"

    def _train_file_state(self, network) -> None:
        self.out_activation_ = "identity"  # the old `backprop train` regressed on the standardised target

    def _stratify(self) -> bool:
        return False

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _loss_fn(self) -> Loss:
        return HalfPoissonDeviance() if self.out_activation_ == "exp" else get_loss("half_sse")

    def _targets_for_score(self, Y):
        return Y

    def _score_raw(self, out, y, sample_weight) -> float:
        if not np.all(np.isfinite(out)):
            return np.nan
        return r2_score(y, out, sample_weight=sample_weight)

    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None,
            resume_from=None):
        """Train on X (n_samples, n_features) and targets y; returns self. ``X_val``, ``y_val``,
        ``sample_weight_val`` and ``resume_from``: as in :meth:`MLPClassifier.fit`."""
        validation = None if X_val is None and y_val is None else (X_val, y_val, sample_weight_val)
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, validation=validation,
                         resume_from=resume_from)

    @available_if(lambda est: est.solver in _STOCHASTIC)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y)."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values, shape (n_samples,) for one target, else (n_samples, n_outputs)."""
        out = self._forward(X)
        return out.ravel() if out.shape[1] == 1 else out
