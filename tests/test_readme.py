"""The README's 30-second example prints exactly the output the README shows."""

import contextlib
import io
import re

import pytest
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_output_is_real():
    # Run the first ```python block and compare its stdout with the ``` block after "prints".
    text = README.read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    expected = re.search(r"prints\n\n```\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue() == expected


def test_readme_starts_with_the_two_commands():
    # The README opens with `make demo` and `make test`, before anything else.
    lines = [l for l in README.read_text(encoding="utf-8").splitlines() if l.strip()]
    assert lines[1] == "```" and lines[2].startswith("make demo") and lines[3].startswith("make test")


def test_readme_is_short():
    # The README is read in two minutes: about 150 lines at most (issue 26).
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 150


def _blocks(text: str):
    """(language, body) of every fenced code block."""
    return re.findall(r"```(\w*)\n(.*?)```", text, re.S)


@pytest.mark.slow
def test_every_readme_block_runs(tmp_path, monkeypatch):
    # Every Python block runs, and every `backprop ...` line of the shell blocks exits 0, in order.
    import shlex
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    ran = 0
    for language, body in _blocks(README.read_text(encoding="utf-8")):
        if language == "python":
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(body, "README.md", "exec"), {})
            ran += 1
            continue
        for line in body.splitlines():
            command = line.split("  #")[0].strip()
            if not command.startswith("backprop "):
                continue
            result = subprocess.run([sys.executable, "-m", "backprop", *shlex.split(command)[1:]],
                                    capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
            ran += 1
    assert ran >= 12 and (tmp_path / "iris.safetensors").exists()
