"""SIGKILL stress for checkpoint resume: TRIALS runs of tests/resume_worker.py, each killed with
SIGKILL every 1-3 epochs (plus 0-20 ms) until done; counts kills that left a temporary file
(landed mid-write) and checks every final model bitwise against an uninterrupted run.

    PYTHONPATH=src python bench/sigkill_resume.py 5
"""
import os, signal, subprocess, sys, time, tempfile
from pathlib import Path
import numpy as np
sys.path.insert(0, "tests")
import resume_worker
from backprop import Network
from backprop.checkpoint import list_checkpoints
ref, ref_hist = resume_worker.train()
trials = int(sys.argv[1]); mid_write = kills = 0; cycles=0
for trial in range(trials):
    tmp = Path(tempfile.mkdtemp()); folder, out = tmp/"ck", tmp/"final.safetensors"
    cmd = [sys.executable, "tests/resume_worker.py", str(folder), str(out)]
    rng = np.random.default_rng(trial)
    while True:
        before = list_checkpoints(folder); done = before[-1][0] if before else 0
        if done >= resume_worker.EPOCHS - 1: break
        target = done + int(rng.integers(1, 4))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); cycles+=1
        while proc.poll() is None:
            found = list_checkpoints(folder)
            if found and found[-1][0] >= target:
                time.sleep(float(rng.uniform(0, 0.02))); break
            time.sleep(0.0005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL); kills += 1
        proc.wait()
        if list(folder.glob(".checkpoint-*.tmp")): mid_write += 1
    subprocess.run(cmd, check=True)
    net = Network.load(out)
    ok = all(np.array_equal(a, b) for a, b in zip(net.get_weights(), ref.get_weights())) and net.metadata["loss"] == ref_hist.loss
    print(f"trial {trial}: ok={ok}", flush=True)
    assert ok
print(f"{trials} trials, {cycles} processes, {kills} SIGKILLs during training, {mid_write} left a temp file (killed mid-write); all bitwise identical")
