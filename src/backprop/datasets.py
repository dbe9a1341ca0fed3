"""Datasets of the tutorials: the bundled 8x8 digits (through scikit-learn), scaled and split.

The digits file and the split are read and drawn without importing scikit-learn where possible
(importing it takes ~0.7 s, most of ``backprop demo digits``'s start-up); the results are
scikit-learn's own (``tests/test_fast_startup.py`` compares them)."""

from __future__ import annotations

import importlib.util
import math
import numbers
import os

import numpy as np

__all__ = ["load_digits", "one_hot", "train_test_split"]


def one_hot(labels, n_classes: int | None = None, dtype=np.float64) -> np.ndarray:
    """Integer labels 0..K-1 -> (n, K) indicator matrix."""
    labels = np.asarray(labels).astype(int)
    k = int(labels.max()) + 1 if n_classes is None else n_classes
    out = np.zeros((labels.shape[0], k), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def train_test_split(X, y, test_size: float = 0.25, seed=None):
    """Shuffle with ``seed`` and split off ``test_size`` of the rows: scikit-learn's
    ``train_test_split(X, y, test_size=..., random_state=seed)``, the same rows for the same seed.
    An integer seed and a fractional ``test_size`` are drawn here (the test rows are the first
    ceil(test_size * n) of ``RandomState(seed).permutation(n)``, as scikit-learn's ShuffleSplit
    draws them); anything else goes to scikit-learn."""
    X, y = np.asarray(X), np.asarray(y)
    if (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
            and isinstance(test_size, float) and 0 < test_size < 1 and len(X) == len(y) > 1):
        n = len(X)
        n_test = math.ceil(test_size * n)
        if 0 < n_test < n:
            order = np.random.RandomState(seed).permutation(n)
            test, train = order[:n_test], order[n_test:]
            return X[train], X[test], y[train], y[test]
    from sklearn.model_selection import train_test_split as split

    return split(X, y, test_size=test_size, random_state=seed)


def _bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """(data, target) from the file scikit-learn ships (datasets/data/digits.csv.gz: 64 pixel
    columns, then the label), found without importing scikit-learn; its loader otherwise."""
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            table = np.loadtxt(path, delimiter=",")
            return table[:, :-1], table[:, -1].astype(int)
    from sklearn import datasets

    digits = datasets.load_digits()
    return digits.data, digits.target


def load_digits(scale: str = "minmax") -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 x 64, labels 0-9), min-max scaled to [0, 1] over
    the whole array as in seed 003. Ships with scikit-learn: no download."""
    data, target = _bundled_digits()
    X = data.astype(np.float64)
    if scale == "minmax":
        X = (X - X.min()) / (X.max() - X.min())
    return X, target.astype(int)
