"""Flatten: images to vectors in PyTorch's C-H-W order, so Dense weights cross over unchanged."""

from __future__ import annotations

import numpy as np

from .._validation import BackpropError
from .base import Layer

__all__ = ["Flatten"]


class Flatten(Layer):
    """(n, C, H, W) -> (n, C*H*W), entry c*H*W + y*W + x holding X[c, y, x] (``torch.flatten``'s
    order). Inside a network it takes the channels-last arrays image layers exchange and emits
    that C-H-W order; backward reshapes the gradient back. A vector input passes unchanged.

    ``input_shape``: the shape of one sample, or left to the Network."""

    channels_last = True

    def __init__(self, input_shape=None):
        super().__init__()
        self.input_shape = self.output_shape = None
        self.X = self.A = None
        if input_shape is not None:
            self.build(input_shape)

    def build(self, input_shape) -> tuple[int]:
        shape = tuple(input_shape)
        if not shape or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape):
            raise BackpropError(f"Flatten() expects a shape of positive sizes; got {shape}")
        self.input_shape = tuple(int(s) for s in shape)
        self.output_shape = (int(np.prod(shape)),)
        return self.output_shape

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        return self.output_shape[0]

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        if not self.built:
            self.build((X.shape[3], X.shape[1], X.shape[2]) if X.ndim == 4 else X.shape[1:])
        self._in_shape = X.shape
        if X.ndim == 4:  # channels-last (n, H, W, C) -> C-H-W order
            A = X.transpose(0, 3, 1, 2).reshape(X.shape[0], -1)
        else:
            A = X.reshape(X.shape[0], -1)
        if A.shape[1] != self.output_shape[0]:
            raise BackpropError(
                f"Flatten() was built for input shape {self.input_shape}; got a batch of shape {X.shape}"
            )
        self.X, self.A = X, A
        return A

    def backward(self, dY: np.ndarray) -> np.ndarray:
        if self.A is None:
            raise BackpropError("Flatten.backward needs a forward pass first; call forward(X)")
        self.dA = dY
        shape = self._in_shape
        if len(shape) == 4:
            n, H, W, C = shape
            return np.ascontiguousarray(dY.reshape(n, C, H, W).transpose(0, 2, 3, 1))
        return dY.reshape(shape)

    def config(self) -> dict:
        return {
            "type": "Flatten",
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "output_shape": None if self.output_shape is None else list(self.output_shape),
        }

    def __repr__(self) -> str:
        return "Flatten()"
