"""One GPU budget, end to end: data, training for the time left, evaluation, shards back.

    bash scripts/gpu/gpu_job.sh $OUT                         # on the lent H200 (wheels in .whl/)
    python scripts/gpu/gpu_job.py --out out/gpu_dry --dry-run   # the same steps on CPU, tiny, ~1 min

Every phase runs under a wall-clock budget (``--budget-s``, counted from this script's start):
the data is built from the carried pool (``sudoku_pool.txt``, 4,000 puzzles, not the 8 MB
collections), training gets what is left minus a reserve for evaluation and sharding
(``--max-minutes``, checkpoints every ``--checkpoint-every`` steps, so a kill still leaves
weights; its final evaluation covers ``--eval-limit`` test puzzles, by default the whole split),
then the model is written as <= 15 MiB bf16 shards. OUT receives at most 7 files: ``model/``
(index, shards, card.json), ``metrics.jsonl``, ``job.json`` (each phase's seconds and command,
the evaluation) and ``job.log``. Whatever fails, job.json
is written and the script exits within the budget.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POOL = Path(__file__).with_name("sudoku_pool.txt")
T0 = time.monotonic()


def left(budget: float) -> float:
    return budget - (time.monotonic() - T0)


def main() -> int:
    ap = argparse.ArgumentParser(description="one GPU budget: data, training, evaluation, shards")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget-s", type=float, default=540.0, help="wall seconds for everything (default 9 min: one device command may run 10)")
    ap.add_argument("--reserve-s", type=float, default=90.0, help="kept back for the final evaluation, saving and shards")
    ap.add_argument("--startup-s", type=float, default=60.0, help="the training command's start-up, outside its --max-minutes")
    ap.add_argument("--shard-s", type=float, default=30.0, help="kept back for writing the shards")
    ap.add_argument("--variant", default="Lx_H")
    ap.add_argument("--preset", default="gpu-budget")
    ap.add_argument("--init-from", type=Path, default=None, help="warm start from an earlier budget's model/")
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--aug", type=int, default=1000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--eval-limit", type=int, default=1000)
    ap.add_argument("--checkpoint-every", type=int, default=250)
    ap.add_argument("--work", type=Path, default=Path("/tmp/airinterp_job"), help="data and run directory (not brought back)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny preset, small data: the same steps in about a minute")
    ap.add_argument("--measure-parts", action="store_true",
                    help="before training, where a step's time goes (benchmarks/bench_train_parts.py: eager, then "
                         "--compile, then bf16 + compile; ~2 minutes on the H200), printed into job.log")  # fmt: skip
    args = ap.parse_args()
    device = "cuda"
    if args.dry_run:
        device, args.preset = "cpu", "tiny"
        args.train, args.aug, args.test, args.eval_limit, args.checkpoint_every = 24, 4, 12, 12, 5
        args.budget_s, args.reserve_s = min(args.budget_s, 240.0), min(args.reserve_s, 20.0)
        args.startup_s, args.shard_s = min(args.startup_s, 10.0), min(args.shard_s, 10.0)
    out, work = args.out.resolve(), args.work.resolve()  # the phases run from the repository root
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data, run = work / "data", work / "run"
    log = open(out / "job.log", "w")
    job: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "phases": {}, "ok": False}
    cli = [sys.executable, "-m", "airinterp.cli"]

    def phase(name: str, cmd: list, timeout: float) -> bool:
        t = time.monotonic()
        log.write(f"$ {' '.join(map(str, cmd))}\n")
        log.flush()
        try:
            rc = subprocess.run([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, timeout=max(timeout, 1.0),
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=ROOT).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            rc = "timeout"
        job["phases"][name] = {"seconds": round(time.monotonic() - t, 1), "rc": rc, "cmd": [str(c) for c in cmd]}
        _write(out, job)
        return rc == 0

    try:
        ok = phase("data", [*cli, "data", "sudoku", "--source", POOL, "--train", args.train, "--aug", args.aug,
                            "--test", args.test, "--seed", 0, "--out", data], left(args.budget_s) - args.reserve_s)  # fmt: skip
        if ok and args.measure_parts:  # what the H200 should tell us (issue 20): the per-part split, compile and bf16
            bench = [sys.executable, "benchmarks/bench_train_parts.py", "--data", data, "--preset", args.preset, "--device", device,
                     "--steps", 5 if not args.dry_run else 2, "--warmup", 3]  # fmt: skip  (compiled: both graphs built first)
            for name, extra in (("parts_eager", []), ("parts_compile", ["--compile"]), ("parts_bf16_compile", ["--dtype", "bfloat16", "--compile"])):
                phase(name, bench + extra, min(120.0, left(args.budget_s) - args.reserve_s - args.startup_s - 60))
        if ok:
            # --max-minutes counts training only: start-up (imports, data, first compile) comes on top
            minutes = (left(args.budget_s) - args.reserve_s - args.startup_s) / 60
            if minutes <= 0:
                raise RuntimeError("no time left to train after building the data")
            cmd = [*cli, "train", "--data", data, "--out", run, "--preset", args.preset, "--variant", args.variant,
                   "--device", device, "--max-minutes", f"{minutes:.3f}", "--checkpoint-every", args.checkpoint_every,
                   "--eval-limit", args.eval_limit]  # fmt: skip
            if args.init_from is not None:
                cmd += ["--init-from", args.init_from.resolve()]
            # training stops itself at --max-minutes, evaluates the test split (--eval-limit) into its
            # card and saves; the timeout is the backstop
            phase("train", cmd, left(args.budget_s) - args.shard_s)
        model = run / "model.safetensors"
        if not model.is_file():  # killed: the last periodic checkpoint, evaluated here
            latest = (run / "latest").read_text().strip() if (run / "latest").is_file() else None
            model = run / "checkpoints" / latest / "model.safetensors" if latest else model
            if model.is_file():
                phase("eval", [*cli, "eval", model, "--data", data, "--first", args.eval_limit, "--device", device],
                      left(args.budget_s) - args.shard_s)  # fmt: skip
        if model.is_file():
            phase("shard", [*cli, "shard", model, "-o", out / "model", "--max-shard-mb", 15, "--dtype", "bfloat16"], left(args.budget_s) - 2)
            if (run / "card.json").is_file():
                shutil.copyfile(run / "card.json", out / "model" / "card.json")
                job["eval"] = json.loads((run / "card.json").read_text()).get("final_eval")
            if (run / "metrics.jsonl").is_file():
                shutil.copyfile(run / "metrics.jsonl", out / "metrics.jsonl")
            if job.get("eval") is None:
                tail = [line for line in (out / "job.log").read_text().splitlines() if line.startswith("exact_accuracy=")]
                job["eval"] = tail[-1] if tail else None
            job["ok"] = all(p["rc"] == 0 for n, p in job["phases"].items() if not n.startswith("parts_")) and (out / "model").is_dir()
    except Exception as err:  # noqa: BLE001  (the job must end and report, whatever happened)
        job["error"] = f"{type(err).__name__}: {err}"
    job["seconds"] = round(time.monotonic() - T0, 1)
    _write(out, job)
    log.close()
    print(json.dumps({k: job[k] for k in ("ok", "seconds", "phases", "eval") if k in job}, indent=1))
    return 0 if job["ok"] else 1


def _write(out: Path, job: dict) -> None:
    from airinterp.io import atomic_write_text

    atomic_write_text(out / "job.json", json.dumps(job, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
