"""Render a Derivation: terminal text, Markdown with $$ math, a LaTeX document, and a JSON dict.

The derivation is first laid out as a list of blocks (headings, prose, equations, tables) in
the seed's order (forward pass, errors, output layer, hidden layers, updates); each format then
writes the blocks its own way. Equations read ``lhs = rule = numbers substituted = result``; the
result is always the engine's number (read by ``trace.explain``), never recomputed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .symbols import TIMES, M, fmt, join, number, param, partial, tex_escape, text_sub, var
from .trace import Derivation, LayerTrace, link_output

__all__ = ["to_dict", "to_text", "to_markdown", "to_latex", "blocks"]

LINE_WIDTH = 100  # text equations longer than this break after the rule


# -- blocks -----------------------------------------------------------------------------------------
@dataclass
class Heading:
    text: str
    level: int = 1


@dataclass
class Para:
    text: str


@dataclass
class Eq:
    lhs: M
    parts: list  # successive right-hand sides: rule, substituted numbers, result
    tag: tuple | None = None  # what it belongs to, for the HTML page: ("forward", "h1"), ("weight", "w5"), ..


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


# -- symbols ---------------------------------------------------------------------------------------
def net(n: str) -> M:
    return var("net", n)


def out(n: str) -> M:
    return var("out", n)


def target(n: str) -> M:
    return var("target", n)


def delta(n: str) -> M:
    return var("δ", n)


E_TOTAL = var("E", "total")
ETA = M("η", r"\eta")


def _minus_product(a: M, b: M) -> M:
    return a + M(" − ", " - ") + b


class _Writer:
    """Builds the block list of one derivation."""

    def __init__(self, d: Derivation, digits: int):
        self.d, self.digits, self.blocks = d, digits, []
        self.probs = link_output(d)
        self.tag = None  # set by each section: which neuron, weight or bias the next equations are about

    def n(self, value, paren=False) -> M:
        return number(value, self.digits, paren)

    def eq(self, lhs, *parts):
        # a step that shows nothing new (a rule that is already a number, a one-term sum) is dropped
        parts = [p for p in parts if p is not None]
        kept = [p for p, nxt in zip(parts, parts[1:] + [None]) if nxt is None or p.text != nxt.text]
        self.blocks.append(Eq(lhs, kept, self.tag))

    def para(self, text):
        self.blocks.append(Para(text))

    # -- activation rules ------------------------------------------------------------------------
    def activation_rule(self, layer: LayerTrace, j: int):
        """(rule, numbers) for out = f(net)."""
        act, name = layer.activation, layer.neurons[j]
        z, v = net(name), self.n(layer.net[j], paren=True)
        kind = act.name
        if kind == "sigmoid":
            return (M("1/(1 + e^(−", r"\frac{1}{1+e^{-") + z + M("))", "}}"),
                    M("1/(1 + e^(−", r"\frac{1}{1+e^{-") + v + M("))", "}}"))
        if kind in ("tanh", "relu"):
            f = "tanh" if kind == "tanh" else "max"
            zero = "" if kind == "tanh" else "0, "
            return (M(f"{f}({zero}", rf"\{f}({zero}") + z + ")", M(f"{f}({zero}", rf"\{f}({zero}") + v + ")")
        if kind == "identity":
            return z, v
        if kind == "leaky_relu":
            a = fmt(act.negative_slope, self.digits)
            rule = z + M(" if ", r" \text{ if } ") + z + M(f" > 0, else {a}·", rf" > 0 \text{{, else }} {a} \cdot ") + z
            sign = " > 0" if layer.net[j] > 0 else " ≤ 0"
            return rule, M("(") + z + " = " + self.n(layer.net[j]) + sign + ")"
        if kind == "softmax":
            exps = [M("e^", "e^{") + self.n(layer.net[k], paren=False) + M("", "}") for k in range(len(layer.neurons))]
            rule = M("e^", "e^{") + z + M(" / Σⱼ e^net_j", r"} / \sum_j e^{\mathit{net}_j}")
            subst = M("e^", "e^{") + self.n(layer.net[j]) + M("", "}") + " / (" + join(" + ", exps) + ")"
            return rule, subst
        return M(f"{kind}(") + z + ")", M(f"{kind}(") + v + ")"

    def derivative_rule(self, layer: LayerTrace, j: int):
        """(rule, numbers) for dout/dnet of an elementwise activation."""
        kind, name = layer.activation.name, layer.neurons[j]
        a, va = out(name), self.n(layer.out[j], paren=True)
        if kind == "sigmoid":
            return a + "(1 − " + a + ")", va + "(1 − " + va + ")"
        if kind == "tanh":
            return M("1 − ", "1 - ") + a + M("²", "^2"), M("1 − ", "1 - ") + va + M("²", "^2")
        if kind in ("relu", "leaky_relu"):
            low = "0" if kind == "relu" else fmt(layer.activation.negative_slope, self.digits)
            z = net(name)
            rule = M("1 if ", r"1 \text{ if } ") + z + M(f" > 0, else {low}", rf" > 0 \text{{, else }} {low}")
            sign = M(" > 0", " > 0") if layer.net[j] > 0 else M(" ≤ 0", r" \leq 0")
            return rule, M("(") + z + " = " + self.n(layer.net[j]) + sign + ")"
        if kind == "identity":
            return M("1"), None
        return M(f"{kind}'(") + net(name) + ")", None

    # -- loss rules ------------------------------------------------------------------------------
    def loss_term(self, k: int):
        """(rule, numbers) for E_ok, the error of output k, or None."""
        d, name = self.d, self.d.output_names[k]
        t, o = target(name), out(name)
        vt, vo = self.n(d.y[k], paren=True), self.n(d.output.out[k], paren=True)
        diff, vdiff = "(" + t + M(" − ", " - ") + o + ")", "(" + vt + M(" − ", " - ") + vo + ")"
        sq = M("²", "^2")
        K = len(d.output_names)
        if d.loss.name == "half_sse":
            half = M("½", r"\frac{1}{2}")
            return half + diff + sq, half + vdiff + sq
        if d.loss.name == "sse":
            return diff + sq, vdiff + sq
        if d.loss.name == "mse":
            f = M(f"(1/{K})", rf"\frac{{1}}{{{K}}}")
            return f + diff + sq, f + vdiff + sq
        if d.loss.name == "binary_cross_entropy":
            p, vp = M("σ(", r"\sigma(") + net(name) + ")", self.n(self.probs[k])
            rule = M("−[", "-[") + t + M("·log ", r" \log ") + p + " + (1 " + M("− ", "- ") + t + M(")·log(1 − ", r") \log(1 - ") + p + ")]"
            subst = M("−[", "-[") + vt + M("·log ", r" \log ") + vp + " + (1 " + M("− ", "- ") + vt + M(")·log(1 − ", r") \log(1 - ") + vp + ")]"
            return rule, subst
        return None

    def loss_gradient(self, k: int):
        """(rule, numbers) for dE/dout_k of a loss on the outputs."""
        d, name = self.d, self.d.output_names[k]
        t, o = target(name), out(name)
        vt, vo = self.n(d.y[k], paren=True), self.n(d.output.out[k], paren=True)
        K = len(d.output_names)
        scale = {"half_sse": M("−", "-"), "sse": M("−2", "-2"), "mse": M(f"−(2/{K})", rf"-\frac{{2}}{{{K}}}")}.get(d.loss.name)
        if scale is None:
            return M(f"{d.loss.name}'"), None
        return scale + "(" + t + M(" − ", " - ") + o + ")", scale + "(" + vt + M(" − ", " - ") + vo + ")"

    def fused_delta(self, k: int):
        """(rule, numbers) for delta_k = dE/dnet_k of a from-logits loss."""
        d, name = self.d, self.d.output_names[k]
        t, vt = target(name), self.n(d.y[k], paren=True)
        if d.loss.name == "binary_cross_entropy":
            p = M("σ(", r"\sigma(") + net(name) + ")"
            return p + M(" − ", " - ") + t, self.n(self.probs[k]) + M(" − ", " - ") + vt
        p = M("softmax(", r"\mathrm{softmax}(") + M("net)", r"\mathit{net})_{") + M(text_sub(name), name + "}")
        total = float(np.sum(d.y))
        if total == 1.0:
            return p + M(" − ", " - ") + t, self.n(self.probs[k]) + M(" − ", " - ") + vt
        return (p + M("·Σⱼ target_j − ", r" \cdot \sum_j \mathit{target}_j - ") + t,
                self.n(self.probs[k]) + TIMES + self.n(total) + M(" − ", " - ") + vt)

    # -- sections ----------------------------------------------------------------------------------
    def header(self):
        d = self.d
        sizes = [len(d.input_names)] + [len(layer.neurons) for layer in d.layers]
        self.blocks.append(Heading(f"One training step of a {'-'.join(map(str, sizes))} network, worked by the chain rule", 0))
        parts = [f"inputs {', '.join(d.input_names)}"]
        for layer in d.layers:
            parts.append(f"{layer.kind} {', '.join(layer.neurons)} ({layer.activation.name})")
        self.para("Network: " + " -> ".join(parts) + ".")
        fused = " (computed from the output layer's net input, the logits)" if d.loss.from_logits else ""
        self.para(f"Loss: {d.loss.name}{fused}; learning rate eta = {fmt(d.lr, self.digits)}; one sample.")
        self.para(
            "Weights are numbered neuron by neuron: the first neuron's incoming weights input by input, "
            "then the next neuron's, layer by layer. "
            + self._bias_sentence()
        )
        self.blocks.append(Heading("Starting values", 2))
        rows = [[name, fmt(layer.W[i, j], self.digits), f"{layer.inputs[i]} -> {layer.neurons[j]}"]
                for name, layer, i, j in d.weights()]
        for layer in d.layers:
            if layer.bias_names is None:
                continue
            state = "trained" if layer.bias_trained else "frozen"
            if layer.shared_bias:
                rows.append([layer.bias_names[0], fmt(layer.b[0], self.digits), f"bias of {', '.join(layer.neurons)} ({state})"])
            else:
                rows += [[bn, fmt(layer.b[j], self.digits), f"bias of {layer.neurons[j]} ({state})"]
                         for j, bn in enumerate(layer.bias_names)]
        rows += [[n, fmt(v, self.digits), "input"] for n, v in zip(d.input_names, d.x)]
        rows += [[f"target_{n}", fmt(v, self.digits), "target"] for n, v in zip(d.output_names, d.y)]
        self.blocks.append(Table(["name", "value", "role"], rows))

    def _bias_sentence(self) -> str:
        d = self.d
        if all(layer.bias_names is None for layer in d.layers):
            return "The network has no biases."
        frozen = [layer for layer in d.layers if layer.bias_names is not None and not layer.bias_trained]
        text = ("A layer whose biases are equal and frozen shares one name, b1 for the first layer, b2 for the "
                "next; otherwise each neuron's bias is named after it (b_h1, b_o2).")
        if frozen:
            text += " Frozen biases are not trained (as in the seed); --train-biases trains them."
        return text

    def forward(self):
        d = self.d
        self.blocks.append(Heading("1. Forward pass"))
        self.para("Each neuron's net input is the weighted sum of what feeds it plus its bias; its output "
                  "squashes the net input with the activation function.")
        for layer in d.layers:
            srcs = d.input_names if layer.index == 1 else [None] * len(layer.inputs)
            for j, name in enumerate(layer.neurons):
                self.blocks.append(Heading(name, 3))
                self.tag = ("forward", name)
                in_sym = [param(s) if s else out(layer.inputs[i]) for i, s in enumerate(srcs)]
                terms = [param(layer.weight_names[i][j]) + M("·", r" \cdot ") + in_sym[i] for i in range(len(layer.inputs))]
                vals = [self.n(layer.W[i, j], True) + TIMES + self.n(layer.x[i], True) for i in range(len(layer.inputs))]
                if layer.bias_names is not None:
                    terms.append(param(layer.bias_names[j]) + M("·1", r" \cdot 1"))
                    vals.append(self.n(layer.b[j], True) + M("·1", r" \cdot 1"))
                self.eq(net(name), join(" + ", terms), join(" + ", vals), self.n(layer.net[j]))
                rule, subst = self.activation_rule(layer, j)
                self.eq(out(name), rule, subst, self.n(layer.out[j]))

    def errors(self):
        d = self.d
        self.blocks.append(Heading("2. The error"))
        self.tag = ("error", None)
        self.para(f"Loss {d.loss.name}: " + (d.loss.formula or ""))
        if d.errors is not None:
            for k, name in enumerate(d.output_names):
                rule = self.loss_term(k)
                value = self.n(d.errors[f"E_{name}"])
                self.eq(var("E", name), *(rule or (None,)), value)
            names = list(d.errors)
            self.eq(E_TOTAL, join(" + ", [var("E", n[2:]) for n in names]),
                    join(" + ", [self.n(d.errors[n], True) for n in names]), self.n(d.E_total))
        else:  # softmax cross-entropy couples the outputs
            ts = [target(n) + M("·log ", r" \log ") + M("p", "p") + M(text_sub(n), f"_{{{n}}}") for n in d.output_names]
            vs = [self.n(t, True) + M("·log ", r" \log ") + self.n(p) for t, p in zip(d.y, self.probs)]
            self.para("p_k = softmax(net)_k are the output probabilities; the error does not split into one term per output.")
            self.eq(E_TOTAL, M("−(", "-(") + join(" + ", ts) + ")", M("−(", "-(") + join(" + ", vs) + ")", self.n(d.E_total))

    def output_layer(self):
        d, layer = self.d, self.d.output
        self.blocks.append(Heading("3. Backward pass: the output layer"))
        if layer.fused:
            self.para(
                f"The loss {d.loss.name} is computed from the net inputs (logits) with its link "
                f"({d.loss.link}) built in, so dE/dnet of each output is one factor, the node delta; "
                "dE/dout and dout/dnet are not shown separately."
            )
        elif layer.jacobian is not None:
            self.para("Softmax is not elementwise: each output depends on every net input, so each node delta "
                      "sums dE/dout_j * dout_j/dnet_k over the outputs j, with dout_j/dnet_k = out_j (1[j=k] - out_k).")
        for k, name in enumerate(layer.neurons):
            self.blocks.append(Heading(name, 3))
            self.tag = ("delta", name)
            if layer.fused:
                rule, subst = self.fused_delta(k)
                self.eq(delta(name), partial(E_TOTAL, net(name)), rule, subst, self.n(layer.delta[k]))
            else:
                rule, subst = self.loss_gradient(k)
                self.eq(partial(E_TOTAL, out(name)), rule, subst, self.n(layer.dE_dout[k]))
                self._delta_lines(layer, k)
            self._weight_lines(layer, k)

    def _delta_lines(self, layer: LayerTrace, j: int):
        name = layer.neurons[j]
        if layer.jacobian is not None:  # softmax: the full Jacobian row by row
            for k, other in enumerate(layer.neurons):
                kron = "(1 − " if k == j else "(0 − "
                self.eq(partial(out(other), net(name)), out(other) + kron + out(name) + ")",
                        self.n(layer.out[k], True) + kron + self.n(layer.out[j], True) + ")",
                        self.n(layer.jacobian[k, j]))
            terms = [partial(E_TOTAL, out(o)) + TIMES + partial(out(o), net(name)) for o in layer.neurons]
            vals = [self.n(layer.dE_dout[k], True) + TIMES + self.n(layer.jacobian[k, j], True) for k in range(len(layer.neurons))]
            self.eq(delta(name), join(" + ", terms), join(" + ", vals), self.n(layer.delta[j]))
            return
        rule, subst = self.derivative_rule(layer, j)
        self.eq(partial(out(name), net(name)), rule, subst, self.n(layer.dout_dnet[j]))
        self.eq(delta(name), partial(E_TOTAL, out(name)) + TIMES + partial(out(name), net(name)),
                self.n(layer.dE_dout[j], True) + TIMES + self.n(layer.dout_dnet[j], True), self.n(layer.delta[j]))

    def _weight_lines(self, layer: LayerTrace, j: int):
        name = layer.neurons[j]
        three = not layer.fused and layer.jacobian is None
        for i, src in enumerate(layer.inputs):
            w = layer.weight_names[i][j]
            self.tag = ("weight", w)
            x_sym = param(src) if layer.index == 1 else out(src)
            self.eq(partial(net(name), param(w)), x_sym, self.n(layer.x[i]))
            lhs = partial(E_TOTAL, param(w))
            if three:
                rule = partial(E_TOTAL, out(name)) + TIMES + partial(out(name), net(name)) + TIMES + partial(net(name), param(w))
                vals = join(TIMES, [self.n(layer.dE_dout[j], True), self.n(layer.dout_dnet[j], True), self.n(layer.x[i], True)])
            else:
                rule = delta(name) + TIMES + partial(net(name), param(w))
                vals = self.n(layer.delta[j], True) + TIMES + self.n(layer.x[i], True)
            self.eq(lhs, rule, vals, self.n(layer.dW[i, j]))
            self._update(w, layer.W[i, j], layer.dW[i, j], layer.W_after[i, j])
        if layer.bias_names is not None and layer.bias_trained:
            b = layer.bias_names[j]
            self.tag = ("bias", b)
            self.eq(partial(E_TOTAL, param(b)), delta(name) + M("·1", r" \cdot 1"),
                    self.n(layer.delta[j], True) + M("·1", r" \cdot 1"), self.n(layer.db[j]))
            self._update(b, layer.b[j], layer.db[j], layer.b_after[j])

    def _update(self, name: str, before: float, grad: float, after: float):
        p = param(name)
        self.eq(p + M("⁺", "^{+}"), _minus_product(p, ETA + TIMES + partial(E_TOTAL, p)),
                _minus_product(self.n(before), self.n(self.d.lr) + TIMES + self.n(grad, True)), self.n(after))

    def hidden_layers(self):
        d = self.d
        hidden = d.layers[:-1]
        for number_, layer in enumerate(reversed(hidden)):
            title = "the hidden layer" if len(hidden) == 1 else f"hidden layer {layer.index}"
            self.blocks.append(Heading(f"{4 + number_}. Backward pass: {title}"))
            if number_ == 0:
                self.para("Each hidden output feeds every neuron of the next layer, so dE/dout is the sum over "
                          "them, term by term: the next neuron's delta times the weight between them. The "
                          "weights used are the old ones: every update waits until all gradients are known.")
            for j, name in enumerate(layer.neurons):
                self.blocks.append(Heading(name, 3))
                self.tag = ("delta", name)
                self._hidden_sum(layer, j)
                self._delta_lines(layer, j)
                self._weight_lines(layer, j)

    def _hidden_sum(self, layer: LayerTrace, j: int):
        d, name = self.d, layer.neurons[j]
        nxt = layer.next_neurons
        nxt_layer = d.layers[layer.index]
        per_output = (d.errors is not None and nxt_layer is d.output
                      and (nxt_layer.fused or nxt_layer.jacobian is None))
        parts = []
        for k, o in enumerate(nxt):
            w = layer.next_weight_names[j][k]
            chain = partial(var("E", o) if per_output else E_TOTAL, net(o)) + TIMES + partial(net(o), out(name))
            self.eq(partial(var("E", o), out(name)) if per_output else chain,
                    chain if per_output else None,
                    delta(o) + TIMES + param(w),
                    self.n(nxt_layer.delta[k], True) + TIMES + self.n(nxt_layer.W[j, k], True),
                    self.n(layer.terms[j, k]))
            parts.append(partial(var("E", o), out(name)) if per_output else delta(o) + TIMES + param(w))
        self.eq(partial(E_TOTAL, out(name)), join(" + ", parts),
                join(" + ", [self.n(layer.terms[j, k], True) for k in range(len(nxt))]), self.n(layer.dE_dout[j]))

    def summary(self):
        d = self.d
        self.blocks.append(Heading(f"{3 + len(d.layers)}. After the step"))
        self.tag = ("after", None)
        self.para("All parameters are updated at once with the gradients above (SGD, learning rate "
                  f"{fmt(d.lr, self.digits)}). The new values:")
        rows = [[name, fmt(layer.W[i, j], self.digits), fmt(layer.dW[i, j], self.digits), fmt(layer.W_after[i, j], self.digits)]
                for name, layer, i, j in d.weights()]
        rows += [[name, fmt(layer.b[j], self.digits), fmt(layer.db[j], self.digits), fmt(layer.b_after[j], self.digits)]
                 for name, layer, j in d.trained_biases()]
        self.blocks.append(Table(["name", "before", "gradient", "after"], rows))
        self.para("A forward pass with the new values gives:")
        self.eq(E_TOTAL + M("⁺", "^{+}"), self.n(d.E_after))
        self.para(f"down from {fmt(d.E_total, self.digits)}.")
        if d.notes:
            self.blocks.append(Heading("Notes", 2))
            for note in d.notes:
                self.para(note)


def blocks(d: Derivation, digits: int = 9) -> list:
    """The derivation laid out as blocks (Heading, Para, Eq, Table)."""
    w = _Writer(d, digits)
    w.header()
    w.forward()
    w.errors()
    w.output_layer()
    w.hidden_layers()
    w.summary()
    return w.blocks


# -- text ------------------------------------------------------------------------------------------
def _wrap(text: str, width: int = LINE_WIDTH) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


def to_text(d: Derivation, digits: int = 9) -> str:
    return text_of(blocks(d, digits))


def text_of(blocks_: list) -> str:
    """Blocks as terminal text (also used by the convolution's derivation, conv_render.py)."""
    lines: list[str] = []
    for block in blocks_:
        if isinstance(block, Heading):
            if block.level == 3:
                lines.append(f"  {block.text}")
                continue
            if lines:
                lines.append("")
            lines.append(block.text)
            if block.level < 3:
                lines.append(("=" if block.level == 0 else "-") * len(block.text))
        elif isinstance(block, Para):
            if lines and lines[-1] and not lines[-1].startswith(("=", "-")):
                lines.append("")
            lines += _wrap(block.text)
        elif isinstance(block, Eq):
            lhs = block.lhs.text
            rhs = [p.text for p in block.parts]
            one = "    " + lhs + " = " + " = ".join(rhs)
            if len(one) <= LINE_WIDTH or len(rhs) < 3:
                lines.append(one)
            else:
                lines.append("    " + lhs + " = " + " = ".join(rhs[:-2]))
                lines.append("    " + " " * len(lhs) + " = " + " = ".join(rhs[-2:]))
        elif isinstance(block, Table):
            widths = [max(len(r[c]) for r in [block.header] + block.rows) for c in range(len(block.header))]
            for row in [block.header] + block.rows:
                lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return "\n".join(lines) + "\n"


# -- markdown --------------------------------------------------------------------------------------
def _tex_eq(block: Eq, aligned_env: str | None) -> str:
    """One equation; a long one breaks after the rule (inside ``aligned_env``, or bare for align*)."""
    lhs, rhs = block.lhs.tex, [p.tex for p in block.parts]
    if len(block.lhs.text) + sum(len(p.text) + 3 for p in block.parts) <= LINE_WIDTH or len(rhs) < 3:
        return lhs + (" &= " if aligned_env is None else " = ") + " = ".join(rhs)
    body = f"{lhs} &= " + " = ".join(rhs[:-2]) + " \\\\\n &= " + " = ".join(rhs[-2:])
    return body if aligned_env is None else f"\\begin{{{aligned_env}}}\n{body}\n\\end{{{aligned_env}}}"


def to_markdown(d: Derivation, digits: int = 9) -> str:
    return markdown_of(blocks(d, digits))


def markdown_of(blocks_: list) -> str:
    """Blocks as Markdown with $$ math."""
    out_: list[str] = []
    for block in blocks_:
        if isinstance(block, Heading):
            out_.append("#" * (block.level + 1) + " " + block.text + "\n")
        elif isinstance(block, Para):
            out_.append(block.text + "\n")
        elif isinstance(block, Eq):
            out_.append("$$\n" + _tex_eq(block, "aligned") + "\n$$\n")
        elif isinstance(block, Table):
            rows = [block.header, ["---"] * len(block.header)] + block.rows
            out_.append("\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n")
    return "\n".join(out_)


# -- LaTeX -----------------------------------------------------------------------------------------
_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
\begin{document}
"""


def to_latex(d: Derivation, digits: int = 9) -> str:
    """A complete document for pdflatex (article class and amsmath only)."""
    return latex_of(blocks(d, digits))


def latex_of(blocks_: list) -> str:
    """Blocks as a complete LaTeX document."""
    parts = [_PREAMBLE]
    for block in blocks_:
        if isinstance(block, Heading):
            text = tex_escape(block.text)
            if block.level == 0:
                parts.append(f"\\section*{{{text}}}")
            elif block.level == 3:
                parts.append(f"\\paragraph{{{text}}}")
            else:
                parts.append(("\\subsubsection*" if block.level == 2 else "\\subsection*") + f"{{{text}}}")
        elif isinstance(block, Para):
            parts.append(tex_escape(block.text.replace("->", "→")).replace("→", r"$\to$") + "\n")
        elif isinstance(block, Eq):
            parts.append("\\begin{align*}\n" + _tex_eq(block, None) + "\n\\end{align*}")
        elif isinstance(block, Table):
            cols = "l" * len(block.header)
            rows = [" & ".join(tex_escape(c.replace("->", "→")).replace("→", r"$\to$") for c in r) + r" \\" for r in block.rows]
            head = " & ".join(tex_escape(c) for c in block.header) + r" \\ \hline"
            parts.append(f"\\begin{{tabular}}{{{cols}}}\n{head}\n" + "\n".join(rows) + "\n\\end{tabular}\n")
    parts.append("\\end{document}\n")
    return "\n".join(parts)


# -- JSON ------------------------------------------------------------------------------------------
def to_dict(d: Derivation) -> dict:
    """The derivation as plain JSON-able data (documented in docs/explain.md)."""
    f = float
    layers, forward, after_forward, backward, deltas = [], {}, {}, {}, {}
    gradients, factors, updated, weights, biases = {}, {}, {}, {}, {}
    for layer in d.layers:
        bias = None
        if layer.bias_names is not None:
            bias = {"names": list(layer.bias_names), "trained": layer.bias_trained, "shared": layer.shared_bias}
        layers.append({"kind": layer.kind, "neurons": list(layer.neurons),
                       "activation": layer.activation.config(), "bias": bias})
        for j, name in enumerate(layer.neurons):
            forward[f"net_{name}"], forward[f"out_{name}"] = f(layer.net[j]), f(layer.out[j])
            after_forward[f"net_{name}"], after_forward[f"out_{name}"] = f(layer.net_after[j]), f(layer.out_after[j])
            deltas[name] = f(layer.delta[j])
            entry = {}
            if layer.terms is not None:
                entry["terms"] = {o: f(layer.terms[j, k]) for k, o in enumerate(layer.next_neurons)}
            if not layer.fused:
                entry["dE/dout"] = f(layer.dE_dout[j])
                if layer.jacobian is not None:
                    entry["dout/dnet"] = {o: f(layer.jacobian[k, j]) for k, o in enumerate(layer.neurons)}
                else:
                    entry["dout/dnet"] = f(layer.dout_dnet[j])
            entry["delta"] = f(layer.delta[j])
            backward[name] = entry
        if layer.bias_names is not None:
            for j, name in enumerate(layer.bias_names):
                biases.setdefault(name, {"value": f(layer.b[j]), "neurons": [], "trained": layer.bias_trained})
                biases[name]["neurons"].append(layer.neurons[j])
    for name, layer, i, j in d.weights():
        weights[name] = {"value": f(layer.W[i, j]), "from": layer.inputs[i], "to": layer.neurons[j]}
        gradients[name] = f(layer.dW[i, j])
        factors[name] = _factors(layer, j, f(layer.x[i]), "dnet/dw")
        updated[name] = f(layer.W_after[i, j])
    for name, layer, j in d.trained_biases():
        gradients[name] = f(layer.db[j])
        factors[name] = _factors(layer, j, 1.0, "dnet/db")
        updated[name] = f(layer.b_after[j])
    errors = dict(d.errors or {})
    errors["E_total"] = d.E_total
    return {
        "format": "backprop.explain",
        "version": 1,
        "network": {"sizes": [len(d.input_names)] + [len(layer.neurons) for layer in d.layers],
                    "inputs": list(d.input_names), "layers": layers, "loss": d.loss.config(),
                    "lr": d.lr, "weights": weights, "biases": biases},
        "inputs": {n: f(v) for n, v in zip(d.input_names, d.x)},
        "targets": {n: f(v) for n, v in zip(d.output_names, d.y)},
        "forward": forward,
        "errors": errors,
        "backward": backward,
        "deltas": deltas,
        "gradients": gradients,
        "factors": factors,
        "updated": updated,
        "after": {"forward": after_forward, "E_total": d.E_after},
        "notes": list(d.notes),
    }


def _factors(layer: LayerTrace, j: int, x: float, key: str) -> dict:
    # three factors where they exist; one dE/dnet (the delta) for fused losses and softmax
    if layer.fused or layer.jacobian is not None:
        return {"dE/dnet": float(layer.delta[j]), key: x}
    return {"dE/dout": float(layer.dE_dout[j]), "dout/dnet": float(layer.dout_dnet[j]), key: x}
