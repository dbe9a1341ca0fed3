"""Record one real training step of a small convolutional network, every number, for a derivation.

``explain_conv(network, x, t, lr)`` takes a Network of ``Conv2D [+ MaxPool2D | AvgPool2D] +
Flatten`` with the ``half_sse`` loss, copies it, runs the engine's own forward pass
(``Network.forward_batch``), backward pass (``Network.backward_batch``, then
``Network.backward`` from the same loss gradient for dL/dX, which the step itself does not
keep) and one ``SGD(lr)`` step, and reads the layers' caches: the conv's ``X``, ``Z`` (= Y),
``A``, ``dA``, ``dZ`` (= G) and gradients, the pool's output, ``argmax`` offsets and ``dA``, and
Flatten's ``dA`` (dL/d output). Every total in the derivation is one of those numbers.

What is built here is only the *display*: for each number, the list of terms (products of named
factors) whose sum it is, from the recorded inputs: each Y entry as the sum of its window's
products, each dL/dK entry as the sum over the output positions, dL/dX as the full convolution
of G (stride-dilated, zero-framed) with the kernel rotated 180 degrees, the pool's routing, the
update. Tests re-sum those terms and compare them with the engine's totals.

Names (used by every format; the JSON's keys): ``X[y,x]``, ``K[i,j]``, ``b``, ``Y[p,q]`` (the
conv output), ``A[p,q]`` (after a non-identity activation), ``P[p,q]`` (after a pool), ``T[..]``
(the target, shaped like the output), ``L``; gradients ``dL/dY[p,q]`` (= G), ``dL/dK[i,j]``,
``dL/db``, ``dL/dX[y,x]``, ``dL/dP``, ``dL/dA``, ``dA/dY``; after the step ``K+[i,j]``, ``b+``,
``Y+[p,q]``, ``L+``. With more than one input or output channel the indices carry the channels
first: ``X[c,y,x]``, ``K[o,c,i,j]``, ``b[o]``, ``Y[o,p,q]``. See docs/explain.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .._validation import BackpropError, check_positive, describe
from ..layers import AvgPool2D, Conv2D, Flatten, MaxPool2D
from ..network import Network
from ..optimizers import SGD

__all__ = [
    "MAX_PRODUCTS", "ConvDerivation", "Quantity", "Term", "Section", "explain_conv", "conv_network",
    "parse_tensor", "EXAMPLE_B", "example_b",
]

# A convolution with more multiply-adds than this in its forward pass is refused unless force:
# the forward pass, dL/dK and dL/dX each print that many products.
MAX_PRODUCTS = 256

# Golden example B of issue 20 (what `backprop explain --conv` works by default).
EXAMPLE_B = {
    "X": [[1, 2, 0], [0, 1, 3], [2, 1, 1]],
    "K": [[1, -1], [2, 0]],
    "b": 1.0,
    "T": [[1, 4], [1, 3]],
    "lr": 0.1,
}


# -- the recorded quantities ----------------------------------------------------------------------
@dataclass
class Term:
    """``coefficient`` times the product of ``factors`` ((name, value) pairs). ``at`` holds where
    the factors sit in another reading of the same sum (the full convolution: ``Gpad`` and
    ``Krot`` positions)."""

    factors: list[tuple[str, float]]
    coefficient: float = 1.0
    at: dict | None = None

    @property
    def value(self) -> float:
        out = self.coefficient
        for _, v in self.factors:
            out *= v
        return float(out)


@dataclass
class Quantity:
    """One number of the step: its name, the engine's value and how it is made.

    Exactly one of: ``terms`` (a sum of products; an empty list is a sum of nothing, 0),
    ``function`` with ``arguments`` (max, relu, ...: value = function(arguments)), or neither
    (a given number). ``note`` is a remark the renderers print beside it."""

    name: str
    value: float
    terms: list[Term] | None = None
    function: str | None = None
    arguments: list[tuple[str, float]] | None = None
    note: str | None = None

    @property
    def uses(self) -> list[str]:
        """Names of the quantities this one is made from, in order, without repeats."""
        names = [n for t in self.terms or [] for n, _ in t.factors] + [n for n, _ in self.arguments or []]
        return list(dict.fromkeys(names))


@dataclass
class Section:
    """A step of the derivation: a key (``forward``, ``loss``, ``output_gradient``, ``pool``,
    ``routing``, ``activation``, ``kernel_gradient``, ``input_gradient``, ``update``, ``after``),
    ``activation_backward``), a title, an explanation and its quantities in order."""

    key: str
    title: str
    text: str
    quantities: list[Quantity] = field(default_factory=list)


@dataclass
class ConvDerivation:
    """One training step of ``Conv2D [+ pool] + Flatten`` under ``half_sse``, recorded number by
    number. Arrays are in PyTorch's layout, one sample: ``X`` (C, H, W), ``K`` (O, C, kh, kw),
    ``b`` (O,) or None, conv output ``Y`` and ``A`` (O, oh, ow), pool output ``P`` (O, ph, pw) or
    None, target ``T`` shaped like the output, gradients ``G`` (= dL/dY), ``dA``, ``dOut``,
    ``dK``, ``db``, ``dX``, values after the step ``K_after``, ``b_after``, ``Y_after``,
    ``A_after``, ``P_after``, and the losses ``L``, ``L_after``. ``sections`` hold the quantities
    with their terms (see ``steps()``). Render with ``to_text()``, ``to_markdown()``,
    ``to_latex()``, ``to_dict()`` / ``to_json()``."""

    network: Network
    lr: float
    X: np.ndarray
    K: np.ndarray
    b: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    activation: object
    pool: dict | None  # {"kind": "max" | "avg", "size": (ph, pw), "stride": (sh, sw)}
    T: np.ndarray
    Y: np.ndarray
    A: np.ndarray
    P: np.ndarray | None
    argmax: np.ndarray | None
    L: float
    dOut: np.ndarray
    dA: np.ndarray
    dAdY: np.ndarray | None
    G: np.ndarray
    dK: np.ndarray
    db: np.ndarray | None
    dX: np.ndarray
    K_after: np.ndarray
    b_after: np.ndarray | None
    Y_after: np.ndarray
    A_after: np.ndarray
    P_after: np.ndarray | None
    L_after: float
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # -- names -------------------------------------------------------------------------------------
    @property
    def channels(self) -> bool:
        """True when names carry channel indices (more than one input or output channel)."""
        return self.K.shape[0] > 1 or self.K.shape[1] > 1

    @property
    def has_activation(self) -> bool:
        return self.activation.name != "identity"

    @property
    def output(self) -> np.ndarray:
        """What the loss sees (before Flatten): P with a pool, else A."""
        return self.P if self.P is not None else self.A

    @property
    def output_letter(self) -> str:
        return "P" if self.P is not None else ("A" if self.has_activation else "Y")

    def quantity(self, name: str) -> Quantity:
        for section in self.sections:
            for q in section.quantities:
                if q.name == name:
                    return q
        raise KeyError(name)

    def quantities(self):
        for section in self.sections:
            yield from section.quantities

    def steps(self, digits: int = 9) -> list[dict]:
        """The derivation as a generic ordered list of steps, one per equation: ``section``,
        ``title`` (the section's), ``name``, ``value`` (the engine's), ``text`` and ``tex``
        (the whole equation, numbers substituted) and ``uses`` (the names it is made from)."""
        from .conv_render import equation

        out = []
        for section in self.sections:
            for q in section.quantities:
                eq = equation(self, q, digits)
                out.append({"section": section.key, "title": section.title, "name": q.name,
                            "value": q.value, "text": " = ".join([eq.lhs.text] + [p.text for p in eq.parts]),
                            "tex": " = ".join([eq.lhs.tex] + [p.tex for p in eq.parts]), "uses": q.uses})
        return out

    # -- renderers (conv_render.py holds the formatting) -------------------------------------------
    def to_dict(self) -> dict:
        from .conv_render import to_dict

        return to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_text(self, digits: int = 9) -> str:
        from .conv_render import to_text

        return to_text(self, digits)

    def to_markdown(self, digits: int = 9) -> str:
        from .conv_render import to_markdown

        return to_markdown(self, digits)

    def to_latex(self, digits: int = 9) -> str:
        from .conv_render import to_latex

        return to_latex(self, digits)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        from .page import derivation_html

        return derivation_html(self)

    def render(self, fmt: str = "text", digits: int = 9) -> str:
        """One of "text", "markdown", "latex", "json"."""
        if fmt == "json":
            return self.to_json() + "\n"
        renderers = {"text": self.to_text, "markdown": self.to_markdown, "latex": self.to_latex}
        if fmt not in renderers:
            raise BackpropError(f"`format` of a convolution's derivation must be one of 'text', 'markdown', "
                                f"'latex', 'json'; got {fmt!r}")
        return renderers[fmt](digits)


# -- input syntax ---------------------------------------------------------------------------------
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_tensor(text: str, name: str, filters: bool = False) -> np.ndarray:
    """A matrix typed on one line: numbers separated by ``,``, rows by ``;``, channels by ``|``
    and (``filters=True``, kernels) output channels by ``/``. Returns (C, H, W), or
    (O, C, H, W) with ``filters``. ``"1,2;3,4"`` is one 2x2 channel; ``"1,0;0,1 | 2,0;0,2"`` two.
    Raises BackpropError naming ``name`` for ragged rows, channels of different shapes or
    anything that is not a number."""
    syntax = ("numbers separated by ',', rows by ';', channels by '|'" + (", filters by '/'" if filters else ""))
    if not isinstance(text, str) or not text.strip():
        raise BackpropError(f"`{name}` must be a matrix ({syntax}); got {describe(text)}")
    groups = text.split("/") if filters else [text]
    out = []
    for group in groups:
        channels = []
        for channel in group.split("|"):
            rows = []
            for row in channel.split(";"):
                cells = [c.strip() for c in row.split(",")]
                if not all(_NUMBER.match(c) for c in cells):
                    bad = next(c for c in cells if not _NUMBER.match(c))
                    raise BackpropError(f"`{name}` must be a matrix ({syntax}); got {text.strip()!r} "
                                        f"({bad!r} is not a number)")
                rows.append([float(c) for c in cells])
            if len({len(r) for r in rows}) != 1:
                raise BackpropError(f"`{name}` must be a matrix ({syntax}) with rows of one length; got "
                                    f"{text.strip()!r} (rows of {', '.join(str(len(r)) for r in rows)} numbers)")
            channels.append(rows)
        out.append(channels)
    shapes = {(len(ch), len(ch[0])) for group in out for ch in group}
    if len(shapes) != 1:
        listed = ", ".join(f"{h}x{w}" for h, w in sorted(shapes))
        raise BackpropError(f"`{name}` must have channels of one shape; got {text.strip()!r} (shapes {listed})")
    if len({len(group) for group in out}) != 1:
        raise BackpropError(f"`{name}` must have the same number of channels in every filter; got {text.strip()!r}")
    array = np.array(out, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise BackpropError(f"`{name}` must hold finite numbers; got {text.strip()!r}")
    return array if filters else array[0]


# -- building and checking --------------------------------------------------------------------------
def conv_network(K, b, input_shape, stride=1, padding=0, activation="identity", pool=None) -> Network:
    """``Conv2D`` with the explicit kernel ``K`` (O, C, kh, kw) and bias ``b`` ((O,), a number,
    or None for no bias) [+ ``MaxPool2D``/``AvgPool2D`` from ``pool`` = (kind, size[, stride])]
    + ``Flatten``, loss half_sse, on samples of ``input_shape`` (C, H, W)."""
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 4:
        raise BackpropError(f"`kernel` must have shape (out_channels, in_channels, kh, kw); got shape {K.shape}")
    O, C, kh, kw = K.shape
    if int(input_shape[0]) != C:
        raise BackpropError(f"`kernel` has {C} input channel(s) but `input` has {input_shape[0]}; they must match")
    use_bias = b is not None
    if use_bias:
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        if b.size == 1:
            b = np.full(O, b[0])  # one number: the same bias for every filter
        if b.shape != (O,):
            raise BackpropError(f"`bias` must list 1 or {O} numbers (one per filter); got {b.size}")
    layers = [Conv2D(C, O, (kh, kw), stride=stride, padding=padding, activation=activation, weight_init=K,
                     bias_init=b if use_bias else 0.0, use_bias=use_bias)]
    if pool is not None:
        kind, size, *rest = pool
        cls = {"max": MaxPool2D, "avg": AvgPool2D}.get(kind)
        if cls is None:
            raise BackpropError(f"`pool` must be 'max' or 'avg' with a size; got {kind!r}")
        layers.append(cls(size, rest[0] if rest and rest[0] is not None else None))
    layers.append(Flatten())
    return Network(layers, loss="half_sse", input_shape=tuple(int(s) for s in input_shape))


def _layers_of(network):
    if not isinstance(network, Network):
        raise BackpropError(f"`network` must be a backprop Network; got {describe(network)}")
    layers = network.layers
    kinds = [type(layer).__name__ for layer in layers]
    ok = (len(layers) in (2, 3) and isinstance(layers[0], Conv2D) and isinstance(layers[-1], Flatten)
          and (len(layers) == 2 or isinstance(layers[1], (MaxPool2D, AvgPool2D))))
    if not ok:
        raise BackpropError("`network` must be Conv2D [+ MaxPool2D or AvgPool2D] + Flatten to be explained as a "
                            f"convolution; got {' + '.join(kinds)}")
    conv, pool = layers[0], (layers[1] if len(layers) == 3 else None)
    if not conv.activation.elementwise:
        raise BackpropError(f"the Conv2D's activation must be element-wise; got {conv.activation.name!r}")
    return conv, pool


def products(network) -> int:
    """Multiply-adds in the conv's forward pass for one sample (what the size limit counts)."""
    conv, _ = _layers_of(network)
    O, C, kh, kw = conv.params["W"].shape
    return int(np.prod(conv.output_shape) * C * kh * kw)


def _chw(a: np.ndarray) -> np.ndarray:
    """One channels-last sample (1, H, W, C) as (C, H, W)."""
    return np.ascontiguousarray(a[0].transpose(2, 0, 1)).copy()


# -- the recording ----------------------------------------------------------------------------------
def explain_conv(network, x, t, lr: float = 0.1, force: bool = False) -> ConvDerivation:
    """Run one real SGD step of ``network`` (Conv2D [+ pool] + Flatten, loss half_sse) on one
    sample and record every number. ``x``: (C, H, W), or (H, W) for one channel; ``t``: the
    target, shaped like the output (C, h, w) (or (h, w), or flat in C-H-W order). The network
    itself is not changed. Convolutions of more than ``MAX_PRODUCTS`` multiply-adds are refused
    unless ``force=True``.

    >>> d = example_b()
    >>> d.quantity("Y[0,1]").value, d.L, d.quantity("dL/dX[2,0]").value
    (5.0, 7.5, 6.0)
    """
    conv, pool = _layers_of(network)
    lr = check_positive("lr", lr)
    loss = network.loss_fn
    if loss.name != "half_sse":
        raise BackpropError(f"the loss must be 'half_sse' to explain a convolution; got {loss.name!r}")
    n = products(network)
    if n > MAX_PRODUCTS and not force:
        raise BackpropError(
            f"the convolution must need at most {MAX_PRODUCTS} products per pass to be explained (the derivation "
            f"would be unreadable); got {n} ({conv!r} on input {network.input_shape}); pass force=True (--force) "
            "to explain it anyway")
    C, H, W = network.input_shape
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and C == 1:
        x = x[None]
    if x.shape != (C, H, W):
        raise BackpropError(f"`input` must have shape {(C, H, W)} (channels, height, width); got shape {x.shape}")
    out_shape = (pool or conv).output_shape
    t = np.asarray(t, dtype=np.float64)
    fits = t.ndim == 1 or t.shape == tuple(out_shape) or (out_shape[0] == 1 and t.shape == tuple(out_shape[1:]))
    if t.size != int(np.prod(out_shape)) or not fits:
        shape = out_shape[1:] if out_shape[0] == 1 else out_shape
        got = t.shape[1:] if t.ndim == 3 and t.shape[0] == 1 and out_shape[0] == 1 else t.shape
        raise BackpropError(f"`target` must have the output's shape {'x'.join(map(str, shape))}; got shape "
                            f"{'x'.join(map(str, got))}")
    t = t.reshape(out_shape)

    net = network.copy()
    conv, pool = _layers_of(net)
    K, b = conv.params["W"].copy(), (conv.params["b"].copy() if conv.use_bias else None)
    Xb, Tb = net.prepare(x[None], t.reshape(1, -1))
    net.forward_batch(Xb, training=True)
    L = float(net.backward_batch(Tb, loss))
    dOut = net.layers[-1].dA.reshape(out_shape).copy()  # dL/d output, what the loss handed Flatten
    rec = {
        "Y": _chw(conv.Z), "A": _chw(conv.A), "dA": _chw(conv.dA), "G": _chw(conv.dZ),
        "dK": conv.grads["W"].copy(), "db": conv.grads["b"].copy() if conv.use_bias else None,
        "P": _chw(pool.A) if pool is not None else None,
        "argmax": _chw(pool.argmax) if isinstance(pool, MaxPool2D) else None,
    }
    dAdY = conv.activation.derivative(conv.Z, conv.A) if conv.activation.name != "identity" else None
    # dL/dX: the engine's backward again from the same loss gradient (the step does not keep it)
    dX = net.backward(net.layers[-1].dA)[0].copy()
    if not np.array_equal(conv.grads["W"], rec["dK"]):  # same pass, same numbers (a guard, not a check)
        raise BackpropError("internal error: the second backward pass gave other gradients")
    SGD(lr).step(*net.trainable())
    K_after = conv.params["W"].copy()
    b_after = conv.params["b"].copy() if conv.use_bias else None
    L_after = float(net.loss(x[None], t.reshape(1, -1)))
    d = ConvDerivation(
        network=network, lr=lr, X=x.copy(), K=K, b=b, stride=conv.stride, padding=conv.padding,
        activation=conv.activation,
        pool=None if pool is None else {"kind": "max" if isinstance(pool, MaxPool2D) else "avg",
                                        "size": pool.pool_size, "stride": pool.stride},
        T=t.copy(), Y=rec["Y"], A=rec["A"], P=rec["P"], argmax=rec["argmax"], L=L, dOut=dOut, dA=rec["dA"],
        dAdY=None if dAdY is None else _chw(dAdY), G=rec["G"], dK=rec["dK"], db=rec["db"], dX=dX,
        K_after=K_after, b_after=b_after, Y_after=_chw(conv.Z), A_after=_chw(conv.A),
        P_after=_chw(pool.A) if pool is not None else None, L_after=L_after,
    )
    d.sections = _Sections(d).build()
    return d


def example_b() -> ConvDerivation:
    """Issue 20's golden example B: 3x3 input, 2x2 kernel, bias 1, one SGD step at lr 0.1."""
    e = EXAMPLE_B
    net = conv_network(np.array(e["K"], float)[None, None], e["b"], (1, 3, 3))
    return explain_conv(net, np.array(e["X"], float), np.array(e["T"], float), lr=e["lr"])


# -- the terms of every number ------------------------------------------------------------------------
def _idx(*i) -> str:
    return "[" + ",".join(str(int(v)) for v in i) + "]"


def _step(stride: int, letter: str) -> str:
    return f"{letter}+" if stride == 1 else f"{stride}{letter}+"


class _Sections:
    """Builds the sections of a ConvDerivation: each quantity's value is the engine's (read from
    the recorded arrays); its terms come from the recorded inputs of that step."""

    def __init__(self, d: ConvDerivation):
        self.d = d
        self.ch = d.channels

    # names: channel indices only when there is more than one channel
    def img(self, base: str, o: int, p: int, q: int) -> str:
        return base + (_idx(o, p, q) if self.ch else _idx(p, q))

    def kern(self, base: str, o: int, c: int, i: int, j: int) -> str:
        return base + (_idx(o, c, i, j) if self.ch else _idx(i, j))

    def bias(self, base: str, o: int) -> str:
        return base + (_idx(o) if self.ch else "")

    def build(self) -> list[Section]:
        d = self.d
        out = [self.forward("forward", d.K, d.b, d.Y, "", "1. Forward pass: Y = X ⋆ K + b")]
        if d.has_activation:
            out.append(self.activation_forward(d.Y, d.A, ""))
        if d.P is not None:
            out.append(self.pool_forward(d.A, d.P, ""))
        out.append(self.loss(d.output, d.L, "", "loss", "2. The loss"))
        out.append(self.output_gradient())
        if d.P is not None:
            out.append(self.routing())
        if d.has_activation:
            out.append(self.activation_backward())
        out.append(self.kernel_gradient())
        out.append(self.input_gradient())
        out.append(self.update())
        after = self.forward("after", d.K_after, d.b_after, d.Y_after, "+",
                             "7. Forward pass with the new values")
        if d.has_activation:
            after.quantities += self.activation_forward(d.Y_after, d.A_after, "+").quantities
        if d.P is not None:
            after.quantities += self.pool_forward(d.A_after, d.P_after, "+").quantities
        after.quantities += self.loss(d.P_after if d.P is not None else d.A_after, d.L_after, "+", "", "").quantities
        out.append(after)
        return out

    # -- forward ---------------------------------------------------------------------------------
    def _window(self, o: int, p: int, q: int):
        """(c, y, x, i, j) of every product of output (o, p, q) that reads a real input (not padding)."""
        d = self.d
        _, C, kh, kw = d.K.shape
        (sh, sw), (ph, pw), (_, H, W) = d.stride, d.padding, d.X.shape
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    y, x = p * sh + i - ph, q * sw + j - pw
                    if 0 <= y < H and 0 <= x < W:
                        yield c, y, x, i, j

    def forward(self, key, K, b, Y, plus, title) -> Section:
        d = self.d
        pad = d.padding != (0, 0)
        if self.ch:
            rule = "Y[o,p,q] = Σ_c Σ_i Σ_j X[c, p·s+i, q·s+j]·K[o,c,i,j] + b[o]"
        else:
            rule = "Y[p,q] = Σ_i Σ_j X[p·s+i, q·s+j]·K[i,j] + b"
        text = ("Each output is its window of the input times the kernel, entry by entry, summed, plus the bias: "
                + rule + " (cross-correlation, what every framework calls conv2d"
                + (f"; stride s = {d.stride[0]}x{d.stride[1]}" if d.stride != (1, 1) else "; stride s = 1") + ").")
        if pad:
            text += (f" The input is framed by {d.padding[0]} row(s) and {d.padding[1]} column(s) of zeros; "
                     "products with those zeros are left out of the sums.")
        if key == "after":
            text = "The same forward pass with the updated kernel and bias:"
        section = Section(key, title, text)
        for o, p, q in np.ndindex(*Y.shape):
            terms = [Term([(self.img("X", c, y, x), float(d.X[c, y, x])),
                           (self.kern("K" + plus, o, c, i, j), float(K[o, c, i, j]))])
                     for c, y, x, i, j in self._window(o, p, q)]
            if b is not None:
                terms.append(Term([(self.bias("b" + plus, o), float(b[o]))]))
            section.quantities.append(Quantity(self.img("Y" + plus, o, p, q), float(Y[o, p, q]), terms))
        return section

    def activation_forward(self, Y, A, plus) -> Section:
        name = self.d.activation.name
        section = Section("activation", f"Activation: A = {name}(Y)", f"Each output goes through {name}.")
        for o, p, q in np.ndindex(*Y.shape):
            section.quantities.append(Quantity(self.img("A" + plus, o, p, q), float(A[o, p, q]), function=name,
                                               arguments=[(self.img("Y" + plus, o, p, q), float(Y[o, p, q]))]))
        return section

    def _pool_windows(self, P):
        d = self.d
        (kh, kw), (sh, sw) = d.pool["size"], d.pool["stride"]
        for o, p, q in np.ndindex(*P.shape):
            yield o, p, q, [(p * sh + i, q * sw + j) for i in range(kh) for j in range(kw)]

    def pool_forward(self, A, P, plus) -> Section:
        d = self.d
        src = "A" if d.has_activation else "Y"
        kind, (kh, kw) = d.pool["kind"], d.pool["size"]
        if kind == "max":
            text = (f"Each {kh}x{kw} window keeps its largest entry; where several are equal, the first in "
                    "row-major order (the one the gradient will go to, as in PyTorch).")
        else:
            text = f"Each {kh}x{kw} window is replaced by its mean."
        section = Section("pool", f"{'Max' if kind == 'max' else 'Average'} pool: P = {kind}pool({src})", text)
        for o, p, q, cells in self._pool_windows(P):
            args = [(self.img(src + plus, o, y, x), float(A[o, y, x])) for y, x in cells]
            name = self.img("P" + plus, o, p, q)
            if kind == "max":
                k = int(np.argmax([v for _, v in args]))  # the first maximum: what the engine keeps
                if not plus:
                    k = int(self.d.argmax[o, p, q])
                section.quantities.append(Quantity(name, float(P[o, p, q]), function="max", arguments=args,
                                                   note=f"first maximum: {args[k][0]}"))
            else:
                share = 1.0 / (kh * kw)
                section.quantities.append(Quantity(name, float(P[o, p, q]),
                                                   [Term([a], coefficient=share) for a in args]))
        return section

    # -- loss and backward ------------------------------------------------------------------------
    def loss(self, out, L, plus, key, title) -> Section:
        d = self.d
        letter = d.output_letter
        section = Section(key, title, f"L = ½ Σ ({letter} − T)² over every output entry (half_sse).")
        terms = []
        for o, p, q in np.ndindex(*out.shape):
            diff = float(out[o, p, q] - d.T[o, p, q])
            label = f"{self.img(letter + plus, o, p, q)} - {self.img('T', o, p, q)}"
            terms.append(Term([(label, diff), (label, diff)], coefficient=0.5,
                              at={"difference": [float(out[o, p, q]), float(d.T[o, p, q])]}))
        section.quantities.append(Quantity("L" + plus, float(L), terms))
        return section

    def output_gradient(self) -> Section:
        d = self.d
        letter = d.output_letter
        text = (f"The loss's gradient for each output entry: ∂L/∂{letter} = {letter} − T." +
                (" These are G = ∂L/∂Y, the gradient every conv formula below starts from." if letter == "Y" else ""))
        section = Section("output_gradient", f"3. Backward: ∂L/∂{letter}", text)
        out = d.output
        for o, p, q in np.ndindex(*out.shape):
            section.quantities.append(Quantity(
                "dL/d" + self.img(letter, o, p, q), float(d.dOut[o, p, q]),
                [Term([(self.img(letter, o, p, q), float(out[o, p, q]))]),
                 Term([(self.img("T", o, p, q), float(d.T[o, p, q]))], coefficient=-1.0)]))
        return section

    def routing(self) -> Section:
        d = self.d
        src = "A" if d.has_activation else "Y"
        kind, (kh, kw) = d.pool["kind"], d.pool["size"]
        if kind == "max":
            text = ("A max-pool sends each window's gradient to the entry it kept (the first maximum) and 0 to the "
                    "others; an entry kept by several windows gets the sum.")
        else:
            text = f"An average pool gives every entry of a window 1/{kh * kw} of the window's gradient."
        if src == "Y":
            text += " The result is G = ∂L/∂Y."
        section = Section("routing", f"The pool's routing: ∂L/∂{src}", text)
        routes: dict[tuple, list[Term]] = {idx: [] for idx in np.ndindex(*d.A.shape)}
        for o, p, q, cells in self._pool_windows(d.P):
            g = ("dL/d" + self.img("P", o, p, q), float(d.dOut[o, p, q]))
            if kind == "max":
                y, x = cells[int(d.argmax[o, p, q])]
                routes[(o, y, x)].append(Term([g]))
            else:
                for y, x in cells:
                    routes[(o, y, x)].append(Term([g], coefficient=1.0 / (kh * kw)))
        for (o, y, x), terms in routes.items():
            note = None if terms else ("not kept by any window" if kind == "max" else "in no window")
            section.quantities.append(Quantity("dL/d" + self.img(src, o, y, x), float(d.dA[o, y, x]), terms,
                                               note=note))
        return section

    def activation_backward(self) -> Section:
        d = self.d
        name = d.activation.name
        section = Section("activation_backward", f"Through the activation: G = ∂L/∂Y = ∂L/∂A · {name}′(Y)",
                          f"The derivative of {name} at each Y, then G = ∂L/∂A · ∂A/∂Y entry by entry.")
        for o, p, q in np.ndindex(*d.Y.shape):
            section.quantities.append(Quantity("dA/d" + self.img("Y", o, p, q), float(d.dAdY[o, p, q]),
                                               function=name + "'",
                                               arguments=[(self.img("Y", o, p, q), float(d.Y[o, p, q]))]))
        for o, p, q in np.ndindex(*d.Y.shape):
            section.quantities.append(Quantity(
                "dL/d" + self.img("Y", o, p, q), float(d.G[o, p, q]),
                [Term([("dL/d" + self.img("A", o, p, q), float(d.dA[o, p, q])),
                       ("dA/d" + self.img("Y", o, p, q), float(d.dAdY[o, p, q]))])]))
        return section

    def kernel_gradient(self) -> Section:
        d = self.d
        O, C, kh, kw = d.K.shape
        (sh, sw), (ph, pw), (_, H, W) = d.stride, d.padding, d.X.shape
        if self.ch:
            rule = "∂L/∂K[o,c,i,j] = Σ_p Σ_q G[o,p,q]·X[c, p·s+i, q·s+j]", "∂L/∂b[o] = Σ_p Σ_q G[o,p,q]"
        else:
            rule = "∂L/∂K[i,j] = Σ_p Σ_q G[p,q]·X[p·s+i, q·s+j]", "∂L/∂b = Σ_p Σ_q G[p,q]"
        text = ("Each kernel entry multiplies one input entry in every output position, so its gradient is the sum "
                f"over the output positions: {rule[0]} (the input cross-correlated with G). The bias is added to "
                f"every output: {rule[1]}.")
        if d.padding != (0, 0):
            text += " Products with the zero padding are left out."
        section = Section("kernel_gradient", "4. The kernel's gradient: a sum over the output positions", text)
        oh, ow = d.G.shape[1:]
        for o, c, i, j in np.ndindex(O, C, kh, kw):
            terms = []
            for p, q in np.ndindex(oh, ow):
                y, x = p * sh + i - ph, q * sw + j - pw
                if 0 <= y < H and 0 <= x < W:
                    terms.append(Term([("dL/d" + self.img("Y", o, p, q), float(d.G[o, p, q])),
                                       (self.img("X", c, y, x), float(d.X[c, y, x]))]))
            section.quantities.append(Quantity("dL/d" + self.kern("K", o, c, i, j), float(d.dK[o, c, i, j]), terms))
        if d.b is not None:
            for o in range(O):
                terms = [Term([("dL/d" + self.img("Y", o, p, q), float(d.G[o, p, q]))]) for p, q in np.ndindex(oh, ow)]
                section.quantities.append(Quantity("dL/d" + self.bias("b", o), float(d.db[o]), terms))
        return section

    def input_gradient(self) -> Section:
        d = self.d
        O, C, kh, kw = d.K.shape
        (sh, sw), (ph, pw), (_, H, W) = d.stride, d.padding, d.X.shape
        oh, ow = d.G.shape[1:]
        at_y = f"y+{ph}+u" if ph else "y+u"
        at_x = f"x+{pw}+v" if pw else "x+v"
        text = ("Each input entry is read by every window that covers it, so ∂L/∂X[y,x] is the sum of G[p,q]·K[i,j] "
                "over the windows (p,q) and kernel entries (i,j) that touch it. That sum is the full convolution of G "
                "with the kernel rotated by 180 degrees: "
                + (f"∂L/∂X[c,y,x] = Σ_o Σ_u Σ_v Gpad[o, {at_y}, {at_x}]·Krot[o,c,u,v], where Krot[o,c,u,v] = "
                   f"K[o, c, {kh - 1}−u, {kw - 1}−v] and Gpad is G spread over zeros: G[o,p,q] sits at "
                   f"Gpad[o, {_step(sh, 'p')}{kh - 1}, {_step(sw, 'q')}{kw - 1}]" if self.ch else
                   f"∂L/∂X[y,x] = Σ_u Σ_v Gpad[{at_y}, {at_x}]·Krot[u,v], where Krot[u,v] = K[{kh - 1}−u, {kw - 1}−v] "
                   f"and Gpad is G spread over zeros: G[p,q] sits at Gpad[{_step(sh, 'p')}{kh - 1}, "
                   f"{_step(sw, 'q')}{kw - 1}]"))
        text += (f" ({sh - 1} zero row(s) and {sw - 1} zero column(s) between entries, for the stride)"
                 if d.stride != (1, 1) else "")
        text += (f"; the padding shifts the rows by {ph} and the columns by {pw}, and the gradient of the zero padding "
                 "itself is dropped" if d.padding != (0, 0) else "")
        text += ". Each line shows the full-convolution form, then the same terms as G·K, then the numbers."
        section = Section("input_gradient", "5. The input's gradient: the full convolution of G with the kernel "
                                            "rotated 180°", text)
        for c, y, x in np.ndindex(C, H, W):
            terms = []
            for o, p, q in np.ndindex(O, oh, ow):
                i, j = y + ph - p * sh, x + pw - q * sw
                if 0 <= i < kh and 0 <= j < kw:
                    u, v = kh - 1 - i, kw - 1 - j
                    at = {"Gpad": [o, p * sh + kh - 1, q * sw + kw - 1] if self.ch else [p * sh + kh - 1, q * sw + kw - 1],
                          "Krot": [o, c, u, v] if self.ch else [u, v],
                          "dXpad": [c, y + ph, x + pw] if self.ch else [y + ph, x + pw]}
                    terms.append(Term([("dL/d" + self.img("Y", o, p, q), float(d.G[o, p, q])),
                                       (self.kern("K", o, c, i, j), float(d.K[o, c, i, j]))], at=at))
            name = "dL/d" + self.img("X", c, y, x)
            section.quantities.append(Quantity(name, float(d.dX[c, y, x]), terms,
                                               note=None if terms else "read by no window"))
        return section

    def update(self) -> Section:
        d = self.d
        section = Section("update", f"6. The update (SGD, learning rate {d.lr:g})",
                          "Every parameter moves against its gradient, all at once: K⁺ = K − η·∂L/∂K, b⁺ = b − η·∂L/∂b.")
        for o, c, i, j in np.ndindex(*d.K.shape):
            k = self.kern("K", o, c, i, j)
            section.quantities.append(Quantity(self.kern("K+", o, c, i, j), float(d.K_after[o, c, i, j]),
                                               [Term([(k, float(d.K[o, c, i, j]))]),
                                                Term([("lr", d.lr), ("dL/d" + k, float(d.dK[o, c, i, j]))], -1.0)]))
        if d.b is not None:
            for o in range(d.K.shape[0]):
                b = self.bias("b", o)
                section.quantities.append(Quantity(self.bias("b+", o), float(d.b_after[o]),
                                                   [Term([(b, float(d.b[o]))]),
                                                    Term([("lr", d.lr), ("dL/d" + b, float(d.db[o]))], -1.0)]))
        return section
