"""Start-up of the digits demo without scikit-learn: the bundled digits read straight from
scikit-learn's data file, and the train/test split drawn with numpy, must equal scikit-learn's own
loader and train_test_split (the oracle), so skipping the ~0.7 s import changes no result."""

import subprocess
import sys

import numpy as np
import pytest

from backprop import datasets

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def test_digits_file_equals_sklearn_loader():
    # The CSV read here gives scikit-learn's load_digits() data and labels exactly.
    data, target = datasets._bundled_digits()
    ref = sklearn_datasets.load_digits()
    np.testing.assert_array_equal(data, ref.data)
    np.testing.assert_array_equal(target, ref.target)


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 - 1])
@pytest.mark.parametrize("n,test_size", [(1797, 0.25), (10, 0.3), (7, 0.5), (100, 0.01)])
def test_split_equals_sklearn(seed, n, test_size):
    # Same rows in the same order as scikit-learn's train_test_split for integer seeds.
    from sklearn.model_selection import train_test_split

    X = np.arange(n * 2).reshape(n, 2)
    y = np.arange(n) * 10
    ours = datasets.train_test_split(X, y, test_size=test_size, seed=seed)
    ref = train_test_split(X, y, test_size=test_size, random_state=seed)
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a, b)


def test_split_other_arguments_go_to_sklearn():
    # An integer test_size is scikit-learn's business (a row count), with its own checks.
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    parts = datasets.train_test_split(X, y, test_size=3, seed=0)
    assert len(parts[1]) == 3


def test_digits_demo_data_does_not_import_sklearn():
    # Loading and splitting the digits (what the demo does before training) leaves sklearn unloaded.
    code = ("import sys; from backprop.datasets import load_digits, train_test_split; "
            "X, y = load_digits(); train_test_split(X, y, test_size=0.25, seed=42); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
