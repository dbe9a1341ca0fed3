"""Interchange: export to ONNX, exchange weights with PyTorch (docs/interchange.md).

- :func:`to_onnx` / :func:`onnx_model`: a Network, a fitted MLPClassifier / MLPRegressor or a
  ``backprop train`` model as an ONNX graph (``onnx_export``, ``onnx_preprocessing``);
- :func:`to_torch` / :func:`from_torch`: a Network as a ``torch.nn.Sequential`` and back
  (``torch_bridge``).

onnx, onnxruntime and torch are optional (``pip install backprop[onnx]``, ``backprop[torch]``):
they are imported on first use, and a missing one is a one-line error saying how to install it.
"""

from __future__ import annotations

from .onnx_export import IR_VERSION, OPSET, onnx_model, to_onnx
from .torch_bridge import from_torch, to_torch

__all__ = ["to_onnx", "onnx_model", "to_torch", "from_torch", "OPSET", "IR_VERSION"]
