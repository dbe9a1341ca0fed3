"""PyTorch: a Network as a ``torch.nn.Sequential`` (:func:`to_torch`) and back (:func:`from_torch`).

The correspondence, both ways (weights are copied, in the network's dtype):

======================  ==========================================================================
ours                    PyTorch
======================  ==========================================================================
``Dense``               ``nn.Linear``; its ``weight`` is our ``W`` transposed (ours is (n_in, n_out)),
                        a frozen bias (``trainable_bias=False``) has ``requires_grad=False``
``Conv2D``              ``nn.Conv2d`` (groups 1, dilation 1, zero padding); the same OIHW kernel
``MaxPool2D``           ``nn.MaxPool2d`` (no padding, dilation 1, floor)
``AvgPool2D``           ``nn.AvgPool2d`` (no padding, floor, no divisor override)
``Flatten``             ``nn.Flatten()`` (start_dim 1): both list C-H-W
activation relu ...     ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``, ``nn.LeakyReLU``, ``nn.Softmax(dim=-1)``
                        after the layer; identity is no module (``nn.Identity`` is skipped on import);
                        exp is :func:`exp_module`'s ``BackpropExp`` (e^min(z, 80), as ours)
======================  ==========================================================================

Anything else in a Sequential (Dropout, BatchNorm, a nested Sequential, an activation that does
not follow a Linear or Conv2d directly...) is refused in one line naming it. A state dict given to
:func:`from_torch` is read without running code: ``torch.load(weights_only=True)`` for .pt/.pth
files, safetensors for .safetensors files, and checked against the module's names and shapes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._validation import BackpropError, describe
from ..activations import EXP_CAP, get_activation
from ..layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D
from ._deps import require

__all__ = ["to_torch", "from_torch", "exp_module"]

_SUPPORTED = ("Linear, Conv2d, MaxPool2d, AvgPool2d, Flatten, ReLU, Tanh, Sigmoid, LeakyReLU, "
              "Softmax, Identity, BackpropExp")
_EXP_CLASS = None


def exp_module():
    """A ``torch.nn.Module`` computing e^min(z, 80), the ``exp`` output activation (PyTorch has
    no module for it)."""
    global _EXP_CLASS
    torch = require("torch", "exp_module")
    if _EXP_CLASS is None:
        class BackpropExp(torch.nn.Module):
            """e^min(z, cap): backprop's ``exp`` output activation (the inverse of the log link)."""

            def __init__(self, cap: float = EXP_CAP):
                super().__init__()
                self.cap = float(cap)

            def forward(self, z):
                return torch.exp(torch.clamp(z, max=self.cap))

            def extra_repr(self) -> str:
                return f"cap={self.cap:g}"

        _EXP_CLASS = BackpropExp
    return _EXP_CLASS()


def _torch_dtype(torch, dtype):
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def _activation_module(torch, act, where: str):
    nn = torch.nn
    name = act.name
    if name == "identity":
        return None
    modules = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softmax": lambda: nn.Softmax(dim=-1),
               "exp": exp_module, "leaky_relu": lambda: nn.LeakyReLU(act.negative_slope)}
    if name not in modules or type(act) is not type(get_activation(act.config())):
        raise BackpropError(f"cannot convert {where} to PyTorch: activation {name!r} has no PyTorch module")
    return modules[name]()


def to_torch(network):
    """A ``torch.nn.Sequential`` computing what ``network`` computes (in eval mode, on the CPU,
    in the network's dtype): it takes the same inputs, (n, n_inputs) rows or (n, C, H, W) images.
    The weights are copies."""
    from ..network import Network

    torch = require("torch", "to_torch")
    if not isinstance(network, Network):
        raise BackpropError(f"`network` must be a backprop Network; got {type(network).__name__}")
    nn, dtype = torch.nn, _torch_dtype(torch, network.dtype)
    modules = []
    with torch.no_grad():
        for i, layer in enumerate(network.layers, start=1):
            where = f"layer {i} ({layer!r})"
            kind = type(layer)
            if kind is Dense:
                module = nn.Linear(layer.n_inputs, layer.n_outputs, bias=layer.use_bias, dtype=dtype)
                module.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.params["W"].T)))
            elif kind is Conv2D:
                module = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                                   padding=layer.padding, bias=layer.use_bias, dtype=dtype)
                module.weight.copy_(torch.from_numpy(layer.params["W"]))
            elif kind is MaxPool2D:
                module = nn.MaxPool2d(layer.pool_size, stride=layer.stride)
            elif kind is AvgPool2D:
                module = nn.AvgPool2d(layer.pool_size, stride=layer.stride)
            elif kind is Flatten:
                module = nn.Flatten()
            else:
                raise BackpropError(
                    f"cannot convert {where} to PyTorch; supported layers: Dense, Conv2D, MaxPool2D, AvgPool2D, Flatten"
                )
            if kind in (Dense, Conv2D) and layer.use_bias:
                module.bias.copy_(torch.from_numpy(layer.params["b"]))
                module.bias.requires_grad_(layer.trainable_bias if kind is Dense else True)
            modules.append(module)
            if kind in (Dense, Conv2D):
                act = _activation_module(torch, layer.activation, where)
                if act is not None:
                    modules.append(act)
    return nn.Sequential(*modules).eval()


# -- from PyTorch --------------------------------------------------------------------------------
def _pair(value, name: str, where: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise BackpropError(f"cannot import {where}: `{name}` must be an int or a pair of ints; got {describe(value)}")
    return pair


def _read_state_dict(torch, source):
    """A state dict from a mapping or a file, loaded without running code."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise BackpropError(f"`state_dict` file `{path}` does not exist or is not a file")
        safetensors = path.suffix == ".safetensors"
        try:
            with warnings.catch_warnings():  # torch warns about pickle protocols of hostile files
                warnings.simplefilter("ignore")
                if safetensors:
                    from safetensors.torch import load_file

                    source = load_file(str(path))
                else:
                    source = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch and safetensors raise many types; none may escape as a traceback
            how = "safetensors" if safetensors else "torch.load(weights_only=True), which runs no code,"
            raise BackpropError(
                f"`state_dict` file `{path}` is not a weights file that {how} can read ({type(exc).__name__}); "
                "save it with torch.save(module.state_dict(), path) or safetensors"
            ) from None
    if not isinstance(source, Mapping) or not all(isinstance(k, str) for k in source):
        raise BackpropError(f"`state_dict` must map parameter names to tensors; got {describe(source)}")
    return source


def _checked_values(torch, module, state_dict) -> dict:
    """name -> tensor: the module's own, or the state dict's after checking names and shapes."""
    own = module.state_dict()
    if state_dict is None:
        return dict(own)
    given = _read_state_dict(torch, state_dict)
    missing, extra = sorted(set(own) - set(given)), sorted(set(given) - set(own))
    if missing or extra:
        raise BackpropError(
            f"`state_dict` does not fit the module: missing {missing or 'nothing'}, unexpected {extra or 'nothing'}"
        )
    values = {}
    for name, tensor in given.items():
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise BackpropError(f"`state_dict` entry `{name}` must be a float tensor; got "
                                f"{getattr(tensor, 'dtype', type(tensor).__name__)}")
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise BackpropError(
                f"`state_dict` entry `{name}` must have shape {tuple(own[name].shape)}; got {tuple(tensor.shape)}"
            )
        values[name] = tensor.to(own[name].dtype)
    return values


def _module_layer(nn, child, where: str, dtype):
    """Our layer for one PyTorch module (weights set later), or None for an activation / Identity."""
    kind = type(child)
    if kind is nn.Linear:
        return Dense(child.in_features, child.out_features, use_bias=child.bias is not None,
                     weight_init="zeros", dtype=dtype)
    if kind is nn.Conv2d:
        if (child.groups != 1 or tuple(child.dilation) != (1, 1) or child.padding_mode != "zeros"
                or isinstance(child.padding, str)):
            raise BackpropError(
                f"cannot import {where}: only groups=1, dilation=1 and integer zero padding are supported; got "
                f"groups={child.groups}, dilation={child.dilation}, padding={child.padding!r} ({child.padding_mode})"
            )
        return Conv2D(child.in_channels, child.out_channels, tuple(child.kernel_size), stride=tuple(child.stride),
                      padding=tuple(child.padding), use_bias=child.bias is not None, weight_init="zeros", dtype=dtype)
    if kind in (nn.MaxPool2d, nn.AvgPool2d):
        pads = _pair(child.padding, "padding", where)
        odd = pads != (0, 0) or child.ceil_mode
        if kind is nn.MaxPool2d:
            odd = odd or _pair(child.dilation, "dilation", where) != (1, 1) or child.return_indices
        else:
            odd = odd or child.divisor_override is not None
        if odd:
            raise BackpropError(f"cannot import {where}: only pools without padding, dilation, ceil_mode, "
                                "return_indices or divisor_override are supported")
        size = _pair(child.kernel_size, "kernel_size", where)
        stride = size if child.stride is None else _pair(child.stride, "stride", where)
        return (MaxPool2D if kind is nn.MaxPool2d else AvgPool2D)(size, stride=stride)
    if kind is nn.Flatten:
        if (child.start_dim, child.end_dim) != (1, -1):
            raise BackpropError(f"cannot import {where}: only Flatten(start_dim=1, end_dim=-1) is supported")
        return Flatten()
    return None


def _module_activation(nn, child, where: str):
    """The activation spec of an activation module, or None when ``child`` is not one."""
    kind = type(child)
    if kind is nn.Softmax:
        if child.dim not in (-1, 1):
            raise BackpropError(f"cannot import {where}: Softmax must be over the last axis (dim=-1); got dim={child.dim}")
        return "softmax"
    if kind is nn.LeakyReLU:
        return {"name": "leaky_relu", "negative_slope": float(child.negative_slope)}
    simple = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
    if kind in simple:
        return simple[kind]
    if _EXP_CLASS is not None and kind is _EXP_CLASS and child.cap == EXP_CAP:
        return "exp"
    return None


def from_torch(module, input_shape=None, state_dict=None, loss="half_sse"):
    """A Network computing what the ``torch.nn.Sequential`` ``module`` computes, with copies of its
    weights, in its dtype (float32 or float64).

    - ``module``: a Sequential of Linear, Conv2d, MaxPool2d, AvgPool2d, Flatten, Identity and
      activations (ReLU, Tanh, Sigmoid, LeakyReLU, Softmax(dim=-1), :func:`exp_module`), each
      activation right after a Linear or Conv2d; anything else is refused naming it.
    - ``input_shape``: one sample's shape, ``(n_inputs,)`` or ``(C, H, W)``; may be left out when
      the first module is a Linear.
    - ``state_dict``: weights to use instead of the module's own: a mapping, or a .pt/.pth file
      (read by ``torch.load(weights_only=True)``, so no code runs) or a .safetensors file; its
      names and shapes must be the module's.
    - ``loss``: the network's loss (a name, as ``Network``'s), default ``half_sse``.
    """
    from ..network import Network

    torch = require("torch", "from_torch")
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise BackpropError(f"`module` must be a torch.nn.Sequential of {_SUPPORTED}; got {type(module).__name__}")
    values = _checked_values(torch, module, state_dict)
    dtypes = {t.dtype for t in values.values() if t.is_floating_point()}  # (BatchNorm counts are refused below)
    if not dtypes <= {torch.float32, torch.float64} or len(dtypes) > 1:
        raise BackpropError(f"`module` must hold float32 or float64 weights, all one dtype; got {sorted(map(str, dtypes))}")
    dtype = np.float32 if dtypes == {torch.float32} else np.float64
    layers, sources = [], []
    for position, (key, child) in enumerate(module.named_children()):
        where = f"module {position} ({type(child).__name__})"
        layer = _module_layer(nn, child, where, dtype)
        if layer is not None:
            layers.append(layer)
            sources.append(key)
            continue
        if type(child) is nn.Identity:
            continue
        act = _module_activation(nn, child, where)
        if act is None:
            raise BackpropError(f"cannot import {where} from PyTorch; supported modules: {_SUPPORTED}")
        last = layers[-1] if layers else None
        if type(last) not in (Dense, Conv2D) or last.activation.name != "identity":
            raise BackpropError(f"cannot import {where}: an activation must come right after a Linear or Conv2d")
        if type(last) is Conv2D and act == "softmax":
            raise BackpropError(f"cannot import {where}: Softmax after a Conv2d is not element-wise; "
                                "put Flatten and a Linear before it")
        last.activation = get_activation(act)
    if not layers:
        raise BackpropError("`module` holds no Linear, Conv2d, pool or Flatten layer; nothing to import")
    if input_shape is None and type(layers[0]) is Dense:
        input_shape = (layers[0].n_inputs,)
    network = Network(layers, loss=loss, input_shape=input_shape)
    weights = []
    for layer, key in zip(layers, sources):
        if type(layer) is Dense:
            weights.append(values[f"{key}.weight"].detach().cpu().numpy().T)
        elif type(layer) is Conv2D:
            weights.append(values[f"{key}.weight"].detach().cpu().numpy())
        if type(layer) in (Dense, Conv2D) and layer.use_bias:
            weights.append(values[f"{key}.bias"].detach().cpu().numpy())
            if type(layer) is Dense and not getattr(module, key).bias.requires_grad:
                layer.frozen.add("b")
    return network.set_weights(weights)
