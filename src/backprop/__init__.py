"""backprop: neural networks trained by backpropagation.

Layers, networks, losses, optimizers and a fit loop in plain numpy (the reference path), with
gradient checking for learners and tests.
"""

__version__ = "0.1.0"

from ._validation import BackpropError, NotFittedError
from .activations import get_activation
from .callbacks import Callback, EarlyStopping, History, LambdaCallback, TrainState
from .gradcheck import gradcheck
from .initializers import Constant as ConstantInit
from .initializers import get_initializer
from .layers import AvgPool2D, Conv2D, Dense, Flatten, Layer, MaxPool2D
from .losses import get_loss
from .network import Network
from .optimizers import SGD, Adam, Constant, InverseScaling, ReduceOnPlateau
from .training import fit

# explain sits above the engine (it only reads it), so it is imported last. The package is
# callable: backprop.explain(network, x, y) runs backprop.explain.explain.
from . import explain  # noqa: E402
from .explain import Derivation  # noqa: E402

_LAZY = {"MLPClassifier": "estimators", "MLPRegressor": "estimators"}


def __getattr__(name):
    # The estimators import scikit-learn (~0.5 s); load them only when first used.
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "__version__",
    "BackpropError",
    "NotFittedError",
    "Layer",
    "Dense",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "Flatten",
    "Network",
    "MLPClassifier",
    "MLPRegressor",
    "SGD",
    "Adam",
    "Constant",
    "InverseScaling",
    "ReduceOnPlateau",
    "Callback",
    "EarlyStopping",
    "LambdaCallback",
    "History",
    "TrainState",
    "ConstantInit",
    "fit",
    "explain",
    "Derivation",
    "gradcheck",
    "get_activation",
    "get_loss",
    "get_initializer",
]
