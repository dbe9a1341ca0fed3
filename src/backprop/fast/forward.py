"""Inference in chunks: a large batch goes through the network ``chunk`` rows at a time with
preallocated buffers, so only the output and one chunk's activations are allocated and each
chunk's activations stay in the CPU cache between layers. Plain numpy (BLAS), no compilation."""

from __future__ import annotations

import numpy as np

from ..activations import Identity, ReLU

__all__ = ["forward_chunked"]


def forward_chunked(network, X, chunk: int = 2048) -> np.ndarray:
    """Outputs of ``network`` for the 2-D batch X (already of ``network.dtype``): the same
    operations as ``Dense.forward``, with relu and bias applied in place."""
    n = X.shape[0]
    rows = max(1, min(chunk, n))
    dtype = network.dtype
    Zs = [np.empty((rows, layer.params["W"].shape[1]), dtype) for layer in network.layers]
    out = np.empty((n, network.n_outputs), dtype)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        A = X[start:start + m]
        for layer, Z in zip(network.layers, Zs):
            Z = np.matmul(A, layer.params["W"], out=Z[:m])
            if "b" in layer.params:
                Z += layer.params["b"]
            act = layer.activation
            if type(act) is ReLU:
                A = np.maximum(Z, 0, out=Z)
            elif type(act) is Identity:
                A = Z
            else:
                A = act.forward(Z)
        out[start:start + m] = A
    return out
