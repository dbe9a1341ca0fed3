"""Network: a stack of layers with forward, reverse-order backward and parameters in a stable order.

Parameters are named ``W1, b1, W2, b2, ...`` (layer 1 is the first layer after the inputs);
``parameters()``, ``gradients()``, ``get_weights()`` and ``set_weights()`` all use that order.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np

from ._validation import BackpropError, as_batch, as_targets, check_dtype, check_finite, describe
from .activations import Activation
from .initializers import as_generator, get_initializer
from .layers import Dense, Layer
from .layers.base import spatial_shape, to_internal, to_public
from .losses import Loss, get_loss

# ``predict`` runs batches with more rows than this in chunks of this many (issue 6).
PREDICT_CHUNK = 2048

__all__ = ["Network"]


class Network:
    """A feed-forward network: ``layers`` (a list of Layer objects, applied in order), ``loss``
    (a loss name, dict or Loss; default ``half_sse``) and ``input_shape`` (one sample's shape,
    needed when the first layer does not fix it, e.g. ``(1, 8, 8)`` before a Conv2D).

    >>> net = Network.from_sizes([2, 2, 1], activation="sigmoid", seed=0)
    >>> net
    Network 2-2-1 (sigmoid)
    """

    def __init__(self, layers: Sequence[Layer], loss: str | Loss = "half_sse", input_shape=None):
        """``input_shape`` is one sample's shape, e.g. ``(1, 8, 8)`` (channels, height, width)
        for images; it may be left out when the first layer fixes it (a Dense layer, or a layer
        given ``input_shape``). Each layer's shape is then inferred from the one before."""
        layers = list(layers)
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise BackpropError(
                f"`layers` must be a non-empty list of Layer objects; got {describe(layers)}"
            )
        self.input_shape = _build_shapes(layers, input_shape)
        dtypes = {np.dtype(layer.dtype) for layer in layers if hasattr(layer, "dtype")} or {np.dtype(np.float64)}
        if len(dtypes) != 1:
            raise BackpropError(f"all layers must share one dtype; got {sorted(d.name for d in dtypes)}")
        self.layers = layers
        self.dtype = dtypes.pop()
        self.loss_fn = self._resolve_loss(loss)
        self.metadata: dict = {}  # JSON-able extras saved with the model (see backprop.io)

    @classmethod
    def from_sizes(
        cls,
        sizes: Sequence[int],
        activation: str | Activation = "sigmoid",
        output_activation: str | Activation | None = None,
        weight_init="normal",
        bias_init=0.0,
        use_bias: bool = True,
        trainable_bias: bool = True,
        loss: str | Loss = "half_sse",
        seed: int | np.random.Generator | None = None,
        dtype=np.float64,
    ) -> "Network":
        """Dense layers for consecutive sizes, e.g. ``[64, 32, 16, 10]`` (seed 003's form).

        ``output_activation=None`` means the output layer uses ``activation`` too. One Generator
        built from ``seed`` draws every layer's weights, first layer first. The tutorials' own
        layouts (seed 003's bias trick, Brownlee's neuron-order draws) are in
        ``backprop.demos.conventions``.
        """
        sizes = list(sizes)
        if len(sizes) < 2 or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise BackpropError(
                f"`sizes` must list at least two positive integers (inputs, ..., outputs); got {describe(sizes)}"
            )
        rng = as_generator(seed)
        out_act = activation if output_activation is None else output_activation
        layers = [
            Dense(
                n_in,
                n_out,
                activation=out_act if i == len(sizes) - 2 else activation,
                weight_init=weight_init,
                bias_init=bias_init,
                use_bias=use_bias,
                trainable_bias=trainable_bias,
                seed=rng,
                dtype=dtype,
            )
            for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]))
        ]
        return cls(layers, loss=loss)

    # -- description ---------------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        """Values per sample into the first layer and out of each layer (flattened shapes)."""
        return [self.layers[0].n_inputs] + [layer.n_outputs for layer in self.layers]

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_inputs

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_outputs

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.layers[-1].output_shape)

    @property
    def is_dense(self) -> bool:
        """True for a stack of Dense layers only (what the dense fast path and explain take)."""
        return all(type(layer) is Dense for layer in self.layers)

    @property
    def images_in(self) -> bool:
        """True when samples are images (C, H, W), given as (n, C, H, W) batches."""
        return len(self.input_shape) == 3

    def n_params(self) -> int:
        return int(sum(layer.n_params for layer in self.layers))

    def summary(self) -> str:
        """A table of the layers: each one's output shape and parameter count."""
        rows = [("#", "layer", "output shape", "parameters"), ("0", "input", _shape_text(self.input_shape), "")]
        for i, layer in enumerate(self.layers, start=1):
            rows.append((str(i), repr(layer), _shape_text(layer.output_shape), f"{layer.n_params:,}"))
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        lines = [
            "  ".join([r[0].rjust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]), r[3].rjust(widths[3])]).rstrip()
            for r in rows
        ]
        lines.append(f"{self.n_params():,} parameters, loss {self.loss_fn.name}")
        return "\n".join(lines)

    @property
    def title(self) -> str:
        """A one-line description: ``repr`` for Dense networks, the first line of it otherwise."""
        return repr(self).splitlines()[0]

    def __repr__(self) -> str:
        if not self.is_dense:
            head = f"Network {_shape_text(self.input_shape)} -> {_shape_text(self.output_shape)}"
            return head + "\n" + self.summary()
        acts = [getattr(layer, "activation", None) for layer in self.layers]
        names = [a.name if a is not None else type(l).__name__ for a, l in zip(acts, self.layers)]
        hidden = sorted(set(names[:-1]))
        if not hidden or hidden == [names[-1]]:
            desc = names[-1]
        else:
            desc = f"{'/'.join(hidden)}, {names[-1]} output"
        return f"Network {'-'.join(map(str, self.sizes))} ({desc})"

    def _repr_html_(self) -> str:
        """Jupyter: the summary's table of layers as HTML, the title as its caption."""
        from html import escape

        head = "".join(f"<th>{h}</th>" for h in ("#", "layer", "output shape", "parameters"))
        rows = [("0", "input", _shape_text(self.input_shape), "")]
        rows += [(str(i), repr(layer), _shape_text(layer.output_shape), f"{layer.n_params:,}")
                 for i, layer in enumerate(self.layers, start=1)]
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        foot = f"{self.n_params():,} parameters, loss {escape(self.loss_fn.name)}"
        return (f"<table><caption>{escape(self.title)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                f'<tfoot><tr><td colspan="4">{foot}</td></tr></tfoot></table>')

    def config(self) -> dict:
        return {"layers": [layer.config() for layer in self.layers], "loss": self.loss_fn.config(),
                "input_shape": list(self.input_shape)}

    # -- parameters ----------------------------------------------------------------------------
    def named_parameters(self) -> list[tuple[str, np.ndarray]]:
        """(name, live array) for every parameter: W1, b1, W2, b2, ..."""
        return [
            (f"{name}{i}", p)
            for i, layer in enumerate(self.layers, start=1)
            for name, p in layer.params.items()
        ]

    def parameters(self) -> list[np.ndarray]:
        """The live parameter arrays (changing one in place changes the network)."""
        return [p for _, p in self.named_parameters()]

    def _grads(self) -> list[np.ndarray]:
        return [layer.grads[name] for layer in self.layers for name in layer.params]

    def trainable(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(params, grads) of the parameters an optimizer may update, frozen ones left out."""
        params, grads = [], []
        for layer in self.layers:
            for name in layer.trainable:
                params.append(layer.params[name])
                grads.append(layer.grads[name])
        return params, grads

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all parameters in ``parameters()`` order."""
        return [p.copy() for p in self.parameters()]

    def set_weights(self, weights: Sequence) -> "Network":
        """Copy values into the parameters (same order and shapes as ``get_weights()``)."""
        named = self.named_parameters()
        weights = list(weights)
        if len(weights) != len(named):
            raise BackpropError(
                f"`weights` must hold {len(named)} arrays ({', '.join(n for n, _ in named)}); got {len(weights)}"
            )
        arrays = []
        for (name, p), w in zip(named, weights):
            w = np.asarray(w, dtype=p.dtype)
            if w.shape != p.shape:
                raise BackpropError(f"weights for `{name}` must have shape {p.shape}; got shape {w.shape}")
            check_finite(f"weights for `{name}`", w)
            arrays.append(w)
        for (_, p), w in zip(named, arrays):
            p[...] = w
        return self

    def copy(self, dtype=None) -> "Network":
        """A deep copy, optionally converted to another dtype."""
        clone = copy.deepcopy(self)
        if dtype is not None:
            dtype = check_dtype("dtype", dtype)
            for layer in clone.layers:
                layer.params = {k: v.astype(dtype) for k, v in layer.params.items()}
                layer._allocate_grads()
                layer.dtype = dtype
            clone.dtype = dtype
        for layer in clone.layers:
            layer.X = layer.Z = layer.A = None
        return clone

    # -- forward and backward ------------------------------------------------------------------
    def _resolve_loss(self, loss) -> Loss:
        if loss is None:
            return self.loss_fn
        loss = get_loss(loss)
        if loss.from_logits:
            last = self.layers[-1]
            act = getattr(last, "activation", None)
            if act is None or not hasattr(last, "backward_net") or act.name not in (loss.link, "identity"):
                raise BackpropError(
                    f"loss {loss.name!r} is computed from logits and needs an output layer with "
                    f"activation {loss.link!r} or 'identity'; got {getattr(act, 'name', type(last).__name__)!r}"
                )
        return loss

    # -- the step protocol ----------------------------------------------------------------------
    # prepare -> forward_batch -> backward_batch (or batch_loss): what fit, the estimators and
    # explain drive, one batch at a time. Arrays in and out are the layers' internal layout (the
    # output of ``prepare``); ``forward``/``predict``/``backward`` are the public-layout versions.
    def forward_batch(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """Step 2: the outputs for a prepared batch; every layer caches what backward needs."""
        for layer in self.layers:
            X = layer.forward(X, training)
        return X

    def _as_input(self, name: str, X, finite: bool = True) -> tuple[np.ndarray, bool]:
        """(X in the layers' internal layout, was one sample). Vector inputs: (n, n_inputs) or
        (n_inputs,). Images (C, H, W): (n, C, H, W), one (C, H, W) sample, or rows of C*H*W
        values in C-H-W order (a table of pixel columns)."""
        if not self.images_in:
            return as_batch(name, X, self.n_inputs, self.dtype, finite=finite)
        C, H, W = self.input_shape
        array = np.asarray(X) if not isinstance(X, np.ndarray) else X
        single = array.ndim == 3 or (array.ndim == 1 and array.size == self.n_inputs)
        if array.ndim in (1, 2) and array.shape[-1] == self.n_inputs:
            flat, _ = as_batch(name, array, self.n_inputs, self.dtype, finite=finite)
            return to_internal(flat.reshape(-1, C, H, W)), single
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[1:] != (C, H, W):
            raise BackpropError(
                f"`{name}` must have shape (n_samples, {C}, {H}, {W}), ({C}, {H}, {W}) or "
                f"(n_samples, {self.n_inputs}); got shape {np.shape(X)}"
            )
        flat, _ = as_batch(name, array.reshape(array.shape[0], -1), self.n_inputs, self.dtype, finite=finite)
        return to_internal(flat.reshape(-1, C, H, W)), single

    def forward(self, X) -> np.ndarray:
        """Outputs for a batch (n, n_inputs) or for one sample (n_inputs,) -> (n_outputs,);
        image networks take (n, C, H, W) batches (see ``_as_input``)."""
        X2, was_1d = self._as_input("X", X)
        out = self.forward_batch(X2)
        return out[0] if was_1d else out

    def predict(self, X) -> np.ndarray:
        """Outputs, as ``forward``; a 2-D batch of more than ``PREDICT_CHUNK`` rows through a
        network of Dense layers goes through in chunks with preallocated buffers (issue 6:
        ``backprop.fast.forward``, which also checks X for NaN and infinity on the way), and
        then the layers keep no activations for ``backward``. Such a batch through a conv
        network takes the compiled forward of ``backprop.fast.conv`` where it applies (issue 21;
        not with BACKPROP_FAST=0), and keeps no activations either."""
        X2, was_1d = self._as_input("X", X, finite=False)
        if X2.shape[0] > PREDICT_CHUNK and self.is_dense:
            from .fast.forward import forward_chunked

            return forward_chunked(self, X2, PREDICT_CHUNK, check="X")
        check_finite("X", X2)
        if X2.shape[0] > PREDICT_CHUNK and not self.is_dense:
            from .fast.conv import predict_if_supported  # issue 21: the compiled conv forward

            out = predict_if_supported(self, X2)
            if out is not None:
                return out
        out = self.forward_batch(X2)
        return out[0] if was_1d else out

    def prepare(self, X, Y, names=("X", "Y")):
        """Step 1: (X, Y) checked and converted: X in the layers' layout and dtype (images
        channels-last), Y as (n, n_outputs). ``names`` are the names errors use."""
        X2, _ = self._as_input(names[0], X)
        Y2 = as_targets(names[1], Y, X2.shape[0], self.n_outputs, self.dtype)
        return X2, Y2

    def batch_loss(self, Y: np.ndarray, loss: Loss, sample_weight=None) -> float:
        """The loss of the last ``forward_batch`` against prepared targets Y (no backward)."""
        last = self.layers[-1]
        return loss.value(last.Z if loss.from_logits else last.A, Y, sample_weight)

    def backward_batch(self, Y: np.ndarray, loss: Loss, sample_weight=None) -> float:
        """Step 3: the loss of the last ``forward_batch``, then backward through every layer
        (fills each layer's grads; changes no weight). An optimizer's ``step(*trainable())``
        then applies them."""
        last = self.layers[-1]
        if loss.from_logits:
            value = loss.value(last.Z, Y, sample_weight)
            dX = last.backward_net(loss.gradient(last.Z, Y, sample_weight))
            rest = self.layers[-2::-1]
        else:
            value = loss.value(last.A, Y, sample_weight)
            dX = loss.gradient(last.A, Y, sample_weight)
            rest = self.layers[::-1]
        for layer in rest:
            dX = layer.backward(dX)
        return value

    # the names these steps had before they were public (kept for existing callers)
    _prepare = prepare
    _forward = forward_batch
    _backprop = backward_batch
    _loss_value = batch_loss

    def backward(self, dY) -> np.ndarray:
        """Backward from d loss / d output of the last forward pass; fills grads, returns dX."""
        dX = np.asarray(dY, dtype=self.dtype)
        last = self.layers[-1]
        if last.A is None:
            raise BackpropError("backward needs a forward pass first; call forward(X)")
        if dX.ndim == 1:
            dX = dX.reshape(1, -1)
        if dX.shape != last.A.shape:
            raise BackpropError(f"`dY` must have shape {last.A.shape}; got shape {np.shape(dY)}")
        for layer in reversed(self.layers):
            dX = layer.backward(dX)
        return to_public(dX) if self.images_in else dX

    def loss(self, X, Y, loss=None, sample_weight=None) -> float:
        """The loss on (X, Y); ``loss`` names a loss function, default the network's own."""
        loss = self._resolve_loss(loss)
        X2, Y2 = self.prepare(X, Y)
        self.forward_batch(X2)
        return self.batch_loss(Y2, loss, sample_weight)

    def gradients(self, X, Y, loss=None, sample_weight=None) -> list[np.ndarray]:
        """d loss / d parameter for every parameter, in ``parameters()`` order (copies)."""
        loss = self._resolve_loss(loss)
        X2, Y2 = self.prepare(X, Y)
        self.forward_batch(X2, training=True)
        self.backward_batch(Y2, loss, sample_weight)
        return [g.copy() for g in self._grads()]

    def train_step(self, X, Y, optimizer, loss=None, sample_weight=None) -> float:
        """One forward/backward pass and one optimizer step; returns the loss before the step.
        Every delta is computed from the weights of the forward pass and all layers are updated
        afterwards (backpropagation proper)."""
        loss = self._resolve_loss(loss)
        X2, Y2 = self.prepare(X, Y)
        self.forward_batch(X2, training=True)
        value = self.backward_batch(Y2, loss, sample_weight)
        optimizer.step(*self.trainable())
        return value

    def save(self, path, metadata: dict | None = None):
        """Save to a .safetensors file (atomic); ``metadata`` defaults to ``self.metadata``."""
        from .io import save_network  # io sits above network; imported on use

        return save_network(self, path, self.metadata if metadata is None else metadata)

    @classmethod
    def load(cls, path) -> "Network":
        """Load a network saved by ``save``; its metadata is in ``.metadata``."""
        from .io import load_network

        network, metadata = load_network(path)
        network.metadata = metadata
        return network

    def to_onnx(self, path, dtype=None, preprocessing: bool = True):
        """Write the network to ``path`` as an ONNX graph (atomic; needs ``pip install
        backprop[onnx]``); returns the path. ``dtype``: the graph's float type (default the
        network's; ``"float32"`` exports a float32 copy, which float64 conv networks need for ONNX
        Runtime). ``preprocessing``: when ``metadata`` is a ``backprop train`` model's, the graph
        includes its feature scaling and class labels (False: the bare network). See
        :func:`backprop.interop.to_onnx` and docs/interchange.md."""
        from .interop.onnx_export import to_onnx  # interop sits above network; imported on use

        return to_onnx(self, path, dtype=dtype, preprocessing=preprocessing)

    def fit(self, X, Y, **kwargs):
        """Train; see :func:`backprop.training.fit` for the arguments. Returns a History."""
        from .training import fit

        return fit(self, X, Y, **kwargs)


def _shape_text(shape) -> str:
    return str(shape[0]) if len(shape) == 1 else str(tuple(shape))


def _build_shapes(layers: list[Layer], input_shape) -> tuple[int, ...]:
    """Build each layer from the one before; return the network's input shape. Errors name both
    layers and both shapes."""
    first = layers[0]
    if input_shape is None:
        if not first.built:
            raise BackpropError(
                f"`input_shape` is needed: layer 1 ({first!r}) does not fix the size of its input; "
                "pass Network([...], input_shape=(channels, height, width))"
            )
        input_shape = first.input_shape
    elif isinstance(input_shape, (int, np.integer)) and not isinstance(input_shape, bool):
        input_shape = (int(input_shape),)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (1, 3):
        raise BackpropError(
            f"`input_shape` must be (n_inputs,) or (channels, height, width); got {describe(input_shape)}"
        )
    shape = spatial_shape("input_shape", tuple(input_shape)) if len(input_shape) == 3 else tuple(input_shape)
    if first.built and tuple(first.input_shape) != shape:
        raise BackpropError(
            f"`input_shape` is {shape} but layer 1 ({first!r}) expects input shape {tuple(first.input_shape)}"
        )
    start = shape
    for i, layer in enumerate(layers, start=1):
        prev = layers[i - 2] if i > 1 else None
        if (prev is not None and type(prev) is Dense and type(layer) is Dense
                and prev.n_outputs != layer.n_inputs):
            raise BackpropError(
                f"layer {i - 1} has {prev.n_outputs} outputs but layer {i} expects "
                f"{layer.n_inputs} inputs; the sizes must chain"
            )
        try:
            if layer.built and not isinstance(layer, Dense) and tuple(layer.input_shape) != tuple(shape):
                raise BackpropError(f"{layer!r} was built for input shape {tuple(layer.input_shape)}")
            shape = tuple(layer.build(shape))
        except BackpropError as exc:
            given = "the input of shape" if prev is None else f"layer {i - 1} ({prev!r}), whose output shape is"
            raise BackpropError(f"layer {i} ({layer!r}) does not fit {given} {tuple(shape)}: {exc}") from None
    if len(shape) != 1:
        raise BackpropError(
            f"the last layer must give a flat output; layer {len(layers)} ({layers[-1]!r}) gives "
            f"shape {shape}: end with Flatten() or a Dense layer"
        )
    return start
