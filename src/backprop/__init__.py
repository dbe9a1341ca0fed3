"""backprop: neural networks trained by backpropagation.

Layers, networks, losses, optimizers and a fit loop in plain numpy (the reference path), with
gradient checking for learners and tests.
"""

__version__ = "0.1.0"

from ._validation import BackpropError, NotFittedError
from .activations import get_activation
from .callbacks import Callback, EarlyStopping, History, LambdaCallback, TrainState
from .estimators import MLPClassifier, MLPRegressor
from .gradcheck import gradcheck
from .initializers import Constant as ConstantInit
from .initializers import get_initializer
from .layers import Dense, Layer
from .losses import get_loss
from .network import Network
from .optimizers import SGD, Adam, Constant, InverseScaling, ReduceOnPlateau
from .training import fit

# explain sits above the engine (it only reads it), so it is imported last. The package is
# callable: backprop.explain(network, x, y) runs backprop.explain.explain.
from . import explain  # noqa: E402
from .explain import Derivation  # noqa: E402

__all__ = [
    "__version__",
    "BackpropError",
    "NotFittedError",
    "Layer",
    "Dense",
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
