"""Pieces shared by the CSV sub-commands: data-file options, argument types, stderr notes."""

from __future__ import annotations

import argparse
import sys

from ..tables import Frame

_DELIMITERS = {"comma": ",", ",": ",", "semicolon": ";", ";": ";", "tab": "\t", "\\t": "\t"}


def note(message: str) -> None:
    """A log line for the user: stderr, so stdout keeps only results."""
    print(f"[backprop] {message}", file=sys.stderr, flush=True)


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--delimiter`` and ``--no-header`` for commands that read a data file (CSV, TSV, compressed
    CSV or Parquet: see :func:`backprop.tables.read_table`)."""
    parser.add_argument("--delimiter", type=delimiter_type, default=None, metavar="D",
                        help="comma, semicolon or tab (default: guessed from the header line)")
    parser.add_argument("--no-header", action="store_true",
                        help="the file has no header line; columns are named column1, column2, ...")


def add_target_option(parser: argparse.ArgumentParser, flag: str = "--target") -> None:
    """The target column for a model file that does not name one (an estimator's save())."""
    parser.add_argument(flag, dest="target", default=None, metavar="COLUMN",
                        help="the target column, for a model saved by MLPClassifier/MLPRegressor.save "
                             "(a `backprop train` model names its own)")


def read_table(args, text_columns=()) -> Frame:
    """The data file of ``args`` (``text_columns`` are read as text whatever they hold)."""
    from ..tables import read_table as read

    return read(args.data, header=not args.no_header, delimiter=args.delimiter, text_columns=text_columns)


def delimiter_type(text: str) -> str:
    key = text.lower() if len(text) > 1 else text
    if key not in _DELIMITERS:
        raise argparse.ArgumentTypeError(f"must be comma, semicolon or tab; got {text!r}")
    return _DELIMITERS[key]


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}; got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _integer(text, 1)


def seed_type(text: str) -> int:
    return _integer(text, 0)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def positive_float(text: str) -> float:
    value = _float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}")
    return value


def fraction(text: str) -> float:
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1); got {text!r}")
    return value


def hidden_sizes(text: str) -> list[int]:
    """"32,16" -> [32, 16]; "" or "none" -> [] (no hidden layer)."""
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive layer sizes like 32,16 (or none); got {text!r}"
        )
    return sizes


def image_shape(text: str) -> list[int]:
    """"1,8,8" -> [1, 8, 8] (channels, height, width)."""
    try:
        shape = [int(part) for part in text.split(",")]
    except ValueError:
        shape = []
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"must be three positive integers C,H,W like 1,8,8; got {text!r}")
    return shape


def column_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"must be comma-separated column names like a,b,c; got {text!r}")
    return names


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Plain text table: numbers right-aligned, text left-aligned."""
    from ..csvdata import parse_number

    cells = [[str(c) for c in r] for r in [header] + rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(header))]
    numeric = [all(parse_number(r[j]) is not None for r in cells[1:]) for j in range(len(header))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def regression_scores(y_true, y_pred) -> dict:
    """R2 = 1 - SS_res / SS_tot, MAE and RMSE, in the target's own units: scikit-learn's metric
    functions, the ones ``MLPRegressor.score`` uses (a constant target scores 1 when predicted
    exactly, else 0, as there)."""
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return {"r2": float(r2_score(y_true, y_pred)), "mae": float(mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred)))}


def scores(pre, out, y) -> dict:
    """Accuracy (classify) or R2/MAE/RMSE (regress) of network outputs ``out`` against ``y``
    (class indices or target values)."""
    import numpy as np

    predicted = pre.decode(out)
    if pre.task == "classify":
        from sklearn.metrics import accuracy_score  # MLPClassifier.score's

        return {"accuracy": float(accuracy_score(np.asarray(y), predicted))}
    return regression_scores(y, predicted)


def model_and_data(args, check=None):
    """(network, preprocessor, table, scaled features) for ``args.model`` and ``args.data``;
    the model's features are matched by name, and unused columns are mentioned on stderr.
    ``check(network, preprocessor)`` may refuse the model before the data is read."""
    from ..preprocessing import load_model

    network, pre = load_model(args.model)
    pre = pre.with_target(getattr(args, "target", None))
    if check is not None:
        check(network, pre)
    table = read_table(args, text_columns=pre.text_features)
    pre = pre.for_columns(table.columns, f"`data` {table.source}")
    notes: list[str] = []
    X = pre.transform(table, notes)
    for message in notes:
        note(message)
    unused = [c for c in table.columns if c not in pre.features and c != pre.target]
    if unused:
        note(f"ignoring columns the model does not use: {', '.join(unused)}")
    return network, pre, table, X


def network_outputs(network, X, pre, table):
    """``network.predict(X)``, refusing a row whose outputs are not finite (its inputs lie far
    beyond the training data) with its line and the input furthest from the training range."""
    import numpy as np

    from .._validation import BackpropError

    with np.errstate(all="ignore"):
        out = network.predict(X)
        bad = ~np.all(np.isfinite(out), axis=1)
        if pre.task == "regress":  # the answer in the target's units may overflow on its own
            bad |= ~np.isfinite(pre.decode(out))
    if bad.any():
        i = int(np.argmax(bad))
        names = pre.encoding.input_names if pre.encoding is not None else list(pre.features)
        j = int(np.argmax(np.abs(X[i])))
        how = (f"lies {abs(X[i, j]):.3g} standard deviations from the training mean" if pre.standardised
               else f"holds {X[i, j]:.3g}, the largest input")
        raise BackpropError(
            f"{table.where(i)}: the network's output overflows for this row: column {names[j].split('=')[0]!r} "
            f"{how}; check the value, or retrain on data that covers it"
        )
    if not pre.standardised:  # an estimator's file: no training mean or scale to compare with
        return out
    far = np.abs(X) > FAR
    if far.any():
        i, j = map(int, np.argwhere(far)[0])
        names = pre.encoding.input_names if pre.encoding is not None else list(pre.features)
        note(f"{int(far.any(axis=1).sum())} rows hold values more than {FAR:g} standard deviations from the "
             f"training mean (first: {table.where(i)}, column {names[j]!r}); their predictions are extrapolations")
    return out


FAR = 1e3  # standardised inputs beyond this many standard deviations get a note at predict


def refuse_overwrite(out, *inputs) -> None:
    """Never write an output over one of the input files."""
    from pathlib import Path

    from .._validation import BackpropError

    if out is None or str(out) == "-" or not Path(out).exists():
        return
    for path in inputs:
        if Path(path).exists() and Path(out).resolve() == Path(path).resolve():
            raise BackpropError(f"`--out` must not overwrite the input file {str(path)!r}; choose another name")
