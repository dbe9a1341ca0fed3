"""W1: seed 003's digits network 64-32-16-10, sigmoid, half_sse, batch 1 (per-sample), lr 0.1,
on 1347 training samples. Medians of the time per epoch; every peer in the same run, ours and the
seed-style loop (the target's pair) round-robin."""

from __future__ import annotations

import common  # noqa: F401  (puts src/ on sys.path)
import numpy as np
from common import interleaved_medians, median_time, print_rows, quiet_sklearn, torch_or_none

OURS = "backprop fit() (compiled per-sample kernel)"
TITLE = "W1: digits 64-32-16-10 sigmoid, half_sse, batch 1, lr 0.1 (1347 samples)"
REPS = 15  # rounds of the round-robin (the medians' samples)


def data():
    from backprop.datasets import load_digits, one_hot, train_test_split

    X, y = load_digits()
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, seed=42)
    return X_train, y_train, one_hot(y_train, 10)


def torch_digits(torch, X, Y):
    """The digits network in PyTorch (float64, sigmoid everywhere), plain SGD at lr 0.1, and the
    data as tensors: (model, optimizer, X, Y)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Sigmoid(), torch.nn.Linear(32, 16),
                                torch.nn.Sigmoid(), torch.nn.Linear(16, 10), torch.nn.Sigmoid()).double()
    return model, torch.optim.SGD(model.parameters(), lr=0.1), torch.from_numpy(X), torch.from_numpy(Y)


def time_digits_fits(X, Y, batch_size, epochs, reps, ref_epochs, ref_reps, ours=OURS, peers=None):
    """Rows for our fit() of the digits network (fast path, after one warm-up epoch that compiles
    or loads the kernels) and for the numpy reference path, per epoch; and the rows of ``peers``
    ({name: (callable, epochs it runs, note)}), timed round-robin with ours
    (``common.interleaved_medians``): (our rows, the peers' rows)."""
    from backprop import SGD, Network

    net = Network.from_sizes([64, 32, 16, 10], activation="sigmoid", seed=42)
    peers = peers or {}

    def fit(epochs, fast=None):
        return net.fit(X, Y, epochs=epochs, batch_size=batch_size, optimizer=SGD(0.1), seed=1, fast=fast)

    fit(1)
    times = interleaved_medians({ours: lambda: fit(epochs), **{k: fn for k, (fn, _, _) in peers.items()}},
                                reps)
    rows = [(ours, times[ours] / epochs, f"fit(), {epochs} epochs per repetition")]
    t = median_time(lambda: fit(ref_epochs, fast=False), ref_reps, per=ref_epochs)
    rows.append(("backprop numpy reference path (fast=False)", t, "fit(..., fast=False)"))
    return rows, [(name, times[name] / per, note) for name, (_, per, note) in peers.items()]


def run(reps: int = REPS, quick: bool = False):
    from seed_loop import SeedNetwork

    X, y, Y = data()
    n = len(X)
    rng = np.random.default_rng(0)
    epochs = 10 if quick else 30
    seed = SeedNetwork([64, 32, 16, 10], alpha=0.1)
    Xb = SeedNetwork.add_bias_column(X)
    seed_epoch = (lambda: seed.fit_epoch(Xb, Y, rng.permutation(n)), 1, "bias trick, per sample")
    rows, peer_rows = time_digits_fits(X, Y, 1, epochs, reps, 1, max(2, reps // 2),
                                       peers={"seed-style numpy loop (seed 003 fit_partial)": seed_epoch})
    rows += peer_rows

    quiet_sklearn()
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(32, 16), activation="logistic", solver="sgd",
                        batch_size=1, learning_rate_init=0.1, momentum=0.0, alpha=0.0,
                        max_iter=1, shuffle=True, random_state=0)
    t = median_time(lambda: clf.fit(X, y), max(2, reps // 2))
    rows.append(("scikit-learn MLPClassifier(batch_size=1)", t, "softmax/log-loss output (its only choice)"))

    torch = torch_or_none()
    if torch is not None:
        model, opt, Xt, Yt = torch_digits(torch, X, Y)

        def torch_epoch():
            for i in rng.permutation(n):
                opt.zero_grad()
                loss = 0.5 * ((model(Xt[i:i + 1]) - Yt[i:i + 1]) ** 2).sum()
                loss.backward()
                opt.step()

        t = median_time(torch_epoch, max(2, reps // 2))
        rows.append(("PyTorch CPU (float64, per-sample loop)", t, "nn.Sequential + optim.SGD"))
    return rows


if __name__ == "__main__":
    print_rows(TITLE, run(), OURS)
