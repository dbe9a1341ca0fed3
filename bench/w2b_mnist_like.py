"""W2b: 60000 x 784 float32 synthetic data, 784-256-128-10 relu + softmax cross-entropy, batch 128,
SGD momentum 0.9, lr 0.01; one epoch per repetition. The floor is the sum of the GEMMs alone.
Ours, scikit-learn, PyTorch and the floor (the rows the targets compare) are timed round-robin.
Peak RSS of a training process (ours) is measured in a fresh subprocess (kernels already cached)."""

from __future__ import annotations

import subprocess
import sys

import common  # noqa: F401
import numpy as np
from common import ROOT, interleaved_medians, median_time, print_rows, quiet_sklearn, torch_or_none
from w2a_digits_batch32 import gemm_floor_epoch

TITLE = "W2b: 60000x784 float32, 784-256-128-10 relu + softmax CE, batch 128, SGD momentum 0.9"
REPS = 7  # rounds of the round-robin (the medians' samples)
SIZES = [784, 256, 128, 10]
OURS = "backprop fit() (compiled epoch kernel calling numpy's gemm)"
SKLEARN = "scikit-learn MLPClassifier"
TORCH = "PyTorch CPU (float32)"
FLOOR = "floor: the GEMMs alone (numpy, default threads)"
BATCH = 128


def data(n=60000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    Y = np.eye(10, dtype=np.float32)[y]
    return X, y, Y


def network():
    from backprop import Network

    return Network.from_sizes(SIZES, activation="relu", output_activation="softmax", weight_init="he",
                              loss="softmax_cross_entropy", seed=0, dtype=np.float32)


def plain_numpy_epoch(Ws, bs, Vs, X, Y, rng, lr=0.01, mom=0.9):
    """A straightforward vectorised numpy mini-batch loop (what one writes by hand)."""
    n = len(X)
    order = rng.permutation(n)
    for s in range(0, n, BATCH):
        idx = order[s:s + BATCH]
        A = [X[idx]]
        for i, (W, b) in enumerate(zip(Ws, bs)):
            Z = A[-1] @ W + b
            A.append(np.maximum(Z, 0) if i < len(Ws) - 1 else Z)
        Z = A[-1]
        E = np.exp(Z - Z.max(1, keepdims=True))
        dZ = (E / E.sum(1, keepdims=True) - Y[idx]) / len(idx)
        for i in range(len(Ws) - 1, -1, -1):
            gW, gb = A[i].T @ dZ, dZ.sum(0)
            if i:
                dZ = (dZ @ Ws[i].T) * (A[i] > 0)
            for p, g, v in ((Ws[i], gW, Vs[2 * i]), (bs[i], gb, Vs[2 * i + 1])):
                v *= mom
                v -= lr * g
                p += v


RSS_CHILD = """
import resource, sys, numpy as np
sys.path[:0] = [{src!r}, {bench!r}]
from w2b_mnist_like import data, network
from backprop import SGD
X, y, Y = data()
base = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 1024
net = network()
net.fit(X, Y, epochs=2, batch_size=128, optimizer=SGD(0.01, momentum=0.9), seed=0, fast={fast})
# VmHWM: this process's own high-water mark (getrusage's ru_maxrss would also count the parent's
# memory, which a child started by vfork + exec inherits as its starting maximum)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(base, peak)
"""


def peak_rss(fast, runs: int = 2) -> tuple[float, float]:
    """(resident MiB after making the data, peak MiB over the run) of a fresh training process;
    the last of ``runs`` such processes, so that a kernel compiled by the first (LLVM needs a
    few hundred MiB while compiling) is loaded from the cache by the one measured."""
    code = RSS_CHILD.format(src=str(ROOT / "src"), bench=str(ROOT / "bench"), fast=fast)
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    base, peak = map(int, out.stdout.split())
    return base / 1024, peak / 1024  # MiB: resident after making the data, peak over the run


def run(reps: int = REPS, quick: bool = False):
    """Ours and the peers the targets name (scikit-learn, PyTorch, the floor) are timed
    round-robin (``interleaved_medians``); the other rows one after the other."""
    from backprop import SGD

    X, y, Y = data(20000 if quick else 60000)
    n = len(X)
    rng = np.random.default_rng(0)
    net = network()
    net.fit(X[:256], Y[:256], epochs=1, batch_size=BATCH, optimizer=SGD(0.01, momentum=0.9))
    opt = SGD(0.01, momentum=0.9)
    timed = {OURS: lambda: net.fit(X, Y, epochs=1, batch_size=BATCH, optimizer=opt, seed=1)}

    quiet_sklearn()
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(256, 128), activation="relu", solver="sgd", batch_size=BATCH,
                        learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=False, alpha=0.0,
                        max_iter=1, random_state=0)
    timed[SKLEARN] = lambda: clf.fit(X, y)

    torch = torch_or_none()
    if torch is not None:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                    torch.nn.ReLU(), torch.nn.Linear(128, 10))
        topt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        lossf = torch.nn.CrossEntropyLoss()

        def torch_epoch():
            order = torch.from_numpy(rng.permutation(n))
            for s in range(0, n, BATCH):
                idx = order[s:s + BATCH]
                topt.zero_grad()
                lossf(model(Xt[idx]), yt[idx]).backward()
                topt.step()

        timed[TORCH] = torch_epoch
    timed[FLOOR] = gemm_floor_epoch(SIZES, n, BATCH, np.float32)
    times = interleaved_medians(timed, reps)

    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        one_thread = median_time(lambda: net.fit(X, Y, epochs=1, batch_size=BATCH, optimizer=opt, seed=1),
                                 reps)
    opt2 = SGD(0.01, momentum=0.9)
    reference = median_time(lambda: net.fit(X, Y, epochs=1, batch_size=BATCH, optimizer=opt2, seed=1,
                                            fast=False), max(1, reps - 2))
    ref = network()
    Ws = [layer.params["W"].copy() for layer in ref.layers]
    bs = [layer.params["b"].copy() for layer in ref.layers]
    Vs = [np.zeros_like(a) for pair in zip(Ws, bs) for a in pair]
    plain = median_time(lambda: plain_numpy_epoch(Ws, bs, Vs, X, Y, rng), reps)

    rows = [(OURS, times[OURS], "float32; fit() incl. input checks; BLAS default threads"),
            ("backprop, BLAS limited to 1 thread", one_thread, "threadpoolctl around fit()"),
            ("backprop numpy reference path (fast=False)", reference, "float32"),
            ("plain numpy mini-batch loop", plain, "float32, written in bench/"),
            (SKLEARN, times[SKLEARN], "float32 input kept float32 by sklearn")]
    if TORCH in times:
        rows.append((TORCH, times[TORCH], "nn.Sequential + optim.SGD"))
    rows.append((FLOOR, times[FLOOR], "8 GEMMs per batch"))
    return rows


if __name__ == "__main__":
    print_rows(TITLE, run(), OURS)
    print("peak RSS (MiB) data only / after training, fast path:", peak_rss(True))
