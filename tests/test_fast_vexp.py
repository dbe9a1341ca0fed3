"""The compiled path's own exp and tanh (backprop.fast.vexp) against numpy's (the oracle): exp
within 1 ulp everywhere, tanh within 2, and inf, -inf, NaN, ±0, overflow and underflow handled
as np.exp and np.tanh handle them."""

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from backprop.fast import kernels as K  # noqa: E402
from backprop.fast.vexp import TANH_SMALL, exp, tanh  # noqa: E402


def _elementwise(func):
    """numpy-style wrapper: ``func`` applied in a compiled loop, as the kernels use it."""

    @numba.njit
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = func(x[i])

    def apply(x):
        x = np.ascontiguousarray(x, np.float64)
        out = np.empty_like(x)
        loop(x, out)
        return out

    return apply


_ours = _elementwise(exp)
_our_tanh = _elementwise(tanh)


def test_within_one_ulp_of_numpy_over_the_whole_range():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-745.0, 709.7, 400_001), rng.normal(size=200_000) * 4,
                        rng.uniform(-1e-8, 1e-8, 1000)])
    ref = np.exp(x)
    ulps = np.abs(_ours(x) - ref) / np.spacing(ref)
    assert ulps.max() <= 1.0


@pytest.mark.parametrize("x, expected", [
    (0.0, 1.0), (-0.0, 1.0), (np.inf, np.inf), (-np.inf, 0.0), (710.0, np.inf), (1e308, np.inf),
    (-746.0, 0.0), (-1e308, 0.0), (709.78, np.exp(709.78)),
    (-745.13, np.exp(-745.13)),  # the smallest subnormal
    (-730.0, np.exp(-730.0)),  # subnormal: rounds once
])
def test_special_values(x, expected):
    assert _ours([x])[0] == expected


@pytest.mark.parametrize("name", ["exp", "tanh"])
def test_nan_stays_nan(name):
    assert np.isnan({"exp": _ours, "tanh": _our_tanh}[name]([np.nan])[0])


def test_tanh_within_two_ulp_of_numpy():
    rng = np.random.default_rng(1)
    edge = np.nextafter(TANH_SMALL, 0.0)  # both sides of the switch between the two formulas
    x = np.concatenate([np.linspace(-30.0, 30.0, 600_001), rng.normal(size=200_000),
                        rng.uniform(-1e-3, 1e-3, 10_000), [edge, TANH_SMALL, -edge, -TANH_SMALL],
                        np.geomspace(1e-300, 1.0, 5000), -np.geomspace(1e-300, 1.0, 5000)])
    ref = np.tanh(x)
    np.testing.assert_array_max_ulp(_our_tanh(x), ref, maxulp=2)


@pytest.mark.parametrize("x", [0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324, 1e-310, 19.1, -19.1,
                               400.0, -400.0, 1e308, -1e308])
def test_tanh_special_values(x):
    got, want = _our_tanh([x])[0], np.tanh(x)
    assert got == want and np.signbit(got) == np.signbit(want)


@pytest.mark.parametrize("code, name, limit", [(K.SIGMOID, "sigmoid", 800.0), (K.TANH, "tanh", 40.0)])
def test_activation_kernel_matches_the_reference(code, name, limit):
    """The kernels' sigmoid (one division for both signs) and tanh against activations.py."""
    from backprop.activations import get_activation

    z = np.concatenate([np.linspace(-limit, limit, 20_001), [0.0, -0.0, np.inf, -np.inf]])
    out = np.empty_like(z)
    K._activate(code, 0.0, z, 0, out, 0, 1, z.shape[0])
    np.testing.assert_array_max_ulp(out, get_activation(name).forward(z), maxulp=2)
