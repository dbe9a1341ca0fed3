"""`backprop evaluate MODEL DATA.csv`: how good a model is on labelled data.

Classification: accuracy, loss, a per-class report (precision, recall, F1, support) and the
confusion matrix. Regression: R2, MAE and RMSE in the target's own units.
"""

from __future__ import annotations

import numpy as np

from ._common import add_data_options, add_target_option, format_table, model_and_data, network_outputs, regression_scores

NAME = "evaluate"
HELP = "score a trained model on a CSV file that holds the true target"


def add_arguments(parser):
    parser.add_argument("model", help="model file written by `backprop train` or an estimator's save()")
    parser.add_argument("data", help="CSV or Parquet file with the model's feature columns and its target column")
    add_data_options(parser)
    add_target_option(parser)


def run(args) -> int:
    from .._validation import BackpropError

    network, pre, table, X = model_and_data(args)
    if pre.target is None:
        raise BackpropError(
            f"`--target` must name the column of true values: `{args.model}` was written by {pre.source}, "
            "which does not record what its y was called; got none")
    if not pre.has_target(table):
        raise BackpropError(
            f"`data`: {table.source} has no column {pre.target!r}, the target the model predicts; "
            "evaluate needs the true values (use `backprop predict` for data without them)"
        )
    y = pre.targets(table)
    out = network_outputs(network, X, pre, table)
    print(f"rows: {table.n_rows}")
    if pre.task == "classify":
        with np.errstate(all="ignore"):
            loss = network.loss(X, pre.network_targets(y))
        _report_classification(pre, out, y, loss, network.loss_fn.name)
    else:
        for name, value in regression_scores(y, pre.decode(out)).items():
            print(f"{name}: {value:.6g}")
    return 0


def _report_classification(pre, out, y, loss, loss_name) -> None:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix, by scikit-learn's
    metric functions (the ones MLPClassifier.score and its users' reports use)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    names = [str(c) for c in pre.encoder.classes]
    labels = list(range(len(names)))
    predicted = pre.decode(out)
    confusion = confusion_matrix(y, predicted, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=labels, zero_division=0)
    print(f"accuracy: {accuracy_score(y, predicted):.6g}")
    print(f"loss ({loss_name}): {loss:.6g}")
    print()
    rows = [[name, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", str(n)]
            for name, p, r, f, n in zip(names, precision, recall, f1, support)]
    print(format_table(["class", "precision", "recall", "f1", "support"], rows))
    print()
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(format_table(["true \\ predicted", *names], [[n, *map(str, r)] for n, r in zip(names, confusion)]))
