#!/usr/bin/env python
"""Where a training step's time goes: the trainer's own labelled parts, under torch.profiler.

``Trainer.train_step`` marks its parts with ``record_function``: ``train.forward`` (encode and the
ACT step: the no-gradient updates and the 1-step-gradient segment), ``train.q_target`` (the
reference's extra ACT step for the Q target), ``train.loss``, ``train.backward``,
``train.optimizer`` (AdamATan2 and zero_grad) and ``train.metrics`` (the host reads). This runs a
few warm-up steps, then profiles ``--steps`` steps and prints each part's share of the step::

    OMP_NUM_THREADS=1 python benchmarks/bench_train_parts.py --data DIR --preset cpu-small --act-steps 16
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from airinterp.train.config import TrainRun
from airinterp.train.loop import Trainer

PARTS = ("train.forward", "train.q_target", "train.loss", "train.backward", "train.optimizer", "train.metrics")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--preset", default="cpu-small")
    p.add_argument("--act-steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--dtype", default=None, help="forward dtype: float32 or bfloat16 [default: the preset's]")
    p.add_argument("--compile", action="store_true", help="torch.compile the ACT step (compiled during the warm-up)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = TrainRun.from_preset(args.preset, data=Path(args.data), out=Path(tmp), device=args.device, epochs=100000,
                                   global_batch_size=args.batch, halt_max_steps=args.act_steps, forward_dtype=args.dtype,
                                   compile=args.compile or None)  # fmt: skip
        trainer = Trainer(run, log=lambda s: None)
        stream = trainer.train_set.train_batches(run.global_batch_size, 0, 1, 100)
        batches = [b for _, b in zip(range(args.warmup + args.steps), stream, strict=False)]
        for b in batches[: args.warmup]:
            trainer.train_step(b)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
        t0 = time.perf_counter()
        with profile(activities=activities) as prof:
            for b in batches[args.warmup :]:
                trainer.train_step(b)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) / args.steps
    totals = {e.key: e.cpu_time_total / 1e6 / args.steps for e in prof.key_averages() if e.key in PARTS}
    c = trainer.config
    print(f"torch {torch.__version__}, {args.device} ({torch.get_num_threads()} threads), preset {args.preset}, "
          f"batch {run.global_batch_size}, d={c.hidden_size}, {c.L_layers} layers, {c.n_updates} updates per ACT step, "
          f"{c.halt_max_steps} ACT steps, {c.n_stack_pos} positions, {c.forward_dtype}{', compiled' if run.compile else ''}")  # fmt: skip
    print(f"  step (profiled wall)  {wall * 1e3:8.1f} ms  = {1 / wall:.2f} steps/s")
    for k in PARTS:
        v = totals.get(k, 0.0)
        print(f"  {k:<20} {v * 1e3:8.1f} ms  {100 * v / wall:5.1f} %")
    rest = wall - sum(totals.values())
    print(f"  {'(rest: data, carry)':<20} {rest * 1e3:8.1f} ms  {100 * rest / wall:5.1f} %")


if __name__ == "__main__":
    main()
