"""The prepared GPU job (scripts/gpu/), dry-run on CPU: the same phases, the tiny preset."""

import json
import subprocess
import sys
from pathlib import Path

import airinterp

ROOT = Path(__file__).parents[1]


def test_gpu_job_dry_run_brings_back_a_loadable_sharded_model(tmp_path):
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "scripts/gpu/gpu_job.py", "--out", str(out), "--work", str(tmp_path / "work"),
                          "--dry-run", "--budget-s", "40"], cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    job = json.loads((out / "job.json").read_text())
    assert res.returncode == 0 and job["ok"], (res.stdout[-2000:], (out / "job.log").read_text()[-3000:])
    assert list(job["phases"]) == ["data", "train", "shard"] and job["seconds"] < 40
    assert job["eval"]["n"] == 12 and 0 <= job["eval"]["exact_accuracy"] <= 1
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in files)  # what a GPU run may bring back
    model = airinterp.load(out / "model")
    assert model.config.seq_len == 81 and model.config.hidden_size == 32
    card = json.loads((out / "model" / "card.json").read_text())
    assert card["preset"] == "tiny" and card["steps"] >= 1


def test_the_carried_pool_is_small_and_well_formed():
    pool = (ROOT / "scripts/gpu/sudoku_pool.txt").read_text().splitlines()
    assert len(pool) == 4000 and all(len(p) == 81 and set(p) <= set(".123456789") for p in pool)
    assert (ROOT / "scripts/gpu/sudoku_pool.txt").stat().st_size < 400_000
