"""Command line: dispatch, usage errors (exit 2), and a short digits demo run."""

import subprocess
import sys

from backprop.cli import main


def test_no_command_is_usage_error(capsys):
    # No sub-command prints help on stderr and exits 2.
    assert main([]) == 2


def test_unknown_command_exit_2(capsys):
    # argparse usage errors return 2.
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_module_entry_point_version():
    # `python -m backprop --version` works.
    out = subprocess.run([sys.executable, "-m", "backprop", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("backprop ")


def test_demo_digits_short_run(capsys):
    # A 10-epoch digits run prints a classification report and a test accuracy.
    assert main(["demo", "digits", "--epochs", "10"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "precision" in out
    acc = float(out.strip().splitlines()[-1].split()[-1])
    assert 0.5 < acc <= 1.0
