"""Run every workload (W1, W2a, W2b, W3) with all peers in one process, print the tables and
write docs/benchmarks.md. `make bench` runs this.

    python bench/run_all.py [--quick] [--install-torch]

--install-torch: pip-install torch==2.13.0 into the running interpreter when it is missing
(off by default; without torch the PyTorch rows are skipped and the page says so). --quick:
fewer samples/epochs. The page lists each target of issue 6 as MET or NOT MET from this run.
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


# (workload module, peer row prefix, kind, threshold): "faster" = the peer's time / ours must be
# at least the threshold; "floor" = ours / the floor's time must be at most the threshold.
TARGETS = {
    "w1_digits_per_sample": [("seed-style", "faster", 30), ("scikit-learn", "faster", 50)],
    "w2a_digits_batch32": [("scikit-learn", "faster", 4), ("PyTorch", "faster", 4), ("floor", "floor", 2)],
    "w2b_mnist_like": [("scikit-learn", "faster", 1.4), ("PyTorch", "faster", 1.4), ("floor", "floor", 1.3)],
    "w3_predict": [("scikit-learn", "faster", 1.0), ("floor", "floor", 1.2)],
}


def check_targets(name: str, rows, ours: str) -> list[str]:
    """One markdown bullet per target of workload ``name``: measured ratio, target, met or not."""
    times = dict((r[0], r[1]) for r in rows)
    lines = []
    for prefix, kind, threshold in TARGETS[name]:
        peer = next((k for k in times if k.startswith(prefix)), None)
        if peer is None:
            lines.append(f"- {prefix}: not measured (not installed)")
            continue
        if kind == "faster":
            ratio = times[peer] / times[ours]
            met = ratio >= threshold
            line = f"- {'MET' if met else 'NOT MET'}: {ratio:.2f}x faster than {peer} (target >= {threshold}x)"
            per_round = common.round_ratios(rows, peer, ours)
        else:
            ratio = times[ours] / times[peer]
            met = ratio <= threshold
            line = f"- {'MET' if met else 'NOT MET'}: {ratio:.2f}x the floor ({peer}; target <= {threshold}x)"
            per_round = common.round_ratios(rows, ours, peer)
        if per_round:
            line += f"; round by round {min(per_round):.2f}-{max(per_round):.2f}x"
        lines.append(line)
    return lines


CNN_SECTION = "## Conv networks (issue 21)"


def _ratio_line(ok: bool, text: str, per_round) -> str:
    line = f"- {'MET' if ok else 'NOT MET'}: {text}"
    if per_round:
        line += f"; round by round {min(per_round):.2f}-{max(per_round):.2f}x"
    return line


def cnn_section(quick: bool = False) -> str:
    """W4 and W5 (issue 21): the tables and each target met or not, as one markdown section."""
    import startup
    import w4_digits_cnn as w4
    import w5_mnist_cnn as w5

    lines = [CNN_SECTION, "",
             "W4 and W5 run PyTorch in this process, round-robin with ours at 1 and 2 threads; each target is",
             "against PyTorch's faster setting in that run. `.venv/bin/python bench/run_all.py --cnn-only`",
             "reruns this section alone.", ""]
    common.ROUNDS.clear()
    load_before = machine()["load"]
    rows = w4.run(quick=quick)
    print_rows(w4.TITLE, rows, w4.OURS)
    times = dict((r[0], r[1]) for r in rows)
    targets = []
    for name, limit in (("float32", 0.4), ("float64", 0.5)):
        ours = f"backprop fit() {name} (compiled conv epoch)"
        peer = w4.faster_torch(rows, name)
        floor = next(k for k in times if k.startswith(f"floor {name}"))
        if peer:
            r = times[ours] / times[peer]
            targets.append(_ratio_line(r <= limit, f"W4 {name} epoch {r:.2f}x {peer}'s (target <= {limit}x)",
                                       common.round_ratios(rows, ours, peer)))
        r = times[ours] / times[floor]
        targets.append(_ratio_line(r <= 3, f"W4 {name} {r:.2f}x the GEMM-only floor (target <= 3x)",
                                   common.round_ratios(rows, ours, floor)))
    lines += [f"### {w4.TITLE}", "", table(rows, w4.OURS), ""]
    common.ROUNDS.clear()
    rows5, prows = w5.run(quick=quick)
    print_rows(w5.TITLE, rows5, w5.OURS)
    print_rows("W5 predict", prows, w5.PREDICT_OURS)
    t5, p5 = dict((r[0], r[1]) for r in rows5), dict((r[0], r[1]) for r in prows)
    peers = [k for k in t5 if k.startswith("PyTorch")]
    if peers:
        peer = min(peers, key=t5.get)
        r = t5[peer] / t5[w5.OURS]
        targets.append(_ratio_line(r >= 1.5, f"W5 training {r:.2f}x faster than {peer} (target >= 1.5x)",
                                   common.round_ratios(rows5, peer, w5.OURS)))
        ppeer = min((k for k in p5 if k.startswith("PyTorch")), key=p5.get)
        r = p5[ppeer] / p5[w5.PREDICT_OURS]
        targets.append(_ratio_line(r >= 1.0, f"W5 predict {r:.2f}x faster than {ppeer} (target >= 1x)", None))
    rss = w5.peak_rss()
    steps_a, count_a, steps_b, count_b = w5.allocations()
    targets.append(_ratio_line(count_a == count_b, (
        f"W5 allocations: numba's count (NRT statistics) is {count_a} over a fit of {steps_a} steps and "
        f"{count_b} over one of {steps_b} steps, so none is per step (target: no per-step allocation); "
        f"peak RSS {rss:.0f} MiB"), None))
    start = startup.measure(runs=1 if quick else 3, demo="cnn")
    targets.append(_ratio_line(start["warm"] <= startup.TARGETS["cnn"], (
        f"start-up of `backprop demo cnn --no-dense` (`bench/startup.py --cnn`): "
        f"{startup.summary(start, 'cnn')}"), None))
    lines += [f"### {w5.TITLE}", "", f"Training: {w5.TRAIN_ROWS} of the 60,000 samples per timed call (a full "
              "epoch is too slow to repeat on 2 shared cores), times scaled to 60,000.", "",
              table(rows5, w5.OURS), "", "Predict, all 60,000 images:", "", table(prows, w5.PREDICT_OURS), "",
              f"- W5 peak RSS (VmHWM of a fresh process making the data, X {60000 * 784 * 4 / 2**20:.0f} MiB "
              f"float32, and training {w5.TRAIN_ROWS} samples): {rss:.0f} MiB", ""]
    print("\n".join(targets))
    load = f"Load average (1, 5, 15 min) at the start: {load_before}; at the end: {machine()['load']}."
    return "\n".join(lines[:5] + [load, "", "Targets:", "", *targets, ""] + lines[5:])


def write_cnn_section(path, section: str) -> None:
    """Replace (or append) the conv section of the benchmarks page, atomically."""
    from backprop.io import atomic_write_bytes

    text = Path(path).read_text() if Path(path).exists() else "# Benchmarks\n"
    if CNN_SECTION in text:
        head, rest = text.split(CNN_SECTION, 1)
        # the section ends at the next heading or at another script's marked section, whichever comes first
        ends = [i for i in (rest.find("\n## "), rest.find("\n<!-- ")) if i >= 0]
        tail = rest[min(ends) + 1:] if ends else ""
        text = head + section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    atomic_write_bytes(path, text.encode())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and epochs")
    parser.add_argument("--install-torch", action="store_true", help="pip install torch==2.13.0 if missing")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--cnn-only", action="store_true",
                        help="run W4 and W5 only and rewrite their section of the page")
    args = parser.parse_args(argv)
    ensure_torch(args.install_torch)
    if args.cnn_only:
        write_cnn_section(args.out, cnn_section(args.quick))
        print(f"wrote {args.out}")
        return 0

    import startup
    import w1_digits_per_sample as w1
    import w2a_digits_batch32 as w2a
    import w2b_mnist_like as w2b
    import w3_predict as w3

    started = time.time()
    load_before = machine()["load"]
    sections, all_targets = [], []
    for mod in (w1, w2a, w2b, w3):
        common.ROUNDS.clear()  # each workload's rounds only: names never match across workloads
        common.ALIASES.clear()
        rows = mod.run(quick=args.quick)
        print_rows(mod.TITLE, rows, mod.OURS)
        targets = check_targets(mod.__name__, rows, mod.OURS)
        print("\n".join(targets))
        all_targets += [f"{line} ({mod.TITLE.split(':')[0]})" for line in targets]
        sections.append(f"### {mod.TITLE}\n\n{table(rows, mod.OURS)}\n\nTargets:\n" + "\n".join(targets) + "\n")
    base, peak = w2b.peak_rss(True)
    _, peak_ref = w2b.peak_rss(False, runs=1)
    rss = (f"W2b peak RSS (VmHWM of a fresh process, 2 epochs of fit, kernels cached): {peak:.0f} MiB; "
           f"numpy reference path (fast=False): {peak_ref:.0f} MiB; resident right after making the data "
           f"(X is {60000 * 784 * 4 / 2**20:.0f} MiB of float32): {base:.0f} MiB. The fast path's extra is "
           "numba and its loaded kernels (~55 MiB to import), BLAS buffers and one batch's work arrays; "
           "X is never copied.")
    print(rss)
    start = startup.measure()
    start_line = startup.summary(start)
    print(start_line)
    all_targets.append(f"- {'MET' if start['warm'] <= 0.5 else 'NOT MET'}: start-up {start_line}")

    m, v, th = machine(), versions(), threads()
    text = [
        "# Benchmarks",
        "",
        "Written by `bench/run_all.py` (`make bench`); every peer runs in the same process and the same",
        "run, and each table gives the median time per epoch (W3: per prediction) and its ratio to ours.",
        "Where a target's margin is narrow, ours and its peers are timed round-robin, 0.2 s apart (one run",
        "of each per round), so that a machine whose speed drifts during the run slows them alike: W1 with",
        "the seed-style loop, W2a with its floor, W2b and W3 with scikit-learn, PyTorch and the floor;",
        f"rounds: W1 {w1.REPS}, W2a {w2a.REPS}, W2b {w2b.REPS}, W3 {w3.REPS} (more where a round is short).",
        "A target's ratio is the ratio of the two medians; where the pair ran round-robin, its line also",
        "gives the lowest and highest ratio of one round's two times, to show how far a single",
        "comparison moves on this machine.",
        "Compare the ratios of one run, not absolute times: other processes on the machine change both",
        "(see the load averages; on 2 cores, a busy neighbour makes 2-thread BLAS several times slower).",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}",
        f"- load average (1, 5, 15 min) before: {tuple(round(x, 2) for x in load_before)}, after: "
        f"{tuple(round(x, 2) for x in m['load'])}",
        f"- versions: {', '.join(f'{k} {val}' for k, val in v.items())}",
        f"- threads: {', '.join(f'{k}: {val}' for k, val in th.items() if k != 'env')}; backprop pins BLAS "
        "to 1 thread for batches whose largest product is under 2^24 multiply-adds (W2a) and leaves it "
        "alone above (W2b: 2 threads measured faster here); W3's predict runs its chunks in as many "
        "threads as BLAS may use, each product on one BLAS thread",
        f"- environment (recorded, never changed): {', '.join(f'{k}={val}' for k, val in th['env'].items())}",
        f"- run: {'--quick' if args.quick else 'full'}, {time.time() - started:.0f} s in all",
        "",
        "## Targets (issue 6)",
        "",
        *all_targets,
        "",
        "## Workloads",
        "",
        *sections,
        "## Memory and start-up",
        "",
        f"- {rss}",
        f"- Start-up: {start_line}",
        "",
    ]
    from backprop.io import atomic_write_bytes

    atomic_write_bytes(args.out, "\n".join(text).encode())
    write_cnn_section(args.out, cnn_section(args.quick))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
