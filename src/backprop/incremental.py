"""Out-of-core training: ``partial_fit`` over a Parquet dataset read one row group at a time
(pyarrow), in this process or on the workers of a Dask cluster.

Two passes, never holding more than one row group in memory:

1. statistics: each piece (a row group of one file) gives its row count, column means and sums of
   squared deviations, and its target's classes; the pieces' moments are merged exactly (Chan et
   al.'s pairwise update) into the StandardScaler the whole table would give;
2. training: for each epoch, the pieces in an order drawn from ``seed``
   (``numpy.random.default_rng(seed)``, one permutation per epoch), each piece scaled and handed to
   ``estimator.partial_fit`` (one pass over that piece in mini-batches).

On a cluster (``client=``) the statistics of the pieces are computed in parallel where the data
is, and the training pass is a chain of tasks: the estimator (a few kilobytes) travels to the
worker that reads the next piece, so the data never goes through the client. The workers must
see the same paths (a shared filesystem or an object-store URL that pyarrow opens).

Why not dask-ml's ``Incremental``: it does work with this scikit-learn (dask-ml 2025.1.0, checked),
but it feeds blocks of a dask array, so a Parquet table would go through dask.dataframe and
pandas first, it brings dask-glm and multipledispatch along, it has no scaling pass, and each
``fit`` is one pass in a fixed block order; the loop here is shorter than the glue it would need.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validation import BackpropError

__all__ = ["pieces", "fit_parquet", "IncrementalModel"]


def pieces(source) -> list[tuple[str, int]]:
    """(file, row group) for every row group of the Parquet file or folder of files ``source``."""
    import pyarrow.parquet as pq

    path = Path(source)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*.parquet"))
    elif path.exists():
        files = [str(path)]
    else:
        raise BackpropError(f"`source` must be a Parquet file or a folder of them; {str(source)!r} does not exist")
    if not files:
        raise BackpropError(f"`source` {str(source)!r} holds no .parquet files")
    return [(f, i) for f in files for i in range(pq.ParquetFile(f).num_row_groups)]


def _read(piece, features, target):
    import pyarrow.parquet as pq

    path, group = piece
    table = pq.ParquetFile(path).read_row_group(group, columns=[*features, target])
    X = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in features])
    y = table.column(target).to_numpy(zero_copy_only=False)
    return X, y


def _stats(piece, features, target, classify):
    X, y = _read(piece, features, target)
    mean = X.mean(axis=0)
    stats = {"n": len(X), "mean": mean, "m2": ((X - mean) ** 2).sum(axis=0)}
    if classify:
        stats["classes"] = np.unique(y)
    else:
        y = y.astype(np.float64)
        stats["y"] = (len(y), y.mean(), float(((y - y.mean()) ** 2).sum()))
    return stats


def _merge(a, b):
    """Chan et al.: the (n, mean, M2) of two groups of rows from each group's."""
    n = a[0] + b[0]
    delta = b[1] - a[1]
    return n, a[1] + delta * b[0] / n, a[2] + b[2] + delta**2 * a[0] * b[0] / n


def _scale(var):
    scale = np.sqrt(var)
    return np.where(scale > 0, scale, 1.0)


def _partial_fit(estimator, piece, features, target, mean, scale, y_mean, y_scale, classes):
    X, y = _read(piece, features, target)
    X = (X - mean) / scale
    if classes is not None:
        return estimator.partial_fit(X, y, classes=classes)
    return estimator.partial_fit(X, (y.astype(np.float64) - y_mean) / y_scale)


@dataclass
class IncrementalModel:
    """The result: the scaler's statistics, the target's (regression) and the fitted estimator."""

    estimator: object
    features: list
    target: str
    mean: np.ndarray
    scale: np.ndarray
    n_rows: int
    classes: np.ndarray | None = None
    y_mean: float = 0.0
    y_scale: float = 1.0

    def predict(self, X) -> np.ndarray:
        out = self.estimator.predict((np.asarray(X, dtype=np.float64) - self.mean) / self.scale)
        return out if self.classes is not None else out * self.y_scale + self.y_mean

    def save(self, path) -> None:
        """A model file of ``backprop train``'s schema: the estimator's file with the
        standardisation beside it (predict, evaluate, info and ``load`` read it)."""
        from .preprocessing import LabelEncoder, Standardizer
        from .tune import model_from_parts

        classify = self.classes is not None
        estimator, pre = model_from_parts(
            self.estimator, "classify" if classify else "regress", self.features, self.target,
            Standardizer(self.mean, self.scale),
            encoder=LabelEncoder(self.classes.tolist()) if classify else None,
            target_scaler=None if classify else Standardizer([self.y_mean], [self.y_scale]))
        meta = pre.to_metadata()
        meta["training"] = {"out_of_core": True, "rows": self.n_rows, "estimator": type(self.estimator).__name__}
        estimator.save(path, metadata=meta)


def fit_parquet(source, target: str, estimator, *, features=None, epochs: int = 1, seed: int = 0,
                client=None) -> IncrementalModel:
    """Train ``estimator`` (an MLPClassifier or MLPRegressor with solver adam or sgd) on the
    Parquet data at ``source`` one row group at a time, ``epochs`` passes; on the Dask cluster of
    ``client`` when given. Features are standardised with the whole table's statistics (and the
    target too for a regressor). ``features`` defaults to every column but ``target``."""
    import pyarrow.parquet as pq
    from sklearn.base import clone, is_classifier

    from ._validation import check_int

    check_int("epochs", epochs)
    parts = pieces(source)
    names = pq.ParquetFile(parts[0][0]).schema_arrow.names
    if target not in names:
        raise BackpropError(f"`target` must be a column of the data ({', '.join(names)}); got {target!r}")
    features = [c for c in names if c != target] if features is None else list(features)
    missing = [c for c in features if c not in names]
    if missing or not features:
        raise BackpropError(f"`features` must be columns of the data ({', '.join(names)}); got {features!r}")
    classify = is_classifier(estimator)
    if client is None:
        stats = [_stats(p, features, target, classify) for p in parts]
    else:
        stats = client.gather(client.map(_stats, parts, features=features, target=target, classify=classify,
                                         pure=False))
    n, mean, m2 = stats[0]["n"], stats[0]["mean"], stats[0]["m2"]
    for s in stats[1:]:
        n, mean, m2 = _merge((n, mean, m2), (s["n"], s["mean"], s["m2"]))
    scale = _scale(m2 / n)
    classes, y_mean, y_scale = None, 0.0, 1.0
    if classify:
        classes = np.unique(np.concatenate([s["classes"] for s in stats]))
    else:
        yn, y_mean, y_m2 = stats[0]["y"]
        for s in stats[1:]:
            yn, y_mean, y_m2 = _merge((yn, y_mean, y_m2), s["y"])
        y_scale = float(_scale(np.array(y_m2 / yn)))
    est = clone(estimator)
    rng = np.random.default_rng(seed)
    args = dict(features=features, target=target, mean=mean, scale=scale, y_mean=y_mean, y_scale=y_scale,
                classes=classes)
    for _ in range(epochs):
        order = rng.permutation(len(parts))
        for k in order:
            if client is None:
                est = _partial_fit(est, parts[k], **args)
            else:  # a chain of tasks: the estimator moves to the next piece's worker
                est = client.submit(_partial_fit, est, parts[k], pure=False, **args)
    if client is not None:
        est = est.result()
    return IncrementalModel(est, features, target, mean, scale, int(n), classes, float(y_mean), y_scale)
