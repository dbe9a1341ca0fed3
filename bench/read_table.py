"""Reading a 500,000 x 21 numeric CSV (~100 MB) into a float64 matrix (issue 22): the old cell
reader (``backprop.csvdata.read_csv`` + ``Table.numeric``, still in the tree for ``explain``),
the new pyarrow path (``backprop.tables.read_table`` + ``Frame.numeric``), and
``pyarrow.csv.read_csv`` alone (the floor), timed round-robin in this process; then the peak
memory (ru_maxrss) of ``backprop train`` on the file in a child process, against the float64
data and against the same command on a 1,000-row file (the interpreter and imports).

    .venv/bin/python bench/read_table.py [--rows 500000] [--reps 3] [--write]

Targets: new >= 5x faster than the old reader, new <= 1.5x pyarrow alone, peak memory of train
<= 3x the float64 data. ``--write`` replaces this section of docs/benchmarks.md (its markers).
"""

from __future__ import annotations

import argparse
import builtins
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import ROOT, interleaved_medians, machine, versions, write_marked_section

TITLE = "Reading tables: a 500,000 x 21 numeric CSV (issue 22)"
CHILD = """
import sys
from backprop.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as f:  # VmHWM: this process's peak RSS (ru_maxrss would include the parent's at fork)
    print("MAXRSS", [l.split()[1] for l in f if l.startswith("VmHWM")][0], file=sys.stderr)
sys.exit(code)
"""


def make_csv(path: Path, rows: int, seed: int) -> list[str]:
    """A seeded numeric CSV: 20 features (6 decimals) and a regression target ``y``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(0, 10, (rows, 20)), 6)
    y = np.round(X @ rng.normal(0, 1, 20) + rng.normal(0, 1, rows), 6)
    names = [f"x{j}" for j in range(1, 21)] + ["y"]
    table = pa.table({n: X[:, j] for j, n in enumerate(names[:-1])} | {"y": y})
    pacsv.write_csv(table, str(path), pacsv.WriteOptions(quoting_style="none"))
    return names


def child_maxrss(argv: list[str]) -> tuple[int, int]:  # run before the timings: a small parent
    """(exit code, peak resident memory in bytes) of ``backprop ARGV`` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env)
    line = [l for l in result.stderr.splitlines() if l.startswith("MAXRSS")]
    if not line:
        raise SystemExit(f"child failed: {result.stderr[-2000:]}")
    return result.returncode, int(line[-1].split()[1]) * 1024  # Linux reports KiB


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true",
                        help="replace this section of docs/benchmarks.md (between its markers)")
    args = parser.parse_args()

    import pyarrow.csv as pacsv

    from backprop.csvdata import read_csv
    from backprop.tables import null_spellings, read_table

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.csv"
        names = make_csv(path, args.rows, args.seed)
        size = path.stat().st_size
        results = {}

        def old():
            results["old"] = read_csv(path).numeric(names)

        def new():
            results["new"] = read_table(path).numeric(names)

        def arrow():
            pacsv.read_csv(str(path))

        def arrow_same():  # the options read_table passes: quoted newlines allowed, the missing spellings
            pacsv.read_csv(str(path), parse_options=pacsv.ParseOptions(newlines_in_values=True),
                           convert_options=pacsv.ConvertOptions(null_values=null_spellings(),
                                                                strings_can_be_null=True))

        small = Path(folder) / "small.csv"
        make_csv(small, 1000, args.seed)
        train = ["train", "--target", "y", "--epochs", "1", "--hidden", "32", "--quiet", "--validation", "0.1"]
        _, base_rss = child_maxrss([*train[:1], str(small), *train[1:], "--out", str(Path(folder) / "s.st")])
        code, rss = child_maxrss([*train[:1], str(path), *train[1:], "--out", str(Path(folder) / "b.st")])
        times = interleaved_medians({"old reader": old, "new reader": new, "pyarrow alone": arrow,
                                     "pyarrow alone, our options": arrow_same}, args.reps)
        same = bool(np.array_equal(results.pop("old"), results.pop("new")))

    data = args.rows * len(names) * 8
    out = []
    print = lambda line="": out.append(str(line))  # noqa: E731 (the section's lines, shown and written below)
    print(f"## {TITLE}\n")
    print(f"{args.rows:,} rows x {len(names)} columns of numbers ({size / 1e6:.0f} MB of CSV, seed {args.seed}; "
          f"{data / 1e6:.0f} MB as float64), read into a float64 matrix; medians of {args.reps} round-robin runs.\n")
    print("| reader | time | new reader is |")
    print("|---|---:|---:|")
    for name, t in times.items():
        ratio = "-" if name == "new reader" else f"{t / times['new reader']:.2f}x faster" if t > times["new reader"] \
            else f"{times['new reader'] / t:.2f}x slower"
        print(f"| {name} | {t:.2f} s | {ratio} |")
    speed = times["old reader"] / times["new reader"]
    floor = times["new reader"] / times["pyarrow alone"]
    print()
    print(f"- {'MET' if speed >= 5 else 'NOT MET'}: {speed:.1f}x faster than the old reader (target >= 5x); "
          f"the same matrix, bit for bit: {same}")
    same_opts = times["new reader"] / times["pyarrow alone, our options"]
    print(f"- {'MET' if floor <= 1.5 else 'NOT MET'}: {floor:.2f}x pyarrow.csv.read_csv alone with its defaults "
          f"(target <= 1.5x); {same_opts:.2f}x pyarrow.csv.read_csv with the options read_table passes "
          "(`newlines_in_values=True` for quoted line breaks, the missing-value spellings)")
    total, extra = rss / data, (rss - base_rss) / data
    print(f"- {'MET' if total <= 3 else 'NOT MET'}: peak memory of `backprop train` (1 epoch, exit {code}) "
          f"{rss / 1e6:.0f} MB = {total:.2f}x the float64 data (target <= 3x); the same command on 1,000 rows "
          f"peaks at {base_rss / 1e6:.0f} MB (interpreter and imports), so the data costs "
          f"{(rss - base_rss) / 1e6:.0f} MB = {extra:.2f}x")
    import pyarrow

    print(f"\nmachine: {machine()}; versions: {versions()}, pyarrow {pyarrow.__version__}")
    text = "\n".join(out)
    builtins.print(text)
    if args.write:
        write_marked_section(ROOT / "docs" / "benchmarks.md", "read-table", text)


if __name__ == "__main__":
    main()
