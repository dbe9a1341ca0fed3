"""Shared oracles: finite differences for any layer (the layer-contract conformance check)."""

from __future__ import annotations

import numpy as np
import pytest


def check_layer(layer, X, rng=None, eps=1e-6, tol=1e-6):
    """Verify the layer contract with central differences on L = sum(forward(X) * R), R random.

    - forward output has shape (n, n_outputs), or (n, oh, ow, C) for image layers (channels-last);
    - backward(R) returns dX of X's shape, matching finite differences w.r.t. X;
    - grads has the same keys and shapes as params, matching finite differences;
    - backward never changes a parameter.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    X = np.asarray(X, dtype=np.float64)
    out = layer.forward(X, training=True)
    if getattr(layer, "channels_last", False) and len(layer.output_shape) == 3:
        C, H, W = layer.output_shape
        assert out.shape == (X.shape[0], H, W, C)
    else:
        assert out.shape == (X.shape[0], layer.n_outputs)
    R = rng.standard_normal(out.shape)
    before = {k: v.copy() for k, v in layer.params.items()}
    dX = layer.backward(R)
    assert set(layer.grads) == set(layer.params)
    for k in layer.params:
        assert layer.grads[k].shape == layer.params[k].shape
        np.testing.assert_array_equal(layer.params[k], before[k])  # backward never changes weights
    analytic = {k: g.copy() for k, g in layer.grads.items()}

    def objective():
        return float(np.sum(layer.forward(X) * R))

    def numeric(arr):
        g = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + eps
            plus = objective()
            arr[i] = old - eps
            minus = objective()
            arr[i] = old
            g[i] = (plus - minus) / (2 * eps)
        return g

    def rel(a, n):
        return np.max(np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-4))

    assert dX.shape == X.shape
    assert rel(dX, numeric(X)) < tol
    for k, p in layer.params.items():
        assert rel(analytic[k], numeric(p)) < tol, k


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def numpy_runner(monkeypatch):
    """Every batch size goes to the fast path's numpy runner (backprop.fast.batched), as on a
    numpy whose gemm compiled code cannot call, so small test networks exercise it; the test then
    checks that it really was used."""
    from backprop import fast
    from backprop.fast import blas
    from backprop.fast.batched import BatchRunner

    monkeypatch.setattr(fast, "NUMPY_FROM_MACS", 0)
    monkeypatch.setattr(blas, "gemm_address", lambda dtype: None)  # as with a numpy without it
    made = []
    original = fast.make_runner

    def spy(*args, **kwargs):
        runner = original(*args, **kwargs)
        made.append(type(runner.runner))
        return runner

    monkeypatch.setattr(fast, "make_runner", spy)
    yield made
    assert made and all(kind is BatchRunner for kind in made)


# After the session's last test: no child process may outlive the suite (tests/processes.py).
from processes import pytest_runtest_teardown  # noqa: E402,F401
