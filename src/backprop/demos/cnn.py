"""A small convolutional network on the 8x8 digits, beside a dense network trained the same way.

The split is the digits demo's (75/25 under ``split_seed``: 1347 training and 450 test images,
pixels min-max scaled to [0, 1]). The CNN is Conv2D(16, 3x3, padding 1) -> ReLU -> MaxPool 2 ->
Conv2D(32, 3x3, padding 1) -> ReLU -> MaxPool 2 -> Flatten -> Dense 64 ReLU -> Dense 10 with
softmax cross-entropy; Adam at 3e-3, mini-batches of 32. The dense network (64-128-64-10, ReLU)
gets the same optimizer, batches, epochs and seed, so the two accuracies compare architectures.
"""

from __future__ import annotations

import numpy as np

from .. import Adam, Network
from .._validation import check_int
from ..datasets import load_digits, one_hot, train_test_split
from ..layers.spec import conv_network

__all__ = ["CONV", "HIDDEN", "DENSE_SIZES", "run", "build_cnn"]

CONV = "16x3p1,max2,32x3p1,max2"
HIDDEN = [64]
DENSE_SIZES = [64, 128, 64, 10]
LR, BATCH = 3e-3, 32


def build_cnn(seed=0, dtype=np.float64) -> Network:
    """The demo's CNN, its weights drawn under ``seed``."""
    return conv_network((1, 8, 8), CONV, HIDDEN, 10, activation="relu", output_activation="softmax",
                        loss="softmax_cross_entropy", seed=seed, dtype=dtype)


def run(epochs: int = 40, seed: int = 0, split_seed: int = 42, dense: bool = True, callbacks=(),
        dtype=np.float64) -> dict:
    """Train the CNN (and the dense network, unless ``dense=False``); returns both networks,
    their histories and test accuracies. ``seed`` draws the weights and the batch order."""
    epochs = check_int("epochs", epochs)
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=split_seed)
    Y_train = one_hot(y_train, 10)
    images = lambda A: A.reshape(-1, 1, 8, 8)  # noqa: E731  (rows of 64 pixels -> 1x8x8 images)
    result = {"n_train": len(y_train), "n_test": len(y_test), "y_test": y_test, "epochs": epochs, "seed": seed}
    cnn = build_cnn(seed, dtype)
    history = cnn.fit(images(X_train), Y_train, epochs=epochs, batch_size=BATCH, optimizer=Adam(LR),
                      seed=seed, callbacks=list(callbacks))
    pred = np.argmax(cnn.predict(images(X_test)), axis=1)
    result.update(cnn=cnn, cnn_history=history, y_pred=pred, accuracy=float(np.mean(pred == y_test)))
    if dense:
        mlp = Network.from_sizes(DENSE_SIZES, activation="relu", output_activation="softmax", weight_init="he",
                                 loss="softmax_cross_entropy", seed=seed, dtype=dtype)
        mlp_history = mlp.fit(X_train, Y_train, epochs=epochs, batch_size=BATCH, optimizer=Adam(LR), seed=seed)
        dense_pred = np.argmax(mlp.predict(X_test), axis=1)
        result.update(dense=mlp, dense_history=mlp_history, dense_pred=dense_pred,
                      dense_accuracy=float(np.mean(dense_pred == y_test)))
    return result
