"""Hostile command lines (issue 29), through the real CLI: outputs over inputs, unwritable outputs,
file modes and symbolic links, internal errors told apart from user errors, usage errors exiting 2
for every sub-command's typed options, explain's non-finite and out-of-range values, and the
suite's own child processes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backprop._validation import BackpropError
from backprop.cli import build_parser, main
from backprop.io import atomic_write_bytes

HERE = Path(__file__).parent
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    return err.strip()


def _csv(path: Path, n: int = 24) -> Path:
    rows = [f"{i % 5},{(i * 7) % 11},{'ab'[i % 2]}" for i in range(n)]
    path.write_text("f1,f2,kind\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def trained(tmp_path, capsys):
    data = _csv(tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    assert _cli(capsys, "train", data, "--target", "kind", "--out", model, "--epochs", "1", "--quiet")[0] == 0
    return data, model


# -- 1. no output over an input or another output; checked before any work --------------------------
def test_outputs_never_overwrite_inputs(trained, tmp_path, capsys):
    # explain --output over its --data or --model, predict --out over the model, and a symbolic
    # link that points at the data: refused, one line naming both options, the inputs unchanged.
    data, model = trained
    before = {p: p.read_bytes() for p in (data, model)}
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    explain = ["explain", "--model", model, "--data", data, "--row", "1"]
    for argv, flags in [(explain + ["--output", data], ("`--output`", "`--data`")),
                        (explain + ["--output", model], ("`--output`", "`--model`")),
                        (explain + ["--output", link], ("`--output`", "`--data`")),
                        (["predict", model, data, "--out", model], ("`--out`", "`model`")),
                        (["predict", model, data, "--out", link], ("`--out`", "`data`"))]:
        code, out, err = _cli(capsys, *argv)
        line = _one_line(err)
        assert code == 1 and "must not overwrite the input file" in line and all(f in line for f in flags), line
        assert out == ""
    assert {p: p.read_bytes() for p in (data, model)} == before
    assert link.is_symlink()


def test_two_outputs_may_not_be_one_file(tmp_path, capsys):
    # train --out same.png --plot same.png (also through a link): refused before training, nothing written.
    data = _csv(tmp_path / "d.csv")
    same = tmp_path / "same.png"
    code, _, err = _cli(capsys, "train", data, "--target", "kind", "--out", same, "--plot", same, "--quiet")
    assert code == 1 and "`--plot` and `--out` must be different files" in _one_line(err)
    alias = tmp_path / "alias.png"
    alias.symlink_to(same)
    code, _, err = _cli(capsys, "train", data, "--target", "kind", "--out", same, "--plot", alias, "--quiet")
    assert code == 1 and "the same file" in _one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alias.png", "d.csv"]


def test_other_output_pairs_and_folders(tmp_path, capsys):
    # tune --results over --out, explain --diagram over --output, and a --checkpoint folder that
    # is a file or cannot be created: one line each, before any work, nothing written.
    data = _csv(tmp_path / "d.csv")
    same = tmp_path / "x.safetensors"
    code, _, err = _cli(capsys, "tune", data, "--target", "kind", "--grid", "hidden=2", "--out", same,
                        "--results", same, "--quiet")
    assert code == 1 and "`--results` and `--out` must be different files; got " in _one_line(err)
    page = tmp_path / "p.svg"
    code, _, err = _cli(capsys, "explain", "--output", page, "--diagram", page)
    assert code == 1 and "`--diagram` and `--output` must be different files" in _one_line(err)
    for folder, reason in ((data, "`--checkpoint` must be a folder; got"),
                           ("/proc/ck/deeper", "`--checkpoint`: cannot write '/proc/ck/deeper': no file can be")):
        code, _, err = _cli(capsys, "train", data, "--target", "kind", "--out", same, "--checkpoint", folder)
        assert code == 1 and reason in _one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


@pytest.mark.parametrize("where, reason", [
    ("/proc/x.safetensors", "no file can be created in its folder"),
    ("{tmp}/missing/m.safetensors", "its folder does not exist"),
    ("{tmp}", "it is a folder"),
    ("{tmp}/d.csv/m.safetensors", "is not a folder"),
])
def test_unwritable_out_is_found_before_training(tmp_path, capsys, where, reason):
    # An --out that cannot be written is one line naming the path as typed and why, before any
    # work (no training note), and never a temporary file's name (issue 27.3).
    data = _csv(tmp_path / "d.csv")
    out = where.format(tmp=tmp_path)
    code, stdout, err = _cli(capsys, "train", data, "--target", "kind", "--out", out, "--epochs", "100000")
    line = _one_line(err)
    assert code == 1 and line.startswith(f"backprop: error: `--out`: cannot write {out!r}: ") and reason in line
    assert ".tmp" not in line and "Errno" not in line and stdout == ""


@pytest.mark.skipif(ROOT_USER, reason="root writes into read-only folders")
def test_read_only_folder_is_found_before_work(tmp_path, capsys):
    # A folder without write permission: the probe file cannot be created; one line.
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, _, err = _cli(capsys, "explain", "--output", folder / "d.txt")
    finally:
        folder.chmod(0o700)
    assert code == 1 and "`--output`: cannot write" in _one_line(err) and "Permission denied" in err


def test_atomic_writer_names_the_users_path(tmp_path):
    # Failures inside the writer itself (after any early check) name the path given, not the
    # temporary file, and leave nothing behind.
    with pytest.raises(BackpropError, match=r"^cannot write `/proc/x\.st`: ") as info:
        atomic_write_bytes("/proc/x.st", b"1")
    assert ".tmp" not in str(info.value)
    with pytest.raises(BackpropError, match="it is a folder"):
        atomic_write_bytes(tmp_path, b"1")
    assert list(tmp_path.iterdir()) == []


# -- 2. modes and symbolic links -------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002, 0o027])
def test_new_files_get_the_mode_open_would_give(tmp_path, capsys, umask):
    # The oracle is a plain open() under the same umask.
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain", "wb"):
            pass
        assert _cli(capsys, "explain", "--output", tmp_path / "d.txt")[0] == 0
    finally:
        os.umask(old)
    plain = (tmp_path / "plain").stat().st_mode & 0o777
    assert plain == 0o666 & ~umask
    assert (tmp_path / "d.txt").stat().st_mode & 0o777 == plain


def test_replaced_file_keeps_its_mode_and_links_write_through(tmp_path, capsys):
    # An existing 0640 file stays 0640 when replaced; an output that is a symbolic link stays a
    # link, and its target gets the new text.
    target = tmp_path / "real.md"
    target.write_text("old")
    target.chmod(0o640)
    assert _cli(capsys, "explain", "--format", "markdown", "--output", target)[0] == 0
    assert target.stat().st_mode & 0o777 == 0o640 and target.read_text().startswith("# One training step")
    target.write_text("old")
    link = tmp_path / "sub" / "link.md"
    link.parent.mkdir()
    link.symlink_to(Path("..") / "real.md")
    assert _cli(capsys, "explain", "--format", "markdown", "--output", link)[0] == 0
    assert link.is_symlink() and os.readlink(link) == str(Path("..") / "real.md")
    assert target.read_text().startswith("# One training step") and target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["link.md", "real.md", "sub"]  # no temporary file


# -- 5. internal errors are bugs; usage errors exit 2 ------------------------------------------------
def test_an_unexpected_exception_is_an_internal_error(tmp_path, capsys, monkeypatch):
    # A bug (here a KeyError put into `info`) is not dressed as a user error: exit 3, one line
    # saying to report it; --debug shows the traceback.
    from backprop.commands import info

    def broken(args):
        raise KeyError("layers")

    monkeypatch.setattr(info, "run", broken)
    code, _, err = _cli(capsys, "info", tmp_path / "m.safetensors")
    assert code == 3 and _one_line(err) == ("backprop: internal error, please report: KeyError: 'layers' "
                                            "(run with --debug for the traceback)")
    code, _, err = _cli(capsys, "--debug", "info", tmp_path / "m.safetensors")
    assert code == 3 and "Traceback (most recent call last)" in err and "raise KeyError" in err


def test_a_network_too_large_for_memory_is_a_user_error(tmp_path, capsys):
    # 16 PB of weights (beyond any address space, so refused at once whatever the overcommit
    # policy): the size the user asked for, not a bug.
    data = _csv(tmp_path / "d.csv")
    code, _, err = _cli(capsys, "train", data, "--target", "kind", "--out", tmp_path / "m.st",
                        "--hidden", "1000000000000000", "--quiet")
    line = [x for x in err.splitlines() if "error" in x]
    assert code == 1 and len(line) == 1 and line[0].startswith("backprop: error: not enough memory: ")
    assert "try a smaller network" in line[0] and not (tmp_path / "m.st").exists()


@pytest.mark.parametrize("argv, option", [
    (["demo", "brownlee", "--epochs", "0"], "--epochs"),
    (["demo", "brownlee", "--hidden", "0"], "--hidden"),
    (["demo", "mazur", "--iterations", "0"], "--iterations"),
    (["demo", "xor", "--every", "0"], "--every"),
    (["explain", "--digits", "-3"], "--digits"),
    (["explain", "--lr=-1"], "--lr"),
    (["explain", "--row", "0"], "--row"),
])
def test_issue_29_usage_errors_exit_2(capsys, argv, option):
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and f"error: argument {option}: " in _one_line(err) and out == ""


def test_brownlee_with_zero_epochs_is_refused_by_the_api():
    # The bug behind "'NoneType' object is not subscriptable": no epoch, no layer outputs to show.
    from backprop.demos import brownlee

    with pytest.raises(BackpropError, match="`epochs` must be an integer >= 1; got 0"):
        brownlee.run(epochs=0)
    assert len(brownlee.run(epochs=1)["errors"]) == 1


def _typed_options(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _typed_options(sub, (*path, name))
        elif action.option_strings and action.type not in (None, str):
            yield path, action


# types whose values are names (any text is a valid column name) are not walked
_TEXT_TYPES = {"column_list"}
# scalar types of counts, sizes, rates and fractions: a negative number is invalid too
_NON_NEGATIVE = {"positive_int", "positive_float", "seed_type", "fraction", "_digits", "resolution",
                 "_positive_int", "_pair.<locals>.parse", "_sizes", "hidden_sizes", "image_shape"}


def _walk_cases():
    cases = []
    for path, action in _typed_options(build_parser()):
        kind = getattr(action.type, "__qualname__", "")
        if kind in _TEXT_TYPES:
            continue
        option = next(o for o in action.option_strings if o.startswith("--"))
        bad = ["x", "nan", "inf", "1e999"] + (["-3"] if kind in _NON_NEGATIVE else [])
        cases += [pytest.param([*path, f"{option}={value}"], option, id=f"{' '.join(path)} {option}={value}")
                  for value in bad]
    return cases


def test_the_walk_sees_every_command():
    # The walk below reaches the typed options of every sub-command that has them.
    commands = {p[0] for p in (c.values[0] for c in _walk_cases())}
    assert commands >= {"train", "tune", "predict", "evaluate", "plot-boundary", "explain", "demo"}


@pytest.mark.parametrize("argv, option", _walk_cases())
def test_every_typed_option_refuses_bad_values_with_exit_2(capsys, argv, option):
    # Every sub-command's typed options: a word, nan, inf, an overflowing number (and a negative
    # one where only counts make sense) are usage errors naming the option, in one line.
    code, out, err = _cli(capsys, *argv)
    line = _one_line(err)
    assert code == 2 and f"error: argument {option}: " in line and out == "", line


# -- 4. explain: finite numbers, targets in the loss's range, no one-unit softmax ---------------------
@pytest.mark.parametrize("argv, expected", [
    (["--weights=inf,1,1,1,1,1,1,1"], "argument --weights: --weights must be finite numbers; got"),
    (["--weights=1e999,1,1,1,1,1,1,1"], "(number 1 is inf)"),
    (["--inputs=nan,1"], "argument --inputs: --inputs must be finite numbers"),
    (["--targets=1,-inf"], "(number 2 is -inf)"),
    (["--biases=inf"], "argument --biases: --biases must be finite numbers"),
    (["--loss", "binary_cross_entropy", "--targets=2,-1"],
     "`--targets` must be in [0, 1] (probabilities) for --loss binary_cross_entropy; got 2 (target 1)"),
    (["--loss", "binary_cross_entropy", "--targets=0.5,-1"], "got -1 (target 2)"),
    (["--loss", "softmax_cross_entropy", "--targets=1,-0.5"],
     "`--targets` must be >= 0 (class weights, one-hot or soft labels) for --loss softmax_cross_entropy"),
    (["--layers", "2,1", "--loss", "softmax_cross_entropy"], "a softmax over one unit (the output layer)"),
    (["--layers", "2,1", "--output-activation", "softmax"], "a softmax over one unit (the output layer)"),
    (["--layers", "2,1,2", "--activation", "softmax"], "a softmax over one unit (hidden layer 1)"),
])
def test_explain_refuses_values_it_cannot_explain(capsys, argv, expected):
    code, out, err = _cli(capsys, "explain", *argv)
    assert code == 2 and expected in _one_line(err) and out == ""


def test_explain_accepts_the_edges_of_each_range(capsys):
    # Targets at the ends of the ranges (0 and 1 for BCE; zeros and soft rows for softmax CE) and
    # a two-unit softmax are explained, and their loss is not negative.
    for argv in (["--loss", "binary_cross_entropy", "--targets=0,1"],
                 ["--loss", "softmax_cross_entropy", "--targets=0,0"],
                 ["--loss", "softmax_cross_entropy", "--targets=0.25,0.75"],
                 ["--layers", "2,2", "--output-activation", "softmax", "--loss", "softmax_cross_entropy"]):
        code, out, _ = _cli(capsys, "explain", "--format", "json", *argv)
        assert code == 0, argv
        assert json.loads(out)["errors"]["E_total"] >= 0


# -- 6. the suite's own child processes -------------------------------------------------------------
def test_a_child_left_running_fails_the_session(tmp_path):
    # A tiny suite with the same conftest hook leaks a sleeping child: the session reports it
    # at the last teardown, fails, and the child is gone afterwards.
    psutil = pytest.importorskip("psutil")
    pid_file = tmp_path / "pid"
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from processes import pytest_runtest_teardown  # noqa: F401
        import processes
        processes.GRACE_SECONDS = 0.5
    """))
    (tmp_path / "test_leak.py").write_text(textwrap.dedent(f"""
        import subprocess, sys
        def test_leaks():
            proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            open({str(pid_file)!r}, "w").write(str(proc.pid))
        def test_after():
            pass
    """))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                             str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "child processes outlived the test suite" in result.stdout and "time.sleep(120)" in result.stdout
    assert "2 passed, 1 error" in result.stdout
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
