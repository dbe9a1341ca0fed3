"""Pictures of training: the loss curve and 2-D decision regions (matplotlib, the `plot` extra).

matplotlib is imported only when a plot is drawn, and only its object-oriented API is used (a
``Figure`` with the Agg canvas), so no global backend is switched. Files are written atomically;
the format follows the file name's suffix (.png, .svg or .pdf).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ._validation import BackpropError

__all__ = ["check_plot_path", "plot_loss_curve", "plot_decision_boundary", "FORMATS"]

FORMATS = ("png", "svg", "pdf")


def _matplotlib():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise BackpropError(
            "plots need matplotlib, which is not installed; install it with "
            "`pip install 'backprop[plot]'` (or `pip install matplotlib`)"
        ) from None
    return Figure


def check_plot_path(path: str | os.PathLike, argument: str = "--out") -> str:
    """Check, before any long work, that a plot can be written to ``path``; returns the format."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise BackpropError(
            f"`{argument}` must end in {', '.join('.' + f for f in FORMATS)}; got {str(path)!r}"
        )
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise BackpropError(f"`{argument}`: cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    _matplotlib()
    return fmt


def _save(fig, path) -> Path:
    from .io import atomic_write_bytes

    fmt = check_plot_path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def plot_loss_curve(history: dict[str, Sequence[float]], path, *, title: str = "Training loss",
                    loss_name: str = "loss") -> Path:
    """Training loss (and validation loss when present) per epoch; a log scale when the loss
    spans more than two decades."""
    Figure = _matplotlib()
    loss = np.asarray(history.get("loss", []), dtype=np.float64)
    if loss.size == 0:
        raise BackpropError("`history` must hold at least one epoch of `loss`; got none")
    val = np.asarray(history.get("val_loss", []), dtype=np.float64)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    epochs = np.arange(1, loss.size + 1)
    ax.plot(epochs, loss, label="training loss", color="tab:blue", marker="o" if loss.size == 1 else None)
    if val.size:
        ax.plot(np.arange(1, val.size + 1), val, label="validation loss", color="tab:orange",
                linestyle="--", marker="o" if val.size == 1 else None)
    both = np.concatenate([loss, val])
    positive = both[both > 0]
    if positive.size == both.size and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(loss_name)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    path,
    *,
    task: str = "classify",
    point_values: np.ndarray | None = None,
    class_names: Sequence[str] = (),
    feature_names: Sequence[str] = ("x1", "x2"),
    title: str = "Decision regions",
    resolution: int = 200,
) -> Path:
    """Regions of the plane by predicted class (classify) or a filled contour of the predicted
    value (regress), with the points ``X`` (n, 2) on top.

    ``predict(grid)`` takes raw feature rows (m, 2) and returns class indices or values.
    ``point_values`` colours the points (true class indices or values); None draws them plain.
    """
    Figure = _matplotlib()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise BackpropError(f"`X` must have shape (n_samples, 2); got shape {X.shape}")
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = np.where(hi > lo, 0.08 * (hi - lo), 1.0)
    g1 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    g2 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    G1, G2 = np.meshgrid(g1, g2)
    Z = np.asarray(predict(np.column_stack([G1.ravel(), G2.ravel()]))).reshape(G1.shape)

    fig = Figure(figsize=(6.4, 5.2))
    ax = fig.add_subplot()
    if task == "classify":
        from matplotlib import colormaps
        from matplotlib.colors import BoundaryNorm, ListedColormap
        from matplotlib.lines import Line2D

        k = max(len(class_names), int(Z.max()) + 1)
        base = colormaps["tab10" if k <= 10 else "tab20"]
        colors = [base(i % base.N) for i in range(k)]
        cmap, norm = ListedColormap(colors), BoundaryNorm(np.arange(-0.5, k + 0.5), k)
        ax.contourf(G1, G2, Z, levels=np.arange(-0.5, k + 0.5), cmap=cmap, norm=norm, alpha=0.3)
        ax.contour(G1, G2, Z, levels=np.arange(0.5, k - 0.5), colors="k", linewidths=0.8)
        if point_values is not None:
            ax.scatter(X[:, 0], X[:, 1], c=np.asarray(point_values), cmap=cmap, norm=norm,
                       edgecolors="k", linewidths=0.5, s=22)
            handles = [Line2D([], [], marker="o", linestyle="", markerfacecolor=colors[i],
                              markeredgecolor="k", label=str(name)) for i, name in enumerate(class_names)]
            ax.legend(handles=handles, title="class", loc="best", fontsize="small")
        else:
            ax.scatter(X[:, 0], X[:, 1], c="k", s=12)
    else:
        filled = ax.contourf(G1, G2, Z, levels=20, cmap="viridis", alpha=0.8)
        fig.colorbar(filled, ax=ax, label="prediction")
        if point_values is not None:
            ax.scatter(X[:, 0], X[:, 1], c=np.asarray(point_values), cmap="viridis",
                       norm=filled.norm, edgecolors="w", linewidths=0.6, s=22)
        else:
            ax.scatter(X[:, 0], X[:, 1], c="w", edgecolors="k", s=14)
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    ax.set_title(title)
    return _save(fig, path)
