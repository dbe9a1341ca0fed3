"""Render a ConvDerivation: terminal text, Markdown with $$ math, a LaTeX document, and JSON.

The derivation is laid out as the same blocks as the dense one (``render.Heading``, ``Para``,
``Eq``, ``Table``) and written by the same writers (``render.text_of``, ``markdown_of``,
``latex_of``). Each equation reads ``name = rule = numbers substituted = result``; the rule and
the numbers come from the quantity's terms, the result is the engine's number (``Quantity.value``),
never recomputed here. ``to_dict`` is the JSON documented in docs/explain.md.
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np

from .conv import ConvDerivation, Quantity, Term
from .render import LINE_WIDTH, Eq, Heading, Para, Table, latex_of, markdown_of, text_of
from .symbols import TIMES, M, fmt, join, number

__all__ = ["blocks", "equation", "to_text", "to_markdown", "to_latex", "to_dict", "symbol"]

# sections shown as sub-steps of a numbered one
_MINOR = {"activation", "pool", "routing", "activation_backward"}
_NAME = re.compile(r"^(?:d(?P<num>[A-Za-z]+)/d)?(?P<base>[A-Za-z]+)(?P<plus>\+)?(?:\[(?P<idx>[\d,]+)\])?$")
_FUNCTIONS_TEX = {"max": r"\max", "tanh": r"\tanh", "sigmoid": r"\sigma", "relu": r"\operatorname{relu}",
                  "leaky_relu": r"\operatorname{leaky\_relu}"}
_FUNCTIONS_TEXT = {"sigmoid": "σ"}


# -- symbols --------------------------------------------------------------------------------------
def _plain(base: str, plus: bool, idx: str | None) -> M:
    sup = {"Gpad": r"G^{\mathrm{pad}}", "Krot": r"K^{\mathrm{rot}}"}.get(base, base)
    text = base + ("⁺" if plus else "") + (f"[{idx}]" if idx else "")
    tex = sup + ("^{+}" if plus else "") + (f"_{{{idx}}}" if idx else "")
    return M(text, tex)


def symbol(name: str) -> M:
    """A quantity's name as text and LaTeX: ``Y[0,1]`` -> Y[0,1] / Y_{0,1}; ``dL/dK[1,0]`` ->
    ∂L/∂K[1,0]; ``dL/dY[p,q]`` -> G[p,q] (G = ∂L/∂Y); ``K+[0,0]`` -> K⁺[0,0]; ``lr`` -> η."""
    if name == "lr":
        return M("η", r"\eta")
    if " - " in name:  # an expression of two quantities, e.g. "Y[0,0] - T[0,0]"
        a, b = name.split(" - ")
        return symbol(a) + M(" − ", " - ") + symbol(b)
    m = _NAME.match(name)
    if m is None:
        return M(name, name)
    base, plus, idx, num = m["base"], bool(m["plus"]), m["idx"], m["num"]
    if num is None:
        return _plain(base, plus, idx)
    if num == "L" and base == "Y":
        return _plain("G", plus, idx)
    den = _plain(base, plus, idx)
    if num == "L":
        return M(f"∂L/∂{den.text}", rf"\frac{{\partial L}}{{\partial {den.tex}}}")
    top = _plain(num, plus, idx)
    return M(f"∂{top.text}/∂{den.text}", rf"\frac{{\partial {top.tex}}}{{\partial {den.tex}}}")


def _coefficient(c: float, digits: int) -> M:
    """½, 1/4, ... for unit fractions; the number otherwise."""
    frac = Fraction(c).limit_denominator(64)
    if float(frac) == c and frac.numerator == 1 and frac.denominator > 1:
        if frac.denominator == 2:
            return M("½", r"\frac{1}{2}")
        return M(f"1/{frac.denominator}", rf"\frac{{1}}{{{frac.denominator}}}")
    return number(c, digits)


# -- one equation -----------------------------------------------------------------------------------
def _term(t: Term, scale: float, first: bool, digits: int, numbers: bool, full: bool) -> tuple[M, bool]:
    """(the term's magnitude as a product, is it subtracted)."""
    coef = t.coefficient / scale
    negative = coef < 0
    factors = []
    if full and t.at:
        factors = [symbol("Gpad" + _i(t.at["Gpad"])), symbol("Krot" + _i(t.at["Krot"]))]
    elif len(t.factors) == 2 and t.factors[0] == t.factors[1]:  # a square: (Y[0,0] - T[0,0])²
        name, value = t.factors[0]
        if numbers and t.at and "difference" in t.at:
            a, b = t.at["difference"]
            inner = number(a, digits, True) + M(" − ", " - ") + number(b, digits, True)
        else:
            inner = number(value, digits, True) if numbers else symbol(name)
        factors = [M("(", r"\left(") + inner + M(")²", r"\right)^2")]
    else:
        for name, value in t.factors:
            if numbers:
                factors.append(number(value, digits, paren=len(t.factors) > 1 or not first or abs(coef) != 1))
            else:
                factors.append(symbol(name))
    if abs(coef) != 1:
        factors.insert(0, _coefficient(abs(coef), digits))
    return join(TIMES, factors), negative


def _sum(terms: list[Term], digits: int, numbers: bool, full: bool = False) -> M:
    coefs = {t.coefficient for t in terms}
    scale = 1.0  # a coefficient every term shares is written once, in front: ½·(...)
    if len(coefs) == 1 and len(terms) > 1 and abs(next(iter(coefs))) != 1:
        scale = next(iter(coefs))
    out = M("")
    for k, t in enumerate(terms):
        body, negative = _term(t, scale, k == 0, digits, numbers, full)
        if k == 0:
            out = (M("−", "-") + body) if negative else body
        else:
            out = out + (M(" − ", " - ") if negative else M(" + ")) + body
    if scale != 1.0:
        out = _coefficient(scale, digits) + M("·(", r" \cdot \left(") + out + M(")", r"\right)")
    return out


def _i(index) -> str:
    return "[" + ",".join(str(int(v)) for v in index) + "]"


def _function(name: str, args: list[M]) -> M:
    if name.endswith("'"):
        base = name[:-1]
        head = M(_FUNCTIONS_TEXT.get(base, base) + "′", _FUNCTIONS_TEX.get(base, rf"\operatorname{{{base}}}") + "'")
    elif name == "relu":
        return M("max(0, ", r"\max(0, ") + join(", ", args) + ")"
    else:
        head = M(_FUNCTIONS_TEXT.get(name, name), _FUNCTIONS_TEX.get(name, rf"\operatorname{{{name}}}"))
    return head + M("(", r"\left(") + join(", ", args) + M(")", r"\right)")


def equation(d: ConvDerivation, q: Quantity, digits: int = 9, tag=None) -> Eq:
    """The equation of one quantity: name = rule [= full-convolution form] = numbers = value."""
    result = number(q.value, digits)
    if q.note:
        result = result + M(f"  ({q.note})", rf" \quad \text{{({q.note})}}")
    parts = []
    if q.terms is not None:
        if q.terms:
            if any(t.at and "Gpad" in t.at for t in q.terms):
                parts.append(_sum(q.terms, digits, numbers=False, full=True))
            parts.append(_sum(q.terms, digits, numbers=False))
            parts.append(_sum(q.terms, digits, numbers=True))
    elif q.function is not None:
        parts.append(_function(q.function, [symbol(n) for n, _ in q.arguments]))
        parts.append(_function(q.function, [number(v, digits) for _, v in q.arguments]))
    kept = [p for p, nxt in zip(parts, parts[1:] + [None]) if nxt is None or p.text != nxt.text]
    if kept and kept[-1].text == result.text:
        kept = kept[:-1]
    return Eq(symbol(q.name), kept + [result], tag)


# -- the blocks ---------------------------------------------------------------------------------------
def _tables(label: str, array, digits: int, channels: bool) -> list[Table]:
    a = np.asarray(array, dtype=float)
    if a.ndim == 4:
        groups = [(f"{label}[{o},{c}]", a[o, c]) for o, c in np.ndindex(*a.shape[:2])]
        if not channels:
            groups = [(label, a[0, 0])]
    elif a.ndim == 3:
        groups = [(f"{label}[{c}]", a[c]) for c in range(a.shape[0])] if channels else [(label, a[0])]
    else:
        groups = [(label, a)]
    tables = []
    for name, m in groups:
        header = [name] + [str(j) for j in range(m.shape[1])]
        rows = [[str(i)] + [fmt(v, digits) for v in m[i]] for i in range(m.shape[0])]
        tables.append(Table(header, rows))
    return tables


def full_convolution_arrays(d: ConvDerivation) -> tuple[np.ndarray, np.ndarray]:
    """(Gpad, Krot): G with stride-1 zeros between its entries, framed by kh-1 / kw-1 zeros and
    sized so that its valid cross-correlation with Krot is the padded input's gradient; and the
    kernel rotated by 180 degrees. Display arrays: every value in them is the engine's G or K."""
    O, C, kh, kw = d.K.shape
    (sh, sw), (ph, pw), (_, H, W) = d.stride, d.padding, d.X.shape
    gpad = np.zeros((O, H + 2 * ph + kh - 1, W + 2 * pw + kw - 1))
    oh, ow = d.G.shape[1:]
    for o, p, q in np.ndindex(O, oh, ow):
        gpad[o, p * sh + kh - 1, q * sw + kw - 1] = d.G[o, p, q]
    return gpad, d.K[:, :, ::-1, ::-1].copy()


def _network_line(d: ConvDerivation) -> str:
    layers = " -> ".join(repr(layer) for layer in d.network.layers)
    C, H, W = d.X.shape
    return (f"Network: {layers}, on one {C}x{H}x{W} input; loss half_sse, L = ½ Σ ({d.output_letter} − T)²; one "
            f"SGD step at learning rate η = {fmt(d.lr)}. Flatten only hands the output to the loss (in C-H-W order) "
            "and changes no number. Every result below is the engine's own number; the terms before it are the "
            "products it is the sum of.")


def _results(d: ConvDerivation, key: str) -> list[tuple[str, np.ndarray]]:
    """The matrices a section ends with."""
    g = "G = ∂L/∂Y"
    return {
        "forward": [("Y", d.Y)],
        "activation": [("A", d.A)],
        "pool": [("P", d.P)],
        "output_gradient": [(g if d.output_letter == "Y" else f"∂L/∂{d.output_letter}", d.dOut)],
        "routing": [(g if not d.has_activation else "∂L/∂A", d.dA)],
        "activation_backward": [(g, d.G)],
        "kernel_gradient": [("∂L/∂K", d.dK)],
        "input_gradient": [("∂L/∂X", d.dX)],
        "update": [("K⁺", d.K_after)],
        "after": [("Y⁺", d.Y_after)] + ([("P⁺", d.P_after)] if d.P is not None else []),
    }.get(key, [])


def blocks(d: ConvDerivation, digits: int = 9) -> list:
    """The derivation laid out as blocks (Heading, Para, Eq, Table)."""
    ch = d.channels
    out: list = [Heading("One convolution training step, every number substituted", 0), Para(_network_line(d))]
    out.append(Heading("Given", 2))
    out += _tables("X", d.X, digits, ch) + _tables("K", d.K, digits, ch)
    if d.b is not None:
        out.append(Para("b = " + ", ".join(fmt(v, digits) for v in d.b) if ch else f"b = {fmt(d.b[0], digits)}"))
    else:
        out.append(Para("No bias."))
    out += _tables("T", d.T, digits, ch)
    for section in d.sections:
        minor = section.key in _MINOR
        out.append(Heading(section.title, 2 if minor else 1))
        out.append(Para(section.text))
        if section.key == "input_gradient":
            gpad, krot = full_convolution_arrays(d)
            out += _tables("Gpad", gpad if ch else gpad[0], digits, ch) + _tables("Krot", krot, digits, ch)
        for q in section.quantities:
            eq = equation(d, q, digits, tag=("conv", section.key, q.name))
            width = len(eq.lhs.text) + sum(len(p.text) + 3 for p in eq.parts)
            if len(eq.parts) > 3 and width > LINE_WIDTH:  # the full-convolution form on a line of its own
                out.append(Eq(eq.lhs, eq.parts[:1], eq.tag))
                eq = Eq(eq.lhs, eq.parts[1:], eq.tag)
            out.append(eq)
        for label, array in _results(d, section.key):
            out += _tables(label, array, digits, ch)
    if d.notes:
        out.append(Heading("Notes", 2))
        out += [Para(note) for note in d.notes]
    return out


def to_text(d: ConvDerivation, digits: int = 9) -> str:
    return text_of(blocks(d, digits))


def to_markdown(d: ConvDerivation, digits: int = 9) -> str:
    return markdown_of(blocks(d, digits))


def to_latex(d: ConvDerivation, digits: int = 9) -> str:
    """A complete document for pdflatex (article class and amsmath only)."""
    return latex_of(blocks(d, digits))


# -- JSON ---------------------------------------------------------------------------------------------
def _term_dict(t: Term) -> dict:
    out: dict = {"factors": [[name, float(v)] for name, v in t.factors]}
    if t.coefficient != 1.0:
        out["coefficient"] = float(t.coefficient)
    if t.at:
        out["at"] = {k: [float(v) for v in val] if k == "difference" else [int(v) for v in val]
                     for k, val in t.at.items()}
    return out


def _quantity_dict(q: Quantity, section: str) -> dict:
    out: dict = {"value": float(q.value), "section": section}
    if q.terms is not None:
        out["terms"] = [_term_dict(t) for t in q.terms]
    if q.function is not None:
        out["function"] = q.function
        out["arguments"] = [[name, float(v)] for name, v in q.arguments]
    if q.note:
        out["note"] = q.note
    return out


def _given(d: ConvDerivation) -> dict:
    """The given numbers as quantities (every factor name of the terms resolves to one)."""
    ch = d.channels
    out = {}
    for label, array, dims in (("X", d.X, 3), ("K", d.K, 4), ("T", d.T, 3)):
        for index in np.ndindex(*array.shape):
            shown = index if ch else index[dims - 2:]
            out[label + _i(shown)] = {"value": float(array[index]), "section": "given"}
    if d.b is not None:
        for o, v in enumerate(d.b):
            out["b" + (_i([o]) if ch else "")] = {"value": float(v), "section": "given"}
    out["lr"] = {"value": float(d.lr), "section": "given"}
    return out


def _array(a, ch: bool):
    a = np.asarray(a, dtype=float)
    if not ch:
        a = a.reshape(a.shape[-2:]) if a.ndim >= 2 else a
    return a.tolist()


def to_dict(d: ConvDerivation) -> dict:
    """The derivation as plain JSON-able data (documented in docs/explain.md)."""
    ch = d.channels
    quantities = _given(d)
    steps = []
    for section in d.sections:
        steps.append({"key": section.key, "title": section.title, "text": section.text,
                      "quantities": [q.name for q in section.quantities]})
        for q in section.quantities:
            quantities[q.name] = _quantity_dict(q, section.key)
    gpad, krot = full_convolution_arrays(d)
    arrays = {"X": _array(d.X, ch), "K": _array(d.K, ch), "T": _array(d.T, ch), "Y": _array(d.Y, ch)}
    if d.has_activation:
        arrays["A"] = _array(d.A, ch)
    if d.P is not None:
        arrays["P"] = _array(d.P, ch)
        arrays["dL/dP"] = _array(d.dOut, ch)
    if d.has_activation:
        arrays["dL/dA"] = _array(d.dA, ch)
    arrays.update({"dL/dY": _array(d.G, ch), "dL/dK": _array(d.dK, ch), "dL/dX": _array(d.dX, ch),
                   "Gpad": _array(gpad, ch), "Krot": _array(krot, ch), "K+": _array(d.K_after, ch),
                   "Y+": _array(d.Y_after, ch)})
    if d.b is not None:
        arrays.update({"b": d.b.tolist(), "dL/db": d.db.tolist(), "b+": d.b_after.tolist()})
    if d.P is not None:
        arrays["P+"] = _array(d.P_after, ch)
    return {
        "format": "backprop.explain.conv",
        "version": 1,
        "network": {"layers": [layer.config() for layer in d.network.layers],
                    "input_shape": list(d.network.input_shape), "loss": d.network.loss_fn.config(),
                    "lr": d.lr, "channel_indices": ch},
        "arrays": arrays,
        "quantities": quantities,
        "steps": steps,
        "L": d.L,
        "L+": d.L_after,
        "notes": list(d.notes),
    }
