"""The step-through page of a convolution (``backprop explain --conv --format html``).

The same page as the dense one (``page.py``, ``page_template.html``), with another drawing: every
array of the step is a grid of cells (the input X per channel, the kernel K per filter and
channel, the bias b, the conv output Y, the activation A, the pool P, the target T) and the loss
a box. A step is one equation of :meth:`ConvDerivation.steps`, in its order: it highlights the
cell it computes and the cells its terms read (the equation's ``uses``), and writes its value
into that cell. The cells' names are the derivation's own (``X[0,1]``, ``K[0,0,1,1]``, ...), so a
reader can match the page, the text derivation and ``--format json`` name by name.

As on the dense page, every number is the engine's, formatted here with the text derivation's
``fmt``; the page's script only draws it.
"""

from __future__ import annotations

import re

import numpy as np

from .._validation import BackpropError, check_int
from .conv import ConvDerivation, explain_conv
from .symbols import fmt

__all__ = ["conv_page_model", "conv_to_html", "record_conv_training", "check_conv_drawable", "MAX_GRID_SIDE"]

MAX_GRID_SIDE = 8  # a grid with more rows or columns is refused unless force: the page would be unreadable

# layout, in SVG user units
_CELL_W, _CELL_H, _GAP, _CAPTION, _COL_GAP, _GRID_GAP, _MARGIN = 104, 68, 6, 24, 56, 30, 24

# dL/dY[0,1], dA/dY[0,1], K+[0,0], b, L+ ...: (derivative prefix, letter, after-step mark, index)
_NAME = re.compile(r"^(dL/d|dA/d)?([A-Za-z]+)(\+)?(\[[0-9,]+\])?$")


# -- the grids ------------------------------------------------------------------------------------
def _index_names(letter: str, shape: tuple[int, ...], lead: tuple[int, ...], channels: bool) -> list[list[str]]:
    """Rows of cell names of one 2-D grid of array ``letter`` at leading indices ``lead``."""
    h, w = shape
    prefix = lead if channels else ()
    return [[letter + "[" + ",".join(str(v) for v in (*prefix, i, j)) + "]" for j in range(w)] for i in range(h)]


def _grids(d: ConvDerivation) -> list[list[dict]]:
    """Columns of grids, left to right: X | K, b | Y | A | P | T. A grid is
    ``{caption, names}`` with ``names`` its rows of cell names."""
    ch = d.channels
    O, C = d.K.shape[:2]

    def per_channel(letter, array, caption):
        return [{"caption": caption + (f" (channel {o})" if ch else ""),
                 "names": _index_names(letter, array.shape[1:], (o,), ch)} for o in range(array.shape[0])]

    columns = [per_channel("X", d.X, "X, the input")]
    kernel = [{"caption": "K, the kernel" + (f" (filter {o}, channel {c})" if ch else ""),
               "names": _index_names("K", d.K.shape[2:], (o, c), ch)} for o in range(O) for c in range(C)]
    if d.b is not None:
        kernel.append({"caption": "b, the bias", "names": [["b" + (f"[{o}]" if ch else "") for o in range(O)]]})
    columns.append(kernel)
    columns.append(per_channel("Y", d.Y, "Y = X ⋆ K" + (" + b" if d.b is not None else "")))
    if d.has_activation:
        columns.append(per_channel("A", d.A, f"A = {d.activation.name}(Y)"))
    if d.P is not None:
        columns.append(per_channel("P", d.P, f"P = {d.pool['kind']}pool(A)"))
    columns.append(per_channel("T", d.T, "T, the target"))
    return columns


def check_conv_drawable(d: ConvDerivation, force: bool = False) -> None:
    """Refuse (unless ``force``) a step whose grids would be too large to read."""
    for column in _grids(d):
        for grid in column:
            h, w = len(grid["names"]), len(grid["names"][0])
            if max(h, w) > MAX_GRID_SIDE and not force:
                raise BackpropError(
                    f"`--format html` draws grids of at most {MAX_GRID_SIDE}x{MAX_GRID_SIDE} cells (the page would "
                    f"be unreadable); got {h}x{w} for {grid['caption'].split(',')[0]}; pass --force to draw it anyway")


def _graph(d: ConvDerivation) -> dict:
    nodes, x0, height = [], _MARGIN, 0.0
    for column in _grids(d):
        width = max(len(g["names"][0]) for g in column) * (_CELL_W + _GAP) - _GAP
        y0 = _MARGIN
        for grid in column:
            rows, cols = len(grid["names"]), len(grid["names"][0])
            gw = cols * (_CELL_W + _GAP) - _GAP
            nodes.append({"id": "caption:" + grid["names"][0][0], "shape": "caption", "kind": "caption",
                          "x": x0 + gw / 2, "y": y0 + _CAPTION / 2 - 4, "w": gw, "h": _CAPTION, "label": grid["caption"]})
            for i, row in enumerate(grid["names"]):
                for j, name in enumerate(row):
                    nodes.append({"id": f"c:{name}", "shape": "cell", "kind": name[0].lower(),
                                  "x": x0 + j * (_CELL_W + _GAP) + _CELL_W / 2,
                                  "y": y0 + _CAPTION + i * (_CELL_H + _GAP) + _CELL_H / 2, "w": _CELL_W, "h": _CELL_H})
            y0 += _CAPTION + rows * (_CELL_H + _GAP) - _GAP + _GRID_GAP
        height = max(height, y0 - _GRID_GAP + _MARGIN)
        x0 += width + _COL_GAP
    nodes.append({"id": "E", "shape": "box", "kind": "error", "x": x0 + _CELL_W / 2, "y": height / 2,
                  "w": _CELL_W, "h": _CELL_H * 0.7})
    return {"width": x0 + _CELL_W + _MARGIN, "height": height, "nodes": nodes, "edges": []}


def _cell_of(name: str) -> tuple[str, str] | None:
    """(element id, what the name is of it) for a quantity's name: ``value``, ``grad`` (dL/d..),
    ``slope`` (dA/dY, kept in the A cell), ``after`` (K+, Y+, L+ ...); None for ``lr`` and the
    padded or rotated helpers (Gpad, Krot), which have no cell."""
    m = _NAME.match(name)
    if m is None:
        return None
    deriv, letter, plus, index = m.groups()
    index = index or ""
    if letter == "L":
        return "E", ("after" if plus else "value")
    if letter not in "XKbYAPT" or len(letter) != 1:
        return None
    if deriv == "dA/d":
        return f"c:A{index}", "slope"
    return f"c:{letter}{index}", ("grad" if deriv else "after" if plus else "value")


_LINE = {"value": "= {}", "grad": "∂ = {}", "slope": "f′ = {}", "after": "⁺ = {}"}


def _initial_state(d: ConvDerivation, digits: int) -> dict:
    state = {}
    given = {"X": d.X, "K": d.K, "T": d.T}
    for node in _graph(d)["nodes"]:
        if node["shape"] == "caption":
            state[node["id"]] = [node["label"]]
        elif node["shape"] == "cell":
            state[node["id"]] = [node["id"][2:]]
    for letter, array in given.items():
        for index in np.ndindex(array.shape):
            shown = index if d.channels else index[-2:]
            key = f"c:{letter}[{','.join(map(str, shown))}]"
            state[key].append(_LINE["value"].format(fmt(array[index], digits)))
    if d.b is not None:
        for o, v in enumerate(d.b):
            key = f"c:b[{o}]" if d.channels else "c:b"
            state[key].append(_LINE["value"].format(fmt(v, digits)))
    state["E"] = ["L"]
    return state


# -- the steps ------------------------------------------------------------------------------------
def conv_page_model(d: ConvDerivation, digits: int = 9, force: bool = False) -> dict:
    """The page as data, in the dense page's shape (see ``page.py``): title, intro, drawing, steps."""
    from .page import equation_data

    check_conv_drawable(d, force)
    state = _initial_state(d, digits)
    notes_of = {s.key: s.text for s in d.sections}
    seen: set[str] = set()
    steps: list[dict] = []

    def add(section, title, equations, focus, uses, note=None):
        steps.append({"section": section, "title": title, "notes": [note] if note else [],
                      "equations": equations, "focus": sorted(set(focus)), "uses": sorted(set(uses) - set(focus)),
                      "state": {k: list(v) for k, v in state.items()}})

    def write(name, value):
        cell = _cell_of(name)
        if cell is None:
            return None
        key, what = cell
        text = fmt(value, digits)
        if key == "E":
            state["E"] = state["E"] + ([text] if what == "value" else [f"L⁺ = {text}"])
        else:
            state[key] = state[key] + [_LINE[what].format(text)]
        return key

    def cells(names):
        return [c[0] for c in map(_cell_of, names) if c is not None and c[0] in state]

    add("Starting values", "The convolution before the step", [], [], [])
    after = []
    for s in d.steps(digits):
        if s["section"] == "after":
            after.append(s)
            continue
        key = write(s["name"], s["value"])
        note = None
        if s["section"] not in seen:
            seen.add(s["section"])
            note = notes_of.get(s["section"])
        add(s["title"], s["text"].split(" = ")[0], [equation_data(s["tex"], s["text"])], [key] if key else [],
            cells(s["uses"]), note)
    focus = [write(s["name"], s["value"]) for s in after]
    add(after[0]["title"], "After the step", [equation_data(s["tex"], s["text"]) for s in after],
        [k for k in focus if k], [k for k in state if k.startswith(("c:K", "c:b"))], notes_of.get("after"))
    legend = ("Each cell shows its name and value; once the backward pass reaches it, ∂ = ∂L/∂ of that cell; "
              "f′ is the activation's derivative at Y; ⁺ is the value after the step.")
    pool = f" + {d.pool['kind']} pool" if d.pool is not None else ""
    title = f"One SGD step of a convolution (Conv2D{pool} + Flatten, half_sse, learning rate {fmt(d.lr, digits)})"
    return {"kind": "conv", "title": title, "intro": [legend], "graph": _graph(d), "steps": steps,
            "notes": list(d.notes), "digits": digits, "loss_label": "L"}


# -- many steps -----------------------------------------------------------------------------------
def record_conv_training(d: ConvDerivation, steps: int, digits: int = 9, progress=None) -> dict:
    """``steps`` SGD steps of the derivation's network on its sample, recorded as the dense page's
    ``record_training`` does (the loss after every step, the grids at a sample of the steps)."""
    from ..optimizers import SGD
    from .page import record_loop

    steps = check_int("steps", steps)
    net = d.network.copy()
    x, t = d.X[None], d.T.reshape(1, -1)
    optimizer = SGD(d.lr)

    def snapshot():
        s = explain_conv(net, d.X, d.T, lr=d.lr, force=True)
        state = _initial_state(s, digits)
        for letter, array in (("Y", s.Y), ("A", s.A if s.has_activation else None), ("P", s.P)):
            if array is None:
                continue
            for index in np.ndindex(array.shape):
                shown = index if s.channels else index[1:]
                state[f"c:{letter}[{','.join(map(str, shown))}]"].append(_LINE["value"].format(fmt(array[index], digits)))
        state["E"] = ["L", fmt(s.L, digits)]
        return s.L, state

    return record_loop(steps, lambda: net.train_step(x, t, optimizer), lambda: net.loss(x, t), snapshot,
                       digits, progress)


def conv_to_html(d: ConvDerivation, digits: int = 9, force: bool = False, training: dict | None = None) -> str:
    """The self-contained page of a convolution's step (and a training record)."""
    from .page import fill_template

    model = conv_page_model(d, digits, force)
    model["training"] = training
    return fill_template(model)
