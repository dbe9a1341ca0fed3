"""numpy's gemm and axpy called from compiled code (backprop.fast.blas) and the epoch kernel's
use of them.

Oracles: ``np.matmul``, which calls the same function for these shapes (so the bits must be
equal), numpy's ``y + alpha * x`` for axpy (to rounding: BLAS may fuse the multiply-add), and the
numpy reference path of fit (1e-12 in float64, ``fast_parity``).
"""

import ctypes
import ctypes.util

import numpy as np
import pytest

from backprop import SGD, Adam, Network
from backprop import fast

pytest.importorskip("numba")

from numba import njit  # noqa: E402

from backprop.fast import blas  # noqa: E402
from fast_parity import _assert_same, _both  # noqa: E402

needs_gemm = pytest.mark.skipif(blas.gemm_address(np.float64) is None,
                                reason="numpy's BLAS is not an ILP64 OpenBLAS")


@njit
def _products(fn, A, a0, B, b0, C, c0, m, k, n):
    """The three products of a training step, each into its own third of the flat C."""
    size = m * n
    N, T = blas.NO_TRANS, blas.TRANS
    blas.gemm(fn, N, N, m, n, k, 1.0, A, a0, k, B, b0, n, 0.0, C, c0, n)  # A @ B
    # A.T @ D with A (k, m) row major, i.e. the A above read as its transpose
    blas.gemm(fn, T, N, m, n, k, 1.0, A, a0, m, B, b0, n, 0.0, C, c0 + size, n)
    blas.gemm(fn, N, T, m, n, k, 1.0, A, a0, k, B, b0, k, 0.0, C, c0 + 2 * size, n)


@needs_gemm
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(7, 5, 3), (128, 64, 33), (1, 9, 4)])
def test_gemm_is_numpys_matmul_bit_for_bit(rng, dtype, m, k, n):
    # Operands start inside flat buffers (offsets 3 and 5), as in the kernel's buffers.
    fn = blas.gemm_address(dtype)
    A = rng.standard_normal(3 + m * k + 2).astype(dtype)
    B = rng.standard_normal(5 + k * n + 1).astype(dtype)
    C = np.full(7 + 3 * m * n, np.nan, dtype)
    _products(fn, A, 3, B, 5, C, 7, m, k, n)
    a, b = A[3:3 + m * k], B[5:5 + k * n]
    expected = [a.reshape(m, k) @ b.reshape(k, n),
                a.reshape(k, m).T @ b.reshape(k, n),
                a.reshape(m, k) @ b.reshape(n, k).T]
    got = C[7:].reshape(3, m, n)
    assert np.isnan(C[:7]).all()  # nothing written before the offset
    for i, want in enumerate(expected):
        if m == 1:  # numpy's matmul takes gemv for a single row: the same sums, maybe reordered
            np.testing.assert_allclose(got[i], want, rtol=1e-6 if dtype == np.float32 else 1e-14)
        else:
            assert np.array_equal(got[i], want), i


@njit
def _scaled_product(fn, A, B, C, m, k, n, alpha, beta):
    blas.gemm(fn, blas.TRANS, blas.NO_TRANS, m, n, k, alpha, A, 0, m, B, 0, n, beta, C, 0, n)


@needs_gemm
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha,beta", [(-0.01, 0.9), (-0.5, 1.0), (2.0, 0.0)])
def test_gemm_scales_the_product_and_adds_beta_times_c(rng, dtype, alpha, beta):
    # C = alpha * A.T @ B + beta * C, the form the SGD step uses (alpha -lr, beta momentum or 1)
    m, k, n = 40, 24, 17
    fn = blas.gemm_address(dtype)
    A, B = rng.standard_normal((k, m)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    C0 = rng.standard_normal((m, n)).astype(dtype)
    C = C0.copy()
    _scaled_product(fn, A.ravel(), B.ravel(), C.ravel(), m, k, n, alpha, beta)
    want = alpha * (A.T.astype(np.float64) @ B) + beta * C0.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(C, want, rtol=tol, atol=tol)


def test_no_openblas_means_no_address(monkeypatch):
    monkeypatch.setattr(blas, "_addresses", None)
    monkeypatch.setattr(blas, "_openblas_paths", lambda: [])
    assert blas.gemm_address(np.float32) is None and blas.gemm_address(np.float64) is None


def test_unopenable_library_means_no_address(monkeypatch, tmp_path):
    bogus = tmp_path / "libopenblas64_.so"
    bogus.write_bytes(b"not a library")
    monkeypatch.setattr(blas, "_addresses", None)
    monkeypatch.setattr(blas, "_openblas_paths", lambda: [str(bogus)])
    assert blas.gemm_address(np.float64) is None


def test_a_library_without_ilp64_symbols_means_no_address(monkeypatch):
    # The C library has no cblas_dgemm64_ of any prefix: nothing is guessed.
    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no C library found by name")
    monkeypatch.setattr(blas, "_addresses", None)
    monkeypatch.setattr(blas, "_openblas_paths", lambda: [libc])
    assert blas.gemm_address(np.float64) is None


@needs_gemm
@pytest.mark.parametrize("routine,check", [("gemm", "_agrees"), ("axpy", "_axpy_agrees")])
def test_a_function_that_disagrees_is_refused(monkeypatch, routine, check):
    # The float32 function called as if it were the float64 one reads the doubles as floats: the
    # check must catch it (the call stays inside the test arrays: it reads and writes fewer bytes
    # than they hold). The lookup then refuses that dtype only.
    lookup, agrees = getattr(blas, f"{routine}_address"), getattr(blas, check)
    single = lookup(np.float32)
    assert agrees(single, np.float32)
    assert not agrees(single, np.float64)
    monkeypatch.setattr(blas, "_addresses", None)
    monkeypatch.setattr(blas, "_find", lambda name: single)
    assert lookup(np.float64) is None and lookup(np.float32) == single


def test_no_address_for_other_dtypes():
    assert blas.gemm_address(np.float16) is None and blas.axpy_address(np.int64) is None


@njit
def _axpy(fn, alpha, x, x0, y, y0, n):
    blas.axpy(fn, n, alpha, x, x0, y, y0)


@needs_gemm
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 37, 300_001])  # the largest runs in BLAS's threads
def test_axpy_adds_alpha_x_to_y_between_the_offsets(rng, dtype, n):
    fn = blas.axpy_address(dtype)
    assert fn is not None
    x = rng.standard_normal(3 + n + 4).astype(dtype)
    y0 = rng.standard_normal(5 + n + 2).astype(dtype)
    y = y0.copy()
    _axpy(fn, -0.37, x, 3, y, 5, n)
    want = y0[5:5 + n].astype(np.float64) - 0.37 * x[3:3 + n].astype(np.float64)
    tol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(y[5:5 + n], want, rtol=tol, atol=tol)
    assert np.array_equal(y[:5], y0[:5]) and np.array_equal(y[5 + n:], y0[5 + n:])


def _wide_net(dtype=np.float64):
    # every product of a batch of 32 is BLAS-sized (32 x 64 x 64 >= kernels.BLAS_MIN_MACS)
    return Network.from_sizes([64, 64, 64, 8], activation="tanh", output_activation="softmax",
                              loss="softmax_cross_entropy", seed=3, dtype=dtype)


def _wide_data(rng, n=200):
    return rng.standard_normal((n, 64)), np.eye(8)[rng.integers(0, 8, n)]


def _runner(net, X, Y, batch_size):
    """The runner ``fit`` would train ``net`` with on (X, Y) in batches of ``batch_size``."""
    X2, Y2 = net.prepare(X, Y)
    return fast.make_runner(net, X2, Y2, net.loss_fn, SGD(0.1), batch_size).runner


@needs_gemm
@pytest.mark.parametrize("optimizer", [
    # plain SGD, momentum and Nesterov: the step is folded into the gradient's gemm
    # (_sgd_gemm_step); the velocity slot holds V / scale during the epoch and V again at its
    # end; a momentum below RESCALE_BELOW keeps the plain form (gemm with beta = momentum)
    lambda: SGD(0.05), lambda: SGD(0.05, momentum=0.9), lambda: SGD(0.05, momentum=1e-7),
    lambda: SGD(0.05, momentum=0.9, nesterov=True), lambda: SGD(0.05, momentum=1e-7, nesterov=True),
    # gradient stored, then the update loop
    lambda: SGD(0.05, momentum=0.9, weight_decay=0.01),
    lambda: SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.01), lambda: Adam(0.01)])
def test_epoch_kernel_with_numpys_gemm_matches_numpy(rng, optimizer):
    # 200 samples in batches of 32: 7 steps per epoch, 21 in all; the last batch (8 rows) of the
    # output layer is below BLAS_MIN_MACS and still goes through the gemm, as its epoch does
    X, Y = _wide_data(rng)
    made = _runner(_wide_net(), X, Y, 32)
    assert made.uses_blas and made.gemm_fn == blas.gemm_address(np.float64)
    assert made.axpy_fn == blas.axpy_address(np.float64) != 0
    _assert_same(*_both(_wide_net, X, Y, optimizer, epochs=3, batch_size=32, seed=0))


@needs_gemm
@pytest.mark.parametrize("nesterov", [False, True])
def test_scaled_velocity_is_brought_back_within_an_epoch(rng, nesterov):
    # Momentum 0.48 in 25 steps per epoch: the scale of the velocity slot would fall below
    # RESCALE_BELOW at step 19 (0.48^19 < 2^-20 < 0.48^18), so it is brought back to V there,
    # within the epoch, and again at the epoch's end. Oracle: the reference path.
    from backprop.fast import kernels

    assert 0.48 ** 19 < kernels.RESCALE_BELOW < 0.48 ** 18
    X, Y = _wide_data(rng, n=800)
    _assert_same(*_both(_wide_net, X, Y, lambda: SGD(0.05, momentum=0.48, nesterov=nesterov),
                        epochs=2, batch_size=32, seed=0))


@needs_gemm
@pytest.mark.parametrize("momentum", [0.9, 1e-7])
@pytest.mark.parametrize("nesterov", [False, True])
def test_epoch_kernel_without_numpys_axpy_matches_numpy(rng, monkeypatch, momentum, nesterov):
    # numpy's gemm but no axpy: W += c V by the kernel's own loop, scaled form or plain
    monkeypatch.setattr(blas, "axpy_address", lambda dtype: None)
    X, Y = _wide_data(rng)
    made = _runner(_wide_net(), X, Y, 32)
    assert made.gemm_fn != 0 and made.axpy_fn == 0
    _assert_same(*_both(_wide_net, X, Y, lambda: SGD(0.05, momentum=momentum, nesterov=nesterov),
                        epochs=3, batch_size=32, seed=0))


@needs_gemm
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_in_blas_threads_matches_numpy(rng, nesterov):
    # Large enough for BLAS's own threads (128 x 512 x 256 multiply-adds: fast.blas_threads
    # leaves them on) and for OpenBLAS to thread axpy over the first layer's 131072 weights.
    from backprop.fast import MULTI_THREAD_FROM_MACS, blas_threads

    def make():
        return Network.from_sizes([512, 256, 8], activation="relu", output_activation="softmax",
                                  loss="softmax_cross_entropy", seed=4)

    X = rng.standard_normal((300, 512))
    Y = np.eye(8)[rng.integers(0, 8, 300)]
    assert 128 * 512 * 256 >= MULTI_THREAD_FROM_MACS and blas_threads(make(), 128, 300) is None
    assert _runner(make(), X, Y, 128).axpy_fn != 0
    _assert_same(*_both(make, X, Y, lambda: SGD(0.01, momentum=0.9, nesterov=nesterov), epochs=2,
                        batch_size=128, seed=0))


def test_epoch_kernel_without_numpys_gemm_matches_numpy(rng, monkeypatch):
    # numba's np.dot (SciPy's BLAS) for the products, as on a numpy without an ILP64 OpenBLAS
    monkeypatch.setattr(blas, "gemm_address", lambda dtype: None)
    X, Y = _wide_data(rng)
    made = _runner(_wide_net(), X, Y, 32)
    assert made.gemm_fn == 0 and made.axpy_fn == 0
    _assert_same(*_both(_wide_net, X, Y, lambda: SGD(0.05, momentum=0.9), epochs=3, batch_size=32,
                        seed=0))


@needs_gemm
@pytest.mark.parametrize("nesterov", [False, True])
def test_big_batches_train_in_the_epoch_kernel_float32(rng, nesterov):
    # W2b's kind of work (BLAS-sized products, float32, momentum) in the compiled epoch kernel,
    # against the reference path to float32 rounding.
    from backprop.fast.runner import EpochRunner

    def make():
        return Network.from_sizes([96, 80, 10], activation="relu", output_activation="softmax",
                                  loss="softmax_cross_entropy", seed=5, dtype=np.float32)

    X = rng.random((600, 96)).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 600)]
    runner = _runner(make(), X, Y, 128)
    assert type(runner) is EpochRunner and runner.gemm_fn == blas.gemm_address(np.float32)
    _assert_same(*_both(make, X, Y, lambda: SGD(0.01, momentum=0.9, nesterov=nesterov), epochs=2,
                        batch_size=128, seed=0), rtol=2e-5, atol=2e-6)
