"""MaxPool2D and AvgPool2D: windows of ``pool_size`` moved by ``stride`` (default: the pool size).

Forward and backward, for output position (p, q) of channel c, window offsets (i, j)::

    max:  Y[c, p, q] = max_{i, j} X[c, p*sh + i, q*sw + j]
          dL/dX[c, p*sh + i*, q*sw + j*] += G[c, p, q]   (i*, j*) the first maximum, row-major
    avg:  Y[c, p, q] = mean_{i, j} X[c, p*sh + i, q*sw + j]
          dL/dX[c, p*sh + i, q*sw + j]  += G[c, p, q] / (ph * pw)   for every (i, j)

A max-pool sends each window's gradient to one input only: the first maximum in row-major order
(PyTorch's choice; ties are common at the blank borders of digits). Windows may overlap (stride
smaller than the pool); an input read by several windows collects the sum of their gradients.
Outputs are floor((H - ph) / sh) + 1 high, as PyTorch's default (a last partial window is dropped).

Computed channels-last by comparisons over the ph*pw window offsets, one strided slice each
(no im2col copy); a max-pool keeps, for every output, the offset index of its maximum.
"""

from __future__ import annotations

import numpy as np

from .._validation import BackpropError, check_pair
from .base import Layer, check_batch, spatial_shape
from .conv import _pair_text, out_size

__all__ = ["MaxPool2D", "AvgPool2D"]


class _Pool2D(Layer):
    """Parameters: ``pool_size``, an int or a pair (height, width); ``stride``, an int or a pair,
    default the pool size (windows side by side; smaller strides overlap them); ``input_shape``,
    (C, H, W) of one sample, or left to the Network."""

    channels_last = True
    kind = ""

    def __init__(self, pool_size, stride=None, input_shape=None):
        super().__init__()
        self.pool_size = check_pair("pool_size", pool_size)
        self.stride = self.pool_size if stride is None else check_pair("stride", stride)
        self.input_shape = self.output_shape = None
        self.X = self.A = None
        if input_shape is not None:
            self.build(input_shape)

    def build(self, input_shape) -> tuple[int, int, int]:
        if len(tuple(input_shape)) != 3:
            raise BackpropError(
                f"{self!r} expects images (channels, height, width); got input shape {tuple(input_shape)}"
            )
        C, H, W = spatial_shape("input_shape", tuple(input_shape))
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        if ph > H or pw > W:
            raise BackpropError(
                f"{self!r}: `pool_size` {_pair_text(self.pool_size)} does not fit the input "
                f"{H}x{W} (input shape {(C, H, W)})"
            )
        self.input_shape = (C, H, W)
        self.output_shape = (C, out_size(H, ph, sh), out_size(W, pw, sw))
        return self.output_shape

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        return int(np.prod(self.output_shape))

    def _windows(self, X: np.ndarray):
        """(index, strided view) for each window offset (i, j), in row-major order."""
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        _, oh, ow = self.output_shape
        for i in range(ph):
            for j in range(pw):
                yield i * pw + j, (slice(None), slice(i, i + sh * (oh - 1) + 1, sh),
                                   slice(j, j + sw * (ow - 1) + 1, sw), slice(None))

    def config(self) -> dict:
        return {
            "type": type(self).__name__,
            "pool_size": list(self.pool_size),
            "stride": list(self.stride),
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "output_shape": None if self.output_shape is None else list(self.output_shape),
        }

    def __repr__(self) -> str:
        stride = "" if self.stride == self.pool_size else f", stride={_pair_text(self.stride)}"
        return f"{type(self).__name__}({_pair_text(self.pool_size)}{stride})"


class MaxPool2D(_Pool2D):
    """Max pooling; the gradient goes to the first maximum of each window (row-major).

    Parameters: ``pool_size`` (int or pair), ``stride`` (int or pair, default the pool size),
    ``input_shape`` ((C, H, W), or left to the Network)."""

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        check_batch(self, X)
        windows = self._windows(X)
        _, first = next(windows)
        A = X[first].copy()
        arg = np.zeros(A.shape, np.int32)
        for k, window in windows:
            view = X[window]
            better = view > A  # strictly: a tie keeps the earlier offset
            np.copyto(A, view, where=better)
            arg[better] = k
        self.X, self.A, self.argmax = X, A, arg
        return A

    def backward(self, dY: np.ndarray) -> np.ndarray:
        if self.A is None:
            raise BackpropError("MaxPool2D.backward needs a forward pass first; call forward(X)")
        self.dA = dY
        dX = np.zeros(self.X.shape, dY.dtype)
        for k, window in self._windows(dX):
            dX[window] += np.where(self.argmax == k, dY, 0)
        return dX


class AvgPool2D(_Pool2D):
    """Average pooling; every input of a window gets the window's gradient / (ph * pw).

    Parameters: ``pool_size`` (int or pair), ``stride`` (int or pair, default the pool size),
    ``input_shape`` ((C, H, W), or left to the Network)."""

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        check_batch(self, X)
        windows = self._windows(X)
        _, first = next(windows)
        A = X[first].copy()
        for _, window in windows:
            A += X[window]
        A /= self.pool_size[0] * self.pool_size[1]
        self.X, self.A = X, A
        return A

    def backward(self, dY: np.ndarray) -> np.ndarray:
        if self.A is None:
            raise BackpropError("AvgPool2D.backward needs a forward pass first; call forward(X)")
        self.dA = dY
        share = dY / (self.pool_size[0] * self.pool_size[1])
        dX = np.zeros(self.X.shape, dY.dtype)
        for _, window in self._windows(dX):
            dX[window] += share
        return dX
