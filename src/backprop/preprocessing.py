"""Feature scaling and label encoding that travel inside a model file (JSON, no pickle).

- :class:`Standardizer`: z = (x - mean) / scale, learned on the training rows.
- :class:`LabelEncoder`: class labels (text or integers, as read from CSV) <-> indices 0..K-1.
- :func:`detect_task`: classification or regression from a target column, with the reason.
- :class:`Preprocessor`: everything a model needs between a CSV table and the network (feature
  names, scalers, classes); ``to_metadata()`` / ``from_metadata()`` give the model-file fields
  described in docs/model-format.md, and :func:`load_model` gives (network, preprocessor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ._validation import BackpropError, check_choice, describe
from .csvdata import MISSING, Table, parse_number

__all__ = ["Standardizer", "LabelEncoder", "Preprocessor", "detect_task", "load_model", "TASKS",
           "MAX_AUTO_CLASSES"]

TASKS = ("classify", "regress")
MAX_AUTO_CLASSES = 10  # integer targets with at most this many distinct values are classes


def _number_list(name: str, value: Any, positive: bool = False) -> np.ndarray:
    ok = isinstance(value, list) and value and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )
    if not ok or (positive and min(value) <= 0):
        kind = "positive finite numbers" if positive else "finite numbers"
        raise BackpropError(f"`{name}` must be a non-empty list of {kind}; got {describe(value)}")
    return np.asarray(value, dtype=np.float64)


class Standardizer:
    """Per-column standardisation z = (x - mean) / scale; a constant column gets scale 1."""

    def __init__(self, mean, scale):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.scale = np.asarray(scale, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.scale.shape:
            raise BackpropError(
                f"`scale` must have the shape of `mean` {self.mean.shape}; got {self.scale.shape}"
            )

    @classmethod
    def fit(cls, X) -> "Standardizer":
        """Learn the column means and standard deviations of ``X`` (n, k)."""
        X = np.asarray(X, dtype=np.float64)
        X = X.reshape(len(X), -1)
        with np.errstate(over="ignore", invalid="ignore"):  # |x| near 1e308: scale 1 below
            scale = X.std(axis=0)
        scale[~(scale > 0) | ~np.isfinite(scale)] = 1.0
        return cls(X.mean(axis=0), scale)

    def transform(self, X) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.scale

    def inverse_transform(self, Z) -> np.ndarray:
        return np.asarray(Z, dtype=np.float64) * self.scale + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: Any, name: str = "scaler") -> "Standardizer":
        if not isinstance(data, dict):
            raise BackpropError(f"`{name}` must be an object with `mean` and `scale`; got {describe(data)}")
        mean = _number_list(f"{name}.mean", data.get("mean"))
        scale = _number_list(f"{name}.scale", data.get("scale"), positive=True)
        if mean.shape != scale.shape:
            raise BackpropError(
                f"`{name}.scale` must have as many entries as `{name}.mean` ({len(mean)}); got {len(scale)}"
            )
        return cls(mean, scale)

    def __repr__(self) -> str:
        return f"Standardizer(mean={self.mean.tolist()}, scale={self.scale.tolist()})"


def _integer(text: str) -> int | None:
    value = parse_number(text)
    if value is None or not math.isfinite(value) or value != int(value) or abs(value) > 2**53:
        return None
    return int(value)


class LabelEncoder:
    """Class labels <-> indices. ``classes`` are integers when every label read is an integer
    ("1" and "1.0" are both class 1), else text; they are sorted, and index k is ``classes[k]``."""

    def __init__(self, classes: Sequence):
        classes = list(classes)
        numeric = all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
        text = all(isinstance(c, str) for c in classes)
        if not classes or not (numeric or text) or len(set(classes)) != len(classes):
            raise BackpropError(
                f"`classes` must be a non-empty list of distinct labels, all integers or all text; "
                f"got {describe(classes)}"
            )
        self.classes = classes
        self.numeric = numeric
        self._index = {c: k for k, c in enumerate(classes)}

    @classmethod
    def fit(cls, labels: Sequence[str]) -> "LabelEncoder":
        keys = [_integer(label) for label in labels]
        if keys and all(k is not None for k in keys):
            return cls(sorted(set(keys)))
        return cls(sorted({label.strip() for label in labels}))

    def _key(self, label: str):
        return _integer(label) if self.numeric else label.strip()

    def encode(self, labels: Sequence[str], table: Table | None = None, column: str = "target") -> np.ndarray:
        """Indices of ``labels``; an unseen label is an error naming it (and its line when
        ``table`` is given)."""
        out = np.empty(len(labels), dtype=np.int64)
        for i, label in enumerate(labels):
            k = self._index.get(self._key(label))
            if k is None:
                where = f"{table.source} line {table.lines[i]}: " if table is not None else ""
                known = ", ".join(map(repr, self.classes[:20])) + (", ..." if len(self.classes) > 20 else "")
                raise BackpropError(
                    f"{where}column {column!r} has the label {label!r}, which the model never saw in "
                    f"training; it knows {known}; remove those rows or retrain with them"
                )
            out[i] = k
        return out

    def decode(self, indices) -> list:
        return [self.classes[int(k)] for k in np.asarray(indices).reshape(-1)]

    def __len__(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return f"LabelEncoder({self.classes!r})"


def detect_task(labels: Sequence[str]) -> tuple[str, str]:
    """("classify" | "regress", reason) for a target column of text cells.

    Text labels mean classification; integers with at most MAX_AUTO_CLASSES distinct values (and
    fewer distinct values than half the rows) mean classification; other numbers, regression.
    """
    present = [t for t in labels if t.strip().lower() not in MISSING]
    text = next((t for t in present if parse_number(t) is None), None)
    if text is not None:
        return "classify", f"the target holds text labels (e.g. {text.strip()!r})"
    distinct = {_integer(t) for t in present}
    if None not in distinct and len(distinct) <= MAX_AUTO_CLASSES and 2 * len(distinct) <= len(present):
        return "classify", f"the target holds {len(distinct)} distinct integer values"
    n = len({parse_number(t) for t in present})
    return "regress", f"the target holds numbers ({n} distinct values)"


@dataclass
class Preprocessor:
    """What lies between a CSV table and a network: the feature columns (matched by name), their
    Standardizer, and the target's LabelEncoder (classify) or Standardizer (regress)."""

    task: str
    features: list[str]
    target: str | None
    scaler: Standardizer
    encoder: LabelEncoder | None = None
    target_scaler: Standardizer | None = None

    def __post_init__(self):
        check_choice("task", self.task, TASKS)
        if len(self.scaler.mean) != len(self.features):
            raise BackpropError(
                f"`scaler` must have one entry per feature ({len(self.features)}); got {len(self.scaler.mean)}"
            )
        if self.task == "classify" and self.encoder is None:
            raise BackpropError("a classification model needs `classes`; got none")
        if self.task == "regress" and self.target_scaler is None:
            raise BackpropError("a regression model needs a `target_scaler`; got none")

    @property
    def n_outputs(self) -> int:
        return len(self.encoder) if self.task == "classify" else 1

    # -- tables -> arrays --------------------------------------------------------------------
    def raw_features(self, table: Table) -> np.ndarray:
        """The model's feature columns of ``table`` by name (any order, extras ignored), unscaled."""
        return table.numeric(self.features, argument="features")

    def transform(self, table: Table) -> np.ndarray:
        """Scaled features of ``table``, ready for the network: shape (n_rows, n_features)."""
        return self.scaler.transform(self.raw_features(table))

    def has_target(self, table: Table) -> bool:
        return self.target is not None and self.target in table.columns

    def targets(self, table: Table) -> np.ndarray:
        """The target column: class indices (classify, unseen labels refused) or float values."""
        if self.target is None:
            raise BackpropError("the model does not name its target column; cannot read targets")
        if self.task == "classify":
            labels = table.strings(self.target, argument="target")
            return self.encoder.encode(labels, table, self.target)
        return table.numeric([self.target], argument="target")[:, 0]

    def network_targets(self, y: np.ndarray) -> np.ndarray:
        """What the network is trained on: one-hot rows (classify) or standardised values (regress)."""
        if self.task == "classify":
            return np.eye(len(self.encoder))[np.asarray(y, dtype=np.int64)]
        return self.target_scaler.transform(np.asarray(y).reshape(-1, 1))

    # -- network outputs -> answers --------------------------------------------------------------
    def decode(self, out: np.ndarray) -> np.ndarray:
        """Class indices (argmax of the outputs) or predicted values in the target's own units."""
        out = np.asarray(out, dtype=np.float64)
        if self.task == "classify":
            return np.argmax(out, axis=1)
        return self.target_scaler.inverse_transform(out)[:, 0]

    def labels(self, indices) -> list:
        return self.encoder.decode(indices)

    # -- model file ------------------------------------------------------------------------------
    def to_metadata(self) -> dict:
        meta = {"task": self.task, "features": list(self.features), "target": self.target,
                "scaler": self.scaler.to_dict()}
        if self.task == "classify":
            meta["classes"] = list(self.encoder.classes)
        else:
            meta["target_scaler"] = self.target_scaler.to_dict()
        return meta

    @classmethod
    def from_metadata(cls, meta: Any, source: str = "the model") -> "Preprocessor":
        """Rebuild from a model's metadata; a model without it (not written by ``backprop train``)
        gets a clear error."""
        if not isinstance(meta, dict) or "features" not in meta or "task" not in meta:
            raise BackpropError(
                f"{source} has no feature list or task in its metadata; it was not written by "
                "`backprop train` (expected `task`, `features`, `scaler`, ...; see docs/model-format.md)"
            )
        features = meta["features"]
        if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
            raise BackpropError(f"{source}: `features` must be a non-empty list of column names; got {describe(features)}")
        target = meta.get("target")
        if target is not None and not isinstance(target, str):
            raise BackpropError(f"{source}: `target` must be a column name; got {describe(target)}")
        try:
            task = check_choice("task", meta["task"], TASKS)
            scaler = Standardizer.from_dict(meta.get("scaler"), "scaler")
            encoder = LabelEncoder(meta.get("classes") or []) if task == "classify" else None
            target_scaler = (Standardizer.from_dict(meta.get("target_scaler"), "target_scaler")
                             if task == "regress" else None)
            return cls(task, list(features), target, scaler, encoder, target_scaler)
        except BackpropError as exc:
            raise BackpropError(f"{source}: {exc}") from None


def load_model(path) -> tuple[Any, Preprocessor]:
    """(network, preprocessor) of a model file written by ``backprop train``; checks that the
    network's inputs and outputs fit the stored features and classes."""
    from .network import Network

    network = Network.load(path)
    source = f"`{path}`"
    pre = Preprocessor.from_metadata(network.metadata, source)
    if network.n_inputs != len(pre.features) or network.n_outputs != pre.n_outputs:
        raise BackpropError(
            f"{source}: the network has {network.n_inputs} inputs and {network.n_outputs} outputs but "
            f"the metadata lists {len(pre.features)} features and {pre.n_outputs} outputs; the file is inconsistent"
        )
    return network, pre
