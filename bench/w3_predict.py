"""W3: predict 60000 x 784 float32 through the W2b network (784-256-128-10 relu, softmax out).
The floor is the three GEMMs alone into preallocated outputs, the faster of two ways to run them:
on BLAS's default threads, and (as predict runs them) in chunks taken in turn by as many
threads as BLAS may use, each product on one BLAS thread. Ours, scikit-learn, PyTorch and
the floors are timed round-robin (``common.interleaved_medians``).

``Network.predict`` uses the compiled step between the products only when this process has
already loaded compiled code (a fit on the fast path loads its saved entry, and saves the
post-product one; predicting alone never loads numba, see ``backprop/fast/forward.py``). Ours is
that case, after a short fit of a copy of the network in the same process; the second row is a
process that has not trained."""

from __future__ import annotations

import common  # puts src/ on sys.path; ALIASES maps the floor row to the row it took
import numpy as np
from common import interleaved_medians, median_time, print_rows, quiet_sklearn, torch_or_none
from w2b_mnist_like import SIZES, data, network

OURS = "backprop Network.predict (after a fit: compiled step between the products)"
SKLEARN = "scikit-learn MLPClassifier.predict_proba"
TORCH = "PyTorch CPU (float32, no_grad)"
FLOOR = "floor: the 3 GEMMs alone"
FLOOR_DEFAULT = "the 3 GEMMs, BLAS's default threads"
FLOOR_THREADS = "the 3 GEMMs, chunks taken in turn by threads of 1 BLAS thread each (as predict runs them)"
TITLE = "W3: predict 60000x784 float32 through 784-256-128-10 (relu, softmax output)"
REPS = 11  # rounds of the round-robin (the medians' samples)


def run(reps: int = REPS, quick: bool = False):
    X, y, Y = data(20000 if quick else 60000)
    net = network()
    from backprop import SGD
    from backprop.fast.forward import _saved_post_entry, forward_chunked

    # what a fit on the fast path leaves in this process: its saved entry loaded, and the
    # post-product entry saved, which predict then loads (a few ms, once)
    net.copy().fit(X[:2048], Y[:2048], epochs=1, batch_size=128, optimizer=SGD(0.01, momentum=0.9))
    assert _saved_post_entry(net.dtype) is not None
    from backprop.network import PREDICT_CHUNK

    net.predict(X[:PREDICT_CHUNK + 1])
    timed = {OURS: lambda: net.predict(X)}
    Ws = [layer.params["W"] for layer in net.layers]
    bs = [layer.params["b"] for layer in net.layers]

    quiet_sklearn()
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=1, random_state=0).fit(X[:500], y[:500])
    clf.coefs_ = [W.copy() for W in Ws]
    clf.intercepts_ = [b.copy() for b in bs]
    timed[SKLEARN] = lambda: clf.predict_proba(X)

    torch = torch_or_none()
    if torch is not None:
        model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                    torch.nn.ReLU(), torch.nn.Linear(128, 10), torch.nn.Softmax(dim=1))
        Xt = torch.from_numpy(X)

        def torch_predict():
            with torch.no_grad():
                return model(Xt)

        timed[TORCH] = torch_predict
    outs = [np.empty((len(X), s), np.float32) for s in SIZES[1:]]

    def gemms(rows=slice(None)):
        A = X[rows]
        for W, out in zip(Ws, outs):
            np.matmul(A, W, out=out[rows])
            A = out[rows]

    from backprop.fast.threads import blas_thread_count, one_blas_thread

    workers = blas_thread_count()

    def chunks_of(starts):
        for start in starts:
            gemms(slice(start, start + PREDICT_CHUNK))

    def gemms_in_threads():
        """The same products as predict runs them: chunks of ``PREDICT_CHUNK`` rows taken in
        turn by ``workers`` threads, each product on one BLAS thread (faster here than each
        thread's half of X in three whole products: 119 against 128-131 ms)."""
        from concurrent.futures import ThreadPoolExecutor

        starts = range(0, len(X), PREDICT_CHUNK)
        with one_blas_thread(), ThreadPoolExecutor(workers) as pool:
            list(pool.map(chunks_of, [starts[w::workers] for w in range(workers)]))

    timed[FLOOR_DEFAULT] = gemms
    if workers > 1:
        timed[FLOOR_THREADS] = gemms_in_threads
    times = interleaved_medians(timed, reps)
    floors = [name for name in (FLOOR_DEFAULT, FLOOR_THREADS) if name in times]
    lowest = min(floors, key=times.get)

    def plain():
        A = X
        for i, (W, b) in enumerate(zip(Ws, bs)):
            Z = A @ W + b
            A = np.maximum(Z, 0) if i < 2 else Z
        E = np.exp(A - A.max(1, keepdims=True))
        return E / E.sum(1, keepdims=True)

    rows = [(OURS, times[OURS], f"float32, {PREDICT_CHUNK}-row chunks, incl. input checks"),
            ("backprop predict, no fit before (numpy between products)",
             median_time(lambda: forward_chunked(net, X, PREDICT_CHUNK, check="X", compiled=False), reps),
             "the same, incl. checks"),
            ("backprop Network.forward (reference, whole batch)", median_time(lambda: net.forward(X), reps),
             "float32"),
            ("plain numpy forward", median_time(plain, reps), "float32"),
            (SKLEARN, times[SKLEARN], "same weights")]
    if TORCH in times:
        rows.append((TORCH, times[TORCH], ""))
    rows.append((FLOOR, times[lowest], f"preallocated outputs; the lower of the next {len(floors)} row(s)"))
    common.ALIASES[FLOOR] = lowest
    rows += [(name, times[name], "") for name in floors]
    return rows


if __name__ == "__main__":
    print_rows(TITLE, run(), OURS)
