"""Activation functions: value and derivative side by side, with their formulas as text.

Each activation maps the net input Z of a layer to its output A = f(Z). ``backward(Z, A, dA)``
returns dZ = dA * f'(Z) (for softmax, the Jacobian-vector product). All are numerically stable:
inputs of +-1e4 give finite results and no numpy warnings.
"""

from __future__ import annotations

import numpy as np

from ._validation import BackpropError, check_non_negative

__all__ = [
    "Activation",
    "Identity",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "get_activation",
    "ACTIVATIONS",
    "sigmoid",
    "softmax",
]


def sigmoid(Z: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + e^-z), computed without overflow for any finite z."""
    Z = np.asarray(Z)
    E = np.exp(-np.abs(Z))  # in (0, 1]: never overflows
    return np.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E)).astype(Z.dtype, copy=False)


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax with the max subtracted (log-sum-exp trick)."""
    shifted = Z - np.max(Z, axis=-1, keepdims=True)
    E = np.exp(shifted)
    return E / np.sum(E, axis=-1, keepdims=True)


class Activation:
    """Base class. Subclasses define ``forward`` and ``derivative`` next to each other."""

    name: str = ""
    formula: str = ""  # f(z) as text
    derivative_formula: str = ""  # f'(z) as text, in terms of z and/or out
    elementwise: bool = True

    def forward(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
        """dA/dZ element by element (A = forward(Z) is passed in so it need not be recomputed)."""
        raise NotImplementedError

    def backward(self, Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
        """dZ from dA (chain rule through this activation)."""
        return dA * self.derivative(Z, A)

    def config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.config().items())))


class Identity(Activation):
    name = "identity"
    formula = "f(z) = z"
    derivative_formula = "f'(z) = 1"

    def forward(self, Z):
        return Z

    def derivative(self, Z, A):
        return np.ones_like(Z)

    def backward(self, Z, A, dA):
        return dA


class Sigmoid(Activation):
    name = "sigmoid"
    formula = "f(z) = 1 / (1 + e^(-z))"
    derivative_formula = "f'(z) = out * (1 - out)"

    def forward(self, Z):
        return sigmoid(Z)

    def derivative(self, Z, A):
        return A * (1.0 - A)


class Tanh(Activation):
    name = "tanh"
    formula = "f(z) = tanh(z)"
    derivative_formula = "f'(z) = 1 - out^2"

    def forward(self, Z):
        return np.tanh(Z)

    def derivative(self, Z, A):
        return 1.0 - A * A


class ReLU(Activation):
    name = "relu"
    formula = "f(z) = max(0, z)"
    derivative_formula = "f'(z) = 1 if z > 0 else 0"

    def forward(self, Z):
        return np.maximum(Z, 0)

    def derivative(self, Z, A):
        return (Z > 0).astype(Z.dtype)


class LeakyReLU(Activation):
    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = check_non_negative("negative_slope", negative_slope)
        self.formula = f"f(z) = z if z > 0 else {self.negative_slope:g} * z"
        self.derivative_formula = f"f'(z) = 1 if z > 0 else {self.negative_slope:g}"

    def forward(self, Z):
        return np.where(Z > 0, Z, Z * self.negative_slope)

    def derivative(self, Z, A):
        return np.where(Z > 0, 1.0, self.negative_slope).astype(Z.dtype)

    def config(self):
        return {"name": self.name, "negative_slope": self.negative_slope}

    def __repr__(self):
        return f"LeakyReLU(negative_slope={self.negative_slope:g})"


class Softmax(Activation):
    name = "softmax"
    formula = "f(z)_k = e^(z_k) / sum_j e^(z_j)"
    derivative_formula = "d out_k / d z_j = out_k * (1[k = j] - out_j)"
    elementwise = False

    def forward(self, Z):
        return softmax(Z)

    def derivative(self, Z, A):
        """Diagonal of the Jacobian, out_k (1 - out_k); ``backward`` uses the full Jacobian."""
        return A * (1.0 - A)

    def backward(self, Z, A, dA):
        # J^T dA with J_kj = A_k (delta_kj - A_j): dZ_j = A_j (dA_j - sum_k dA_k A_k)
        return A * (dA - np.sum(dA * A, axis=-1, keepdims=True))


# e^z is computed as e^min(z, EXP_CAP): e^80 (5.5e34) is below float32's largest number, so a
# log-link output and the Poisson loss stay finite and warning-free for any input.
EXP_CAP = 80.0


class Exp(Activation):
    """The inverse of the log link (Poisson regression: the output is a rate e^z > 0), for an
    output layer; rates are capped at e^EXP_CAP (5.5e34) instead of overflowing."""

    name = "exp"
    formula = "f(z) = e^z"
    derivative_formula = "f'(z) = out"

    def forward(self, Z):
        return np.exp(np.minimum(Z, EXP_CAP))

    def derivative(self, Z, A):
        return A


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax)
}
# Inverse links that belong on an output layer only (not iterated as hidden activations).
OUTPUT_ACTIVATIONS: dict[str, type[Activation]] = {"exp": Exp}
# "linear" and "logistic" are the names scikit-learn uses.
_ALIASES = {"linear": "identity", "logistic": "sigmoid", "none": "identity"}


def get_activation(spec: str | Activation | dict | None) -> Activation:
    """Look up an activation by name, by config dict (``spec``: ``"relu"``,
    ``{"name": "leaky_relu", "negative_slope": 0.1}``) or None (identity); instances pass through.

    >>> get_activation("sigmoid")
    Sigmoid()
    """
    if spec is None:
        return Identity()
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, dict):
        config = dict(spec)
        name = config.pop("name", None)
        return type(get_activation(name))(**config)
    if isinstance(spec, str):
        key = _ALIASES.get(spec.lower(), spec.lower())
        if key in ACTIVATIONS:
            return ACTIVATIONS[key]()
        if key in OUTPUT_ACTIVATIONS:
            return OUTPUT_ACTIVATIONS[key]()
    raise BackpropError(
        f"`activation` must be one of {', '.join(sorted(ACTIVATIONS))} (or exp, for an output "
        f"layer); got {spec!r}"
    )
