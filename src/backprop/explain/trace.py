"""Record one real training step of a network, every intermediate number, for a derivation.

``explain(network, x, y)`` copies the network, runs the engine's own forward pass
(``Network._forward``), backward pass (``Network._backprop``) and one ``SGD(lr)`` step on
``network.trainable()``, and reads each Dense layer's caches: ``X``, ``Z`` (net), ``A`` (out),
``dA`` (dE/dout), ``dZ`` (delta) and the gradients. The only arithmetic done here is for
display: the terms delta_k * w_jk of a hidden neuron's sum (whose total is the engine's dA) and
the Jacobian of a non-elementwise activation, which is read from the activation's own
``backward``. See ``docs/explain.md`` for the naming scheme.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import BackpropError, check_positive, describe
from ..activations import sigmoid, softmax
from ..layers import Dense
from ..network import Network
from ..optimizers import SGD

__all__ = ["explain", "Derivation", "LayerTrace", "MAX_WEIGHTS", "neuron_names"]

MAX_WEIGHTS = 64  # larger networks are refused unless force=True: the derivation would be unreadable


@dataclass
class LayerTrace:
    """Everything about one Dense layer in the step (1-D arrays are per neuron of the layer)."""

    index: int  # 1 = first layer after the inputs
    kind: str  # "hidden" or "output"
    neurons: list[str]  # h1, h2 / o1, o2 / h1_1 ...
    inputs: list[str]  # names of what feeds it: i1.. or the previous layer's neurons
    activation: object  # the engine's Activation
    weight_names: list[list[str]]  # [i][j]: weight from input i to neuron j
    W: np.ndarray  # before the step, (n_in, n_out)
    W_after: np.ndarray
    x: np.ndarray  # the layer's input (X), 1-D
    net: np.ndarray  # Z
    out: np.ndarray  # A
    delta: np.ndarray  # dZ = dE/dnet
    dW: np.ndarray  # engine gradient, (n_in, n_out)
    bias_names: list[str] | None = None  # one per neuron (a shared name repeats), None: no bias
    b: np.ndarray | None = None
    b_after: np.ndarray | None = None
    db: np.ndarray | None = None
    bias_trained: bool = False
    dE_dout: np.ndarray | None = None  # None when the loss is fused with the output (from logits)
    dout_dnet: np.ndarray | None = None  # elementwise activations
    jacobian: np.ndarray | None = None  # [j, k] = dout_j / dnet_k, for softmax
    terms: np.ndarray | None = None  # hidden: [j, k] = delta_k(next) * w_jk(next), sums to dE_dout_j
    next_weight_names: list[list[str]] | None = None
    next_neurons: list[str] | None = None
    net_after: np.ndarray | None = None  # forward pass with the updated weights
    out_after: np.ndarray | None = None

    @property
    def shared_bias(self) -> bool:
        """True when one bias name stands for the whole layer (equal values, frozen)."""
        return self.bias_names is not None and len(set(self.bias_names)) == 1 and len(self.neurons) > 1

    @property
    def fused(self) -> bool:
        """True for an output layer whose delta comes straight from a from-logits loss."""
        return self.dE_dout is None


@dataclass
class Derivation:
    """One training step, recorded number by number. Render with ``to_text()``,
    ``to_markdown()``, ``to_latex()``, ``to_dict()`` / ``to_json()``.

    Fields (what ``explain`` records): ``input_names`` and ``x`` (the sample), ``output_names``
    and ``y`` (its target), ``layers`` (one LayerTrace per layer: nets, outputs, deltas, weights
    before and after), ``loss`` (the engine's Loss), ``lr`` (the SGD rate), ``errors`` (the error
    of each output, or None when the loss does not split by output), ``E_total`` (the loss before
    the step), ``E_after`` (the loss after it) and ``notes`` (remarks the renderers print)."""

    input_names: list[str]
    x: np.ndarray
    output_names: list[str]
    y: np.ndarray
    layers: list[LayerTrace]
    loss: object  # the engine's Loss
    lr: float
    errors: dict[str, float] | None  # E_o1 .. per output (None when the loss does not split)
    E_total: float
    E_after: float
    notes: list[str] = field(default_factory=list)

    # -- lookups ----------------------------------------------------------------------------------
    @property
    def output(self) -> LayerTrace:
        return self.layers[-1]

    def weights(self):
        """(name, layer, i, j) for every weight in w1, w2, .. order."""
        for layer in self.layers:
            for j in range(len(layer.neurons)):
                for i in range(len(layer.inputs)):
                    yield layer.weight_names[i][j], layer, i, j

    def trained_biases(self):
        """(name, layer, j) for every trained bias, layer by layer."""
        for layer in self.layers:
            if layer.bias_names is not None and layer.bias_trained:
                for j, name in enumerate(layer.bias_names):
                    yield name, layer, j

    # -- renderers (render.py holds the formatting) ------------------------------------------------
    def to_dict(self) -> dict:
        from .render import to_dict

        return to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_text(self, digits: int = 9) -> str:
        from .render import to_text

        return to_text(self, digits)

    def to_markdown(self, digits: int = 9) -> str:
        from .render import to_markdown

        return to_markdown(self, digits)

    def to_latex(self, digits: int = 9) -> str:
        from .render import to_latex

        return to_latex(self, digits)

    def to_html(self, digits: int = 9, force: bool = False) -> str:
        """The self-contained step-through page (``page.py``); ``force`` draws wide layers too."""
        from .page import to_html

        return to_html(self, digits, force)

    # Jupyter shows the derivation as formatted mathematics
    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        from .page import derivation_html

        return derivation_html(self)

    def render(self, fmt: str = "text", digits: int = 9) -> str:
        """One of "text", "markdown", "latex", "json", "html"."""
        if fmt == "json":
            return self.to_json() + "\n"
        if fmt == "html":
            return self.to_html(digits)
        renderers = {"text": self.to_text, "markdown": self.to_markdown, "latex": self.to_latex}
        if fmt not in renderers:
            raise BackpropError(f"`format` must be one of 'text', 'markdown', 'latex', 'json', 'html'; got {fmt!r}")
        return renderers[fmt](digits)


# -- naming ---------------------------------------------------------------------------------------
def neuron_names(sizes: list[int]) -> list[list[str]]:
    """Names per layer: inputs i1.., hidden h1.. (h1_1, h2_1 .. with several hidden layers), outputs o1.."""
    n_hidden = len(sizes) - 2
    names = [[f"i{k}" for k in range(1, sizes[0] + 1)]]
    for layer, size in enumerate(sizes[1:-1], start=1):
        prefix = "h" if n_hidden == 1 else f"h{layer}_"
        names.append([f"{prefix}{k}" for k in range(1, size + 1)])
    names.append([f"o{k}" for k in range(1, sizes[-1] + 1)])
    return names


def _bias_names(index: int, neurons: list[str], b: np.ndarray, trained: bool) -> list[str]:
    # One name per layer (the seed's b1, b2) when the layer's biases are equal and never trained;
    # otherwise one per neuron, named after it: b_h1, b_o2, b_h2_1.
    if not trained and np.all(b == b[0]):
        return [f"b{index}"] * len(neurons)
    return [f"b_{name}" for name in neurons]


# -- the recording ----------------------------------------------------------------------------------
def _check_network(network) -> None:
    if not isinstance(network, Network):
        raise BackpropError(f"`network` must be a backprop Network; got {describe(network)}")
    bad = [type(layer).__name__ for layer in network.layers if not isinstance(layer, Dense)]
    if bad:
        raise BackpropError(f"`network` must contain only Dense layers to be explained; got {', '.join(bad)}")


def explain(network, x, y, loss=None, lr: float = 0.5, force: bool = False) -> Derivation:
    """Run one real training step of ``network`` on one sample and record every number.

    ``loss`` defaults to the network's own; ``lr`` is the SGD learning rate (the seed's 0.5).
    Frozen parameters (e.g. biases built with ``trainable_bias=False``) are not updated, as in
    training. The network itself is not changed: the step runs on a copy. Networks with more
    than 64 weights are refused unless ``force=True``.

    >>> from backprop import Network
    >>> net = Network.from_sizes([2, 2, 1], seed=0)
    >>> d = explain(net, [0.5, 0.1], [1.0])
    >>> ", ".join(sorted(d.to_dict()["gradients"])[:3])
    'b_h1, b_h2, b_o1'
    """
    _check_network(network)
    lr = check_positive("lr", lr)
    n_weights = sum(layer.params["W"].size for layer in network.layers)
    if n_weights > MAX_WEIGHTS and not force:
        raise BackpropError(
            f"`network` must have at most {MAX_WEIGHTS} weights to be explained (the derivation "
            f"would be unreadable); got {n_weights}; pass force=True (--force) to explain it anyway"
        )
    net = network.copy()
    loss_fn = net._resolve_loss(loss)
    X, Y = net.prepare(x, y)
    if X.shape[0] != 1:
        raise BackpropError(f"`x` must be one sample of {net.n_inputs} inputs to be explained; got shape {np.shape(x)}")

    names = neuron_names(net.sizes)
    before = [{k: p.copy() for k, p in layer.params.items()} for layer in net.layers]
    net.forward_batch(X, training=True)
    E_total = net.backward_batch(Y, loss_fn)
    # the engine's step, on the parameters the fit loop would train
    SGD(lr).step(*net.trainable())

    layers: list[LayerTrace] = []
    w_next = 1
    for index, (layer, params) in enumerate(zip(net.layers, before), start=1):
        n_in, n_out = layer.n_inputs, layer.n_outputs
        weight_names = [[f"w{w_next + j * n_in + i}" for j in range(n_out)] for i in range(n_in)]
        w_next += n_in * n_out
        is_output = index == len(net.layers)
        fused = is_output and loss_fn.from_logits
        trace = LayerTrace(
            index=index,
            kind="output" if is_output else "hidden",
            neurons=names[index],
            inputs=names[index - 1],
            activation=layer.activation,
            weight_names=weight_names,
            W=params["W"],
            W_after=layer.params["W"].copy(),
            x=layer.X[0].copy(),
            net=layer.Z[0].copy(),
            out=layer.A[0].copy(),
            delta=layer.dZ[0].copy(),
            dW=layer.grads["W"].copy(),
        )
        if layer.use_bias:
            trace.bias_trained = layer.trainable_bias
            trace.b, trace.b_after = params["b"], layer.params["b"].copy()
            trace.db = layer.grads["b"].copy()
            trace.bias_names = _bias_names(index, trace.neurons, trace.b, trace.bias_trained)
        if not fused:
            trace.dE_dout = layer.dA[0].copy()
            Z, A = layer.Z, layer.A
            if layer.activation.elementwise:
                trace.dout_dnet = layer.activation.derivative(Z, A)[0].copy()
            else:  # row j of the Jacobian is backward() of the unit vector e_j
                eye = np.eye(n_out, dtype=Z.dtype)
                trace.jacobian = np.stack([layer.activation.backward(Z, A, e[None, :])[0] for e in eye])
        layers.append(trace)

    for trace, nxt in zip(layers, layers[1:]):
        trace.terms = nxt.W * nxt.delta[None, :]  # term [j, k]: delta_k * w_jk, summed over k -> dE/dout_j
        trace.next_weight_names = nxt.weight_names
        trace.next_neurons = nxt.neurons

    # the forward pass with the updated parameters (for the diagram and E after the step)
    E_after = net.loss(X, Y, loss=loss_fn)
    for trace, layer in zip(layers, net.layers):
        trace.net_after, trace.out_after = layer.Z[0].copy(), layer.A[0].copy()

    return Derivation(
        input_names=names[0],
        x=X[0].copy(),
        output_names=names[-1],
        y=Y[0].copy(),
        layers=layers,
        loss=loss_fn,
        lr=lr,
        errors=_output_errors(loss_fn, layers[-1], Y, names[-1]),
        E_total=float(E_total),
        E_after=float(E_after),
    )


def _output_errors(loss_fn, out_layer: LayerTrace, Y: np.ndarray, names: list[str]):
    """E_o1, E_o2, .. from the loss's own per-sample formula applied to each output alone.

    Only losses that are a sum (or mean) of one term per output split this way; softmax
    cross-entropy couples the outputs, so it has only a total.
    """
    if loss_fn.name == "softmax_cross_entropy":
        return None
    values = out_layer.net if loss_fn.from_logits else out_layer.out
    K = len(names)
    scale = 1.0 / K if loss_fn.name == "mse" else 1.0  # mse averages the per-output terms
    return {
        f"E_{name}": float(loss_fn.per_sample(values[None, k : k + 1], Y[:, k : k + 1])[0]) * scale
        for k, name in enumerate(names)
    }


# Values shown on the way (used by the renderers; from the engine's own functions).
def link_output(derivation: Derivation) -> np.ndarray | None:
    """For a from-logits loss: the probabilities the loss uses, sigmoid(net) or softmax(net)."""
    out = derivation.output
    if not derivation.loss.from_logits:
        return None
    if derivation.loss.link == "sigmoid":
        return sigmoid(out.net)
    return softmax(out.net[None, :])[0]
