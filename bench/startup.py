"""Start-up: seconds from process start to the end of the first training epoch of
`backprop demo digits` (``measure(demo="cnn")``: of `backprop demo cnn --no-dense`; kernels
already in numba's disk cache: the first of two runs warms it).
Measured in fresh subprocesses; the clock is /proc (10 ms resolution, Linux only)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from common import ROOT

TITLE = "Start-up: `backprop demo digits`, process start to the end of epoch 1 (second run)"

CHILD = r"""
import os, sys
def since_start():
    ticks = os.sysconf("SC_CLK_TCK")
    start = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]) / ticks
    return float(open("/proc/uptime").read().split()[0]) - start
sys.path.insert(0, {src!r})
import backprop.training as training
fit = training.fit
def timed_fit(*args, **kwargs):
    from backprop import LambdaCallback
    def first(state):
        if state.epoch == 0:
            print("FIRST_EPOCH", since_start(), "SKLEARN", "sklearn" in sys.modules, "NUMBA_SETUP",
                  "numba.np.arraymath" in sys.modules, file=sys.stderr)
    kwargs["callbacks"] = list(kwargs.get("callbacks", ())) + [LambdaCallback(on_epoch_end=first)]
    return fit(*args, **kwargs)
training.fit = timed_fit
from backprop.cli import main
main(["demo", {demo!r}, "--epochs", "1", *{extra!r}])
"""


def measure(runs: int = 3, demo: str = "digits") -> dict:
    """Runs with an empty numba cache (NUMBA_CACHE_DIR: a new temporary directory): the first
    compiles, the next ``runs`` load the cache. Returns the cold run's seconds to the first
    epoch's end and its stderr lines about compiling, the warm runs' median, and whether
    scikit-learn had been imported by then, or numba's compiler set up (``fast/native.py``
    loads the kernel without it)."""
    extra = ["--no-dense"] if demo == "cnn" else []
    code = CHILD.format(src=str(ROOT / "src"), demo=demo, extra=extra)
    times, sklearn, setup = [], False, False
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for i in range(runs + 1):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 env=env)
            line = next(l for l in out.stderr.splitlines() if l.startswith("FIRST_EPOCH"))
            parts = line.split()
            if i == 0:
                cold = float(parts[1])
                notice = "; ".join(l.strip() for l in out.stderr.splitlines() if "compil" in l)
                continue
            times.append(float(parts[1]))
            sklearn = sklearn or parts[3] == "True"
            setup = setup or parts[5] == "True"
    times.sort()
    return {"warm": times[len(times) // 2], "cold": cold, "notice": notice or "(none)",
            "sklearn": sklearn, "numba_setup": setup}


TARGETS = {"digits": 0.5, "cnn": 1.0}  # seconds: issue 20's dense target, issue 21's conv one


def summary(result: dict, demo: str = "digits") -> str:
    return (f"second and later runs: {result['warm']:.2f} s to the end of epoch 1 (target {TARGETS[demo]:g} s; "
            f"scikit-learn imported before training: {result['sklearn']}; numba's compiler set up "
            f"before training (numba.np.arraymath imported): {result['numba_setup']}); first run "
            f"(compiling): {result['cold']:.1f} s, it printed: {result['notice']!r}")


if __name__ == "__main__":
    # --cnn: `backprop demo cnn --no-dense` instead of `backprop demo digits`
    demo = "cnn" if "--cnn" in sys.argv else "digits"
    print(f"{TITLE.replace('demo digits', 'demo ' + demo)}: {summary(measure(demo=demo), demo)}")
