"""The README's 30-second example prints exactly the output the README shows."""

import contextlib
import io
import re
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
