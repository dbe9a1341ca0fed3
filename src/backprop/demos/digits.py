"""Seed 003's digits example: 64-32-16-10 sigmoid network, per-sample SGD, on the 8x8 digits."""

from __future__ import annotations

import numpy as np

from .. import Network, SGD
from ..datasets import load_digits, one_hot, train_test_split

__all__ = ["run"]


def run(epochs: int = 1000, lr: float = 0.1, seed: int = 42, callbacks=()) -> dict:
    """Train and evaluate; returns the trained network, the history and test-set results."""
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=seed)
    net = Network.from_sizes([64, 32, 16, 10], activation="sigmoid", loss="half_sse", seed=seed)
    history = net.fit(X_train, one_hot(y_train, 10), epochs=epochs, batch_size=1,
                      optimizer=SGD(lr), shuffle=True, seed=seed, callbacks=callbacks,
                      validation_data=(X_test, one_hot(y_test, 10)), metrics=["accuracy"])
    pred = np.argmax(net.predict(X_test), axis=1)
    return {"network": net, "history": history, "y_test": y_test, "y_pred": pred,
            "accuracy": float(np.mean(pred == y_test)), "n_train": len(y_train)}
