"""One CSV row as a sample for a saved model (``backprop explain --model --data --row``).

Reads the file with the project's CSV reader and prepares the row exactly as ``backprop predict``
does (features by name, the model's scaler); the target becomes what the network was trained on
(one-hot classes, or the standardised value for regression).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .._validation import BackpropError
from ..csvdata import is_missing, read_csv
from ..preprocessing import Preprocessor

__all__ = ["sample_from_csv"]


def sample_from_csv(pre: Preprocessor, path, row: int):
    """(x, y, notes) for data row ``row`` (1-based, after the header) of the CSV ``path``."""
    table = read_csv(path)
    if pre.target is None:
        raise BackpropError(f"`--target-column` must name the column of true values in `{path}`: the model was "
                            f"written by {pre.source}, which does not record what its y was called; got none")
    pre = pre.for_columns(table.columns, f"`--data` {table.source}")
    if not 1 <= row <= table.n_rows:
        raise BackpropError(f"`--row` must be between 1 and {table.n_rows} for `{path}`; got {row}")
    if not pre.has_target(table):
        raise BackpropError(f"`--data` must have the target column {pre.target!r} to explain a training step; "
                            f"`{path}` has {', '.join(table.columns)}")
    one = replace(table, rows=table.rows[row - 1 : row], lines=table.lines[row - 1 : row])
    x = pre.transform(one)[0]
    y = pre.network_targets(pre.targets(one))[0]
    raw = dict(zip(table.columns, one.rows[0]))
    notes = [f"Row {row} of {table.source} (line {one.lines[0]}): " + ", ".join(_inputs(pre, one, raw)),
             "The inputs are standardised as the model was trained: i = (value - mean) / scale."
             if pre.standardised else f"The inputs are the cells as they are ({pre.source} models take X unscaled)."]
    if pre.task == "classify" and pre.binary:
        first, second = pre.encoder.classes
        notes.append(f"Target {pre.target} = {raw[pre.target]}: t = {float(np.asarray(y).ravel()[0]):g} on the "
                     f"one logistic output o1 (0 = {first}, 1 = {second}).")
    elif pre.task == "classify":
        names = ", ".join(f"o{j} = {c}" for j, c in enumerate(pre.encoder.classes, 1))
        notes.append(f"Target {pre.target} = {raw[pre.target]} (one-hot); outputs {names}.")
    else:
        notes.append(f"Target {pre.target} = {raw[pre.target]}, standardised like the training target: "
                     f"t = {float(np.asarray(y).ravel()[0]):.9g}." if pre.standardised else f"Target {pre.target} = "
                     f"{raw[pre.target]}: t = {float(np.asarray(y).ravel()[0]):.9g}.")
    return x, np.atleast_1d(y), notes


def _inputs(pre: Preprocessor, one, raw: dict) -> list[str]:
    """What each network input is for this row: a numeric column's cell, or a text column's
    category with its one-hot value (1 for the row's category, 0 for the others)."""
    if pre.encoding is None:
        return [f"i{k} = {c} ({raw[c]})" for k, c in enumerate(pre.features, 1)]
    values = pre.raw_features(one)[0]
    out = []
    for k, (name, value) in enumerate(zip(pre.encoding.input_names, values), 1):
        if name in raw:
            cell = raw[name].strip()
            out.append(f"i{k} = {name} ({cell if cell else f'empty, filled with {value:.9g}'})")
        else:
            out.append(f"i{k} = [{name}] ({value:.9g})")
    for column in pre.encoding.text:
        cell = raw.get(column.name, "")
        if is_missing(cell):
            chosen = [n for n, x in zip(pre.encoding.input_names, values) if n.startswith(column.name + "=") and x == 1]
            out.append(f"{column.name} is empty here, filled as [{chosen[0] if chosen else 'no category'}]")
    return out
