"""The layer contract.

Every layer keeps it (``tests/conftest.py::check_layer`` verifies it with finite differences):

- ``params``: dict name -> live array; ``grads``: the same keys, same shapes, filled by ``backward``.
- ``frozen``: names of parameters that are never trained (they are not handed to the optimizer).
- ``input_shape`` / ``output_shape``: the shape of one sample, without the batch axis, in the public
  (PyTorch) layout: ``(n,)`` for vectors, ``(C, H, W)`` for images. A Dense layer's are
  ``(n_inputs,)`` and ``(n_outputs,)``. Layers whose input size is not fixed by their arguments
  (convolutions, pools, Flatten) learn it from ``build(input_shape)``, which the Network calls in
  order and which returns the output shape (or raises naming what the layer expects).
- ``forward(X, training=False)`` computes the output and caches exactly what ``backward`` needs.
- ``backward(dY)`` returns dX and fills ``grads``; it never changes a parameter.
- ``config()``: JSON-able, enough to rebuild the layer without its values (``layer_from_config``
  does the reverse); it includes the layer's input and output shapes.

Layouts. Batches of images are ``(n, C, H, W)`` at the Network's boundary, and convolution
weights ``(out_channels, in_channels, kh, kw)``, PyTorch's layouts, so weights cross over without
transposes. Inside a network, layers that work on images (``channels_last = True``: Conv2D,
MaxPool2D, AvgPool2D, and Flatten's input) pass channels-last arrays ``(n, H, W, C)`` to each
other: every product of a convolution then reads contiguous channels and writes its output in
place, which halves a numpy epoch against NCHW. The Network turns an NCHW batch into NHWC once on
the way in (and dX back on the way out); Flatten emits PyTorch's C-H-W order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Layer", "check_batch", "spatial_shape", "to_internal", "to_public"]


class Layer:
    """Base class of all layers (see the module docstring for the contract)."""

    #: True when ``forward`` takes channels-last ``(n, H, W, C)`` arrays (image layers).
    channels_last = False

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.frozen: set[str] = set()

    def build(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Fix the layer's input shape (one sample, public layout); return its output shape.
        Raises BackpropError naming what the layer expects when the shape does not fit."""
        raise NotImplementedError

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dY: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError

    @property
    def built(self) -> bool:
        return getattr(self, "input_shape", None) is not None

    @property
    def trainable(self) -> list[str]:
        """Names of the parameters an optimizer updates, in a stable order."""
        return [name for name in self.params if name not in self.frozen]

    @property
    def n_params(self) -> int:
        """Number of parameter values (frozen ones included)."""
        return int(sum(p.size for p in self.params.values()))

    def _allocate_grads(self) -> None:
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}


def spatial_shape(name: str, shape) -> tuple[int, int, int]:
    """``shape`` as a (C, H, W) triple of positive ints, or an error naming ``name``."""
    from .._validation import BackpropError, describe

    ok = (
        isinstance(shape, (tuple, list))
        and len(shape) == 3
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in shape)
    )
    if not ok:
        raise BackpropError(
            f"`{name}` must be three positive integers (channels, height, width); got {describe(shape)}"
        )
    return tuple(int(s) for s in shape)


def to_internal(X: np.ndarray) -> np.ndarray:
    """An (n, C, H, W) batch as the contiguous channels-last (n, H, W, C) array layers exchange."""
    return np.ascontiguousarray(X.transpose(0, 2, 3, 1))


def to_public(X: np.ndarray) -> np.ndarray:
    """A channels-last (n, H, W, C) array back in PyTorch's (n, C, H, W) layout."""
    return np.ascontiguousarray(X.transpose(0, 3, 1, 2))


def check_batch(layer: Layer, X: np.ndarray) -> None:
    """An image layer's input: a 4-D channels-last batch of the shape it was built for (the layer
    builds itself from the first batch when no Network did)."""
    from .._validation import BackpropError

    if X.ndim != 4:
        raise BackpropError(
            f"{layer!r} expects a channels-last batch (n, height, width, channels); got shape {X.shape}"
        )
    if not layer.built:
        layer.build((X.shape[3], X.shape[1], X.shape[2]))
    C, H, W = layer.input_shape
    if X.shape[1:] != (H, W, C):
        raise BackpropError(
            f"{layer!r} expects a channels-last batch of shape (n, {H}, {W}, {C}) (input shape "
            f"{(C, H, W)}); got shape {X.shape}"
        )
