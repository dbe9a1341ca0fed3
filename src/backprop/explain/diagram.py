"""The network drawn before and after the step, values on neurons and edges (matplotlib).

Needs the ``plot`` extra (``pip install backprop[plot]``). ``draw(derivation, "net.png")``
writes a PNG or SVG (atomically); each panel shows every weight on its edge (blue positive,
red negative, width by size), each neuron's net input and output, and the error.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .._validation import BackpropError
from ..io import atomic_write_bytes
from .symbols import fmt
from .trace import Derivation

__all__ = ["draw", "FORMATS"]

FORMATS = ("png", "svg")
DX, DY, R = 3.0, 1.7, 0.55  # column spacing, row spacing, neuron radius


def _positions(d: Derivation) -> list[list[tuple[float, float]]]:
    """(x, y) of every neuron: one column per layer, each column centred on y = 0."""
    columns = [d.input_names] + [layer.neurons for layer in d.layers]
    return [[(DX * c, DY * ((len(col) - 1) / 2 - k)) for k in range(len(col))] for c, col in enumerate(columns)]


def _short(value: float) -> str:
    return f"{float(value):.4g}"


def _panel(ax, d: Derivation, after: bool, digits: int) -> None:
    pos = _positions(d)
    columns = [d.input_names] + [layer.neurons for layer in d.layers]
    wmax = max(float(np.max(np.abs(layer.W_after if after else layer.W))) for layer in d.layers) or 1.0
    for layer in d.layers:
        W = layer.W_after if after else layer.W
        src, dst = pos[layer.index - 1], pos[layer.index]
        n_out = len(dst)
        for i, (x0, y0) in enumerate(src):
            for j, (x1, y1) in enumerate(dst):
                w = W[i, j]
                ax.plot([x0, x1], [y0, y1], color="tab:blue" if w >= 0 else "tab:red",
                        lw=0.6 + 2.4 * abs(w) / wmax, alpha=0.55, zorder=1)
                # labels at staggered points along the edge so that crossing edges stay readable
                t = 0.36 + 0.28 * j / max(n_out - 1, 1)
                ax.text(x0 + t * (x1 - x0), y0 + t * (y1 - y0),
                        f"{layer.weight_names[i][j]}={_short(w)}", fontsize=7, ha="center", va="center",
                        zorder=3, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    for c, col in enumerate(columns):
        for k, name in enumerate(col):
            x, y = pos[c][k]
            ax.add_patch(_circle(x, y, c))
            if c == 0:
                label = f"{name}\n{_short(d.x[k])}"
            else:
                layer = d.layers[c - 1]
                net = layer.net_after if after else layer.net
                out = layer.out_after if after else layer.out
                label = f"{name}\nnet {_short(net[k])}\nout {_short(out[k])}"
                if layer.bias_names is not None:
                    b = layer.b_after if after else layer.b
                    label += f"\n{layer.bias_names[k]}={_short(b[k])}"
            ax.text(x, y, label, fontsize=7.5, ha="center", va="center", zorder=5)
    for k, name in enumerate(d.output_names):
        x, y = pos[-1][k]
        ax.text(x + R + 0.1, y, f"target {_short(d.y[k])}", fontsize=7.5, ha="left", va="center")
    error = d.E_after if after else d.E_total
    title = "after the step" if after else "before the step"
    ax.set_title(f"{title}: E_total = {fmt(error, digits)}", fontsize=10)
    ax.set_xlim(-R - 0.2, DX * (len(columns) - 1) + R + 1.6)
    ys = [y for col in pos for _, y in col]
    ax.set_ylim(min(ys) - R - 0.2, max(ys) + R + 0.2)
    ax.set_aspect("equal")
    ax.axis("off")


def _circle(x, y, column):
    from matplotlib.patches import Circle

    colour = "#e8f0fe" if column == 0 else "#fff4e0"
    return Circle((x, y), R, fc=colour, ec="0.3", lw=1.0, zorder=4)


def draw(d: Derivation, path, digits: int = 9) -> Path:
    """Draw ``d`` before and after its step into ``path`` (.png or .svg)."""
    path = Path(path)
    fmt_ = path.suffix.lower().lstrip(".")
    if fmt_ not in FORMATS:
        raise BackpropError(f"`diagram` must be a .png or .svg file name; got {str(path)!r}")
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise BackpropError("the diagram needs matplotlib: pip install 'backprop[plot]'") from None
    columns = 1 + len(d.layers)
    tallest = max([len(d.input_names)] + [len(layer.neurons) for layer in d.layers])
    fig, axes = plt.subplots(2, 1, figsize=(2.2 * columns + 1.4, 2 * (1.25 * tallest + 0.9)))
    try:
        for ax, after in zip(axes, (False, True)):
            _panel(ax, d, after, digits)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt_, dpi=150)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
