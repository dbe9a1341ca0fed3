"""Seed 003's digits example: a 64-32-16-10 sigmoid network on scikit-learn's bundled 8x8 digits.

Min-max scaled to [0, 1], a 75/25 train/test split, one-hot targets, per-sample SGD at learning
rate 0.1 in the split's order for 1000 epochs (``Network.fit(batch_size=1, shuffle=False)``, so it
takes whatever fast path ``fit`` has), the training loss (0.5 * sum of squared errors, as the
tutorial prints it) after epoch 1 and every 100 epochs, then the test split's predictions.
"""

from __future__ import annotations

import numpy as np

from .. import SGD, Network, get_loss
from .._validation import check_choice, check_int
from ..datasets import load_digits, one_hot, train_test_split
from ._display import EpochLoss
from .conventions import bias_trick_network

__all__ = ["SIZES", "VARIANTS", "run"]

SIZES = [64, 32, 16, 10]
VARIANTS = ("default", "pyimagesearch")


def run(epochs: int = 1000, lr: float = 0.1, seed: int = 42, variant: str = "default",
        every: int = 100, callbacks=(), report=None) -> dict:
    """Train and evaluate; returns the trained network, the loss lines and test-set results.

    ``report(epoch, loss)`` is called for every loss line as training goes; ``callbacks`` go to
    ``fit`` (a ``ProgressBar``, for instance). ``seed`` draws the split and the weights.
    """
    variant = check_choice("variant", variant, VARIANTS)
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=seed)
    Y_train = one_hot(y_train, 10)
    make = bias_trick_network if variant == "pyimagesearch" else Network.from_sizes
    net = make(SIZES, activation="sigmoid", loss=get_loss("half_sse", reduction="sum"), seed=seed)
    display = EpochLoss(X_train, Y_train, every=check_int("every", every), report=report)
    history = net.fit(X_train, Y_train, epochs=check_int("epochs", epochs), batch_size=1,
                      optimizer=SGD(lr), shuffle=False, callbacks=[display, *callbacks])
    pred = np.argmax(net.predict(X_test), axis=1)
    return {"network": net, "history": history, "losses": display.records, "y_test": y_test,
            "y_pred": pred, "accuracy": float(np.mean(pred == y_test)),
            "n_samples": int(X.shape[0]), "n_features": int(X.shape[1]), "n_train": len(y_train),
            "n_test": len(y_test)}
