"""W3: predict 60000 x 784 float32 through the W2b network (784-256-128-10 relu, softmax out).
The floor is the three GEMMs alone into preallocated outputs.

``Network.predict`` uses the compiled kernels between the products only when they are already
loaded (training this network on the fast path loads them; predicting alone never does, see
``backprop/fast/forward.py``). Ours is the first case, after a short fit of a copy of the network
in the same process; the second row is a process that has not loaded them."""

from __future__ import annotations

import common  # noqa: F401
import numpy as np
from common import median_time, print_rows, quiet_sklearn, torch_or_none
from w2b_mnist_like import SIZES, data, network

OURS = "backprop Network.predict (kernels loaded, as after a fit)"
TITLE = "W3: predict 60000x784 float32 through 784-256-128-10 (relu, softmax output)"


def run(reps: int = 5, quick: bool = False):
    X, y, Y = data(20000 if quick else 60000)
    net = network()
    rows = []
    from backprop import SGD
    from backprop.fast.forward import forward_chunked, kernels_loaded

    # what training this network on the fast path does first (its batch runner loads the kernels)
    net.copy().fit(X[:256], Y[:256], epochs=1, batch_size=128, optimizer=SGD(0.01, momentum=0.9))
    assert kernels_loaded()
    from backprop.network import PREDICT_CHUNK

    net.predict(X[:PREDICT_CHUNK + 1])  # loads the compiled pieces from the cache
    t = median_time(lambda: net.predict(X), reps)
    rows.append((OURS, t, f"float32, {PREDICT_CHUNK}-row chunks, incl. input checks"))
    t = median_time(lambda: forward_chunked(net, X, PREDICT_CHUNK, check="X", compiled=False), reps)
    rows.append(("backprop predict, kernels not loaded (numpy between products)", t, "the same, incl. checks"))
    t = median_time(lambda: net.forward(X), reps)
    rows.append(("backprop Network.forward (reference, whole batch)", t, "float32"))

    Ws = [layer.params["W"] for layer in net.layers]
    bs = [layer.params["b"] for layer in net.layers]

    def plain():
        A = X
        for i, (W, b) in enumerate(zip(Ws, bs)):
            Z = A @ W + b
            A = np.maximum(Z, 0) if i < 2 else Z
        E = np.exp(A - A.max(1, keepdims=True))
        return E / E.sum(1, keepdims=True)

    t = median_time(plain, reps)
    rows.append(("plain numpy forward", t, "float32"))

    quiet_sklearn()
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=1, random_state=0).fit(X[:500], y[:500])
    clf.coefs_ = [W.copy() for W in Ws]
    clf.intercepts_ = [b.copy() for b in bs]
    t = median_time(lambda: clf.predict_proba(X), reps)
    rows.append(("scikit-learn MLPClassifier.predict_proba", t, "same weights"))

    torch = torch_or_none()
    if torch is not None:
        model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                    torch.nn.ReLU(), torch.nn.Linear(128, 10), torch.nn.Softmax(dim=1))
        Xt = torch.from_numpy(X)

        def torch_predict():
            with torch.no_grad():
                return model(Xt)

        t = median_time(torch_predict, reps)
        rows.append(("PyTorch CPU (float32, no_grad)", t, ""))

    outs = [np.empty((len(X), s), np.float32) for s in SIZES[1:]]

    def gemms():
        A = X
        for W, out in zip(Ws, outs):
            np.matmul(A, W, out=out)
            A = out

    t = median_time(gemms, reps)
    rows.append(("floor: the 3 GEMMs alone", t, "preallocated outputs"))
    return rows


if __name__ == "__main__":
    print_rows(TITLE, run(), OURS)
