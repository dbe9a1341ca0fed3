"""Feature encoding and label encoding that travel inside a model file (JSON, no pickle).

- :class:`Encoding`: what ``backprop train`` learns from the feature columns: per column, the
  value that fills a missing cell (numeric: the median; text: the most frequent value) and, for a
  text column, its categories (one-hot encoded). It is fitted by scikit-learn's own transformers
  (a ColumnTransformer of SimpleImputer + StandardScaler for numbers, SimpleImputer + OneHotEncoder
  for text) and applied from the stored numbers with numpy (see :meth:`Encoding.encode`).
- :class:`Standardizer`: z = (x - mean) / scale, learned on the training rows.
- :class:`LabelEncoder`: class labels (text or integers, as read from CSV) <-> indices 0..K-1.
- :func:`detect_task`: classification or regression from a target column, with the reason.
- :class:`Preprocessor`: everything a model needs between a table and the network (feature
  names, encoding, scalers, classes); ``to_metadata()`` / ``from_metadata()`` give the model-file
  fields described in docs/model-format.md, and :func:`load_model` gives (network, preprocessor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from ._validation import BackpropError, check_choice, describe
from .csvdata import MISSING, Table, parse_number

__all__ = ["Standardizer", "LabelEncoder", "Preprocessor", "Encoding", "ColumnEncoding", "detect_task",
           "detect_task_column", "check_standardisable", "load_model", "TASKS",
           "MAX_AUTO_CLASSES", "MISSING_MODES"]

TASKS = ("classify", "regress")
MAX_AUTO_CLASSES = 10  # integer targets with at most this many distinct values are classes
MISSING_MODES = ("impute", "drop", "error")


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
    def fit(cls, X, names: Sequence[str] | None = None) -> "Standardizer":
        """Learn the column means and standard deviations of ``X`` (n, k); a constant column gets
        scale 1. Values so large that the variance overflows are refused, naming the column
        (``names``) and the fix."""
        X = np.asarray(X, dtype=np.float64)
        X = X.reshape(len(X), -1)
        check_standardisable(X, names)
        scale = X.std(axis=0)
        scale[~(scale > 0)] = 1.0
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


def check_standardisable(X: np.ndarray, names: Sequence[str] | None = None, where=None,
                         argument: str = "features") -> None:
    """Refuse columns of ``X`` whose variance would overflow float64 (sum of n squares above
    1.8e308: values beyond about 1e154 / sqrt(n)), or that hold non-finite values. ``where(i)``
    names row i of the file (its line)."""
    n = max(len(X), 1)
    limit = np.sqrt(np.finfo(np.float64).max / n) / 2
    with np.errstate(invalid="ignore"):
        big = np.nanmax(np.abs(X), axis=0, initial=0.0) if X.size else np.zeros(X.shape[1])
    for j in np.flatnonzero(~(big <= limit)):
        name = names[j] if names is not None else f"{j + 1}"
        i = int(np.nanargmax(np.abs(X[:, j])))
        at = f" ({where(i)})" if where is not None else ""
        value = float(X[i, j])
        if not np.isfinite(value):
            raise BackpropError(f"column {name!r} ({argument}) holds {value!r}{at}; every value must be a finite number; "
                                "replace it or remove the row")
        raise BackpropError(
            f"column {name!r} ({argument}) holds values too large to standardise: {value:.3g}{at} (the variance "
            f"overflows above {limit:.2g} for {n} rows); divide the column by a power of ten (e.g. "
            f"1e{int(np.log10(abs(value))) - 3}) before training"
            + (", or leave it out with --features" if argument == "features" else "")
        )


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

    def encode(self, labels: Sequence[str], table=None, column: str = "target") -> np.ndarray:
        """Indices of ``labels``; an unseen label is an error naming it (and its line when
        ``table`` is given)."""
        out = np.empty(len(labels), dtype=np.int64)
        for i, label in enumerate(labels):
            k = self._index.get(self._key(label))
            if k is None:
                where = f"{table.where(i)}: " if table is not None else ""
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

_NUMERIC, _TEXT = "numeric", "text"


def detect_task_column(frame, name: str) -> tuple[str, str]:
    """:func:`detect_task` for a column of a :class:`backprop.tables.Frame`, on its distinct
    values (no per-cell Python work for a numeric column)."""
    import pyarrow.compute as pc

    if frame.is_text(name):
        return detect_task(frame.strings(name, "target", allow_missing=True))
    col = frame.column(name).drop_null()
    distinct = np.asarray(pc.unique(col).to_numpy(zero_copy_only=False), dtype=np.float64)
    integers = bool(np.all(np.isfinite(distinct)) and np.all(distinct == np.round(distinct))
                    and np.all(np.abs(distinct) <= 2**53))
    if integers and len(distinct) <= MAX_AUTO_CLASSES and 2 * len(distinct) <= len(col):
        return "classify", f"the target holds {len(distinct)} distinct integer values"
    return "regress", f"the target holds numbers ({len(distinct)} distinct values)"


@dataclass
class ColumnEncoding:
    """One feature column: ``kind`` "numeric" (``fill`` is the median) or "text" (``fill`` is the
    most frequent value, ``categories`` the sorted values seen in training, one-hot encoded)."""

    name: str
    kind: str
    fill: float | str
    categories: list[str] | None = None

    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "fill": self.fill}
        if self.kind == _TEXT:
            out["categories"] = list(self.categories)
        return out

    @classmethod
    def from_dict(cls, data: Any, k: int) -> "ColumnEncoding":
        where = f"preprocessing.columns[{k}]"
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise BackpropError(f"`{where}` must be an object with a `name`; got {describe(data)}")
        kind, fill = data.get("kind"), data.get("fill")
        if kind == _NUMERIC:
            if not isinstance(fill, (int, float)) or isinstance(fill, bool) or not math.isfinite(fill):
                raise BackpropError(f"`{where}.fill` must be a finite number; got {describe(fill)}")
            return cls(data["name"], kind, float(fill))
        if kind == _TEXT:
            cats = data.get("categories")
            if (not isinstance(cats, list) or not cats or not all(isinstance(c, str) for c in cats)
                    or len(set(cats)) != len(cats)):
                raise BackpropError(f"`{where}.categories` must be a non-empty list of distinct strings; "
                                    f"got {describe(cats)}")
            if not isinstance(fill, str):
                raise BackpropError(f"`{where}.fill` must be a string; got {describe(fill)}")
            return cls(data["name"], kind, fill, list(cats))
        raise BackpropError(f"`{where}.kind` must be 'numeric' or 'text'; got {describe(kind)}")


class Encoding:
    """The feature columns' encoding: numeric columns (missing cells filled with the median) then
    the one-hot columns of the text columns (missing cells filled with the most frequent value;
    a value never seen in training gives all zeros). The network's inputs are, in order, the
    numeric columns in feature order, then for each text column in feature order one input per
    category (``input_names``): the order of scikit-learn's ColumnTransformer that fits it.

    Fitting uses scikit-learn (:meth:`fit`); applying (:meth:`encode`) uses the stored numbers
    with numpy and pyarrow rather than rebuilding fitted scikit-learn objects: a model file then
    needs no particular scikit-learn version (fitted attributes are private details that change),
    the matrix is filled column by column in place (no copy of the table per step), and an
    unseen category can be counted and reported. The tests check that the result equals the
    fitted ColumnTransformer's output.
    """

    def __init__(self, columns: Sequence[ColumnEncoding]):
        self.columns = list(columns)
        if not self.columns:
            raise BackpropError("`preprocessing.columns` must list at least one feature; got none")

    @property
    def numeric(self) -> list[ColumnEncoding]:
        return [c for c in self.columns if c.kind == _NUMERIC]

    @property
    def text(self) -> list[ColumnEncoding]:
        return [c for c in self.columns if c.kind == _TEXT]

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(c.categories) for c in self.text)

    @property
    def input_names(self) -> list[str]:
        """The network's inputs: "x" for a numeric column, "city=Paris" for a category."""
        return [c.name for c in self.numeric] + [f"{c.name}={v}" for c in self.text for v in c.categories]

    @staticmethod
    def transformer():
        """The unfitted scikit-learn ColumnTransformer this encoding is learned with (numeric
        then text columns; the numeric pipeline ends in the StandardScaler whose mean and scale
        the model's ``scaler`` keeps)."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        numeric = Pipeline([("impute", SimpleImputer(strategy="median", copy=False)),
                            ("scale", StandardScaler(copy=False))])
        text = Pipeline([("impute", SimpleImputer(strategy="most_frequent", missing_values=None)),
                         ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))])
        return numeric, text, ColumnTransformer

    @classmethod
    def fit(cls, frame, features: Sequence[str], rows: np.ndarray | None = None,
            text: Sequence[str] | None = None) -> tuple["Encoding", "Standardizer"]:
        """(encoding, scaler of the network inputs) learned on ``rows`` of ``frame`` (a
        :class:`backprop.tables.Frame`). ``text``: the text columns (default: those pyarrow read
        as text).

        The ColumnTransformer of :meth:`transformer` is fitted one column at a time: every
        statistic it learns (median, mean, scale, most frequent value, categories) depends on its
        own column only, so the result is the same as one fit on all columns (the tests check
        it), while a fit never holds more than copies of one column (a fit on the whole table
        copies it three times: the conversion to numpy, each step's output, the final hstack).
        """
        import warnings

        import pyarrow as pa

        text = [f for f in features if frame.is_text(f)] if text is None else list(text)
        take = None if rows is None else pa.array(np.asarray(rows, dtype=np.int64))
        where = (lambda i: frame.where(int(rows[i]))) if rows is not None else frame.where
        learned = {}
        for name in features:
            if name in text:
                column = frame.texts(name)
            else:
                x = frame.numbers(name)
                x = x if rows is None else x[rows]
                check_standardisable(x.reshape(-1, 1), [name], where)
                column = pa.array(x, type=pa.float64())
            column = column if take is None or name not in text else column.take(take)
            num_pipe, text_pipe, ColumnTransformer = cls.transformer()
            step = ("text", text_pipe) if name in text else ("numeric", num_pipe)
            ct = ColumnTransformer([(*step, [name])], sparse_threshold=0.0)
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                ct.fit(pa.table({name: column}))
            first, second = ct.named_transformers_[step[0]].named_steps.values()
            if name in text:
                categories = [str(v) for v in second.categories_[0]]
                learned[name] = (ColumnEncoding(name, _TEXT, str(first.statistics_[0]), categories),
                                 [0.0] * len(categories), [1.0] * len(categories))
            else:
                learned[name] = (ColumnEncoding(name, _NUMERIC, float(first.statistics_[0])),
                                 [float(second.mean_[0])], [float(second.scale_[0])])
        order = [n for n in features if n not in text] + [n for n in features if n in text]
        mean = [m for n in order for m in learned[n][1]]
        scale = [v for n in order for v in learned[n][2]]
        return cls([learned[n][0] for n in features]), Standardizer(mean, scale)

    def encode(self, frame, scaler: "Standardizer | None" = None, notes: list | None = None) -> np.ndarray:
        """The network inputs for every row of ``frame``: float64 (n_rows, width), missing cells
        filled, text one-hot encoded, then standardised by ``scaler`` (in place) when given.
        ``notes`` (a list) receives what a user should know: cells filled, values never seen."""
        import pyarrow as pa
        import pyarrow.compute as pc

        frame.require([c.name for c in self.columns], "features")
        n = frame.n_rows
        Z = np.zeros((n, self.width), dtype=np.float64, order="F")  # filled column by column
        filled = []
        numeric = self.numeric
        for j, col in enumerate(numeric):
            z = frame.numbers(col.name, "features", out=Z[:, j])
            gap = np.isnan(z)
            if gap.any():
                z[gap] = col.fill
                filled.append((int(gap.sum()), f"{col.name} ({int(gap.sum())}, with the median {col.fill:g})"))
            bad = ~np.isfinite(z)
            if bad.any():
                i = int(np.argmax(bad))
                raise BackpropError(f"{frame.where(i)}: column {col.name!r} (features) must hold a finite "
                                    f"number; got {float(z[i])!r}; replace it or remove the row")
        offset = len(numeric)
        for col in self.text:
            values = frame.texts(col.name)
            gaps = values.null_count
            if gaps:
                values = values.fill_null(col.fill)
                filled.append((gaps, f"{col.name} ({gaps}, with the most frequent value {col.fill!r})"))
            index = pc.index_in(values, value_set=pa.array(col.categories, type=pa.string()))
            seen = index.is_valid().to_numpy(zero_copy_only=False)
            k = index.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            rows = np.flatnonzero(seen)
            Z[rows, offset + k[rows]] = 1.0
            if not seen.all() and notes is not None:
                unseen = pc.value_counts(values.filter(pa.array(~seen)))
                pairs = sorted(((c.as_py(), v.as_py()) for v, c in zip(unseen.field("values"), unseen.field("counts"))),
                               key=lambda p: (-p[0], p[1]))
                shown = ", ".join(f"{v!r} ({c})" for c, v in pairs[:10]) + (", ..." if len(pairs) > 10 else "")
                notes.append(f"column {col.name!r}: {int((~seen).sum())} rows hold values never seen in training: "
                             f"{shown}; they are predicted with all-zero one-hot inputs for {col.name!r}")
            offset += len(col.categories)
        if filled and notes is not None:
            notes.append(f"filled {sum(c for c, _ in filled)} missing cells: " + "; ".join(t for _, t in filled))
        if scaler is not None:
            m = len(numeric)
            with np.errstate(all="ignore"):
                Z[:, :m] -= scaler.mean[:m]
                Z[:, :m] /= scaler.scale[:m]
            bad = ~np.isfinite(Z[:, :m])
            if bad.any():
                i, j = map(int, np.argwhere(bad)[0])
                raise BackpropError(
                    f"{frame.where(i)}: column {numeric[j].name!r} (features) holds a value the model cannot "
                    f"standardise (it overflows: (value - {scaler.mean[j]:.3g}) / {scaler.scale[j]:.3g}); the "
                    "model was trained on values far smaller; check the value")
        return Z

    def to_dict(self) -> dict:
        return {"version": 1, "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Any) -> "Encoding":
        if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
            raise BackpropError(f"`preprocessing` must be an object with a `columns` list; got {describe(data)}")
        if data.get("version", 1) != 1:
            raise BackpropError(f"`preprocessing.version` must be 1 (this backprop reads version 1); got "
                                f"{describe(data.get('version'))}; upgrade backprop")
        return cls([ColumnEncoding.from_dict(c, k) for k, c in enumerate(data["columns"])])

    def describe(self, scaler: "Standardizer | None" = None) -> list[tuple[str, str]]:
        """(column, how it is encoded) for ``backprop info``."""
        out, j = [], 0
        for col in self.numeric:
            how = f"numeric: missing -> median {col.fill:.6g}"
            if scaler is not None:
                how += f"; standardised with mean {scaler.mean[j]:.6g}, scale {scaler.scale[j]:.6g}"
            out.append((col.name, how))
            j += 1
        for col in self.text:
            shown = ", ".join(col.categories[:12]) + (f", ... ({len(col.categories)} in all)"
                                                       if len(col.categories) > 12 else "")
            out.append((col.name, f"text: one-hot of {len(col.categories)} categories ({shown}); "
                                  f"missing -> {col.fill!r}; unseen -> all zeros"))
        order = {c.name: k for k, c in enumerate(self.columns)}
        return sorted(out, key=lambda p: order[p[0]])


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
    encoding: Encoding | None = None  # None: a model file from before text/missing support
    binary: bool = False  # two classes on one logistic output (an estimator's file), not a softmax pair
    positional: bool = False  # features taken by position (an estimator fitted without column names)
    source: str = "backprop train"  # who wrote the model file, for messages

    def __post_init__(self):
        check_choice("task", self.task, TASKS)
        if self.encoding is not None and [c.name for c in self.encoding.columns] != list(self.features):
            raise BackpropError(f"`preprocessing.columns` must name the features {self.features} in order; got "
                                f"{[c.name for c in self.encoding.columns]}")
        if len(self.scaler.mean) != self.n_inputs:
            raise BackpropError(
                f"`scaler` must have one entry per {'feature' if self.encoding is None else 'network input'} "
                f"({self.n_inputs}); got {len(self.scaler.mean)}"
            )
        if self.task == "classify" and self.encoder is None:
            raise BackpropError("a classification model needs `classes`; got none")
        if self.task == "regress" and self.target_scaler is None:
            raise BackpropError("a regression model needs a `target_scaler`; got none")

    @property
    def standardised(self) -> bool:
        """Whether the network takes standardised inputs with a training mean and scale (a
        ``backprop train`` model); an estimator's file takes X as it is."""
        return self.source == "backprop train"

    @property
    def n_outputs(self) -> int:
        return len(self.encoder) if self.task == "classify" and not self.binary else 1

    @property
    def n_inputs(self) -> int:
        """The network's inputs: one per numeric feature and one per category of a text feature."""
        return self.encoding.width if self.encoding is not None else len(self.features)

    @property
    def text_features(self) -> list[str]:
        return [c.name for c in self.encoding.text] if self.encoding is not None else []

    # -- a model file from an estimator ------------------------------------------------------
    def with_target(self, target: str | None) -> "Preprocessor":
        """This preprocessor with its target column named (``--target``): an estimator's file
        does not know what its y column was called; a ``backprop train`` file does, and a
        different name is refused."""
        if target is None or target == self.target:
            return self
        if self.target is not None:
            raise BackpropError(f"`--target` must be the model's own target {self.target!r} (it was trained to "
                                f"predict that column); got {target!r}; leave --target out")
        if target in self.features and not self.positional:
            raise BackpropError(f"`--target` must not be one of the model's features; got {target!r}")
        return replace(self, target=target)

    def for_columns(self, columns: Sequence[str], source: str = "the data") -> "Preprocessor":
        """The preprocessor with concrete feature names for a table: a model fitted without column
        names takes, in order, every column but the target, and needs exactly as many as it was
        fitted on; any other model is returned as it is (its features are matched by name)."""
        if not self.positional:
            return self
        features = [c for c in columns if c != self.target]
        if len(features) != len(self.features):
            but = f" besides the target {self.target!r}" if self.target is not None else ""
            hint = ("" if self.target is not None and self.target in columns
                    else "; if one of them is the target, name it with --target")
            raise BackpropError(
                f"{source} must have {len(self.features)} feature columns{but}, as the model was fitted on "
                f"arrays without column names and takes the columns in order; got {len(features)} "
                f"({', '.join(features[:8])}{', ...' if len(features) > 8 else ''}){hint}")
        return replace(self, features=features, positional=False)

    # -- tables -> arrays --------------------------------------------------------------------
    def raw_features(self, table) -> np.ndarray:
        """The network's inputs before standardisation: the feature columns of ``table`` by name
        (any order, extras ignored), missing cells filled and text one-hot encoded."""
        if self.encoding is None:
            return table.numeric(self.features, argument="features")
        return self.encoding.encode(_frame(table))

    def transform(self, table, notes: list | None = None) -> np.ndarray:
        """Network inputs for ``table`` (a :class:`backprop.tables.Frame` or a
        :class:`backprop.csvdata.Table`): shape (n_rows, n_inputs). ``notes`` collects the cells
        filled and the categories never seen in training."""
        if self.encoding is None:  # the format before text columns: every feature numeric, none missing
            with np.errstate(all="ignore"):
                Z = self.scaler.transform(table.numeric(self.features, argument="features"))
            bad = ~np.isfinite(Z)
            if bad.any():
                i, j = map(int, np.argwhere(bad)[0])
                raise BackpropError(
                    f"{table.where(i)}: column {self.features[j]!r} (features) holds a value the model cannot "
                    "standardise (it overflows); the model was trained on values far smaller; check the value")
            return Z
        return self.encoding.encode(_frame(table), self.scaler, notes)

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
        if self.task == "classify" and self.binary:
            return np.asarray(y, dtype=np.float64).reshape(-1, 1)
        if self.task == "classify":
            return np.eye(len(self.encoder))[np.asarray(y, dtype=np.int64)]
        return self.target_scaler.transform(np.asarray(y).reshape(-1, 1))

    # -- network outputs -> answers --------------------------------------------------------------
    def decode(self, out: np.ndarray) -> np.ndarray:
        """Class indices (argmax of the outputs) or predicted values in the target's own units."""
        out = np.asarray(out, dtype=np.float64)
        if self.task == "classify" and self.binary:  # the estimator's rule: class 1 above 0.5
            return (out[:, 0] > 0.5).astype(np.int64)
        if self.task == "classify":
            return np.argmax(out, axis=1)
        return self.target_scaler.inverse_transform(out)[:, 0]

    def labels(self, indices) -> list:
        return self.encoder.decode(indices)

    def probabilities(self, out: np.ndarray) -> np.ndarray:
        """One probability column per class (a one-output binary model: 1 - p, p)."""
        out = np.asarray(out, dtype=np.float64)
        if self.task == "classify" and self.binary:
            return np.column_stack([1.0 - out[:, 0], out[:, 0]])
        return out

    # -- model file ------------------------------------------------------------------------------
    def to_metadata(self) -> dict:
        meta = {"task": self.task, "features": list(self.features), "target": self.target,
                "scaler": self.scaler.to_dict()}
        if self.encoding is not None:
            meta["preprocessing"] = self.encoding.to_dict()
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
            encoding = Encoding.from_dict(meta["preprocessing"]) if "preprocessing" in meta else None
            # a file of `backprop train` on the estimators: two classes on one logistic output
            fitted = meta.get("fitted") if meta.get("format") == ESTIMATOR_FORMAT else None
            binary = isinstance(fitted, dict) and fitted.get("y_type") == "binary"
            return cls(task, list(features), target, scaler, encoder, target_scaler, encoding, binary=binary)
        except BackpropError as exc:
            raise BackpropError(f"{source}: {exc}") from None


ESTIMATOR_FORMAT = "backprop.estimator"  # the "format" of a file written by MLPClassifier/MLPRegressor.save


def is_estimator_file(meta: Any) -> bool:
    """Whether a model file's metadata is an estimator's (``save``), not ``backprop train``'s."""
    return isinstance(meta, dict) and meta.get("format") == ESTIMATOR_FORMAT and "task" not in meta


def _class_label(value, source: str):
    """An estimator's class (int, bool, float, str) as the label the command line reads from a
    table: integers stay integers (an integral float too), anything else is its text."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return int(value)
    if isinstance(value, (str, float)):
        return str(value)
    raise BackpropError(f"{source}: `fitted.classes_` must hold numbers or text; got {describe(value)}")


def estimator_preprocessor(meta: dict, source: str = "the model") -> Preprocessor:
    """The preprocessor of a file written by ``MLPClassifier.save`` / ``MLPRegressor.save``: the
    network takes X as the estimator did (no scaling: identity scalers), its features are
    ``feature_names_in_`` (matched by name) or, for an estimator fitted on a plain array, the
    table's columns in order; the classes are ``classes_``. The target column is not known
    (``with_target`` names it)."""
    kind, fitted = meta.get("estimator"), meta.get("fitted")
    if kind not in ("MLPClassifier", "MLPRegressor") or not isinstance(fitted, dict):
        raise BackpropError(f"{source}: `estimator` must be 'MLPClassifier' or 'MLPRegressor' with its `fitted` "
                            f"attributes; got {describe(kind)}")
    n = fitted.get("n_features_in_")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise BackpropError(f"{source}: `fitted.n_features_in_` must be a positive integer; got {describe(n)}")
    names = fitted.get("feature_names_in_")
    positional = names is None
    if positional:
        names = [f"x{j}" for j in range(n)]
    elif not (isinstance(names, list) and len(names) == n and all(isinstance(c, str) for c in names)):
        raise BackpropError(f"{source}: `fitted.feature_names_in_` must be {n} column names; got {describe(names)}")
    identity = Standardizer(np.zeros(n), np.ones(n))
    written = f"{kind}.save"
    if kind == "MLPRegressor":
        if fitted.get("n_outputs_") != 1:
            raise BackpropError(f"{source}: the command line predicts one target column; this {kind} has "
                                f"{fitted.get('n_outputs_')} outputs; use the estimator itself (MLPRegressor.load)")
        return Preprocessor("regress", list(names), None, identity, target_scaler=Standardizer([0.0], [1.0]),
                            positional=positional, source=written)
    y_type, classes = fitted.get("y_type"), fitted.get("classes_")
    if y_type not in ("binary", "multiclass") or not isinstance(classes, list) or len(classes) < 2:
        raise BackpropError(f"{source}: the command line predicts one class per row from two or more classes; "
                            f"this MLPClassifier has {describe(y_type)} targets; use the estimator itself "
                            "(MLPClassifier.load)")
    encoder = LabelEncoder([_class_label(c, source) for c in classes])
    return Preprocessor("classify", list(names), None, identity, encoder=encoder, binary=y_type == "binary",
                        positional=positional, source=written)


def _frame(table):
    """A Frame for either table type (the strict cell reader's Table is converted)."""
    from .tables import frame_from_cells

    return frame_from_cells(table) if isinstance(table, Table) else table


def load_model(path) -> tuple[Any, Preprocessor]:
    """(network, preprocessor) of a model file written by ``backprop train`` or by an estimator's
    ``save`` (see :func:`estimator_preprocessor`); checks that the
    network's inputs and outputs fit the stored features and classes."""
    from .network import Network

    network = Network.load(path)
    source = f"`{path}`"
    meta = network.metadata
    if is_estimator_file(meta):
        pre = estimator_preprocessor(meta, source)
    else:
        pre = Preprocessor.from_metadata(meta, source)
    if network.n_inputs != pre.n_inputs or network.n_outputs != pre.n_outputs:
        raise BackpropError(
            f"{source}: the network has {network.n_inputs} inputs and {network.n_outputs} outputs but "
            f"the metadata describes {pre.n_inputs} inputs and {pre.n_outputs} outputs; the file is inconsistent"
        )
    return network, pre
