"""The estimators on the fast path (issue 28): MLPClassifier.fit against Network.fit doing the same
work, on W2a (digits 64-32-16-10 logistic, batch 32, SGD 0.1) and W2b (60000 x 784 float32,
784-256-128-10 relu, batch 128, SGD momentum 0.9, lr 0.01), alpha = 1e-4 as the engine's l2 in both.
Each repetition is a fresh fit of a few epochs; the two are timed round-robin. Target: the
estimator within 1.2x of Network.fit.

    PYTHONPATH=src python bench/estimator_overhead.py [--quick] [--write]
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import common  # noqa: F401
import numpy as np
from common import interleaved_medians

from backprop import SGD, MLPClassifier, Network

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- estimator-overhead:start -->", "<!-- estimator-overhead:end -->"
TARGET = 1.2


def workloads(quick: bool):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    yield ("W2a", X, y, dict(hidden=(32, 16), activation="logistic", batch=32, lr=0.1, momentum=0.0,
                             epochs=20 if quick else 50, dtype=np.float64))
    rng = np.random.default_rng(0)
    n = 12000 if quick else 60000
    X = rng.random((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    yield ("W2b", X, y, dict(hidden=(256, 128), activation="relu", batch=128, lr=0.01, momentum=0.9,
                             epochs=1, dtype=np.float32))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    lines, met = [], True
    for name, X, y, cfg in workloads(args.quick):
        Y = np.eye(10, dtype=cfg["dtype"])[y]
        Xc = X.astype(cfg["dtype"])

        def estimator():
            MLPClassifier(hidden_layer_sizes=cfg["hidden"], activation=cfg["activation"], solver="sgd",
                          batch_size=cfg["batch"], learning_rate_init=cfg["lr"], momentum=cfg["momentum"],
                          nesterovs_momentum=False, alpha=1e-4, max_iter=cfg["epochs"], tol=0.0,
                          n_iter_no_change=10**9, random_state=0, dtype=cfg["dtype"]).fit(Xc, y)

        def network():
            act = "sigmoid" if cfg["activation"] == "logistic" else cfg["activation"]
            net = Network.from_sizes([X.shape[1], *cfg["hidden"], 10], activation=act,
                                     output_activation="softmax", weight_init="glorot",
                                     loss="softmax_cross_entropy", seed=0, dtype=cfg["dtype"])
            net.fit(Xc, Y, epochs=cfg["epochs"], batch_size=cfg["batch"], seed=0, l2=1e-4,
                    optimizer=SGD(cfg["lr"], momentum=cfg["momentum"]))

        estimator(), network()  # compile / warm caches
        times = interleaved_medians({"estimator": estimator, "network": network}, reps=3 if args.quick else 5)
        ratio = times["estimator"] / times["network"]
        met &= ratio <= TARGET
        lines.append(f"- {'MET' if ratio <= TARGET else 'NOT MET'}: {name} ({X.shape[0]} rows, {cfg['epochs']} "
                     f"epoch(s)): MLPClassifier.fit {times['estimator'] * 1e3:.1f} ms, Network.fit "
                     f"{times['network'] * 1e3:.1f} ms: {ratio:.2f}x (target <= {TARGET}x)")
    text = "\n".join(lines)
    print(text)
    if args.write:
        doc = DOC.read_text()
        block = f"{START}\n{text}\n{END}"
        if START in doc:
            doc = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda m: block, doc, flags=re.S)
        else:
            doc = doc.rstrip() + ("\n\n## Estimators on the fast path (issue 28)\n\nMLPClassifier.fit against "
                                  "Network.fit on the same work, round-robin (`bench/estimator_overhead.py`):\n\n"
                                  + block + "\n")
        DOC.write_text(doc)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
