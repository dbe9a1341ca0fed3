"""Optional packages of the interchange module, imported on first use with a one-line message."""

from __future__ import annotations

import importlib

from .._validation import BackpropError

__all__ = ["require"]

# package -> (what users call it, the extra that installs it)
_EXTRAS = {"onnx": ("the onnx package", "onnx"), "onnxruntime": ("ONNX Runtime", "onnx"),
           "torch": ("PyTorch", "torch")}


def require(module: str, purpose: str):
    """Import ``module`` (e.g. ``"torch"``) or raise one line: "PyTorch is needed for
    ``purpose``: pip install backprop[torch]"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        name, extra = _EXTRAS.get(top, (top, top))
        raise BackpropError(f"{name} is needed for {purpose}: pip install backprop[{extra}]") from None
