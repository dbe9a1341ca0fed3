"""Shared helpers for the benchmarks: timing (medians), peers' availability, the machine and
thread settings, markdown tables. Run the scripts from the repository root (see run_all.py)."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))

ENV_KEYS = ["OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "NUMBA_NUM_THREADS", "NUMBA_CACHE_DIR", "BACKPROP_FAST"]


def median_time(fn, reps: int, per: float = 1.0) -> float:
    """Median wall time of ``fn()`` over ``reps`` runs, divided by ``per`` (e.g. epochs)."""
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) / per)
    return statistics.median(times)


# Every time of the latest round-robin of each name ({name: [seconds per round]}), and the
# rows that show one of them under another name ({row name: timed name}): ``round_ratios``.
ROUNDS: dict = {}
ALIASES: dict = {}


def interleaved_medians(fns: dict, reps: int, pause: float = 0.2) -> dict:
    """{name: median wall time} of each callable in ``fns``, timed round-robin (one run of each
    per round, ``reps`` rounds): a machine whose speed drifts during the run (shared cores, the
    memory traffic of neighbours) then slows every implementation alike, where timing one after
    the other would give the drift to whichever ran last. Each run starts ``pause`` seconds after
    the previous one, so that its worker threads (OpenBLAS, OpenMP) have stopped spinning. Each
    callable first runs once untimed (first-call set-up is not what is measured). Every round's
    time is kept in ``ROUNDS``."""
    for fn in fns.values():
        fn()
    times: dict = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            time.sleep(pause)
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    ROUNDS.update(times)
    return {name: statistics.median(values) for name, values in times.items()}


def round_ratios(rows, numerator: str, denominator: str) -> list | None:
    """The ratio of two rows' times in each round of the round-robin both were timed in (each
    row's times scaled as its median is, e.g. per epoch), or None when they were not timed
    round-robin together. It shows how much the ratio moves from one round to the next."""
    times = dict((r[0], r[1]) for r in rows)
    a, b = ALIASES.get(numerator, numerator), ALIASES.get(denominator, denominator)
    if a not in ROUNDS or b not in ROUNDS or len(ROUNDS[a]) != len(ROUNDS[b]):
        return None
    scale_a = times[numerator] / statistics.median(ROUNDS[a])
    scale_b = times[denominator] / statistics.median(ROUNDS[b])
    return [(x * scale_a) / (y * scale_b) for x, y in zip(ROUNDS[a], ROUNDS[b])]


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def quiet_sklearn():
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)


def fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.3f} s"


def table(rows, ours_key: str) -> str:
    """Markdown table of (name, seconds, note) rows with the ratio of each to ``ours_key``."""
    ours = dict((r[0], r[1]) for r in rows)[ours_key]
    lines = ["| implementation | median | ratio to ours (x slower) | note |", "|---|---|---|---|"]
    for name, sec, note in rows:
        lines.append(f"| {name} | {fmt_time(sec)} | {sec / ours:.2f} | {note} |")
    return "\n".join(lines)


def print_rows(title: str, rows, ours_key: str) -> None:
    print(f"\n== {title}")
    print(table(rows, ours_key))


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load": load}


def versions() -> dict:
    import numba
    import numpy
    import sklearn

    import backprop

    out = {"backprop": backprop.__version__, "numpy": numpy.__version__, "numba": numba.__version__,
           "scikit-learn": sklearn.__version__}
    torch = torch_or_none()
    out["torch"] = torch.__version__ if torch else "not installed (skipped)"
    return out


def threads() -> dict:
    from threadpoolctl import threadpool_info

    info = {f"{p['internal_api']} ({p['prefix']})": p["num_threads"] for p in threadpool_info()}
    torch = torch_or_none()
    if torch:
        info["torch intra-op threads"] = torch.get_num_threads()
    info["env"] = {k: os.environ.get(k, "(unset)") for k in ENV_KEYS}
    return info


def write_marked_section(path, name: str, text: str) -> None:
    """Replace the page's lines between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` (or
    append the marked section), atomically."""
    from backprop.io import atomic_write_bytes

    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    page = Path(path).read_text(encoding="utf-8")
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in page and end in page:
        page = page[:page.index(start)] + block + page[page.index(end) + len(end):]
    else:
        page = page.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_bytes(path, page.encode())
