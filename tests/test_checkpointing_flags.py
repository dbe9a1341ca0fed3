"""The --checkpoint/--checkpoint-every/--resume flag helpers a training command wires in."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from backprop import BackpropError, LambdaCallback, Network, fit
from backprop.checkpoint import Checkpoint, list_checkpoints
from backprop.commands._checkpointing import add_checkpoint_arguments, checkpoint_fit_kwargs


def _parser():
    parser = argparse.ArgumentParser(prog="backprop train")
    add_checkpoint_arguments(parser)
    return parser


def test_flags_build_fit_arguments(tmp_path):
    # --checkpoint DIR --checkpoint-every 2 adds a Checkpoint after the given callbacks; --resume
    # becomes resume_from; no flags change nothing.
    mine = LambdaCallback(lambda s: None)
    (tmp_path / "checkpoint-000001.safetensors").write_bytes(b"")  # resume needs one to exist
    args = _parser().parse_args(["--checkpoint", str(tmp_path), "--checkpoint-every", "2", "--resume", str(tmp_path)])
    kw = checkpoint_fit_kwargs(args, callbacks=[mine])
    assert kw["callbacks"][0] is mine and isinstance(kw["callbacks"][1], Checkpoint)
    assert kw["callbacks"][1].every == 2 and kw["resume_from"] == str(tmp_path)
    assert checkpoint_fit_kwargs(_parser().parse_args([]), callbacks=[mine]) == {"callbacks": [mine], "resume_from": None}


def test_flags_train_and_resume(tmp_path, rng):
    # End to end through the helpers: 4 epochs with --checkpoint, then --resume to 8 equals 8 straight.
    X, Y = rng.random((10, 2)), rng.random((10, 1))

    def run(argv, epochs):
        net = Network.from_sizes([2, 3, 1], seed=0)
        fit(net, X, Y, epochs=epochs, batch_size=3, seed=1, **checkpoint_fit_kwargs(_parser().parse_args(argv)))
        return net

    run(["--checkpoint", str(tmp_path)], 4)
    assert [e for e, _ in list_checkpoints(tmp_path)] == [3, 4]
    resumed = run(["--checkpoint", str(tmp_path), "--resume", str(tmp_path)], 8)
    straight = run([], 8)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.get_weights(), straight.get_weights()))


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_bad_every_is_a_usage_error(value, capsys):
    # A non-positive or non-integer --checkpoint-every is an argparse usage error (exit 2).
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["--checkpoint", "d", "--checkpoint-every", value])
    assert info.value.code == 2
    assert "--checkpoint-every: must be an integer >= 1" in capsys.readouterr().err


def test_every_without_folder_is_refused():
    # --checkpoint-every alone says what is missing.
    with pytest.raises(BackpropError, match="`--checkpoint-every` needs `--checkpoint DIR`"):
        checkpoint_fit_kwargs(_parser().parse_args(["--checkpoint-every", "3"]))


def test_resume_from_nothing_names_the_flag(tmp_path):
    # --resume with a folder holding no checkpoint names the flag (not the Python argument).
    with pytest.raises(BackpropError, match="`--resume` must name a folder holding checkpoints; .* has none"):
        checkpoint_fit_kwargs(_parser().parse_args(["--resume", str(tmp_path / "none")]))
