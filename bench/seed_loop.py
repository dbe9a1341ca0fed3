"""The baseline: seed 003's NeuralNetwork (PyImageSearch) re-implemented plainly in numpy.

Faithful to the tutorial's algorithm: the *bias trick* (a column of ones appended to X and an
extra always-on node in every hidden layer, so each W carries its bias row), weights drawn as
randn / sqrt(fan_in), sigmoid everywhere, and ``fit_partial`` on one sample at a time: forward,
deltas D from the output error times sigmoid'(A), then W += -alpha * A.T @ D for every layer.
``fit_batch`` is the same algorithm on a whole mini-batch (the plain-numpy vectorised loop).
"""

from __future__ import annotations

import numpy as np


class SeedNetwork:
    def __init__(self, layers, alpha=0.1, seed=0):
        rng = np.random.default_rng(seed)
        self.W = []
        for i in range(len(layers) - 2):
            self.W.append(rng.standard_normal((layers[i] + 1, layers[i + 1] + 1)) / np.sqrt(layers[i]))
        self.W.append(rng.standard_normal((layers[-2] + 1, layers[-1])) / np.sqrt(layers[-2]))
        self.alpha = alpha

    @staticmethod
    def sigmoid(x):
        return 1.0 / (1 + np.exp(-x))

    @staticmethod
    def sigmoid_deriv(x):
        return x * (1 - x)

    def fit_partial(self, x, y):
        A = [np.atleast_2d(x)]
        for W in self.W:
            A.append(self.sigmoid(A[-1].dot(W)))
        error = A[-1] - y
        D = [error * self.sigmoid_deriv(A[-1])]
        for layer in range(len(A) - 2, 0, -1):
            delta = D[-1].dot(self.W[layer].T)
            D.append(delta * self.sigmoid_deriv(A[layer]))
        D = D[::-1]
        for layer in range(len(self.W)):
            self.W[layer] += -self.alpha * A[layer].T.dot(D[layer])

    def fit_epoch(self, X, Y, order):
        """One epoch of the tutorial's per-sample loop (X already has the column of ones)."""
        for i in order:
            self.fit_partial(X[i], Y[i])

    fit_batch = fit_partial  # the same code on a (batch, features) block is the vectorised loop

    @staticmethod
    def add_bias_column(X):
        return np.c_[X, np.ones(X.shape[0])]
