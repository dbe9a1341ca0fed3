"""Issue 21's memory target: the compiled conv epoch allocates nothing per step.

Oracle: numba's own allocation counter (NRT statistics, ``NUMBA_NRT_STATS=1``, read in a fresh
process because numba reads the switch at import). Every array a compiled kernel allocates goes
through it; the arrays Python passes in are counted too (one each per call of a numba
dispatcher), so the count of an epoch of 4 steps and of 16 must be equal, and zero through the
saved entry (``fast/native.py``), which borrows its arguments' pointers.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

SRC = str(Path(__file__).resolve().parents[1] / "src")
TESTS = str(Path(__file__).resolve().parent)

CHILD = r"""
import json, sys
sys.path[:0] = [{src!r}, {tests!r}]
import numpy as np
from numba.core.runtime import rtsys
from backprop import SGD, Adam
from backprop.fast import conv, native
import test_native_conv as geometries

counts, saved_entry = {{}}, native.conv_epoch_entry
for name in ("pad-fused-avg", "strided-overlapping", "blas"):
    for way in ("entry", "dispatcher", "halves"):
        native.conv_epoch_entry = (lambda dtype: None) if way == "dispatcher" else saved_entry
        for n in (16, 64):  # 4 and 16 steps of 4 rows
            net = geometries._geometry(name)
            X, Y = net.prepare(*geometries._data(name, n=n))
            optimizer = SGD(0.01, momentum=0.9) if name == "blas" else Adam(1e-3)
            run = conv.ConvRunner(net, X, Y, net.loss_fn, optimizer, 4,
                                  halves=way == "halves", threads=2 if way == "halves" else None)
            run.run_epoch(np.random.default_rng(0))  # the first call of a kernel may set up numba
            before = rtsys.get_allocation_stats()
            run.run_epoch(np.random.default_rng(1))
            after = rtsys.get_allocation_stats()
            counts[f"{{name}} {{way}} {{n}}"] = [after.alloc - before.alloc,
                                                 after.mi_alloc - before.mi_alloc,
                                                 run._entry is not None]
print(json.dumps(counts))
"""


def test_conv_epoch_allocates_nothing_per_step():
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    env.pop("BACKPROP_FAST", None)
    out = subprocess.run([sys.executable, "-c", CHILD.format(src=SRC, tests=TESTS)], env=env,
                         check=True, capture_output=True, text=True, timeout=600)
    counts = json.loads(out.stdout.splitlines()[-1])
    for name in ("pad-fused-avg", "strided-overlapping", "blas"):
        for way in ("entry", "dispatcher", "halves"):
            short, long = counts[f"{name} {way} 16"], counts[f"{name} {way} 64"]
            assert short[2] == long[2] == (way == "entry"), (name, way)
            # the same allocations for 4 steps as for 16: none of them is per step
            assert short[:2] == long[:2], (name, way, short, long)
            if way == "entry":
                assert long[:2] == [0, 0], (name, way, long)
            else:  # only the dispatcher's boxing of the array arguments, once per call
                assert long[0] <= 30, (name, way, long)
