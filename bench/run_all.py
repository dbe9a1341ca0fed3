"""Run every workload (W1, W2a, W2b, W3) with all peers in one process, print the tables and
write docs/benchmarks.md. `make bench` runs this.

    python bench/run_all.py [--quick] [--install-torch]

--install-torch: pip-install torch==2.13.0 into the running interpreter when it is missing
(off by default; without torch the PyTorch rows are skipped). --quick: fewer samples/epochs.
Timings on shared machines are noisy: compare the ratios of one run, not absolute times.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import ROOT, machine, print_rows, table, threads, versions  # noqa: E402


def ensure_torch(install: bool) -> None:
    if common.torch_or_none() is None and install:
        print("installing torch==2.13.0 (--install-torch) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "torch==2.13.0"], check=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and epochs")
    parser.add_argument("--install-torch", action="store_true", help="pip install torch==2.13.0 if missing")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    ensure_torch(args.install_torch)

    import w1_digits_per_sample as w1
    import w2a_digits_batch32 as w2a
    import w2b_mnist_like as w2b
    import w3_predict as w3

    started = time.time()
    sections = []
    results = {}
    for mod, ours in ((w1, "backprop (compiled epoch kernel)"), (w2a, "backprop (compiled epoch kernel)"),
                      (w2b, "backprop (compiled epoch kernel, BLAS inside)"),
                      (w3, "backprop Network.predict (numpy)")):
        rows = mod.run(quick=args.quick)
        results[mod.__name__] = dict((r[0], r[1]) for r in rows)
        print_rows(mod.TITLE, rows, ours)
        sections.append(f"### {mod.TITLE}\n\n{table(rows, ours)}\n")
    base, peak = w2b.peak_rss(True)
    rss = (f"W2b peak RSS (fresh process, fast path, 2 epochs): {peak:.0f} MiB; resident right after "
           f"making the data (X is {60000 * 784 * 4 / 2**20:.0f} MiB of float32): {base:.0f} MiB.")
    print(rss)

    m, v, th = machine(), versions(), threads()
    text = [
        "# Benchmarks",
        "",
        "Written by `bench/run_all.py` (`make bench`); every peer runs in the same process and the same",
        "run, and each table gives the median time per epoch (W3: per prediction) and its ratio to ours.",
        "The machine is shared: absolute times are noisy (see the load average), ratios less so.",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}; load average at the end: {m['load']}",
        f"- versions: {', '.join(f'{k} {val}' for k, val in v.items())}",
        f"- threads: {', '.join(f'{k}: {val}' for k, val in th.items() if k != 'env')}",
        f"- environment (recorded, never changed): {', '.join(f'{k}={val}' for k, val in th['env'].items())}",
        f"- run: {'--quick' if args.quick else 'full'}, {time.time() - started:.0f} s in all",
        "",
        *sections,
        rss,
        "",
    ]
    from backprop.io import atomic_write_bytes

    atomic_write_bytes(args.out, "\n".join(text).encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
