"""Conv2D: 2-D cross-correlation (what every framework calls convolution), by im2col and one product.

Forward, for one output position (p, q) and output channel o (public names: X input, K = W
kernel, Y = Z output before the activation)::

    Z[o, p, q] = b[o] + sum_{c, i, j} K[o, c, i, j] * Xpad[c, p*sh + i, q*sw + j]

Backward, with G = dL/dZ::

    dL/dK[o, c, i, j] = sum_{p, q} G[o, p, q] * Xpad[c, p*sh + i, q*sw + j]
    dL/db[o]          = sum_{p, q} G[o, p, q]
    dL/dXpad[c, y, x] = sum_{o, p, q: p*sh + i = y, q*sw + j = x} G[o, p, q] * K[o, c, i, j]

The last line is a "full" convolution of G (dilated by the stride) with the kernel rotated by
180 degrees; the padding rows and columns of dL/dXpad are then dropped.

How it is computed (channels-last, see ``layers/base.py``): the input windows are gathered into
one matrix ``cols`` of shape (n*oh*ow, kh*kw*C), one contiguous copy per kernel offset (i, j)
(the "offset loop"); Z = cols @ Wc + b with Wc the kernel as a (kh*kw*C, O) matrix, which is
already the channels-last output. dWc = cols.T @ G and dcols = G @ Wc.T are one product each;
dcols is added back into the padded input offset by offset (a slice-add, which is 2.6-6.4x faster
than ``np.add.at``).
"""

from __future__ import annotations

import numpy as np

from .._validation import BackpropError, check_dtype, check_int, check_pair
from ..activations import Activation, get_activation
from ..initializers import as_generator, get_initializer
from .base import Layer, check_batch, spatial_shape

__all__ = ["Conv2D", "out_size"]


def out_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Output length of a window of ``kernel`` sliding by ``stride`` over ``size`` (+ padding)."""
    return (size + 2 * padding - kernel) // stride + 1


def _pair_text(pair) -> str:
    return f"{pair[0]}x{pair[1]}"


class Conv2D(Layer):
    """2-D convolution layer (cross-correlation), PyTorch's ``nn.Conv2d`` without groups or dilation.

    Parameters:

    - ``in_channels``, ``out_channels``: channels of the input and of the output.
    - ``kernel_size``, ``stride`` (default 1), ``padding`` (default 0): an int or a pair
      (height, width); padding adds that many rows and columns of zeros on both sides.
    - ``activation``: an element-wise activation applied to the output (name or Activation;
      default identity; softmax is refused).
    - ``weight_init`` (default Glorot), ``bias_init`` (default 0.0): initializers. They see the
      kernel as the im2col matrix of shape (in_channels*kh*kw, out_channels), so fan_in =
      in_channels*kh*kw; an explicit array for ``weight_init`` has the OIHW shape.
    - ``use_bias``: add a bias per output channel (default True).
    - ``seed``: int or numpy Generator for the initial values.
    - ``dtype``: float64 (default) or float32.
    - ``input_shape``: (C, H, W) of one sample; may be left to the Network
      (``Network(layers, input_shape=...)``).

    ``params["W"]`` has shape (out_channels, in_channels, kh, kw) and ``params["b"]`` shape
    (out_channels,).
    """

    channels_last = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        activation: str | Activation | None = "identity",
        weight_init="glorot",
        bias_init=0.0,
        use_bias: bool = True,
        seed: int | np.random.Generator | None = None,
        dtype=np.float64,
        input_shape=None,
    ):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        self.kernel_size = check_pair("kernel_size", kernel_size)
        self.stride = check_pair("stride", stride)
        self.padding = check_pair("padding", padding, minimum=0)
        self.activation = get_activation(activation)
        if self.activation.name == "softmax":
            raise BackpropError(
                "`activation` of Conv2D must be element-wise; got 'softmax' (put Flatten() and a "
                "Dense layer with softmax after it)"
            )
        self.use_bias = bool(use_bias)
        self.dtype = check_dtype("dtype", dtype)
        kh, kw = self.kernel_size
        rng = as_generator(seed)
        init = get_initializer(weight_init)
        shape = (self.out_channels, self.in_channels, kh, kw)
        if getattr(init, "value", None) is not None and np.ndim(init.value) == 4:
            W = init(shape, rng)
        else:  # drawn as the im2col matrix (rows ordered c, i, j), then laid out OIHW
            W = init((self.in_channels * kh * kw, self.out_channels), rng).T.reshape(shape)
        self.params["W"] = np.ascontiguousarray(W, dtype=self.dtype)
        if self.use_bias:
            b = get_initializer(bias_init)((self.out_channels,), rng)
            self.params["b"] = np.ascontiguousarray(b, dtype=self.dtype)
        self._allocate_grads()
        self.input_shape = self.output_shape = None
        self.X = self.Z = self.A = self.cols = None
        if input_shape is not None:
            self.build(input_shape)

    # -- shapes ---------------------------------------------------------------------------------
    def build(self, input_shape) -> tuple[int, int, int]:
        if len(tuple(input_shape)) != 3:
            raise BackpropError(
                f"{self!r} expects images (channels, height, width); got input shape {tuple(input_shape)}"
            )
        C, H, W = spatial_shape("input_shape", tuple(input_shape))
        if C != self.in_channels:
            raise BackpropError(
                f"{self!r} expects {self.in_channels} input channel(s); got input shape {(C, H, W)}"
            )
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if kh > H + 2 * ph or kw > W + 2 * pw:
            raise BackpropError(
                f"{self!r}: `kernel_size` {_pair_text(self.kernel_size)} is larger than the padded "
                f"input {H + 2 * ph}x{W + 2 * pw} (input shape {(C, H, W)}, padding {self.padding})"
            )
        self.input_shape = (C, H, W)
        self.output_shape = (self.out_channels, out_size(H, kh, sh, ph), out_size(W, kw, sw, pw))
        return self.output_shape

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        return int(np.prod(self.output_shape))

    # -- forward and backward --------------------------------------------------------------------
    def kernel_matrix(self) -> np.ndarray:
        """The kernel as the (kh*kw*C, O) matrix that multiplies channels-last windows."""
        O, C, kh, kw = self.params["W"].shape
        return self.params["W"].transpose(2, 3, 1, 0).reshape(kh * kw * C, O)

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """Channels-last (n, H, W, C) in, (n, oh, ow, O) out."""
        check_batch(self, X)
        n = X.shape[0]
        _, oh, ow = self.output_shape
        cols = im2col(X, self.kernel_size, self.stride, self.padding, (oh, ow))
        Z = cols @ self.kernel_matrix()
        if self.use_bias:
            Z += self.params["b"]
        Z = Z.reshape(n, oh, ow, self.out_channels)
        A = self.activation.forward(Z)
        self.X, self.cols, self.Z, self.A = X, cols, Z, A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        if self.Z is None:
            raise BackpropError("Conv2D.backward needs a forward pass first; call forward(X)")
        self.dA = dA  # kept for backprop.explain
        dZ = self.activation.backward(self.Z, self.A, dA)
        self.dZ = dZ
        O, C, kh, kw = self.params["W"].shape
        G = dZ.reshape(-1, O)
        dWc = self.cols.T @ G  # (kh*kw*C, O)
        self.grads["W"][...] = dWc.reshape(kh, kw, C, O).transpose(3, 2, 0, 1)
        if self.use_bias:
            np.sum(G, axis=0, out=self.grads["b"])
        dcols = G @ self.kernel_matrix().T
        return col2im(dcols, self.X.shape, self.kernel_size, self.stride, self.padding, self.output_shape[1:])

    # -- bookkeeping ------------------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "type": "Conv2D",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "activation": self.activation.config(),
            "use_bias": self.use_bias,
            "dtype": self.dtype.name,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "output_shape": None if self.output_shape is None else list(self.output_shape),
        }

    def __repr__(self) -> str:
        text = f"Conv2D({self.in_channels}, {self.out_channels}, {_pair_text(self.kernel_size)}"
        if self.stride != (1, 1):
            text += f", stride={_pair_text(self.stride)}"
        if self.padding != (0, 0):
            text += f", padding={_pair_text(self.padding)}"
        if self.activation.name != "identity":
            text += f", activation={self.activation.name!r}"
        return text + ("" if self.use_bias else ", use_bias=False") + ")"


def im2col(X: np.ndarray, kernel, stride, padding, out_hw) -> np.ndarray:
    """Channels-last windows: (n, H, W, C) -> (n*oh*ow, kh*kw*C), columns ordered (i, j, c)."""
    n, H, W, C = X.shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_hw
    if ph or pw:
        Xp = np.zeros((n, H + 2 * ph, W + 2 * pw, C), X.dtype)
        Xp[:, ph : ph + H, pw : pw + W, :] = X
    else:
        Xp = X
    cols = np.empty((n, oh, ow, kh, kw, C), X.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = Xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
    return cols.reshape(n * oh * ow, kh * kw * C)


def col2im(dcols: np.ndarray, x_shape, kernel, stride, padding, out_hw) -> np.ndarray:
    """The adjoint of ``im2col``: each window's gradient added back where the window was read."""
    n, H, W, C = x_shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_hw
    dcols = dcols.reshape(n, oh, ow, kh, kw, C)
    dXp = np.zeros((n, H + 2 * ph, W + 2 * pw, C), dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dXp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :] += dcols[:, :, :, i, j, :]
    if ph or pw:
        return np.ascontiguousarray(dXp[:, ph : ph + H, pw : pw + W, :])
    return dXp
