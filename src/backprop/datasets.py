"""Datasets of the tutorials: the bundled 8x8 digits (through scikit-learn), scaled and split."""

from __future__ import annotations

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
    """Shuffle with ``seed`` and split off ``test_size`` of the rows (scikit-learn's function)."""
    from sklearn.model_selection import train_test_split as split

    return split(X, y, test_size=test_size, random_state=seed)


def load_digits(scale: str = "minmax") -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 x 64, labels 0-9), min-max scaled to [0, 1] over
    the whole array as in seed 003. Ships with scikit-learn: no download."""
    from sklearn import datasets

    digits = datasets.load_digits()
    X = digits.data.astype(np.float64)
    if scale == "minmax":
        X = (X - X.min()) / (X.max() - X.min())
    return X, digits.target.astype(int)
