"""Test accuracy of backprop's MLPClassifier against scikit-learn's, equal settings and seeds.

For each data set (digits, iris, wine, breast cancer), each solver and each seed 0-4: a stratified
75/25 split (``random_state=seed``), features standardised on the training part, then both
classifiers fitted with the same parameters and ``random_state=seed`` and scored on the test part.
The table shows the mean test accuracy over the seeds (and its spread), the difference in
percentage points, and the ratio of fit times (ours / scikit-learn's; both on one BLAS thread).

    PYTHONPATH=src python bench/accuracy_vs_sklearn.py            # print the markdown table
    PYTHONPATH=src python bench/accuracy_vs_sklearn.py --write    # also put it in docs/estimators.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from backprop import MLPClassifier

DATASETS = {
    "digits": datasets.load_digits,
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast cancer": datasets.load_breast_cancer,
}
# solver label -> parameters given to both estimators (everything else at the defaults)
SETTINGS = {
    "adam": dict(solver="adam"),
    "sgd": dict(solver="sgd", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs"),
    "adam + early stopping": dict(solver="adam", early_stopping=True),
}
SEEDS = range(5)
DOC = Path(__file__).resolve().parents[1] / "docs" / "estimators.md"
START, END = "<!-- accuracy-table:start -->", "<!-- accuracy-table:end -->"


def run_one(cls, params, X_train, y_train, X_test, y_test, seed):
    model = cls(random_state=seed, **params)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    return model.score(X_test, y_test), elapsed


def measure(seeds=SEEDS):
    rows = []
    for data_name, loader in DATASETS.items():
        X, y = loader(return_X_y=True)
        for label, params in SETTINGS.items():
            ours, theirs, t_ours, t_theirs = [], [], 0.0, 0.0
            for seed in seeds:
                X_train, X_test, y_train, y_test = train_test_split(
                    X, y, test_size=0.25, stratify=y, random_state=seed)
                scaler = StandardScaler().fit(X_train)
                X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
                acc, t = run_one(MLPClassifier, params, X_train, y_train, X_test, y_test, seed)
                ours.append(acc)
                t_ours += t
                acc, t = run_one(SkMLPClassifier, params, X_train, y_train, X_test, y_test, seed)
                theirs.append(acc)
                t_theirs += t
            rows.append((data_name, label, np.array(ours), np.array(theirs), t_ours / t_theirs))
            print(f"  {data_name:14s} {label:22s} ours {np.mean(ours):.4f}  sklearn {np.mean(theirs):.4f}",
                  file=sys.stderr, flush=True)
    return rows


def markdown(rows, n_seeds) -> str:
    lines = [
        f"Mean test accuracy over {n_seeds} seeds (75/25 stratified split, standardised features, "
        "`hidden_layer_sizes=(100,)`, other parameters at the defaults unless listed; "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, Python "
        f"{platform.python_version()}, one BLAS thread).",
        "",
        "| data | solver | backprop | scikit-learn | difference (pp) | fit time ratio |",
        "|---|---|---|---|---|---|",
    ]
    for data_name, label, ours, theirs, ratio in rows:
        diff = 100 * (ours.mean() - theirs.mean())
        lines.append(
            f"| {data_name} | {label} | {100 * ours.mean():.2f} % (± {100 * ours.std():.2f}) "
            f"| {100 * theirs.mean():.2f} % (± {100 * theirs.std():.2f}) | {diff:+.2f} | {ratio:.2f} |"
        )
    worst = min(100 * (o.mean() - t.mean()) for _, _, o, t, _ in rows)
    lines += ["", f"Largest shortfall against scikit-learn: {min(worst, 0.0):+.2f} percentage points "
              "(the target is no worse than -1)."]
    return "\n".join(lines)


def write_doc(table: str) -> None:
    text = DOC.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{DOC} has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write the table into {DOC.name}")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="number of seeds (default 5)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    with threadpool_limits(1):
        rows = measure(range(args.seeds))
    table = markdown(rows, args.seeds)
    print(table)
    if args.write:
        write_doc(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
