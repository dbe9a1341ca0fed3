"""The Dense (fully connected) layer; the contract it keeps is in ``layers/base.py``."""

from __future__ import annotations

import numpy as np

from .._validation import BackpropError, check_dtype, check_int
from ..activations import Activation, get_activation
from ..initializers import as_generator, get_initializer
from .base import Layer

__all__ = ["Dense"]


class Dense(Layer):
    """Fully connected layer: Z = X @ W + b, A = activation(Z).

    W has shape (n_inputs, n_outputs) as scikit-learn's ``coefs_``; b has shape (n_outputs,).

    Parameters: ``n_inputs``, ``n_outputs`` (sizes); ``activation`` (name or Activation, default
    identity); ``weight_init`` (default Glorot) and ``bias_init`` (default 0.0): initializer
    names, Initializer objects, callables or explicit arrays; ``use_bias`` (default True);
    ``trainable_bias`` (False: the bias is computed but never handed to the optimizer, as in
    Mazur's worked example); ``seed`` (int or numpy Generator); ``dtype`` (float64 or float32).
    W is drawn first, then b. (Brownlee's neuron-by-neuron draws are
    ``backprop.demos.conventions.neuron_order_dense``.)

    Backward, with dZ the delta of each neuron::

        dZ = activation.backward(Z, A, dA)   # dA * f'(Z)
        dW = X.T @ dZ
        db = dZ.sum(axis=0)
        dX = dZ @ W.T
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        activation: str | Activation | None = "identity",
        weight_init="glorot",
        bias_init=0.0,
        use_bias: bool = True,
        trainable_bias: bool = True,
        seed: int | np.random.Generator | None = None,
        dtype=np.float64,
    ):
        super().__init__()
        self.n_inputs = check_int("n_inputs", n_inputs)
        self.n_outputs = check_int("n_outputs", n_outputs)
        self.activation = get_activation(activation)
        self.use_bias = bool(use_bias)
        self.dtype = check_dtype("dtype", dtype)
        rng = as_generator(seed)
        W = get_initializer(weight_init)((self.n_inputs, self.n_outputs), rng)
        b = get_initializer(bias_init)((self.n_outputs,), rng) if self.use_bias else None
        self.params["W"] = np.ascontiguousarray(W, dtype=self.dtype)
        if self.use_bias:
            self.params["b"] = np.ascontiguousarray(b, dtype=self.dtype)
            if not trainable_bias:
                self.frozen.add("b")
        self._allocate_grads()
        self.X = self.Z = self.A = None

    # -- shapes ---------------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int]:
        return (self.n_inputs,)

    @property
    def output_shape(self) -> tuple[int]:
        return (self.n_outputs,)

    def build(self, input_shape) -> tuple[int]:
        if tuple(input_shape) != (self.n_inputs,):
            raise BackpropError(
                f"{self!r} expects input shape ({self.n_inputs},); got {tuple(input_shape)}"
                + ("; put a Flatten() before it" if len(input_shape) > 1 else "")
            )
        return self.output_shape

    # -- forward and backward ------------------------------------------------------------------
    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        Z = X @ self.params["W"]
        if self.use_bias:
            Z += self.params["b"]
        A = self.activation.forward(Z)
        self.X, self.Z, self.A = X, Z, A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        if self.Z is None:
            raise BackpropError("Dense.backward needs a forward pass first; call forward(X)")
        self.dA = dA  # kept for backprop.explain (dE/dout of each neuron); not used here
        return self.backward_net(self.activation.backward(self.Z, self.A, dA))

    def backward_net(self, dZ: np.ndarray) -> np.ndarray:
        """Backward from the gradient of the net input Z (used by from-logits losses)."""
        np.matmul(self.X.T, dZ, out=self.grads["W"])
        if self.use_bias:
            np.sum(dZ, axis=0, out=self.grads["b"])
        self.dZ = dZ
        return dZ @ self.params["W"].T

    # -- bookkeeping ---------------------------------------------------------------------------
    @property
    def trainable_bias(self) -> bool:
        return self.use_bias and "b" not in self.frozen

    def config(self) -> dict:
        return {
            "type": "Dense",
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "activation": self.activation.config(),
            "use_bias": self.use_bias,
            "trainable_bias": self.trainable_bias,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        return (
            f"Dense({self.n_inputs}, {self.n_outputs}, activation={self.activation.name!r}"
            + ("" if self.use_bias else ", use_bias=False")
            + ("" if self.trainable_bias or not self.use_bias else ", trainable_bias=False")
            + ")"
        )

