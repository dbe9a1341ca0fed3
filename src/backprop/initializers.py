"""Weight initializers. Every one draws from a numpy Generator it is given; none uses global state.

An initializer is called as ``init(shape, rng)`` and returns a float64 array; shapes follow the
layer convention (n_inputs, n_outputs), so fan_in = shape[0] and fan_out = shape[-1].
"""

from __future__ import annotations

import random

import numpy as np

from ._validation import BackpropError, describe

__all__ = [
    "Initializer",
    "Uniform",
    "Normal",
    "Glorot",
    "He",
    "Constant",
    "Zeros",
    "PythonRandom",
    "get_initializer",
    "as_generator",
    "INITIALIZERS",
]


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from an int seed, an existing Generator, or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise BackpropError(
        f"`seed` must be a non-negative integer, a numpy Generator or None; got {describe(seed)}"
    )


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    fan_in = shape[0] if len(shape) >= 1 else 1
    fan_out = shape[-1] if len(shape) >= 2 else shape[0]
    return fan_in, fan_out


class Initializer:
    name = ""

    def __call__(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Uniform(Initializer):
    """U(low, high) (the Brownlee and Mazur tutorials draw from U(0, 1))."""

    name = "uniform"

    def __init__(self, low: float = -0.05, high: float = 0.05):
        if not high > low:
            raise BackpropError(f"`high` must be greater than `low`; got low={low}, high={high}")
        self.low, self.high = float(low), float(high)

    def __call__(self, shape, rng):
        return rng.uniform(self.low, self.high, size=shape)

    def __repr__(self):
        return f"Uniform(low={self.low:g}, high={self.high:g})"


class Normal(Initializer):
    """Standard normal divided by sqrt(fan_in): the PyImageSearch tutorial's rule."""

    name = "normal"

    def __call__(self, shape, rng):
        fan_in, _ = _fans(shape)
        return rng.standard_normal(size=shape) / np.sqrt(fan_in)


class Glorot(Initializer):
    """Glorot/Xavier uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out))."""

    name = "glorot"

    def __call__(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)


class He(Initializer):
    """He normal: N(0, 2 / fan_in), for ReLU layers."""

    name = "he"

    def __call__(self, shape, rng):
        fan_in, _ = _fans(shape)
        return rng.standard_normal(size=shape) * np.sqrt(2.0 / fan_in)


class Zeros(Initializer):
    name = "zeros"

    def __call__(self, shape, rng):
        return np.zeros(shape)


class Constant(Initializer):
    """Explicit values: a scalar broadcast to the shape, or an array of exactly that shape."""

    name = "constant"

    def __init__(self, value):
        self.value = np.array(value, dtype=np.float64)

    def __call__(self, shape, rng):
        if self.value.ndim == 0:
            return np.full(shape, float(self.value))
        if self.value.shape != tuple(shape):
            raise BackpropError(
                f"explicit initial values must have shape {tuple(shape)}; got shape {self.value.shape}"
            )
        return self.value.copy()

    def __repr__(self):
        return f"Constant(shape={self.value.shape})"


class PythonRandom(Initializer):
    """U(0, 1) from Python's own ``random.Random(seed)``, the generator of the Brownlee and Mazur
    tutorials: ``PythonRandom(1)`` draws the numbers that ``random.seed(1); random()`` gives.

    It ignores the numpy Generator it is handed and keeps its own stream, so one instance shared
    by several layers continues the stream from layer to layer. Arrays are filled in row-major
    order; with ``demos.conventions.neuron_order_dense`` that is the tutorials' neuron-by-neuron order.
    """

    name = "python_random"

    def __init__(self, seed: int = 1):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise BackpropError(f"`seed` must be an integer; got {describe(seed)}")
        self.seed = int(seed)
        self._random = random.Random(self.seed)

    def __call__(self, shape, rng):
        draws = [self._random.random() for _ in range(int(np.prod(shape, dtype=np.int64)))]
        return np.array(draws, dtype=np.float64).reshape(shape)

    def __repr__(self):
        return f"PythonRandom(seed={self.seed})"


INITIALIZERS: dict[str, type[Initializer]] = {
    cls.name: cls for cls in (Uniform, Normal, Glorot, He, Zeros)
}
_ALIASES = {"xavier": "glorot", "glorot_uniform": "glorot", "he_normal": "he", "lecun": "normal"}


def get_initializer(spec) -> Initializer:
    """An Initializer from ``spec``: a name, an Initializer instance, a callable ``f(shape, rng)``,
    or a scalar or array of explicit values."""
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, str):
        key = _ALIASES.get(spec.lower(), spec.lower())
        if key in INITIALIZERS:
            return INITIALIZERS[key]()
        raise BackpropError(
            f"`weight_init` must be one of {', '.join(sorted(INITIALIZERS))}, an array or a "
            f"callable; got {spec!r}"
        )
    if callable(spec):
        return _Callable(spec)
    if isinstance(spec, (int, float, list, tuple, np.ndarray)) and not isinstance(spec, bool):
        return Constant(spec)
    raise BackpropError(
        f"`weight_init` must be a name, an array or a callable; got {describe(spec)}"
    )


class _Callable(Initializer):
    name = "callable"

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, shape, rng):
        return np.asarray(self.fn(shape, rng), dtype=np.float64)
