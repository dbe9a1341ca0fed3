"""A one-line description of a convolutional stack, for the command line and the demos.

``"16x3p1,max2,32x3p1,max2"`` reads as Conv2D(16 filters, 3x3, padding 1) -> MaxPool2D(2) ->
Conv2D(32, 3x3, padding 1) -> MaxPool2D(2). Items, comma-separated:

- ``NxK`` a Conv2D with N output channels and a KxK kernel (``NxKhxKw`` for a KhxKw one),
  optionally followed by ``sS`` (stride, default 1) and ``pP`` (zero padding, default 0);
- ``maxP`` / ``avgP`` a MaxPool2D / AvgPool2D of PxP windows, optionally followed by ``sS``.

``conv_network`` turns it, with the input shape and the dense layers after it, into a Network.
"""

from __future__ import annotations

import re

import numpy as np

from .._validation import BackpropError
from ..initializers import as_generator

__all__ = ["parse_conv_spec", "conv_network"]

_CONV = re.compile(r"^(\d+)x(\d+)(?:x(\d+))?(?:s(\d+))?(?:p(\d+))?$")
_POOL = re.compile(r"^(max|avg)(\d+)(?:s(\d+))?$")


def parse_conv_spec(text: str) -> list[tuple]:
    """``"16x3p1,max2"`` -> [("conv", 16, (3, 3), 1, 1), ("max", 2, 2)]; an error names the item."""
    if not isinstance(text, str) or not text.strip():
        raise BackpropError(f"`conv` must list layers like 16x3p1,max2,32x3p1,max2; got {text!r}")
    items = []
    for part in (p.strip().lower() for p in text.split(",")):
        conv, pool = _CONV.match(part), _POOL.match(part)
        if conv:
            n, kh, kw, s, p = conv.groups()
            items.append(("conv", int(n), (int(kh), int(kw or kh)), int(s or 1), int(p or 0)))
        elif pool:
            kind, size, s = pool.groups()
            items.append((kind, int(size), int(s or size)))
        else:
            raise BackpropError(
                f"`conv` item {part!r} is not a layer: use NxK[sS][pP] for a convolution (16x3p1) "
                f"or maxP/avgP[sS] for a pool (max2); got {text!r}"
            )
        sizes = [items[-1][1], *items[-1][2:4]] if items[-1][0] == "conv" else list(items[-1][1:])
        if 0 in [v for size in sizes for v in (size if isinstance(size, tuple) else (size,))]:
            raise BackpropError(f"`conv` item {part!r} has a size or stride of 0; sizes and strides must be >= 1")
    return items


def conv_network(input_shape, conv: str, hidden=(), n_outputs: int = 1, activation: str = "relu",
                 output_activation: str = "identity", loss="half_sse", seed=None, dtype=np.float64):
    """Conv layers from ``conv``, then Flatten, Dense layers of ``hidden`` sizes and the output."""
    from ..network import Network
    from . import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D

    rng = as_generator(seed)
    init = "he" if activation in ("relu", "leaky_relu") else "glorot"
    layers, channels = [], int(input_shape[0])
    for item in parse_conv_spec(conv):
        if item[0] == "conv":
            _, n, kernel, stride, padding = item
            layers.append(Conv2D(channels, n, kernel, stride=stride, padding=padding, activation=activation,
                                 weight_init=init, seed=rng, dtype=dtype))
            channels = n
        else:
            kind, size, stride = item
            layers.append((MaxPool2D if kind == "max" else AvgPool2D)(size, stride=stride))
    layers.append(Flatten())
    # The first Dense layer's size is known once the conv part's shapes are: build it to learn them.
    width = Network(layers, input_shape=tuple(input_shape)).n_outputs
    sizes = [width, *hidden, n_outputs]
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(Dense(n_in, n_out, activation=output_activation if last else activation,
                            weight_init="glorot" if last else init, seed=rng, dtype=dtype))
    return Network(layers, loss=loss, input_shape=tuple(input_shape))
