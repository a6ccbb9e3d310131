#!/usr/bin/env python
"""Speed on a busy machine: two everyday jobs, idle and under load, per thread setting, in one run.

Jobs (each in a fresh subprocess, timed inside it after imports):

- **tour**: the Quick tour's rollout: ``checkpoints/sudoku6_Lx_H`` on 64 test puzzles, 3 rollouts;
- **report**: ``airinterp report --n-puzzles 10`` on the default Sudoku checkpoint (the whole process).

Loads: **idle**; **beside torch**: one other torch process computing on one thread (what a
background ``airinterp train --threads 1`` is); **beside 4 busy**: four pure-Python busy loops.

Settings:

- **torch default**: torch imported before airinterp, OpenMP's own wait policy (its workers spin
  after each parallel region), torch's thread count (the cores);
- **airinterp default**: what airinterp sets when it is imported first or runs as the CLI
  (``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it), torch's thread count;
- **1 thread**: ``OMP_NUM_THREADS=1`` (``airinterp --threads 1``), passive waiting.

Prints one table: seconds per (job, load, setting), and each setting's ratio to the torch default.
Run it on a machine with nothing else running (pause background trainings first).

    python benchmarks/bench_threads.py                # a few minutes on 2 cores
    python benchmarks/bench_threads.py --jobs tour    # quicker
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TOUR = """
import time, sys
if {torch_first}:
    import torch
import airinterp, torch
from airinterp.tasks.dataset import PuzzleDataset
model = airinterp.load("checkpoints/sudoku6_Lx_H")
ds = PuzzleDataset("checkpoints/data/sudoku6", "test")
tokens = torch.as_tensor(ds.data["inputs"][:64].astype("int64"))
with torch.inference_mode():
    model(tokens)
    t = time.perf_counter()
    for _ in range(3):
        model(tokens)
print(f"SECONDS {{time.perf_counter() - t:.3f}} THREADS {{torch.get_num_threads()}}")
"""

REPORT = """
import sys, time
if {torch_first}:
    import torch
from airinterp.cli import app
t = time.perf_counter()
try:
    app(["report", "--n-puzzles", "10", "-o", sys.argv[1]])
except SystemExit as e:
    assert e.code in (0, None), e.code
print(f"SECONDS {{time.perf_counter() - t:.3f}}")
"""

TORCH_LOAD = "import torch; torch.set_num_threads(1); a = torch.randn(256, 256)\nwhile True: a = (a @ a).tanh()"
BUSY_LOAD = "while True: pass"

SETTINGS = {
    "torch default": ({}, True),
    "airinterp default": ({}, False),
    "1 thread": ({"OMP_NUM_THREADS": "1"}, False),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, True),
    "spin 10k": ({"GOMP_SPINCOUNT": "10000"}, True),
    "spin 100k": ({"GOMP_SPINCOUNT": "100000"}, True),
}
LOADS = {"idle": [], "beside torch": [TORCH_LOAD], "beside 4 busy": [BUSY_LOAD] * 4}


def run_job(job: str, setting: str, out: str) -> float:
    extra, torch_first = SETTINGS[setting]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    env.update(extra)
    code = (TOUR if job == "tour" else REPORT).format(torch_first=torch_first)
    res = subprocess.run([sys.executable, "-c", code, out], cwd=ROOT, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{job} / {setting} failed:\n{res.stderr[-2000:]}")
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("SECONDS")][-1]
    return float(line.split()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", default="tour,report", help="comma-separated: tour, report")
    ap.add_argument("--repeats", type=int, default=1, help="runs per cell (the median is shown)")
    ap.add_argument("--loads", default=",".join(LOADS), help=f"comma-separated, of: {', '.join(LOADS)}")
    ap.add_argument("--settings", default="torch default,airinterp default,1 thread",
                    help=f"comma-separated, of: {', '.join(SETTINGS)}")  # fmt: skip
    args = ap.parse_args()
    jobs = [j for j in args.jobs.split(",") if j]
    bad = set(jobs) - {"tour", "report"}
    if bad:
        raise SystemExit(f"--jobs {','.join(sorted(bad))}: expected tour and/or report")
    loads = [x for x in args.loads.split(",") if x]
    if set(loads) - set(LOADS):
        raise SystemExit(f"--loads {args.loads}: expected names among {', '.join(LOADS)}")
    settings = [x for x in args.settings.split(",") if x]
    if set(settings) - set(SETTINGS) or "torch default" not in settings:
        raise SystemExit(f"--settings {args.settings}: expected names among {', '.join(SETTINGS)}, torch default included")
    print(f"cores: {os.cpu_count()}; python {sys.version.split()[0]}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for load in loads:
            programs = LOADS[load]
            procs = [subprocess.Popen([sys.executable, "-c", p], env={**os.environ, "OMP_NUM_THREADS": "1"})
                     for p in programs]  # fmt: skip
            try:
                time.sleep(2 if procs else 0)
                for job in jobs:
                    for setting in settings:
                        times = sorted(run_job(job, setting, f"{tmp}/r.html") for _ in range(args.repeats))
                        rows.append((job, load, setting, times[len(times) // 2]))
                        print(f"  {job:6s} {load:13s} {setting:17s} {rows[-1][3]:8.2f} s", flush=True)
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
    print("\njob     load           setting            seconds  vs torch default")
    base = {(j, ld): s for j, ld, st, s in rows if st == "torch default"}
    for job, load, setting, s in rows:
        print(f"{job:7s} {load:14s} {setting:18s} {s:8.2f}  {s / base[job, load]:6.2f}x")


if __name__ == "__main__":
    main()
