"""The step-through page in a real browser: headless Chromium (Debian's, driven by Playwright) opens
the file from disk, steps through it by keys and buttons, and the numbers it shows are checked
against the JSON derivation; no network request, no console error. Writes docs/img/explain-*.png.

Without a browser these tests skip with a message saying how to get one; with CI=true they fail.
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from backprop.cli import main
from backprop.explain.symbols import fmt

DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
HOW = ("the browser tests need Debian's Chromium and Playwright: `apt-get install chromium` and "
       "`pip install -e '.[test]'` (or set BACKPROP_CHROMIUM to a Chromium binary)")
# seed 001 prints round(E_total, 9) after update i (from 0)
SEED_001 = {21: 0.137205276, 30: 0.095354325, 40: 0.066817506}


def _no_browser(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; {HOW}")
    pytest.skip(f"{reason}; {HOW}")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("playwright is not installed")
    path = os.environ.get("BACKPROP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        _no_browser(f"no Chromium at {path}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """One page opened from disk with every request and console message recorded."""

    def __init__(self, browser, path: Path):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.requests, self.console, self.blocked = [], [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']")

    def _route(self, route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def lines(self, element_id: str) -> list[str]:
        return self.page.eval_on_selector(
            f"#net [data-id='{element_id}'] text, #net [data-label='{element_id}'] text",
            "t => Array.from(t.querySelectorAll('tspan')).map(s => s.textContent)")

    def equations(self) -> list[dict]:
        return self.page.eval_on_selector_all(
            "#equations .eq", "els => els.map(e => ({text: e.dataset.text, math: e.querySelector('math').textContent,"
            " real: e.querySelector('math') instanceof MathMLElement,"
            " height: e.querySelector('math').getBoundingClientRect().height}))")

    def classes(self, element_id: str) -> str:
        return self.page.eval_on_selector(f"#net [data-id='{element_id}']", "e => e.getAttribute('class')")

    def title(self) -> str:
        return self.page.text_content("#step-title")

    def close(self):
        self.context.close()


def _shown(text: str) -> float:
    """The last number of a label or an equation as displayed (MathML text: − and ×10 exponents)."""
    text = re.sub(r"\s*\([^()]*[A-Za-z][^()]*\)\s*$", "", text)  # a remark: (first maximum: A[0,1])
    last = text.rsplit("=", 1)[-1].rsplit("→", 1)[-1].strip().replace("−", "-")
    m = re.fullmatch(r"(-?[\d.]+)×10(-?\d+)", last)
    return float(m[1]) * 10 ** int(m[2]) if m else float(last)


def _close(shown: float, exact: float, digits: int = 9):
    assert abs(shown - exact) <= 0.51 * 10 ** -digits + 1e-15 * abs(exact), (shown, exact)


def _json(capsys, *argv):
    assert main(["explain", "--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_seed_002_page_steps_through_with_the_derivations_numbers(browser, tmp_path, capsys):
    """Seed 002's page: each step's labels and equation results equal the JSON derivation, the step
    highlights what it uses, the maths is real MathML; training slider matches seed 001's loop."""
    path = tmp_path / "step.html"
    assert main(["explain", "--format", "html", "--steps", "41", "--output", str(path)]) == 0
    capsys.readouterr()
    d = _json(capsys)
    page = Page(browser, path)
    try:
        n_steps = int(page.page.text_content("#step-count").split()[-1])
        seen = []
        for k in range(n_steps):
            title = page.title()
            seen.append(title)
            eqs = page.equations()
            assert all(e["real"] and e["height"] > 10 for e in eqs)
            for e in eqs:  # what MathML shows ends with the number of the text derivation
                _close(_shown(e["math"]), _shown(e["text"]))
            if title.startswith("Forward: "):
                n = title.split()[1]
                lines = page.lines(f"n:{n}")
                _close(_shown(lines[-2]), d["forward"][f"net_{n}"])
                _close(_shown(lines[-1]), d["forward"][f"out_{n}"])
                _close(_shown(eqs[-1]["math"]), d["forward"][f"out_{n}"])
                assert "focus" in page.classes(f"n:{n}")
                src = d["network"]["weights"]
                for w, info in src.items():
                    if info["to"] == n:
                        assert "uses" in page.classes(f"e:{w}") and "uses" in page.classes(f"n:{info['from']}")
            elif title == "The error":
                _close(_shown(page.lines("E")[-1]), d["errors"]["E_total"])
                _close(_shown(eqs[-1]["math"]), d["errors"]["E_total"])
            elif title.startswith("Backward: "):
                for n, delta in d["deltas"].items():
                    lines = page.lines(f"n:{n}")
                    if "focus" in page.classes(f"n:{n}"):
                        _close(_shown(lines[-1]), delta)
            elif title.startswith("Update "):
                w = title.split()[1]
                _close(_shown(page.lines(f"e:{w}")[-1]), d["updated"][w])
                _close(_shown(eqs[-1]["math"]), d["updated"][w])
                _close(_shown(eqs[-2]["math"]), d["gradients"][w])
                assert "focus" in page.classes(f"e:{w}")
                assert "uses" in page.classes(f"n:{d['network']['weights'][w]['to']}")
                if w == "w5":
                    page.page.screenshot(path=str(DOCS_IMG / "explain-step.png"), full_page=False)
            elif title == "After the step":
                _close(_shown(page.lines("E")[-1]), d["after"]["E_total"])
            if k < n_steps - 1:
                page.page.keyboard.press("ArrowRight")
        assert seen[1] == "Forward: h1" and seen[-1] == "After the step"
        assert sum(t.startswith("Update w") for t in seen) == 8
        # the buttons go back and forth too; the first step cannot go back
        page.page.click("#first")
        assert page.title() == seen[0] and page.page.is_disabled("#prev")
        page.page.click("#next")
        page.page.click("#next")
        assert page.title() == seen[2]
        page.page.keyboard.press("ArrowLeft")
        assert page.title() == seen[1]
        # many steps: the slider shows the network after k steps, seed 001's printed error
        for i, printed in SEED_001.items():
            page.page.fill("#slider", str(i + 1))
            label = page.page.text_content("#slider-label")
            assert label == f"after {i + 1} steps: E_total = {printed:.9f}"
        page.page.locator("#training").screenshot(path=str(DOCS_IMG / "explain-training.png"))
        assert page.blocked == [] and set(page.requests) == {page.url}
        assert page.console == []
    finally:
        page.close()


def test_softmax_page_of_a_deeper_network(browser, tmp_path, capsys):
    """A 3-4-3-2 tanh network with softmax cross-entropy (fused deltas, two hidden layers): the last
    step's labels equal the JSON derivation, no request, no console message."""
    argv = ["--layers", "3,4,3,2", "--activation", "tanh", "--loss", "softmax_cross_entropy", "--seed", "7",
            "--train-biases"]
    path = tmp_path / "deep.html"
    assert main(["explain", "--format", "html", "--output", str(path), *argv]) == 0
    capsys.readouterr()
    d = _json(capsys, *argv)
    page = Page(browser, path)
    try:
        page.page.keyboard.press("End")
        assert page.title() == "After the step"
        for w, value in d["updated"].items():
            if w.startswith("w"):
                _close(_shown(page.lines(f"e:{w}")[-1]), value)
        for n in d["deltas"]:
            lines = page.lines(f"n:{n}")
            _close(_shown(lines[-1]), d["deltas"][n])
            bias = [line for line in lines if line.startswith(f"b_{n} = ")]
            _close(_shown(bias[0]), d["updated"][f"b_{n}"])
        page.page.keyboard.press("Home")
        assert page.title() == "The network before the step"
        assert page.blocked == [] and set(page.requests) == {page.url}
        assert page.console == []
    finally:
        page.close()


def _conv_quantity(title: str) -> str:
    """The JSON derivation's name of the quantity a conv page step shows in its title."""
    slope = re.fullmatch(r"∂A(\[[\d,]+\])/∂Y\1", title)
    if slope:
        return "dA/dY" + slope[1]
    name = title.replace("∂L/∂", "dL/d").replace("⁺", "+")
    return "dL/dY" + name[1:] if name.startswith("G[") else name


def test_conv_page_steps_through_with_the_derivations_numbers(browser, tmp_path, capsys):
    """A conv + relu + max pool page: at every step the highlighted cell shows the JSON derivation's
    number for the quantity in the title, and the equation the same; the slider shows the loss of
    the recorded steps; no request, no console message. Writes docs/img/explain-conv.png."""
    argv = ["--input", "1,2,0,1;0,1,3,2;2,1,1,0;1,0,2,1", "--kernel", "1,-1;2,0", "--pool", "max", "2",
            "--target", "1", "--activation", "relu"]
    path = tmp_path / "conv.html"
    assert main(["explain", "--conv", "--format", "html", "--steps", "30", "--output", str(path), *argv]) == 0
    capsys.readouterr()
    assert main(["explain", "--conv", "--format", "json", *argv]) == 0
    d = json.loads(capsys.readouterr().out)
    page = Page(browser, path)
    try:
        n_steps = int(page.page.text_content("#step-count").split()[-1])
        checked = 0
        for k in range(n_steps):
            title = page.title()
            focused = page.page.eval_on_selector_all("#net .node.focus", "els => els.map(e => e.dataset.id)")
            eqs = page.equations()
            assert all(e["real"] and e["height"] > 10 for e in eqs)
            for e in eqs:
                _close(_shown(e["math"]), _shown(e["text"]))
            if 0 < k < n_steps - 1:
                value = d["quantities"][_conv_quantity(title)]["value"]
                (cell,) = focused
                _close(_shown(page.lines(cell)[-1]), value)
                _close(_shown(eqs[-1]["math"]), value)
                checked += 1
                if title == "∂L/∂K[1,0]":
                    page.page.screenshot(path=str(DOCS_IMG / "explain-conv.png"), full_page=False)
            if k < n_steps - 1:
                page.page.keyboard.press("ArrowRight")
        assert checked == sum(len(s["quantities"]) for s in d["steps"] if s["key"] != "after")
        assert page.title() == "After the step"
        _close(_shown(page.lines("E")[-1]), d["L+"])
        page.page.fill("#slider", "1")  # the second snapshot: after one step, the derivation's L+
        assert page.page.text_content("#slider-label") == f"after 1 step: L = {fmt(d['L+'])}"
        assert page.blocked == [] and set(page.requests) == {page.url}
        assert page.console == []
    finally:
        page.close()
