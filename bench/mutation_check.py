"""Mutation check of the core maths (issue 27): does the test suite notice a small bug?

Each mutant below is one small edit of the source text (a sign, a dropped factor, the wrong
variable) in an activation derivative, a loss gradient, an optimizer rule, a layer's backward
pass or an update in the compiled kernels of ``backprop.fast``. For each one the script writes the
edit into a temporary copy of ``src/backprop`` and ``tests/`` (the real tree is never touched),
runs the tests that should catch it (``pytest -x``: the first failure kills the mutant) and
reports which mutants survive. A surviving mutant is a hole in the tests: add a test that fails
on it. Exit status 0 when every mutant is killed, 1 otherwise.

    .venv/bin/python bench/mutation_check.py              # every mutant (about 15-25 min on 1 core)
    .venv/bin/python bench/mutation_check.py --list       # the mutants and the tests each runs
    .venv/bin/python bench/mutation_check.py --only kernel-softmax-ce-sum-t loss-mse-k

Compiled kernels are recompiled for every mutant of ``fast/`` (a fresh NUMBA_CACHE_DIR each: a
mutant never loads machine code built from other source); mutants elsewhere share one cache of
the unchanged kernels. The unmutated copy is run first on every test file used (``--no-baseline``
skips it): a mutant only counts as killed when that baseline passes.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str  # inside src/backprop
    old: str  # must occur exactly once in the file (or ``occurrence`` times, the n-th replaced)
    new: str
    tests: tuple[str, ...] = ()  # default: the tests of the file's group (TESTS)
    occurrence: int = 0  # 0: ``old`` is unique; n >= 1: replace its n-th occurrence


LOSS_TARGETS = "tests/test_loss_targets.py"
TESTS = {  # the tests that should catch a mutant of each file, most direct oracle first
    "activations.py": ("tests/test_activations.py", LOSS_TARGETS),
    "losses.py": ("tests/test_losses.py", LOSS_TARGETS),
    "optimizers.py": ("tests/test_optimizers.py",),
    "layers/": ("tests/test_layers.py", "tests/test_layers_conv.py", LOSS_TARGETS),
    "fast/": (LOSS_TARGETS, "tests/test_fast.py", "tests/test_fast_batched.py", "tests/test_fast_blas.py",
              "tests/test_l2.py"),
}
FAST_OPTIMIZER_TESTS = ("tests/test_fast.py", "tests/test_fast_batched.py", "tests/test_fast_blas.py",
                        "tests/test_l2.py")
K = "fast/kernels.py"

MUTANTS = [
    # -- activation derivatives (reference path) ---------------------------------------------------
    Mutant("act-sigmoid", "activations.py", "        return A * (1.0 - A)\n", "        return 1.0 - A\n",
           occurrence=1),
    Mutant("act-tanh", "activations.py", "return 1.0 - A * A", "return 1.0 - A"),
    Mutant("act-relu", "activations.py", "return (Z > 0).astype(Z.dtype)", "return (Z > -0.5).astype(Z.dtype)"),
    Mutant("act-leaky-relu", "activations.py", "np.where(Z > 0, 1.0, self.negative_slope)", "np.where(Z > 0, 1.0, 0.0)"),
    Mutant("act-softmax-jvp", "activations.py", "return A * (dA - np.sum(dA * A, axis=-1, keepdims=True))",
           "return A * dA"),
    Mutant("act-exp", "activations.py", "    def derivative(self, Z, A):\n        return A\n",
           "    def derivative(self, Z, A):\n        return A * A\n"),
    # -- loss gradients (reference path) -----------------------------------------------------------
    Mutant("loss-half-sse", "losses.py", "return out - Y\n", "return 0.5 * (out - Y)\n"),
    Mutant("loss-sse", "losses.py", "return 2.0 * (out - Y)", "return out - Y"),
    Mutant("loss-mse-k", "losses.py", "(2.0 / out.shape[1]) * (out - Y)", "(2.0 / out.shape[0]) * (out - Y)"),
    Mutant("loss-bce-soft", "losses.py", "return sigmoid(out) - Y", "return sigmoid(out) - Y * Y"),
    Mutant("loss-softmax-ce-sum-t", "losses.py", "return softmax(out) * np.sum(Y, axis=1, keepdims=True) - Y",
           "return softmax(out) - Y"),
    Mutant("loss-poisson-soft", "losses.py", "return np.exp(np.minimum(out, EXP_CAP)) - Y",
           "return np.exp(np.minimum(out, EXP_CAP)) - Y * Y"),
    Mutant("loss-weights", "losses.py", "grad = grad * w[:, None].astype(grad.dtype)", "grad = grad"),
    Mutant("loss-weighted-mean", "losses.py", "grad = grad / grad.dtype.type(np.sum(w))",
           "grad = grad / grad.dtype.type(n)"),
    Mutant("loss-mean", "losses.py", "grad = grad / grad.dtype.type(n)\n", "grad = grad / grad.dtype.type(n + 1)\n"),
    # -- optimizer rules (reference path) ----------------------------------------------------------
    Mutant("opt-sgd", "optimizers.py", "                p -= lr * g\n", "                p -= 0.5 * lr * g\n"),
    Mutant("opt-sgd-decay", "optimizers.py", "g = g + self.weight_decay * p", "g = g - self.weight_decay * p",
           occurrence=1),
    Mutant("opt-momentum", "optimizers.py", "v *= self.momentum", "v *= 1.0"),
    Mutant("opt-nesterov", "optimizers.py", "p += self.momentum * v - lr * g", "p += v"),
    Mutant("opt-adam-m", "optimizers.py", "m += (1.0 - self.beta_1) * g", "m += g"),
    Mutant("opt-adam-v", "optimizers.py", "v += (1.0 - self.beta_2) * (g * g)", "v += (1.0 - self.beta_1) * (g * g)"),
    Mutant("opt-adam-bias-correction", "optimizers.py", "c2 = 1.0 - self.beta_2**t", "c2 = 1.0"),
    Mutant("opt-adam-decay", "optimizers.py", "g = g + self.weight_decay * p", "g = g", occurrence=2),
    # -- layers' backward passes (reference path) --------------------------------------------------
    Mutant("dense-bias-grad", "layers/dense.py", "np.sum(dZ, axis=0, out=self.grads[\"b\"])",
           "np.sum(dZ[:1], axis=0, out=self.grads[\"b\"])"),
    Mutant("dense-dx", "layers/dense.py", "return dZ @ self.params[\"W\"].T", "return dZ @ self.params[\"W\"].T * 0.5"),
    Mutant("conv-bias-grad", "layers/conv.py", "np.sum(G, axis=0, out=self.grads[\"b\"])",
           "np.sum(G[1:], axis=0, out=self.grads[\"b\"])"),
    Mutant("avgpool-share", "layers/pool.py", "share = dY / (self.pool_size[0] * self.pool_size[1])", "share = dY"),
    # -- compiled kernels: activation derivatives ----------------------------------------------------
    Mutant("kernel-sigmoid", K, "D[i] = D[i] * (A[i] * (1.0 - A[i]))", "D[i] = D[i] * A[i]"),
    Mutant("kernel-tanh", K, "D[i] = D[i] * (1.0 - A[i] * A[i])", "D[i] = D[i] * (1.0 - A[i])"),
    Mutant("kernel-relu", K, "D[i] = D[i] * (1.0 if Z[i] > 0 else 0.0)", "D[i] = D[i] * (1.0 if Z[i] > 0 else 0.01)"),
    Mutant("kernel-leaky-relu", K, "D[i] = D[i] * (1.0 if Z[i] > 0 else slope)", "D[i] = D[i] * (1.0 if Z[i] > 0 else 0.0)"),
    Mutant("kernel-softmax-jvp", K, "d[c] = a[c] * (d[c] - s)", "d[c] = a[c] * d[c]"),
    # -- compiled kernels: loss gradients and their reduction ---------------------------------------
    Mutant("kernel-half-sse", K, "g[c] = o[c] - y[c]", "g[c] = 0.5 * (o[c] - y[c])"),
    Mutant("kernel-sse", K, "g[c] = 2.0 * (o[c] - y[c])", "g[c] = o[c] - y[c]"),
    Mutant("kernel-mse", K, "g[c] = (2.0 / n) * (o[c] - y[c])", "g[c] = 2.0 * (o[c] - y[c])"),
    Mutant("kernel-bce-soft", K, "g[c] = _sigmoid_from_exp(o[c], e) - y[c]", "g[c] = _sigmoid_from_exp(o[c], e) - y[c] * y[c]"),
    Mutant("kernel-softmax-ce-sum-t", K, "g[c] = g[c] * sy - y[c]", "g[c] = g[c] - y[c]"),
    Mutant("kernel-weights", K, "g[c] = g[c] * coef[C_TMP]", "g[c] = g[c]"),
    Mutant("kernel-weighted-mean", K, "coef[C_TMP] = wsum", "coef[C_TMP] = m"),
    Mutant("kernel-mean", K, "coef[C_TMP] = m\n", "coef[C_TMP] = m + 1\n"),
    Mutant("kernel-weighted-loss", K, "return total / wsum", "return total / m"),
    # -- compiled kernels: optimizer updates ---------------------------------------------------------
    Mutant("kernel-sgd", K, "P[i] -= lr * G[i]\n", "P[i] -= 0.5 * lr * G[i]\n", FAST_OPTIMIZER_TESTS),
    Mutant("kernel-sgd-decay", K, "P[i] -= lr * (G[i] + wd * P[i])", "P[i] -= lr * (G[i] - wd * P[i])",
           FAST_OPTIMIZER_TESTS),
    Mutant("kernel-momentum", K, "v = S1[i] * momentum", "v = S1[i]", FAST_OPTIMIZER_TESTS),
    Mutant("kernel-nesterov", K, "P[i] += momentum * v - lr * g", "P[i] += v", FAST_OPTIMIZER_TESTS),
    Mutant("kernel-momentum-decay", K, "g = G[i] + wd * P[i] if decay else G[i]", "g = G[i]",
           FAST_OPTIMIZER_TESTS, occurrence=1),
    Mutant("kernel-adam-m", K, "mi = mi + one_b1 * g", "mi = mi + g", FAST_OPTIMIZER_TESTS),
    Mutant("kernel-adam-v", K, "vi = vi + one_b2 * (g * g)", "vi = vi + one_b1 * (g * g)", FAST_OPTIMIZER_TESTS),
    Mutant("kernel-adam-step", K, "(np.sqrt(vi / c2) + eps)", "(np.sqrt(vi) + eps)", FAST_OPTIMIZER_TESTS),
    Mutant("kernel-adam-bias-correction", K, "coef[C_C1] = 1.0 - hyper[H_BETA1] ** float(t)",
           "coef[C_C1] = 1.0 - hyper[H_BETA1] ** float(t + 1)", FAST_OPTIMIZER_TESTS),
    Mutant("kernel-adam-decay", K, "g = G[i] + wd * P[i] if decay else G[i]", "g = G[i]",
           FAST_OPTIMIZER_TESTS, occurrence=2),
    Mutant("kernel-l2-per-batch", K, "coef[C_DECAY] = hyper[H_DECAY] + l2 / m", "coef[C_DECAY] = hyper[H_DECAY] + l2",
           ("tests/test_l2.py",)),
    Mutant("kernel-l2-numpy-runner", K, "coef[C_DECAY] = hyper[H_DECAY] + hyper[H_L2] / rows",
           "coef[C_DECAY] = hyper[H_DECAY] + hyper[H_L2]", ("tests/test_l2.py",)),
    # -- compiled kernels: the per-sample and BLAS-sized weight updates ----------------------------
    Mutant("kernel-outer-step", K, "w[c] -= lr * (a * d[c])", "w[c] -= lr * (a * abs(d[c]))"),
    Mutant("kernel-gemm-sgd", K, "k, n, m, -lr, A, a0, k, D, d0, n, 1.0, P, w0, n)",
           "k, n, m, -0.5 * lr, A, a0, k, D, d0, n, 1.0, P, w0, n)"),
    Mutant("kernel-gemm-momentum-scaled", K, "(1.0 + momentum) * scale if nesterov else scale, S1",
           "(1.0 + momentum) * scale if nesterov else 1.0, S1", FAST_OPTIMIZER_TESTS),
    Mutant("kernel-gemm-nesterov-scaled", K, "(1.0 + momentum) * scale if nesterov else scale, S1",
           "momentum * scale if nesterov else scale, S1", FAST_OPTIMIZER_TESTS),
    Mutant("kernel-gemm-momentum-plain", K, "k, n, m, -lr, A, a0, k, D, d0, n, momentum, S1, w0, n)",
           "k, n, m, -lr, A, a0, k, D, d0, n, 1.0, S1, w0, n)", FAST_OPTIMIZER_TESTS),
    Mutant("kernel-unscale", K, "                v[i] *= scale\n", "                v[i] *= 1.0\n",
           FAST_OPTIMIZER_TESTS),
    Mutant("kernel-online-update", K, "r0[i] = w0 - l0 * xi", "r0[i] = w0 + l0 * xi"),
    Mutant("kernel-online-delta", K, "p[i] += e0 * w0 + e1 * w1 + e2 * w2 + e3 * w3",
           "p[i] += e0 * w0 + e1 * w1 + e2 * w2"),
    Mutant("kernel-online-remainder", K, "r0[i] -= l0 * x[i]", "r0[i] -= 0.5 * l0 * x[i]"),
    Mutant("kernel-online-fused-first-layer", K, "w1 = r1[i] - l1 * xi", "w1 = r1[i]"),
    Mutant("kernel-online-bias", K, "range(b.shape[0]):\n        b[c] -= lr * d[c]",
           "range(b.shape[0]):\n        b[c] -= 0.5 * lr * d[c]"),
    Mutant("kernel-bias-grad", K, "            g[c] += d[c]\n", "            g[c] += 0.5 * d[c]\n"),
    Mutant("kernel-weight-grad", K, "            g[c] = a * d[c]\n", "            g[c] = 0.0 * d[c]\n"),
    Mutant("kernel-online-epoch-loss", K, "value *= 1.0 / w_total", "value *= 1.0"),
    Mutant("kernel-epoch-loss-share", K, "value *= (share if weighted else m) / w_total", "value *= m / w_total"),
    # -- the numpy batch runner and the runner's set-up --------------------------------------------
    Mutant("batched-weight-grad-input", "fast/batched.py", "A_in = layer_views[i - 1][1] if i else Xb",
           "A_in = layer_views[i - 1][0] if i else Xb"),
    Mutant("batched-epoch-loss-share", "fast/batched.py",
           "value *= (float(np.sum(wb)) if w is not None else m) / self.w_total", "value *= m / self.w_total"),
    Mutant("runner-weight-total", "fast/runner.py",
           "self.w_total = float(np.sum(self.weights)) if weights is not None else float(self.n)",
           "self.w_total = float(self.n)"),
]


def tests_for(m: Mutant) -> tuple[str, ...]:
    if m.tests:
        return m.tests
    for prefix, tests in TESTS.items():
        if m.path == prefix or m.path.startswith(prefix):
            return tests
    raise KeyError(f"no tests for {m.path}")


def mutate(text: str, m: Mutant) -> str:
    """The source with the mutant's edit; refuses an edit whose text is missing or ambiguous (the
    source changed: update the mutant)."""
    count = text.count(m.old)
    if m.occurrence == 0 and count != 1:
        raise SystemExit(f"mutant {m.id}: {m.old!r} occurs {count} times in {m.path}; expected once")
    if m.occurrence > count:
        raise SystemExit(f"mutant {m.id}: {m.old!r} occurs {count} times in {m.path}; expected at least {m.occurrence}")
    at = -1
    for _ in range(max(m.occurrence, 1)):
        at = text.index(m.old, at + 1)
    return text[:at] + m.new + text[at + len(m.old):]


def make_copy(base: str) -> str:
    """src/backprop, tests/, docs/ (pages some tests run) and pyproject.toml copied under base (no
    caches); returns it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", "*.nbx", ".pytest_cache")
    shutil.copytree(os.path.join(ROOT, "src", "backprop"), os.path.join(base, "src", "backprop"), ignore=ignore)
    shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(base, "tests"), ignore=ignore)
    shutil.copytree(os.path.join(ROOT, "docs"), os.path.join(base, "docs"), ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(ROOT, name), base)
    return base


def environment(base: str, numba_cache: str) -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=os.path.join(base, "src"), PYTHONDONTWRITEBYTECODE="1", NUMBA_CACHE_DIR=numba_cache)
    env.pop("BACKPROP_FAST", None)
    return env


def run_tests(base: str, tests, env, timeout: float) -> tuple[str, str]:
    """('passed', '') or ('failed', first failing test) or ('timeout', '')."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-n", "0",
           *tests]
    try:
        proc = subprocess.run(cmd, cwd=base, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    if proc.returncode == 0:
        return "passed", ""
    lines = proc.stdout.splitlines()
    for line in lines:
        if line.startswith(("FAILED ", "ERROR ")):
            return "failed", line.split(" - ")[0].split(" ", 1)[1]
    return "failed", (lines[-1] if lines else proc.stderr.strip().splitlines()[-1:] or ["?"])[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated copy")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant (default 900)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once, one core each (default 1)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be a positive integer; got {args.jobs}")

    mutants = MUTANTS
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in MUTANTS})
        if unknown:
            parser.error(f"unknown mutant ids: {', '.join(unknown)}")
        mutants = [m for m in MUTANTS if m.id in args.only]
    sources = {}
    for m in mutants:  # every edit applies to the current source before anything runs
        path = os.path.join(ROOT, "src", "backprop", m.path)
        sources.setdefault(m.path, open(path, encoding="utf-8").read())
        mutate(sources[m.path], m)
    if args.list:
        for m in mutants:
            print(f"{m.id:34s} {m.path:18s} {m.old.strip()!r} -> {m.new.strip()!r}  [{' '.join(tests_for(m))}]")
        return 0

    with tempfile.TemporaryDirectory(prefix="backprop-mutants-") as tmp:
        # one working copy (and one cache of the unchanged kernels) per job
        copies = [(make_copy(os.path.join(tmp, f"tree{j}")), os.path.join(tmp, f"numba-clean{j}"))
                  for j in range(args.jobs)]
        for base, clean_cache in copies:
            where = subprocess.run([sys.executable, "-c", "import backprop; print(backprop.__file__)"], cwd=base,
                                   env=environment(base, clean_cache), capture_output=True, text=True).stdout.strip()
            if not where.startswith(base):
                print(f"mutation check: the copy does not import its own backprop (got {where!r})", file=sys.stderr)
                return 1
        if not args.no_baseline:
            union = list(dict.fromkeys(t for m in mutants for t in tests_for(m)))
            start = time.perf_counter()
            base, clean_cache = copies[0]
            status, first = run_tests(base, union, environment(base, clean_cache), args.timeout * 2)
            print(f"baseline (unmutated copy, {len(union)} test files): {status} in "
                  f"{time.perf_counter() - start:.0f} s {first}", flush=True)
            if status != "passed":
                print("mutation check: the unmutated copy fails its tests; fix that first", file=sys.stderr)
                return 1
        todo = queue.Queue()
        for i, m in enumerate(mutants, start=1):
            todo.put((i, m))
        survivors, lock = [], threading.Lock()

        def work(base, clean_cache):
            while True:
                try:
                    i, m = todo.get_nowait()
                except queue.Empty:
                    return
                start = time.perf_counter()
                status, first = run_mutant(m, base, clean_cache, tmp, args.timeout)
                verdict = {"passed": "SURVIVED", "failed": "killed", "timeout": "killed (timeout)"}[status]
                with lock:
                    if status == "passed":
                        survivors.append(m.id)
                    print(f"[{i:2d}/{len(mutants)}] {m.id:34s} {verdict:16s} "
                          f"{time.perf_counter() - start:5.0f} s  {first}", flush=True)

        threads = [threading.Thread(target=work, args=copy) for copy in copies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print(f"{len(mutants) - len(survivors)} of {len(mutants)} mutants killed"
          + (f"; surviving: {', '.join(sorted(survivors))}" if survivors else ""))
    return 1 if survivors else 0


def run_mutant(m: Mutant, base: str, clean_cache: str, tmp: str, timeout: float) -> tuple[str, str]:
    """Write the mutant into the copy at base, run its tests, put the original back (same
    contents and modification time, so the unchanged kernels' cache stays valid)."""
    path = os.path.join(base, "src", "backprop", m.path)
    original = open(path, encoding="utf-8").read()
    stat = os.stat(path)
    cache = clean_cache
    if m.path.startswith("fast/"):  # compiled from the mutated source, never from a cache
        cache = os.path.join(tmp, f"numba-{m.id}")
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(mutate(original, m))
        return run_tests(base, tests_for(m), environment(base, cache), timeout)
    finally:
        with open(path, "w", encoding="utf-8") as f:
            f.write(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        if cache != clean_cache:
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
