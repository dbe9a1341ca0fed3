"""The step-through page: one self-contained HTML file of a Derivation (``--format html``).

Python lays the page out as data and embeds it: the drawing (nodes and edges with positions),
then a list of *steps*, each with the equations it shows (MathML converted by latex2mathml from
the same LaTeX face the Markdown and LaTeX renderings use, plus the text face), the elements it
highlights and the label of every element after it. ``--steps N`` adds a training record: the
error after each of N steps and snapshots of the network at a sample of them. The template's
script (``page_template.html``) only draws that data; it computes nothing, so every number on
the page is the engine's, formatted here with the text derivation's ``fmt``.

The page model is generic on purpose: a step is ``{section, title, notes, equations, focus,
uses, state}`` over element ids, and nodes carry their own positions and shapes, so another
derivation (a convolution drawn as grids of cells, say) can build the same model.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from .._validation import BackpropError, check_int
from .render import Eq, Heading, Para, Table, blocks
from .symbols import fmt
from .trace import Derivation, explain

__all__ = ["page_model", "to_html", "record_training", "record_loop", "network_of", "MAX_DRAWN_NEURONS",
           "MAX_SNAPSHOTS", "MAX_CURVE_POINTS", "equation_mathml", "equation_data", "fill_template", "derivation_html"]

MAX_DRAWN_NEURONS = 10  # a wider layer is refused unless force: its labels would overlap
MAX_SNAPSHOTS = 60  # networks recorded along a --steps run (the error curve keeps every step up to..)
MAX_CURVE_POINTS = 20001  # ..this many points; longer runs are sampled evenly, first and last kept

# layout of the drawing, in SVG user units
_COL, _ROW, _NODE_W, _NODE_H, _MARGIN = 330, 116, 150, 90, 30


# -- equations -------------------------------------------------------------------------------------
def equation_tex(eq: Eq) -> str:
    return eq.lhs.tex + " = " + " = ".join(p.tex for p in eq.parts)


def equation_text(eq: Eq) -> str:
    """The equation's text face, as the text derivation prints it (on one line)."""
    return eq.lhs.text + " = " + " = ".join(p.text for p in eq.parts)


def equation_mathml(eq: Eq, display: str = "inline") -> str:
    return _mathml(equation_tex(eq), display)


def _mathml(tex: str, display: str = "inline") -> str:
    from latex2mathml.converter import convert

    return convert(tex, display=display)


def equation_data(tex: str, text: str) -> dict:
    """An equation as the page shows it: MathML from its LaTeX face, and its text face."""
    return {"mathml": _mathml(tex), "text": text}


def _eq_data(eq: Eq) -> dict:
    return equation_data(equation_tex(eq), equation_text(eq))


# -- the drawing -----------------------------------------------------------------------------------
def check_drawable(d: Derivation, force: bool = False) -> None:
    widths = [len(d.input_names)] + [len(layer.neurons) for layer in d.layers]
    widest = max(widths)
    if widest > MAX_DRAWN_NEURONS and not force:
        layer = widths.index(widest)
        raise BackpropError(
            f"`--format html` draws at most {MAX_DRAWN_NEURONS} neurons per layer (the page would be "
            f"unreadable); got {widest} in layer {layer} of {'-'.join(map(str, widths))}; pass --force to draw it anyway"
        )


def _graph(d: Derivation) -> dict:
    columns = [d.input_names] + [layer.neurons for layer in d.layers]
    tallest = max(len(c) for c in columns)
    height = 2 * _MARGIN + tallest * _ROW
    nodes, edges, pos = [], [], {}

    def y_of(k, n):
        return _MARGIN + (tallest - n) * _ROW / 2 + k * _ROW + _ROW / 2

    for c, names in enumerate(columns):
        for k, name in enumerate(names):
            x, y = _MARGIN + _NODE_W / 2 + c * _COL, y_of(k, len(names))
            pos[name] = (x, y)
            kind = "input" if c == 0 else d.layers[c - 1].kind
            nodes.append({"id": f"n:{name}", "shape": "neuron", "kind": kind, "x": x, "y": y,
                          "w": _NODE_W if c else _NODE_W * 0.75, "h": _NODE_H})
    tx = _MARGIN + _NODE_W / 2 + len(columns) * _COL - 40
    for k, name in enumerate(d.output_names):
        nodes.append({"id": f"t:{name}", "shape": "box", "kind": "target", "x": tx, "y": pos[name][1],
                      "w": _NODE_W + 30, "h": _NODE_H * 0.7})
    ex = tx + _COL * 0.75
    nodes.append({"id": "E", "shape": "box", "kind": "error", "x": ex, "y": height / 2, "w": _NODE_W + 40,
                  "h": _NODE_H * 0.55})
    for layer in d.layers:
        n_out = len(layer.neurons)
        for j, to in enumerate(layer.neurons):
            for i, src in enumerate(layer.inputs):
                t = 0.25 if (i + j) % 2 == 0 else 0.72  # crossing edges get their labels apart
                edges.append({"id": f"e:{layer.weight_names[i][j]}", "from": f"n:{src}", "to": f"n:{to}",
                              "label_t": t})
    for name in d.output_names:
        edges.append({"id": f"l:{name}", "from": f"n:{name}", "to": f"t:{name}", "label_t": 0.5, "plain": True})
        edges.append({"id": f"l:E{name}", "from": f"t:{name}", "to": "E", "label_t": 0.5, "plain": True})
    return {"width": ex + _NODE_W / 2 + 20 + _MARGIN, "height": height, "nodes": nodes, "edges": edges}


def _initial_state(d: Derivation, digits: int) -> dict:
    f = lambda v: fmt(v, digits)  # noqa: E731
    state = {}
    for name, v in zip(d.input_names, d.x):
        state[f"n:{name}"] = [name, f(v)]
    for layer in d.layers:
        for j, name in enumerate(layer.neurons):
            lines = [name]
            if layer.bias_names is not None:
                lines.append(f"{layer.bias_names[j]} = {f(layer.b[j])}")
            state[f"n:{name}"] = lines
        for i in range(len(layer.inputs)):
            for j in range(len(layer.neurons)):
                w = layer.weight_names[i][j]
                state[f"e:{w}"] = [f"{w} = {f(layer.W[i, j])}"]
    for name, v in zip(d.output_names, d.y):
        state[f"t:{name}"] = [f"target_{name}", f(v)]
    state["E"] = ["E_total"]
    return state


# -- the steps -------------------------------------------------------------------------------------
def page_model(d: Derivation, digits: int = 9, force: bool = False) -> dict:
    """The page as data: title, intro, drawing, steps (see the module docstring)."""
    check_drawable(d, force)
    f = lambda v: fmt(v, digits)  # noqa: E731
    by_tag: dict[tuple, list[Eq]] = {}
    section_of: dict[tuple, str] = {}
    section_notes: dict[str, list[str]] = {}
    title, intro, section, notes = "", [], None, []
    for block in blocks(d, digits):
        if isinstance(block, Heading):
            if block.level == 0:
                title = block.text
            elif block.level == 1:
                section = block.text
                section_notes.setdefault(section, [])
        elif isinstance(block, Para):
            (section_notes[section] if section else intro).append(block.text)
        elif isinstance(block, Eq):
            by_tag.setdefault(block.tag, []).append(block)
            section_of.setdefault(block.tag, section)
        elif isinstance(block, Table):
            pass  # the starting values and the final table are the drawing's labels

    state = _initial_state(d, digits)
    steps: list[dict] = []
    used_sections: set[str] = set()

    def add(tag_list, title_, focus, uses, changes):
        eqs = [eq for tag in tag_list for eq in by_tag.get(tag, [])]
        sec = section_of.get(tag_list[0]) if tag_list else None
        step_notes = []
        if sec is not None and sec not in used_sections:
            used_sections.add(sec)
            step_notes = section_notes.get(sec, [])
        for key, lines in changes.items():
            state[key] = lines
        steps.append({"section": sec or "Starting values", "title": title_, "notes": step_notes,
                      "equations": [_eq_data(eq) for eq in eqs], "focus": sorted(set(focus)),
                      "uses": sorted(set(uses) - set(focus)), "state": {k: list(v) for k, v in state.items()}})

    add([], "The network before the step", [], [], {})
    # forward, neuron by neuron
    for layer in d.layers:
        for j, name in enumerate(layer.neurons):
            lines = state[f"n:{name}"][:] + [f"net = {f(layer.net[j])}", f"out = {f(layer.out[j])}"]
            add([("forward", name)], f"Forward: {name}", [f"n:{name}"],
                [f"n:{s}" for s in layer.inputs] + [f"e:{layer.weight_names[i][j]}" for i in range(len(layer.inputs))],
                {f"n:{name}": lines})
    # the error
    changes = {"E": ["E_total", f(d.E_total)]}
    if d.errors is not None:
        for name in d.output_names:
            changes[f"t:{name}"] = state[f"t:{name}"] + [f"E_{name} = {f(d.errors['E_' + name])}"]
    add([("error", None)], "The error", ["E"] + [f"t:{n}" for n in d.output_names],
        [f"n:{n}" for n in d.output_names] + [f"l:{n}" for n in d.output_names] + [f"l:E{n}" for n in d.output_names],
        changes)
    # backward, layer by layer (last first), then each of the layer's weight and bias updates
    for layer in reversed(d.layers):
        changes = {f"n:{name}": state[f"n:{name}"][:] + [f"δ = {f(layer.delta[j])}"] for j, name in enumerate(layer.neurons)}
        if layer.kind == "output":
            uses = ["E"] + [f"t:{n}" for n in d.output_names]
            what = "the output layer"
        else:
            nxt = d.layers[layer.index]
            uses = [f"n:{n}" for n in nxt.neurons] + [f"e:{w}" for row in nxt.weight_names for w in row]
            what = "the hidden layer" if len(d.layers) == 2 else f"hidden layer {layer.index}"
        add([("delta", n) for n in layer.neurons], f"Backward: {what} (deltas)",
            [f"n:{n}" for n in layer.neurons], uses, changes)
        for j, name in enumerate(layer.neurons):
            for i, src in enumerate(layer.inputs):
                w = layer.weight_names[i][j]
                add([("weight", w)], f"Update {w} ({src} → {name})", [f"e:{w}"], [f"n:{src}", f"n:{name}"],
                    {f"e:{w}": [f"{w} = {f(layer.W[i, j])}", f"{w}⁺ = {f(layer.W_after[i, j])}"]})
            if layer.bias_names is not None and layer.bias_trained:
                b = layer.bias_names[j]
                lines = [line if not line.startswith(f"{b} = ") else f"{b} = {f(layer.b[j])} → {f(layer.b_after[j])}"
                         for line in state[f"n:{name}"]]
                add([("bias", b)], f"Update {b}", [f"n:{name}"], [], {f"n:{name}": lines})
    add([("after", None)], "After the step", ["E"], [e["id"] for e in _graph(d)["edges"] if e["id"].startswith("e:")],
        {"E": ["E_total", f"{f(d.E_total)} → {f(d.E_after)}"]})
    return {"kind": "dense", "title": title, "intro": intro, "graph": _graph(d), "steps": steps,
            "notes": list(d.notes), "digits": digits, "loss_label": "E_total"}


# -- many steps ------------------------------------------------------------------------------------
def network_of(d: Derivation):
    """The network the derivation started from, rebuilt from its recorded weights and settings."""
    from ..layers import Dense
    from ..network import Network

    layers = []
    for layer in d.layers:
        n_in, n_out = layer.W.shape
        kwargs = {"use_bias": False} if layer.bias_names is None else {
            "bias_init": layer.b.copy(), "trainable_bias": layer.bias_trained}
        layers.append(Dense(n_in, n_out, layer.activation, weight_init=layer.W.copy(), **kwargs))
    return Network(layers, loss=d.loss)


def _snapshot_steps(n: int, count: int) -> list[int]:
    """Steps done (0..n) at which the network is recorded: 0, then roughly geometric, then n."""
    if n + 1 <= count:
        return list(range(n + 1))
    picks = np.unique(np.round(np.geomspace(1, n, count - 1)).astype(int))
    return [0] + [int(k) for k in picks]


def record_training(d: Derivation, steps: int, digits: int = 9, progress=None) -> dict:
    """Run ``steps`` SGD steps of the derivation's network on its sample (as seed 002's loop does)
    and record the error after every step and the network's numbers at a sample of the steps.

    ``curve["E"][i]`` is E_total after ``curve["k"][i]`` steps (k = 0: before the first).
    ``progress(done, total)`` is called now and then (the CLI shows a bar with it).
    """
    from ..optimizers import SGD

    steps = check_int("steps", steps)
    net = network_of(d)
    x, y = d.x[None, :], d.y[None, :]
    optimizer = SGD(d.lr)

    def snapshot():
        s = explain(net, x, y, lr=d.lr, force=True)
        return s.E_total, _snapshot_state(s, digits)

    return record_loop(steps, lambda: net.train_step(x, y, optimizer), lambda: net.loss(x, y), snapshot,
                       digits, progress)


def record_loop(steps: int, step, loss, snapshot, digits: int = 9, progress=None) -> dict:
    """The training record of a page: ``step()`` (one SGD step, returns the loss before it) run
    ``steps`` times, ``loss()`` after the last, ``snapshot()`` -> (loss, drawing labels) at the
    recorded steps (0, 1, 2, then roughly geometric, and the last)."""
    if steps < 1:
        raise BackpropError(f"`--steps` must be a positive integer; got {steps}")
    wanted = set(_snapshot_steps(steps, MAX_SNAPSHOTS))
    E = np.empty(steps + 1)
    snapshots = []
    every = max(1, steps // 100)
    for k in range(steps + 1):
        if k in wanted:
            value, state = snapshot()
            snapshots.append({"k": k, "E": float(value), "state": state})
        if k == steps:
            E[k] = loss()
            break
        E[k] = step()
        if progress is not None and (k + 1) % every == 0:
            progress(k + 1, steps)
    if E.size > MAX_CURVE_POINTS:
        ks = np.unique(np.round(np.linspace(0, steps, MAX_CURVE_POINTS)).astype(int))
    else:
        ks = np.arange(steps + 1)
    return {"steps": steps, "curve": {"k": [int(k) for k in ks], "E": [float(E[k]) for k in ks]},
            "labels": {"E_max": fmt(E.max(), digits), "E_min": fmt(E.min(), digits)}, "snapshots": snapshots}


def _snapshot_state(s: Derivation, digits: int) -> dict:
    """The drawing's labels of a network: its weights and its forward pass."""
    f = lambda v: fmt(v, digits)  # noqa: E731
    state = _initial_state(s, digits)
    for layer in s.layers:
        for j, name in enumerate(layer.neurons):
            state[f"n:{name}"] += [f"net = {f(layer.net[j])}", f"out = {f(layer.out[j])}"]
    state["E"] = ["E_total", f(s.E_total)]
    return state


# -- the file --------------------------------------------------------------------------------------
def _template() -> str:
    return resources.files(__package__).joinpath("page_template.html").read_text(encoding="utf-8")


def _embed(data: dict) -> str:
    # inside <script type="application/json">: no "</" may appear, so that "</script>" cannot end it
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def to_html(d: Derivation, digits: int = 9, force: bool = False, training: dict | None = None) -> str:
    """The self-contained page: the template with the page model (and a training record) embedded."""
    model = page_model(d, digits, force)
    model["training"] = training
    return fill_template(model)


def fill_template(model: dict) -> str:
    """The template with a page model embedded (dense here, a convolution's in ``conv_page``)."""
    return _template().replace("{{TITLE}}", _escape(model["title"])).replace("{{DATA}}", _embed(model))


# -- Jupyter ----------------------------------------------------------------------------------------
def derivation_html(d, digits: int = 9) -> str:
    """An HTML fragment of the whole derivation with MathML equations (``_repr_html_`` of a
    ``Derivation`` and of a ``ConvDerivation``)."""
    from .conv import ConvDerivation

    if isinstance(d, ConvDerivation):
        from .conv_render import blocks as conv_blocks

        laid_out = conv_blocks(d, digits)
    else:
        laid_out = blocks(d, digits)
    out = []
    for block in laid_out:
        if isinstance(block, Heading):
            level = {0: 3, 1: 4, 2: 5}.get(block.level, 6)
            out.append(f"<h{level}>{_escape(block.text)}</h{level}>")
        elif isinstance(block, Para):
            out.append(f"<p>{_escape(block.text)}</p>")
        elif isinstance(block, Eq):
            out.append(f'<div title="{_escape(equation_text(block))}">{equation_mathml(block)}</div>')
        elif isinstance(block, Table):
            head = "".join(f"<th>{_escape(c)}</th>" for c in block.header)
            rows = "".join("<tr>" + "".join(f"<td>{_escape(c)}</td>" for c in r) + "</tr>" for r in block.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return '<div class="backprop-derivation">' + "\n".join(out) + "</div>"
