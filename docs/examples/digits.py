"""The 8x8 digits: a dense network and a small CNN, trained the same way, scored on the same split."""
import numpy as np

from backprop import Adam, Network
from backprop.datasets import load_digits, one_hot, train_test_split
from backprop.layers.spec import conv_network

X, y = load_digits()  # 1797 images of 64 pixels in [0, 1]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=42)
Y_train = one_hot(y_train, 10)

dense = Network.from_sizes([64, 128, 64, 10], activation="relu", output_activation="softmax",
                           weight_init="he", loss="softmax_cross_entropy", seed=0)
cnn = conv_network((1, 8, 8), "16x3p1,max2,32x3p1,max2", [64], 10, output_activation="softmax",
                   loss="softmax_cross_entropy", seed=0)
for name, net, inputs in (("dense", dense, X_train), ("cnn", cnn, X_train.reshape(-1, 1, 8, 8))):
    net.fit(inputs, Y_train, epochs=15, batch_size=32, optimizer=Adam(3e-3), seed=0)
    test = X_test if name == "dense" else X_test.reshape(-1, 1, 8, 8)
    accuracy = np.mean(net.predict(test).argmax(axis=1) == y_test)
    print(f"{name:5s} {net.n_params():6,d} parameters, test accuracy {accuracy:.3f}")
