"""Validation at the engine's Python API: bad X, Y, sample weights, callbacks, metrics, weights,
loss inputs and model metadata each get one clear BackpropError naming the argument, what was
expected and what was received."""

from __future__ import annotations

import numpy as np
import pytest

from backprop import BackpropError, Network, ReduceOnPlateau, fit, get_loss
from backprop.datasets import one_hot


@pytest.fixture
def net():
    return Network.from_sizes([3, 4, 2], seed=0)


@pytest.fixture
def data(rng):
    return rng.random((8, 3)), rng.random((8, 2))


CASES = [
    # (description, call, expected message pattern)
    ("NaN in X", lambda n, X, Y: fit(n, np.where(X > 0.5, np.nan, X), Y),
     r"`X` must contain only finite numbers; got nan at index \(\d+, \d+\); remove or impute"),
    ("inf in Y", lambda n, X, Y: fit(n, X, np.full_like(Y, np.inf)),
     r"`Y` must contain only finite numbers; got inf at index \(0, 0\)"),
    ("wrong feature count", lambda n, X, Y: fit(n, X[:, :2], Y),
     r"`X` must have shape \(n_samples, 3\) or \(3,\); got shape \(8, 2\)"),
    ("wrong target count", lambda n, X, Y: fit(n, X, Y[:5]),
     r"`Y` must have shape \(8, 2\) to match the inputs and the network's 2 output\(s\); got shape \(5, 2\)"),
    ("empty X", lambda n, X, Y: fit(n, X[:0], Y[:0]),
     r"`X` must contain at least one sample; got shape \(0, 3\)"),
    ("3-D X", lambda n, X, Y: n.predict(X.reshape(2, 4, 3)),
     r"`X` must have shape \(n_samples, 3\) or \(3,\); got shape \(2, 4, 3\)"),
    ("ragged X", lambda n, X, Y: n.predict([[1, 2, 3], [1, 2]]),
     r"`X` must be a rectangular array \(every row the same length\); got rows of different lengths"),
    ("complex X", lambda n, X, Y: n.predict(X.astype(complex)),
     r"`X` must be real numbers; got complex values"),
    ("text labels as Y", lambda n, X, Y: fit(n, X, ["a", "b"] * 4),
     r"`Y` must be numeric .*could not convert string to float: 'a'.*one_hot"),
    ("bad validation X", lambda n, X, Y: fit(n, X, Y, validation_data=(X[:, :2], Y)),
     r"`validation_data\[0\]` must have shape \(n_samples, 3\)"),
    ("NaN in validation Y", lambda n, X, Y: fit(n, X, Y, validation_data=(X, Y * np.nan)),
     r"`validation_data\[1\]` must contain only finite numbers; got nan"),
    ("negative sample weight", lambda n, X, Y: fit(n, X, Y, sample_weight=[1, 1, -2, 1, 1, 1, 1, 1]),
     r"`sample_weight` must hold finite numbers >= 0; got -2.0"),
    ("NaN sample weight", lambda n, X, Y: fit(n, X, Y, sample_weight=[1, np.nan, 1, 1, 1, 1, 1, 1]),
     r"`sample_weight` must hold finite numbers >= 0; got nan"),
    ("all-zero sample weights", lambda n, X, Y: fit(n, X, Y, sample_weight=np.zeros(8)),
     r"`sample_weight` must give at least one sample a positive weight; got all zeros"),
    ("sample weight shape", lambda n, X, Y: n.loss(X, Y, sample_weight=np.ones(3)),
     r"`sample_weight` must have shape \(8,\); got shape \(3,\)"),
    ("callback not a Callback", lambda n, X, Y: fit(n, X, Y, callbacks=[print]),
     r"`callbacks` entries must be backprop.Callback objects .*LambdaCallback"),
    ("NaN weights", lambda n, X, Y: n.set_weights([w * np.nan for w in n.get_weights()]),
     r"`weights for `W1`` must contain only finite numbers; got nan"),
    ("loss shapes", lambda n, X, Y: get_loss("mse").value(Y, Y[:, :1]),
     r"outputs and targets of one shape .*got outputs of shape \(8, 2\) and targets of shape \(8, 1\)"),
    ("plateau patience", lambda n, X, Y: ReduceOnPlateau(0.1, patience=0.5),
     r"`patience` must be an integer >= 1; got 0.5"),
]


@pytest.mark.parametrize("what,call,pattern", CASES, ids=[c[0] for c in CASES])
def test_clear_errors(net, data, what, call, pattern):
    # Each bad input raises a BackpropError (a ValueError) whose one-line message matches.
    with pytest.raises(BackpropError, match=pattern) as info:
        call(net, *data)
    assert "\n" not in str(info.value)


def test_metrics_accepts_one_name(net, data):
    # metrics="accuracy" means one metric, not the letters a, c, c...
    hist = fit(net, *data, epochs=1, metrics="accuracy", validation_data=data)
    assert "val_accuracy" in hist.metrics


def test_zero_weight_batches_do_not_poison_training(net, rng):
    # A batch whose samples all weigh 0 contributes nothing (no 0/0 NaN, no false divergence):
    # training equals training on the positively weighted samples alone with sum reduction.
    X, Y = rng.random((6, 3)), rng.random((6, 2))
    w = np.array([1.0, 0.0, 2.0, 0.0, 1.0, 0.0])
    a, b = net.copy(), net.copy()
    ha = fit(a, X, Y, epochs=3, batch_size=1, lr=0.1, shuffle=False, sample_weight=w, loss="sse")
    keep = w > 0
    hb = fit(b, X[keep], Y[keep], epochs=3, batch_size=1, lr=0.1, shuffle=False, sample_weight=w[keep], loss="sse")
    assert not ha.diverged
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-14)


def test_zero_weight_batch_with_mean_reduction(net, rng):
    # With mean reduction and batch_size=1, zero-weight samples are skipped without NaN too.
    X, Y = rng.random((4, 3)), rng.random((4, 2))
    hist = fit(net, X, Y, epochs=2, batch_size=1, sample_weight=[1.0, 0.0, 1.0, 0.0])
    assert not hist.diverged and np.isfinite(hist.loss).all()


def test_saving_a_non_finite_network_is_refused(net, tmp_path):
    # A model with NaN weights (which load would refuse) is not written at all.
    net.layers[0].params["W"][0, 0] = np.nan
    with pytest.raises(BackpropError, match="weights `W1` hold NaN or infinite values .*diverge"):
        net.save(tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())


def test_saving_non_dict_metadata_is_refused(net, tmp_path):
    # Metadata that load could not return (not a JSON object) is refused at save time.
    with pytest.raises(BackpropError, match=r"`metadata` must be a dict \(a JSON object\) or None; got \[1, 2\]"):
        net.save(tmp_path / "m.safetensors", metadata=[1, 2])


def test_one_hot_labels_train(net, rng):
    # The fix the text-label message suggests works.
    X = rng.random((8, 3))
    hist = fit(net, X, one_hot(np.array([0, 1] * 4), 2), epochs=1)
    assert len(hist) == 1


def _elementwise_message(name, array):
    """The error the element-wise test gives (the screen's oracle), or None for a finite array."""
    bad = np.argwhere(~np.isfinite(array))
    if len(bad) == 0:
        return None
    where = tuple(int(i) for i in bad[0])
    return (f"`{name}` must contain only finite numbers; got {array[where]} at index "
            f"({', '.join(map(str, where))}); remove or impute missing values first")


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_arrays_are_screened_by_row_sums_with_the_same_errors(rng, dtype, order):
    # check_finite on an array large enough for the row-sum screen: the array back when it is
    # finite, and for each bad value the element-wise test's message (the oracle).
    from backprop import _validation

    X = np.asarray(rng.standard_normal((16400, 64)), dtype=dtype, order=order)
    assert X.size >= _validation.SCREEN_FROM
    assert _validation._row_sums_finite(X)
    assert _validation.check_finite("X", X) is X
    for bad, where in ((np.nan, (0, 0)), (np.inf, (8517, 3)), (-np.inf, (16399, 63))):
        Y = X.copy(order=order)
        Y[where] = bad
        assert not _validation._row_sums_finite(Y)
        with pytest.raises(BackpropError) as got:
            _validation.check_finite("X", Y)
        assert str(got.value) == _elementwise_message("X", Y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sums_that_overflow_are_not_an_error(dtype):
    # Finite entries whose row sums overflow fail the screen but pass the check (the
    # element-wise test decides); +inf and -inf in one row sum to NaN and fail both.
    from backprop import _validation

    X = np.full((1 << 14, 64), np.finfo(dtype).max, dtype)
    assert not _validation._row_sums_finite(X)
    assert _validation.check_finite("X", X) is X
    X[5, :2] = (np.inf, -np.inf)
    with pytest.raises(BackpropError) as got:
        _validation.check_finite("X", X)
    assert str(got.value) == _elementwise_message("X", X)
