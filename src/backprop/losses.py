"""Loss functions: value and gradient side by side.

Each loss works on a batch: ``out`` and ``Y`` have shape (n_samples, n_outputs). The per-sample
loss sums over outputs (``mse`` averages); ``reduction`` then sums ("sum") or averages ("mean")
over samples, optionally weighted by ``sample_weight``.

The two cross-entropies are computed *from logits*: they take the output layer's net input Z and
fuse the link (sigmoid or softmax) into the loss, which is exact and never takes log(0). A network
whose loss is from logits must end in that link or in identity.
"""

from __future__ import annotations

import numpy as np

from ._validation import BackpropError, as_float_array, check_choice
from .activations import EXP_CAP, sigmoid, softmax

__all__ = [
    "Loss",
    "HalfSSE",
    "SSE",
    "MSE",
    "BinaryCrossEntropy",
    "SoftmaxCrossEntropy",
    "get_loss",
    "LOSSES",
]


class Loss:
    """Base class: subclasses define ``per_sample`` and ``per_sample_gradient`` together."""

    name: str = ""
    formula: str = ""  # per-sample value as text
    gradient_formula: str = ""  # d loss / d out (or d z for from-logits losses) as text
    from_logits: bool = False
    link: str | None = None  # the output activation fused into a from-logits loss

    def __init__(self, reduction: str = "mean"):
        self.reduction = check_choice("reduction", reduction, ("mean", "sum"))

    # -- the math, per sample ------------------------------------------------------------------
    def per_sample(self, out: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Loss of each sample, shape (n_samples,)."""
        raise NotImplementedError

    def per_sample_gradient(self, out: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """d per_sample / d out, shape of ``out``."""
        raise NotImplementedError

    # -- reduction -----------------------------------------------------------------------------
    def _weights(self, n: int, sample_weight: np.ndarray | None) -> np.ndarray | None:
        if sample_weight is None:
            return None
        w = as_float_array("sample_weight", sample_weight).reshape(-1)
        if w.shape != (n,):
            raise BackpropError(
                f"`sample_weight` must have shape ({n},); got shape {np.shape(sample_weight)}"
            )
        if not np.all(w >= 0) or not np.all(np.isfinite(w)):  # NaN fails both comparisons
            bad = w[~((w >= 0) & np.isfinite(w))][0]
            raise BackpropError(f"`sample_weight` must hold finite numbers >= 0; got {bad}")
        return w

    @staticmethod
    def _pair(out, Y) -> tuple[np.ndarray, np.ndarray]:
        if not (isinstance(out, np.ndarray) and isinstance(Y, np.ndarray)):
            out, Y = as_float_array("out", out), as_float_array("Y", Y)
        if out.ndim != 2 or out.shape != Y.shape:
            raise BackpropError(
                f"the loss needs outputs and targets of one shape (n_samples, n_outputs); "
                f"got outputs of shape {out.shape} and targets of shape {Y.shape}"
            )
        return out, Y

    def value(self, out: np.ndarray, Y: np.ndarray, sample_weight=None) -> float:
        """The reduced loss (a Python float). A weighted mean whose weights are all 0 is 0."""
        losses = self.per_sample(*self._pair(out, Y))
        w = self._weights(len(losses), sample_weight)
        if w is None:
            total = float(np.sum(losses, dtype=np.float64))
            return total / len(losses) if self.reduction == "mean" else total
        total = float(np.dot(w, losses))
        if self.reduction == "mean":
            w_sum = float(np.sum(w))
            return total / w_sum if w_sum > 0 else 0.0
        return total

    def gradient(self, out: np.ndarray, Y: np.ndarray, sample_weight=None) -> np.ndarray:
        """d value / d out, including the reduction's scaling."""
        grad = self.per_sample_gradient(*self._pair(out, Y))
        n = grad.shape[0]
        w = self._weights(n, sample_weight)
        if w is not None:
            grad = grad * w[:, None].astype(grad.dtype)
            if self.reduction == "mean" and np.sum(w) > 0:
                grad = grad / grad.dtype.type(np.sum(w))
        elif self.reduction == "mean" and n != 1:
            grad = grad / grad.dtype.type(n)
        return grad

    def config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class HalfSSE(Loss):
    """Half the sum of squared errors, the loss of the Mazur and PyImageSearch tutorials."""

    name = "half_sse"
    formula = "E = 1/2 * sum_k (t_k - out_k)^2"
    gradient_formula = "dE/dout_k = -(t_k - out_k) = out_k - t_k"

    def per_sample(self, out, Y):
        return 0.5 * np.sum((Y - out) ** 2, axis=1)

    def per_sample_gradient(self, out, Y):
        return out - Y


class SSE(Loss):
    """Sum of squared errors, the error the Brownlee tutorial reports."""

    name = "sse"
    formula = "E = sum_k (t_k - out_k)^2"
    gradient_formula = "dE/dout_k = 2 * (out_k - t_k)"

    def per_sample(self, out, Y):
        return np.sum((Y - out) ** 2, axis=1)

    def per_sample_gradient(self, out, Y):
        return 2.0 * (out - Y)


class MSE(Loss):
    """Mean squared error over the outputs of a sample."""

    name = "mse"
    formula = "E = 1/K * sum_k (t_k - out_k)^2"
    gradient_formula = "dE/dout_k = 2/K * (out_k - t_k)"

    def per_sample(self, out, Y):
        return np.mean((Y - out) ** 2, axis=1)

    def per_sample_gradient(self, out, Y):
        return (2.0 / out.shape[1]) * (out - Y)


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy of independent sigmoid outputs, from logits z."""

    name = "binary_cross_entropy"
    formula = "E = sum_k -[t_k log sigma(z_k) + (1 - t_k) log(1 - sigma(z_k))]"
    gradient_formula = "dE/dz_k = sigma(z_k) - t_k"
    from_logits = True
    link = "sigmoid"

    def per_sample(self, out, Y):
        Z = out
        # -[t log s(z) + (1-t) log(1-s(z))] = max(z, 0) - t z + log(1 + e^-|z|)
        return np.sum(np.maximum(Z, 0) - Y * Z + np.log1p(np.exp(-np.abs(Z))), axis=1)

    def per_sample_gradient(self, out, Y):
        return sigmoid(out) - Y


class SoftmaxCrossEntropy(Loss):
    """Categorical cross-entropy of a softmax output, from logits z."""

    name = "softmax_cross_entropy"
    formula = "E = -sum_k t_k log softmax(z)_k"
    gradient_formula = "dE/dz_k = softmax(z)_k * sum_j t_j - t_k"
    from_logits = True
    link = "softmax"

    def per_sample(self, out, Y):
        Z = out
        zmax = np.max(Z, axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.sum(np.exp(Z - zmax), axis=1))
        return np.sum(Y, axis=1) * lse - np.sum(Y * Z, axis=1)

    def per_sample_gradient(self, out, Y):
        return softmax(out) * np.sum(Y, axis=1, keepdims=True) - Y


class HalfPoissonDeviance(Loss):
    """Half the Poisson deviance of a log-link output, from the log-rate z (out = e^z): the
    network ends in an ``exp`` (or identity) output and this loss takes its net input.

    scikit-learn's ``MLPRegressor(loss="poisson")``, constant terms included so the values match.
    Targets must be non-negative counts or rates.
    """

    name = "half_poisson_deviance"
    formula = "E = sum_k [t_k log(t_k / e^z_k) - t_k + e^z_k]"
    gradient_formula = "dE/dz_k = e^z_k - t_k"
    from_logits = True
    link = "exp"

    def per_sample(self, out, Y):
        from scipy.special import xlogy  # here, not at import: scipy.special costs ~0.4 s of every start-up

        return np.sum(xlogy(Y, Y) - Y * out - Y + np.exp(np.minimum(out, EXP_CAP)), axis=1)

    def per_sample_gradient(self, out, Y):
        return np.exp(np.minimum(out, EXP_CAP)) - Y


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls for cls in (HalfSSE, SSE, MSE, BinaryCrossEntropy, SoftmaxCrossEntropy, HalfPoissonDeviance)
}
_ALIASES = {
    "squared_error": "half_sse",
    "bce": "binary_cross_entropy",
    "binary_crossentropy": "binary_cross_entropy",
    "cross_entropy": "softmax_cross_entropy",
    "categorical_crossentropy": "softmax_cross_entropy",
    "log_loss": "softmax_cross_entropy",
    "poisson": "half_poisson_deviance",
}


def get_loss(spec: str | Loss | dict, reduction: str | None = None) -> Loss:
    """Look up a loss by name or config dict (``spec``: ``"mse"``, ``{"name": "mse",
    "reduction": "sum"}``); instances pass through unchanged. ``reduction`` ("mean" or "sum")
    overrides the spec's.

    >>> get_loss("half_sse", reduction="sum")
    HalfSSE(reduction='sum')
    """
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, dict):
        config = dict(spec)
        return get_loss(config.pop("name", None), reduction=config.get("reduction", reduction))
    if isinstance(spec, str):
        key = _ALIASES.get(spec.lower(), spec.lower())
        if key in LOSSES:
            return LOSSES[key](reduction=reduction or "mean")
    raise BackpropError(f"`loss` must be one of {', '.join(sorted(LOSSES))}; got {spec!r}")
