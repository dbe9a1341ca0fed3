"""Symbols of the derivation: each expression as terminal text (Unicode) and as LaTeX at once.

``M(text, tex)`` pieces concatenate with ``+`` (a plain str counts for both faces). The helpers
build the symbols the derivation prints: ``var("net", "h1")`` is net_h1 (netₕ₁ / \\mathit{net}_{h1}),
``partial(E, w)`` is ∂E/∂w, ``num(0.5)`` a number at the derivation's precision.
"""

from __future__ import annotations

import re

__all__ = ["M", "var", "param", "partial", "join", "number", "fmt", "TIMES", "tex_escape", "text_sub"]

_SUB_FROM = "0123456789aehijklmnoprstuvx"
_SUB_TO = "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"
_SUB = str.maketrans(_SUB_FROM, _SUB_TO)


class M:
    """An expression with a text face and a LaTeX face."""

    __slots__ = ("text", "tex")

    def __init__(self, text: str, tex: str | None = None):
        self.text = text
        self.tex = _plain_to_tex(text) if tex is None else tex

    def __add__(self, other) -> "M":
        other = other if isinstance(other, M) else M(str(other))
        return M(self.text + other.text, self.tex + other.tex)

    def __radd__(self, other) -> "M":
        return M(str(other)) + self

    def __repr__(self) -> str:
        return f"M({self.text!r}, {self.tex!r})"


def _plain_to_tex(text: str) -> str:
    # plain operators typed once for both faces: − · ² ½ Σ η δ σ
    for a, b in (("−", "-"), ("·", r" \cdot "), ("²", "^2"), ("½", r"\frac{1}{2}"), ("Σ", r"\sum "),
                 ("η", r"\eta "), ("δ", r"\delta "), ("σ", r"\sigma "), ("≤", r"\leq ")):
        text = text.replace(a, b)
    return text


TIMES = M("·")


def join(sep, items) -> M:
    """Join snippets with a separator (str or M)."""
    out = M("")
    for n, item in enumerate(items):
        out = out + (sep if n else "") + item
    return out


def text_sub(s: str) -> str:
    """Unicode subscript of ``s`` where every character has one, else ``_s``."""
    return s.translate(_SUB) if all(c in _SUB_FROM for c in s) else "_" + s


def tex_escape(s: str) -> str:
    """Escape LaTeX's special characters in prose."""
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(table.get(c, c) for c in s)


def _tex_sub(s: str) -> str:
    # a neuron of one of several hidden layers, h2_1, reads h^{(2)}_{1}
    m = re.fullmatch(r"([a-z])(\d+)_(\d+)", s)
    if m:
        return f"{m[1]}^{{({m[2]})}}_{{{m[3]}}}"
    return s.replace("_", r"\_")


def var(base: str, sub: str | None = None) -> M:
    """A symbol with a subscript: var("net", "h1"), var("E", "total"), var("δ", "o1")."""
    tex_base = _plain_to_tex(base).strip() if len(base) == 1 else rf"\mathit{{{base}}}"
    if sub is None:
        return M(base, tex_base)
    return M(base + text_sub(sub), f"{tex_base}_{{{_tex_sub(sub)}}}")


def param(name: str) -> M:
    """A parameter or input by its name: w5, b1, i2, b_h1 (letter, then the subscript)."""
    base, sub = name[0], name[1:]
    return var(base, sub.lstrip("_"))


def partial(num: M, den: M) -> M:
    return M(f"∂{num.text}/∂{den.text}", rf"\frac{{\partial {num.tex}}}{{\partial {den.tex}}}")


def fmt(value: float, digits: int = 9) -> str:
    """A number as the seed prints it: ``digits`` decimals, trailing zeros dropped; tiny
    numbers in scientific notation so they never print as 0."""
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) < 10.0 ** (-(digits - 4)) or abs(value) >= 1e9:
        return f"{value:.{max(digits - 3, 3)}e}"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def number(value: float, digits: int = 9, paren: bool = False) -> M:
    """A number; negative ones in parentheses when ``paren`` (inside a product or a sum)."""
    text = fmt(value, digits)
    if "e" in text:
        mant, exp = text.split("e")
        tex = rf"{mant} \times 10^{{{int(exp)}}}"
    else:
        tex = text
    if paren and text.startswith("-"):
        return M(f"({text})", f"({tex})")
    return M(text, tex)
