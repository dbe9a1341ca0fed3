"""One CSV row as a sample for a saved model (``backprop explain --model --data --row``).

Deliberately minimal and isolated: it follows the model-metadata convention
``{"task": "classify"|"regress", "features": [...], "target": name, "classes": [...],
"scaler": {"mean": [...], "scale": [...]}}`` and reads one row with the standard ``csv``
module. When the project's CSV loader and preprocessing exist, this is the one function to
replace with them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .._validation import BackpropError

__all__ = ["sample_from_csv"]


def _row(path: Path, row: int) -> dict:
    if row < 1:
        raise BackpropError(f"`--row` must be a data row number >= 1 (1 is the row after the header); got {row}")
    count = 0
    with open(path, newline="", encoding="utf-8") as fh:
        for count, record in enumerate(csv.DictReader(fh), start=1):
            if count == row:
                return record
    raise BackpropError(f"`--row` must be between 1 and {count} for `{path}`; got {row}")


def sample_from_csv(metadata: dict, path, row: int, n_inputs: int, n_outputs: int):
    """(x, y, notes) for data row ``row`` (1-based, after the header) of the CSV ``path``."""
    path = Path(path)
    features, target = metadata.get("features"), metadata.get("target")
    if not isinstance(features, list) or not isinstance(target, str):
        raise BackpropError("`--model` must be a model saved with `features` and `target` in its metadata "
                            "(as `backprop train` saves them); got metadata keys "
                            f"{sorted(metadata) or 'none'}")
    if len(features) != n_inputs:
        raise BackpropError(f"`--model` metadata lists {len(features)} features for a network with {n_inputs} inputs")
    record = _row(path, row)
    missing = [c for c in features + [target] if c not in record]
    if missing:
        raise BackpropError(f"`--data` must have the model's columns; `{path}` lacks {', '.join(missing)}")
    try:
        x = np.array([float(record[c]) for c in features])
    except ValueError:
        raise BackpropError(f"`--data` row {row} must have numeric features; got "
                            f"{[record[c] for c in features]}") from None
    notes = [f"Row {row} of {path.name}: " + ", ".join(f"i{k} = {c} ({record[c]})" for k, c in enumerate(features, 1))]
    scaler = metadata.get("scaler")
    if scaler:
        x = (x - np.asarray(scaler["mean"], dtype=float)) / np.asarray(scaler["scale"], dtype=float)
        notes.append("The inputs are standardised as the model was trained: i = (value - mean) / scale.")
    if metadata.get("task") == "classify":
        classes = [str(c) for c in metadata.get("classes", [])]
        if record[target] not in classes:
            raise BackpropError(f"`--data` row {row} has {target} = {record[target]!r}, not one of the model's "
                                f"classes {classes}")
        k = classes.index(record[target])
        y = np.array([float(k)]) if n_outputs == 1 else np.eye(n_outputs)[k]
        names = ", ".join(f"o{j} = {c}" for j, c in enumerate(classes, 1)) if n_outputs > 1 else f"o1 = P({classes[-1]})"
        notes.append(f"Target {target} = {record[target]}; outputs {names}.")
    else:
        y = np.array([float(record[target])])
        notes.append(f"Target o1 = {target} ({record[target]}).")
    return x, y, notes
