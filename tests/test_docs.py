"""The documentation site: every public name has an API entry, and documents each parameter."""

import inspect
import re
from pathlib import Path

import pytest

import backprop

API = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
ENTRIES = set(re.findall(r"^::: (\S+)$", API, re.M))
# names that backprop loads on first use are documented at their home module
HOMES = {"MLPClassifier": "backprop.estimators.MLPClassifier", "MLPRegressor": "backprop.estimators.MLPRegressor"}


@pytest.mark.parametrize("name", backprop.__all__)
def test_every_public_name_is_in_the_api_reference(name):
    # docs/api.md has a mkdocstrings entry for each name in backprop.__all__.
    assert HOMES.get(name, f"backprop.{name}") in ENTRIES


@pytest.mark.parametrize("name", [n for n in backprop.__all__ if callable(getattr(backprop, n))])
def test_every_parameter_is_documented(name):
    # Each parameter of a public callable is named in its docstring (the reference shows them).
    obj = getattr(backprop, name)
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        pytest.skip(f"{name} has no signature")
    doc = inspect.getdoc(obj) or ""
    missing = [p for p in signature.parameters if p not in ("self", "args", "kwargs") and p not in doc]
    assert doc and not missing, f"{name}: undocumented {missing}"
