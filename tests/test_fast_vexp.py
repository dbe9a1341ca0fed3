"""The compiled path's own exp (backprop.fast.vexp) against numpy's: within 1 ulp everywhere,
and inf, -inf, NaN, overflow and underflow handled as np.exp handles them."""

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from backprop.fast import kernels as K  # noqa: E402
from backprop.fast.vexp import exp  # noqa: E402


@numba.njit
def _exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = exp(x[i])


def _ours(x):
    x = np.ascontiguousarray(x, np.float64)
    out = np.empty_like(x)
    _exp_all(x, out)
    return out


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


def test_nan_stays_nan():
    assert np.isnan(_ours([np.nan])[0])


def test_sigmoid_kernel_matches_the_reference_formula():
    """The kernels' sigmoid (one division for both signs) against activations.sigmoid."""
    from backprop.activations import sigmoid

    z = np.concatenate([np.linspace(-800, 800, 20_001), [0.0, -0.0, np.inf, -np.inf]])
    out = np.empty_like(z)
    K._activate(K.SIGMOID, 0.0, z, 0, out, 0, 1, z.shape[0])
    ref = sigmoid(z)
    np.testing.assert_array_max_ulp(out, ref, maxulp=2)
