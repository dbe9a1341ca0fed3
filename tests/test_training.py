"""The fit loop: determinism, per-sample semantics, history, validation, callbacks."""

import numpy as np
import pytest

from backprop import SGD, Adam, BackpropError, EarlyStopping, LambdaCallback, Network


def _xor():
    return np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float), np.array([[0], [1], [1], [0]], float)


def test_same_seed_bitwise_identical(rng):
    # Same seeds for init and shuffling give bitwise-identical weights after fit.
    X, Y = rng.random((50, 4)), rng.random((50, 2))
    results = []
    for _ in range(2):
        net = Network.from_sizes([4, 8, 2], seed=11)
        net.fit(X, Y, epochs=5, batch_size=7, optimizer=Adam(0.01), seed=5)
        results.append(net.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    other = Network.from_sizes([4, 8, 2], seed=11)
    other.fit(X, Y, epochs=5, batch_size=7, optimizer=Adam(0.01), seed=6)
    assert not np.array_equal(other.get_weights()[0], results[0][0])


def test_fit_equals_manual_train_steps(rng):
    # Unshuffled per-sample fit is exactly a loop of train_step over the rows.
    # (numpy path: bitwise; the compiled path agrees to 1e-12, see test_fast.py)
    X, Y = rng.random((6, 3)), rng.random((6, 2))
    a, b = Network.from_sizes([3, 4, 2], seed=0), Network.from_sizes([3, 4, 2], seed=0)
    hist = a.fit(X, Y, epochs=2, batch_size=1, lr=0.3, shuffle=False, fast=False)
    opt, losses = SGD(0.3), []
    for _ in range(2):
        losses.append(sum(b.train_step(x, y, opt) for x, y in zip(X, Y)) / 6)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_allclose(hist.loss, losses, rtol=1e-12)


def test_minibatch_step_is_mean_gradient(rng):
    # A batch step with mean reduction equals the average of the per-sample gradients.
    X, Y = rng.random((4, 3)), rng.random((4, 2))
    net = Network.from_sizes([3, 2], seed=0)
    per_sample = [net.gradients(x, y) for x, y in zip(X, Y)]
    batch = net.gradients(X, Y)
    for i, g in enumerate(batch):
        np.testing.assert_allclose(g, np.mean([s[i] for s in per_sample], axis=0), rtol=1e-12)


def test_xor_learns():
    # The seed 003 XOR set is learned by a 2-2-1 sigmoid network with per-sample SGD.
    X, Y = _xor()
    net = Network.from_sizes([2, 2, 1], activation="sigmoid", seed=1)
    hist = net.fit(X, Y, epochs=4000, batch_size=1, lr=0.5, shuffle=False)
    assert hist.loss[-1] < hist.loss[0] / 10
    np.testing.assert_array_equal(net.predict(X) > 0.5, Y > 0.5)


def test_validation_metrics_and_history(rng):
    # validation_data adds val_loss and val_accuracy per epoch; history has one entry per epoch.
    X = rng.standard_normal((60, 2))
    labels = (X[:, 0] > 0).astype(int)
    Y = np.eye(2)[labels]
    net = Network.from_sizes([2, 4, 2], activation="tanh", output_activation="softmax",
                             loss="softmax_cross_entropy", seed=0)
    hist = net.fit(X, Y, epochs=30, batch_size=10, lr=0.5, seed=0, validation_data=(X, Y),
                   metrics=["accuracy"])
    assert len(hist) == 30 and len(hist.val_loss) == 30
    assert hist.metrics["val_accuracy"][-1] > 0.9
    assert hist.val_loss[-1] == pytest.approx(net.loss(X, Y))
    assert set(hist.history) == {"loss", "val_loss", "val_accuracy"}


def test_early_stopping_restores_best(rng):
    # EarlyStopping stops after `patience` epochs without improvement and restores the best weights.
    X, Y = rng.random((20, 2)), rng.random((20, 1))
    net = Network.from_sizes([2, 3, 1], seed=0)
    stopper = EarlyStopping(patience=3, min_delta=1e-3)
    hist = net.fit(X, Y, epochs=200, lr=5.0, batch_size=20, validation_data=(X, Y), callbacks=[stopper])
    assert hist.stopped_early and len(hist) < 200
    assert stopper.best in hist.val_loss and hist.val_loss[-1] != stopper.best
    assert net.loss(X, Y) == pytest.approx(stopper.best, rel=1e-12)


def test_callbacks_can_stop_and_see_state(rng):
    # A callback sees the epoch and can stop training.
    X, Y = rng.random((10, 2)), rng.random((10, 1))
    seen = []

    def stop_at_3(state):
        seen.append(state.epoch)
        state.stop_training = state.epoch == 2

    hist = Network.from_sizes([2, 1], seed=0).fit(X, Y, epochs=10, callbacks=[LambdaCallback(stop_at_3)])
    assert seen == [0, 1, 2] and len(hist) == 3


def test_keyboard_interrupt_keeps_model(rng):
    # Ctrl-C during training returns the history with interrupted=True and the model usable.
    X, Y = rng.random((10, 2)), rng.random((10, 1))

    def interrupt(state):
        if state.epoch == 1:
            raise KeyboardInterrupt

    net = Network.from_sizes([2, 1], seed=0)
    hist = net.fit(X, Y, epochs=10, callbacks=[LambdaCallback(interrupt)])
    assert hist.interrupted and len(hist) == 2
    assert np.all(np.isfinite(net.predict(X)))


def test_fit_argument_errors(rng):
    # Bad arguments to fit are refused with the argument's name.
    net = Network.from_sizes([2, 1], seed=0)
    X, Y = rng.random((4, 2)), rng.random((4, 1))
    with pytest.raises(BackpropError, match="`epochs` must be an integer >= 1; got 0"):
        net.fit(X, Y, epochs=0)
    with pytest.raises(BackpropError, match="give `lr` or an `optimizer` instance, not both"):
        net.fit(X, Y, lr=0.1, optimizer=SGD(0.1))
    with pytest.raises(BackpropError, match="`X` must contain only finite numbers; got nan"):
        net.fit(np.array([[np.nan, 1.0]]), [[1.0]])
    with pytest.raises(BackpropError, match="`optimizer` must be one of adam, sgd"):
        net.fit(X, Y, optimizer="rmsprop")
    with pytest.raises(BackpropError, match="`metrics` entries must be one of accuracy"):
        net.fit(X, Y, metrics=["f1"])
