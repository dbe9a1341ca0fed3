"""`backprop demo cnn`: the issue's architecture, training that learns, and the command's output."""

import json
import subprocess
import sys

import numpy as np

from backprop import Conv2D, Dense, Flatten, MaxPool2D
from backprop.demos import cnn


def test_the_cnn_is_the_issues_architecture():
    # Conv 16 3x3 pad 1 relu, max 2, conv 32 3x3 pad 1 relu, max 2, flatten, dense 64 relu, dense 10 softmax.
    net = cnn.build_cnn(seed=0)
    kinds = [type(layer) for layer in net.layers]
    assert kinds == [Conv2D, MaxPool2D, Conv2D, MaxPool2D, Flatten, Dense, Dense]
    c1, _, c2, _, _, d1, d2 = net.layers
    assert (c1.in_channels, c1.out_channels, c1.kernel_size, c1.padding) == (1, 16, (3, 3), (1, 1))
    assert (c2.in_channels, c2.out_channels, c2.kernel_size, c2.padding) == (16, 32, (3, 3), (1, 1))
    assert c1.activation.name == c2.activation.name == d1.activation.name == "relu"
    assert (d1.n_inputs, d1.n_outputs, d2.n_outputs, d2.activation.name) == (128, 64, 10, "softmax")
    assert net.loss_fn.name == "softmax_cross_entropy" and net.input_shape == (1, 8, 8)


def test_a_few_epochs_learn_the_digits():
    # Four epochs already classify most of the 450 test images (chance is 0.1); same seed, same run.
    a = cnn.run(epochs=4, seed=3, dense=False)
    b = cnn.run(epochs=4, seed=3, dense=False)
    assert (a["n_train"], a["n_test"]) == (1347, 450)
    assert a["accuracy"] > 0.85
    assert a["cnn_history"].loss[-1] < a["cnn_history"].loss[0]
    np.testing.assert_array_equal(a["y_pred"], b["y_pred"])


def test_command_prints_both_accuracies_and_json():
    # The command prints the summary and both test accuracies; --json gives the same numbers.
    text = subprocess.run([sys.executable, "-m", "backprop", "demo", "cnn", "--epochs", "2"],
                          capture_output=True, text=True, check=True).stdout
    assert "(32, 2, 2)" in text and "CNN" in text and "dense (64-128-64-10" in text
    out = json.loads(subprocess.run([sys.executable, "-m", "backprop", "demo", "cnn", "--epochs", "2", "--json"],
                                    capture_output=True, text=True, check=True).stdout)
    assert out["accuracy"] == np.mean(np.array(out["y_pred"]) == np.array(out["y_test"]))
    assert 0 <= out["dense_accuracy"] <= 1 and len(out["loss"]) == 2
