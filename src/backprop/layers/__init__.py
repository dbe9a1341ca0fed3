"""Layers: the contract (``base``), Dense, Conv2D, MaxPool2D/AvgPool2D and Flatten; rebuilding a
layer from its ``config()``."""

from __future__ import annotations

from .._validation import BackpropError
from .base import Layer
from .conv import Conv2D
from .dense import Dense
from .pool import AvgPool2D, MaxPool2D
from .reshape import Flatten

__all__ = ["Layer", "Dense", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "layer_from_config", "LAYERS"]

LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Dense, Conv2D, MaxPool2D, AvgPool2D, Flatten)
}
_WITH_VALUES = ("Dense", "Conv2D")


def layer_from_config(config: dict, dtype=None) -> Layer:
    """Rebuild a layer (with zero-initialised values) from ``layer.config()``."""
    if not isinstance(config, dict):
        raise BackpropError(f"a layer's config must be a dict; got {type(config).__name__}")
    config = dict(config)
    kind = config.pop("type", None)
    if kind not in LAYERS:
        raise BackpropError(
            f"layer `type` must be one of {', '.join(sorted(LAYERS))}; got {kind!r}"
        )
    stored = config.pop("output_shape", None)  # recomputed from the input shape, and compared
    if kind in _WITH_VALUES:
        if dtype is not None:
            config["dtype"] = dtype
        config.update(weight_init="zeros", bias_init="zeros")
    try:
        layer = LAYERS[kind](**config)
    except TypeError as exc:
        raise BackpropError(f"layer config for {kind} is not valid: {exc}") from None
    if stored is not None and layer.built and list(layer.output_shape) != list(stored):
        raise BackpropError(
            f"layer config for {layer!r} names output shape {tuple(stored)} but its input shape "
            f"{layer.input_shape} gives {layer.output_shape}; the description is inconsistent"
        )
    return layer
