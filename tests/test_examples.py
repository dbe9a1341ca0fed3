"""The examples gallery (docs/examples.md): every script runs and prints the output the page shows."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGE = (DOCS / "examples.md").read_text(encoding="utf-8")
SHOWN = dict(re.findall(r"`docs/examples/(\w+\.py)`\n\n```python\n.*?```\n\nprints\n\n```\n(.*?)```", PAGE, re.S))


def test_every_script_is_on_the_page():
    # Each script in docs/examples/ has its section, with its code as the file holds it.
    scripts = sorted(p.name for p in (DOCS / "examples").glob("*.py"))
    assert scripts and sorted(SHOWN) == scripts
    for name in scripts:
        assert (DOCS / "examples" / name).read_text(encoding="utf-8") in PAGE


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_script_prints_what_the_page_shows(name, tmp_path):
    # Run in an empty folder (the scripts write their files there); stdout equals the page's block.
    result = subprocess.run([sys.executable, str(DOCS / "examples" / name)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == SHOWN[name]
