"""docs/cli.md's session on a mixed table (text column, empty cells, an unseen city) is real: each
`$ ` command between its markers runs on the bundled CSV files and prints what the page shows
(a "..." line skips lines; numbers agree to 1e-6 relative, the rest exactly)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "cli.md"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def _session():
    """[(command, expected lines)] of the marked section's code blocks."""
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("<!-- mixed-session:start -->")[1].split("<!-- mixed-session:end -->")[0]
    steps = []
    for block in re.findall(r"```\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return steps


def _same_line(expected: str, actual: str) -> bool:
    if NUMBER.sub("#", expected) != NUMBER.sub("#", actual):
        return False
    pairs = zip(NUMBER.findall(expected), NUMBER.findall(actual))
    return all(abs(float(a) - float(b)) <= 1e-6 * max(abs(float(a)), 1e-9) for a, b in pairs)


def _matches(expected: list[str], actual: list[str]) -> str | None:
    """None when ``actual`` shows ``expected`` ("..." skips any lines), else what differs."""
    k = 0
    for i, line in enumerate(expected):
        if line == "...":
            following = expected[i + 1] if i + 1 < len(expected) else None
            if following is None:
                return None
            while k < len(actual) and not _same_line(following, actual[k]):
                k += 1
            continue
        if k >= len(actual) or not _same_line(line, actual[k]):
            return f"expected {line!r}, got {actual[k] if k < len(actual) else '<end>'!r}"
        k += 1
    return None if k == len(actual) else f"unexpected extra line {actual[k]!r}"


def test_the_mixed_table_session_prints_what_the_page_shows(tmp_path):
    # Run every command of the session in order in a folder holding the two CSV files.
    for name in ("cities.csv", "cities_new.csv"):
        shutil.copy(ROOT / "tests" / "fixtures" / name, tmp_path / name)
    steps = _session()
    assert [c.split()[:2] for c, _ in steps] == [["head", "-4"], ["backprop", "train"], ["backprop", "info"],
                                              ["backprop", "predict"], ["backprop", "evaluate"]]
    for command, expected in steps:
        argv = shlex.split(command)
        if argv[0] == "head":
            actual = (tmp_path / argv[2]).read_text().splitlines()[: int(argv[1][1:])]
        else:
            result = subprocess.run([sys.executable, "-m", "backprop", *argv[1:]], cwd=tmp_path,
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stderr
            actual = (result.stderr + result.stdout).splitlines()  # notes first, as a terminal shows them
        problem = _matches(expected, actual)
        assert problem is None, f"{command}: {problem}"


def test_the_matcher_can_fail():
    # The comparison is not vacuous: a changed word, a changed number or a missing line fails.
    shown = ["rows: 6", "...", "rmse: 38.9562"]
    assert _matches(shown, ["rows: 6", "r2: 0.7", "rmse: 38.9562"]) is None
    assert _matches(shown, ["rows: 7", "rmse: 38.9562"]) is not None
    assert _matches(shown, ["rows: 6", "rmse: 38.95"]) is not None
    assert _matches(["a", "b"], ["a"]) is not None and _matches(["a"], ["a", "b"]) is not None


def test_the_bundled_tables_are_what_their_seeded_script_writes(tmp_path):
    # tests/fixtures/make_cities.py (seed 7) writes exactly the committed cities.csv and cities_new.csv.
    subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "make_cities.py"), str(tmp_path)],
                   check=True, timeout=60)
    for name in ("cities.csv", "cities_new.csv"):
        assert (tmp_path / name).read_bytes() == (ROOT / "tests" / "fixtures" / name).read_bytes()
