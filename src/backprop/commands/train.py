"""`backprop train DATA.csv --target COLUMN --out MODEL`: train a network on a CSV or Parquet file.

Built on the estimators: the table's rows are split once (``--validation``), the feature
columns encoded on the training rows (text columns one-hot, missing cells filled, numbers
standardised: :class:`backprop.preprocessing.Encoding`), and an :class:`~backprop.MLPClassifier`
or :class:`~backprop.MLPRegressor` with the same defaults as in Python (scikit-learn's) is fitted
on them, the held-out rows passed as its ``X_val``/``y_val`` (scored every epoch; with
``--early-stopping`` training stops on them). A regression target is standardised on the training
rows (as scikit-learn's TransformedTargetRegressor would), so one ``--lr`` suits any units. The
model file is the estimator's (``MLPClassifier.load`` reads it) with the preprocessing beside it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..callbacks import Callback
from ._checkpointing import add_checkpoint_arguments, checkpoint_fit_kwargs
from ._common import (add_data_options, column_list, fraction, hidden_sizes, image_shape, non_negative_float, note,
                      positive_float, positive_int, read_table, refuse_overwrite, seed_type)

NAME = "train"
HELP = "train a network on a CSV file and save it as a model file"
ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "identity")


def add_arguments(parser):
    parser.add_argument("data", help="CSV/TSV file with a header line of column names (.gz, .bz2, .xz, .zst "
                                     "compressed too) or a Parquet file")
    parser.add_argument("--target", required=True, metavar="COLUMN", help="the column to predict")
    parser.add_argument("--missing", choices=("impute", "drop", "error"), default="impute",
                        help="missing feature cells: fill them in (the median, or a text column's most "
                             "frequent value), drop their rows, or refuse the file (default impute)")
    parser.add_argument("--out", required=True, metavar="MODEL",
                        help="model file to write (.safetensors; written atomically)")
    parser.add_argument("--features", type=column_list, default=None, metavar="A,B,...",
                        help="feature columns (default: every column but the target)")
    parser.add_argument("--task", choices=("classify", "regress"), default=None,
                        help="default: classify for text labels or few integer values, else regress")
    parser.add_argument("--hidden", type=hidden_sizes, default=[100], metavar="100,50",
                        help="hidden layer sizes, comma-separated, or none (default 100, as the estimators)")
    parser.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                        help="hidden-layer activation (default relu)")
    parser.add_argument("--input-shape", type=image_shape, default=None, metavar="C,H,W",
                        help="the feature columns are the pixels of C x H x W images in C-H-W order "
                             "(train a convolutional network; needs --conv)")
    parser.add_argument("--conv", default=None, metavar="16x3p1,max2,...",
                        help="convolutional layers before the --hidden ones: NxK[sS][pP] is a Conv2D of N "
                             "channels with a KxK kernel (stride S, padding P), maxP/avgP[sS] a pool "
                             "(see docs/cli.md)")
    parser.add_argument("--epochs", type=positive_int, default=200,
                        help="most epochs (the estimators' max_iter; default 200)")
    parser.add_argument("--lr", type=positive_float, default=0.001,
                        help="learning rate (learning_rate_init; default 0.001)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="mini-batch size (default: min(200, training rows), as the estimators)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                        help="the estimators' solver (default adam; sgd with momentum 0.9, Nesterov)")
    parser.add_argument("--alpha", type=non_negative_float, default=0.0001,
                        help="L2 penalty on the weights (default 0.0001)")
    parser.add_argument("--tol", type=non_negative_float, default=0.0001,
                        help="stop once the training loss (with --early-stopping: the validation score) has "
                             "not improved by this for --n-iter-no-change epochs (default 0.0001)")
    parser.add_argument("--n-iter-no-change", type=positive_int, default=10, metavar="N",
                        help="epochs without improvement before stopping (default 10)")
    parser.add_argument("--early-stopping", action="store_true",
                        help="stop on the validation rows' score instead of the training loss, and keep "
                             "the best epoch's weights (needs --validation above 0)")
    parser.add_argument("--validation", type=fraction, default=0.1, metavar="FRACTION",
                        help="fraction of rows held out for validation, 0 for none (default 0.1)")
    parser.add_argument("--seed", type=seed_type, default=0,
                        help="seed for the split, the initial weights and the shuffling (default 0)")
    parser.add_argument("--plot", default=None, metavar="CURVE.png",
                        help="also draw the loss per epoch to this image (.png, .svg, .pdf)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    add_data_options(parser)
    add_checkpoint_arguments(parser)


class _Recorder(Callback):
    """Keeps the fit's History (how it ended: interrupted, diverged, stopped early)."""

    history = None

    def on_train_begin(self, state):
        self.history = state.history


def run(args) -> int:
    from .. import __version__
    from ..tables import release_memory

    _check_outputs(args)
    _check_settings(args)
    table = read_table(args)
    pre, X, y, train_rows, val_rows = prepare(table, args)
    del table  # the network inputs are all that training needs
    release_memory()
    # one C-order copy with the training rows first (in their order): the training and validation
    # sets are then views, not two more copies of the data
    order = np.concatenate([train_rows, val_rows])
    X, y = X[order], y[order]
    train_rows, val_rows = np.arange(len(train_rows)), np.arange(len(train_rows), len(order))
    n_train = len(train_rows)
    fitted_y = y if pre.task == "classify" else pre.network_targets(y)[:, 0]
    _check_conv(pre, args)

    recorder = _Recorder()
    fit_kwargs = checkpoint_fit_kwargs(args, callbacks=[recorder, *build_callbacks(args)])
    est = build_estimator(pre, args, fit_kwargs["callbacks"])
    batch = min(200, n_train) if args.batch_size is None else args.batch_size
    note(f"{type(est).__name__} {'-'.join(map(str, [pre.n_inputs, *args.hidden, pre.n_outputs]))}"
         f"{' (conv ' + args.conv + ')' if args.conv else ''}: {n_train} training rows, {len(val_rows)} "
         f"validation rows, {args.optimizer} lr={args.lr:g}, batch size {batch}, at most {args.epochs} epochs")
    validation = {"X_val": X[n_train:], "y_val": fitted_y[n_train:]} if len(val_rows) else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(X[:n_train], fitted_y[:n_train], resume_from=fit_kwargs["resume_from"], **validation)
        except Exception:
            _explain_failure(recorder.history, args)
            raise
    history = recorder.history
    for warning in caught:  # the estimator's ConvergenceWarning and the like, as notes
        if not (history.interrupted and "interrupted" in str(warning.message)):  # said below
            note(str(warning.message))
    if history.interrupted:
        note(f"interrupted after {est.n_iter_} of {args.epochs} epochs; saving the model as it is now")

    network = est._network()
    metrics = _final_metrics(network, pre, X, pre.network_targets(y), y, train_rows, val_rows)
    curves = _curves(est, pre)
    metadata = pre.to_metadata()
    metadata.update(
        training={
            "data": Path(args.data).name, "missing": args.missing, "hidden": args.hidden, "activation": args.activation,
            "conv": args.conv, "input_shape": args.input_shape,
            "output_activation": network.layers[-1].activation.name, "loss": network.loss_fn.name,
            "optimizer": args.optimizer, "lr": args.lr, "batch_size": batch, "epochs": args.epochs,
            "epochs_run": est.n_iter_, "validation": args.validation, "early_stopping": args.early_stopping,
            "seed": args.seed, "n_train": len(train_rows), "n_validation": len(val_rows),
            "interrupted": history.interrupted, "stop_reason": history.stop_reason,
        },
        metrics=metrics,
        history=curves,
        backprop_version=__version__,
    )
    est.save(args.out, metadata=metadata)
    if args.plot and not est.n_iter_:
        note(f"no epoch finished, so no loss curve was drawn to {args.plot}")
    elif args.plot:
        from ..plots import plot_loss_curve

        plot_loss_curve(curves, args.plot, title=f"{network.title} on {Path(args.data).name}",
                        loss_name=f"loss ({network.loss_fn.name})")
        note(f"loss curve written to {args.plot}")
    _print_summary(args, est, network, pre, history, metrics)
    return 0


def build_callbacks(args) -> list:
    """The training callbacks other than checkpoints (``checkpoint_fit_kwargs`` adds those)."""
    from ..progress import ProgressBar

    return [] if args.quiet else [ProgressBar(desc="train")]


def build_estimator(pre, args, callbacks=None):
    """The MLPClassifier or MLPRegressor the options describe (every other parameter is the
    estimators' default)."""
    from ..estimators import MLPClassifier, MLPRegressor

    cls = MLPClassifier if pre.task == "classify" else MLPRegressor
    return cls(hidden_layer_sizes=tuple(args.hidden), activation=args.activation, solver=args.optimizer,
               alpha=args.alpha, batch_size="auto" if args.batch_size is None else args.batch_size,
               learning_rate_init=args.lr, max_iter=args.epochs, random_state=args.seed, tol=args.tol,
               n_iter_no_change=args.n_iter_no_change, early_stopping=args.early_stopping,
               validation_fraction=args.validation if args.validation > 0 else 0.1,
               conv=args.conv, input_shape=None if args.input_shape is None else tuple(args.input_shape),
               callbacks=callbacks)


def _check_settings(args) -> None:
    from .._validation import BackpropError

    if args.early_stopping and not args.validation > 0:
        raise BackpropError("`--early-stopping` stops on the validation rows: it needs `--validation` above 0; "
                            f"got --validation {args.validation:g}")
    if bool(args.conv) != bool(args.input_shape):
        raise BackpropError("`--conv` and `--input-shape` go together: give both to train a convolutional "
                            f"network; got --conv {args.conv!r} and --input-shape {args.input_shape!r}")


def _check_conv(pre, args) -> None:
    """A convolutional network's pixels: --input-shape C,H,W must match the feature columns."""
    from .._validation import BackpropError

    if args.input_shape is None:
        return
    C, H, W = args.input_shape
    if C * H * W != pre.n_inputs:
        raise BackpropError(f"`--input-shape` {C},{H},{W} needs {C * H * W} feature columns (the pixels in "
                            f"C-H-W order); got {pre.n_inputs}")


def _explain_failure(history, args) -> None:
    """Divergence (the engine's guard stopped training) leaves no model worth saving: say why
    (the guard names the likely cause) and keep any old file as it was."""
    from .._validation import BackpropError

    if history is not None and history.diverged:
        raise BackpropError(f"{history.divergence}; nothing was saved; try a smaller `--lr` "
                            f"(it was {args.lr:g})") from None


def _curves(est, pre) -> dict:
    """The per-epoch curves the estimator recorded: training loss (with the L2 penalty), and on
    the validation rows the loss and the score (accuracy, or R2)."""
    curves = {"loss": [float(v) for v in est.loss_curve_]}
    if est.validation_scores_ is not None:
        curves["val_loss"] = [float(v) for v in est.validation_loss_curve_]
        name = "val_accuracy" if pre.task == "classify" else "val_r2"
        curves[name] = [float(v) for v in est.validation_scores_]
    return curves


def split_rows(labels, n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows): ``fraction`` of the n rows held out at random under
    ``seed``, stratified by ``labels`` when every class has at least two rows (else a class of a
    single row is never held out)."""
    n_val = int(round(fraction * n))
    if fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    else:
        n_val = 0
    rows = np.arange(n)
    if n_val == 0:
        return rows, rows[:0]
    rng = np.random.default_rng(seed)
    if labels is not None:
        counts = np.bincount(labels)
        if counts[counts > 0].min() >= 2 and n_val >= np.count_nonzero(counts) and n - n_val >= np.count_nonzero(counts):
            from sklearn.model_selection import train_test_split

            train, val = train_test_split(rows, test_size=n_val, stratify=labels,
                                          random_state=int(rng.integers(2**31)))
            return np.sort(train), np.sort(val)
    order = rng.permutation(n)
    if labels is not None:  # a class of one row stays in training: the model must know every class
        single = np.bincount(labels)[labels] == 1
        order = np.concatenate([order[~single[order]], order[single[order]]])
        n_val = min(n_val, int(np.count_nonzero(~single)))
        if n_val == 0:
            return rows, rows[:0]
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _check_outputs(args) -> None:
    """Fail before training, not after: the output folders exist and nothing overwrites the data."""
    from .._validation import BackpropError

    out = Path(args.out)
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise BackpropError(f"`--out`: cannot write {args.out!r}: its folder does not exist")
    refuse_overwrite(args.out, args.data)
    if args.plot:
        from ..plots import check_plot_path

        check_plot_path(args.plot, "--plot")


def _features(table, args) -> list[str]:
    from .._validation import BackpropError

    table.require([args.target], "--target")
    if args.features is not None:
        if args.target in args.features:
            raise BackpropError(f"`--features` must not include the target column {args.target!r}")
        table.require(args.features, "features")
        return list(args.features)
    features = [c for c in table.columns if c != args.target]
    if not features:
        raise BackpropError(
            f"{table.source} has no feature columns besides the target {args.target!r}; "
            "it needs at least one column to learn from"
        )
    return features


def _text_columns(table, features) -> list[str]:
    """The features read as text; a column of numbers with a stray word is refused, naming it."""
    from .._validation import BackpropError

    text = []
    for name in features:
        if table.is_empty(name):
            raise BackpropError(
                f"{table.source}: column {name!r} (features) is empty in every one of its {table.n_rows} rows; "
                "fill it in or leave it out with --features")
        if table.is_text(name):
            import pyarrow.compute as pc

            from ..tables import _NUMBER

            values = table.texts(name).drop_null()
            numbers = pc.sum(pc.match_substring_regex(values, _NUMBER, ignore_case=True)).as_py() or 0
            if 2 * numbers >= len(values):  # mostly numbers: a typo, not categories
                table.numbers(name, "features")  # raises naming the first cell that is not a number
                continue  # all numbers once " NA "-like cells are missing: a numeric column
            text.append(name)
    return text


def _handle_missing(table, features, args):
    """Apply --missing to the feature columns and refuse a missing target; notes what was done."""
    from .._validation import BackpropError

    gaps = {name: table.missing(name) for name in [*features, args.target]}
    target_gap = gaps.pop(args.target)
    any_gap = np.logical_or.reduce(list(gaps.values()))
    if args.missing == "drop":
        drop = any_gap | target_gap
        if drop.all():
            raise BackpropError(f"{table.source}: every row has a missing cell, so --missing drop leaves no row; "
                                "use --missing impute or fill the cells in")
        if drop.any():
            note(f"dropped {int(drop.sum())} of {table.n_rows} rows with missing cells (--missing drop)")
            table = table.take(~drop)
        return table
    if target_gap.any():
        i = int(np.argmax(target_gap))
        raise BackpropError(
            f"{table.where(i)}: column {args.target!r} (target) has a missing value; fill it in, remove the "
            "row, or pass --missing drop")
    if args.missing == "error" and any_gap.any():
        i = int(np.argmax(any_gap))
        name = next(n for n, g in gaps.items() if g[i])
        raise BackpropError(
            f"{table.where(i)}: column {name!r} (features) must hold a value; got a missing cell (--missing "
            "error); fill it in, remove the row, or pass --missing impute")
    return table


def _targets(table, args):
    """(task, LabelEncoder or None, y: class indices or values)."""
    from .._validation import BackpropError
    from ..preprocessing import LabelEncoder, check_standardisable, detect_task_column

    task = args.task
    if task is None:
        task, reason = detect_task_column(table, args.target)
        note(f"task: {task}, because {reason}; pass --task to choose")
    if task == "regress":
        y = table.numeric([args.target], "target")
        check_standardisable(y, [args.target], table.where, "target")
        return task, None, y[:, 0]
    labels = table.strings(args.target, "target")
    encoder = LabelEncoder.fit(labels)
    if len(encoder) < 2:
        raise BackpropError(
            f"`--target` column {args.target!r} holds a single class ({encoder.classes[0]!r}) in all "
            f"{table.n_rows} rows; classification needs at least two classes"
        )
    if len(encoder) > max(10, table.n_rows // 2):
        note(f"{len(encoder)} classes in {table.n_rows} rows; for a numeric target use --task regress")
    return task, encoder, encoder.encode(labels, table, args.target)


def prepare(table, args):
    """(Preprocessor, network inputs X, targets y, training rows, validation rows) for train:
    the encoding and scalers are learned on the training rows only."""
    from ..preprocessing import Encoding, Preprocessor, Standardizer

    features = _features(table, args)
    text = _text_columns(table, features)
    if table.kind == "csv" and any(table.column(name).type != "string" for name in text):
        # bools or dates: read them again as the text they are, as predict will (TRUE stays TRUE)
        table = read_table(args, text_columns=text)
    table = _handle_missing(table, features, args)
    task, encoder, y = _targets(table, args)
    train_rows, val_rows = split_rows(y if task == "classify" else None, len(y), args.validation, args.seed)
    encoding, scaler = Encoding.fit(table, features, train_rows, text=text)
    pre = Preprocessor(task, features, args.target, scaler, encoder=encoder,
                       target_scaler=Standardizer.fit(y[train_rows], [args.target]) if task == "regress" else None,
                       encoding=encoding, binary=task == "classify" and len(encoder) == 2)
    notes: list[str] = []
    X = pre.transform(table, notes)
    for message in notes:
        note(message)
    return pre, X, y, train_rows, val_rows


def _read_task(table, args):
    """(task, feature names, LabelEncoder or None, raw features, target: class indices or values)
    for ``backprop tune``, whose estimators take numbers only: a text feature column is refused
    (``train`` one-hot encodes it)."""
    from .._validation import BackpropError
    from ..preprocessing import LabelEncoder, detect_task

    features = _features(table, args)
    for name in _text_columns(table, features):  # (a word among numbers is refused there, by line)
        first = table.texts(name).drop_null()[0].as_py()
        raise BackpropError(
            f"{table.source}: column {name!r} (features) holds text (e.g. {first!r}); this command takes "
            "numeric features only: leave it out with --features, or use `backprop train`, which "
            "one-hot encodes text columns")
    X_raw = table.numeric(features, "features")
    labels = table.strings(args.target, "target")
    task = args.task
    if task is None:
        task, reason = detect_task(labels)
        note(f"task: {task}, because {reason}; pass --task to choose")
    if task == "classify":
        encoder = LabelEncoder.fit(labels)
        if len(encoder) < 2:
            raise BackpropError(
                f"`--target` column {args.target!r} holds a single class ({encoder.classes[0]!r}) in all "
                f"{table.n_rows} rows; classification needs at least two classes"
            )
        if len(encoder) > max(10, table.n_rows // 2):
            note(f"{len(encoder)} classes in {table.n_rows} rows; for a numeric target use --task regress")
        return task, features, encoder, X_raw, encoder.encode(labels, table, args.target)
    return task, features, None, X_raw, table.numeric([args.target], "target")[:, 0]


def _batched_outputs(network, X, Y, rows, size: int = 1 << 15):
    """(outputs, loss) of ``rows`` in chunks of ``size`` rows: the hidden activations of one
    chunk at a time, not of every row (a 500,000-row file would hold them all at once)."""
    outs, total = [], 0.0
    mean = getattr(network.loss_fn, "reduction", "mean") == "mean"
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        outs.append(network.predict(X[chunk]))
        loss = network.loss(X[chunk], Y[chunk])
        total += loss * len(chunk) if mean else loss
    return np.concatenate(outs), (total / len(rows) if mean else total)


def _final_metrics(network, pre, X, Y, y, train_rows, val_rows) -> dict:
    from ._common import scores

    metrics = {}
    for prefix, rows in (("train", train_rows), ("val", val_rows)):
        if len(rows):
            out, metrics[f"{prefix}_loss"] = _batched_outputs(network, X, Y, rows)
            for name, value in scores(pre, out, y[rows]).items():
                metrics[f"{prefix}_{name}"] = value
    return metrics


def _print_summary(args, est, network, pre, history, metrics) -> None:
    what = "classes " + ", ".join(map(str, pre.encoder.classes)) if pre.task == "classify" else "regression"
    print(f"model: {args.out}")
    print(f"network: {network.title} ({network.n_params()} parameters), {what}")
    state = "interrupted" if history.interrupted else (
        "stopped: " + history.stop_reason if history.stop_reason else "done")
    print(f"epochs: {est.n_iter_} of {args.epochs} ({state})")
    for key, value in metrics.items():
        print(f"{key}: {value:.6g}")
