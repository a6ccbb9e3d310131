#!/usr/bin/env python
"""Training steps/s: our trainer against the reference's loop, same model and batch, side by side.

The reference side imports the reference's AIR and ACTLossHead from ``--reference DIR`` (a
checkout of github.com/juchengshen/air) and runs its ``train_batch`` logic: carry, forward with
the loss head, backward on loss / global batch, optimizer step (AdamATan2 here: the reference's
copy ships as a zip). Our side is ``Trainer.train_step`` on the same weights and batches.

    python benchmarks/bench_train.py --reference ../air --data data/sudoku-extreme-like --preset paper --batch 64
    python benchmarks/bench_train.py --reference ../air --data data/... --device cuda --steps 30
"""

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from airinterp.checkpoints import to_reference_state_dict
from airinterp.train.config import TrainRun
from airinterp.train.loop import Trainer
from airinterp.train.optim import AdamATan2


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference")
    p.add_argument("--data", required=True)
    p.add_argument("--preset", default="cpu-small")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--dtype", default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = TrainRun.from_preset(args.preset, data=Path(args.data), out=Path(tmp), device=args.device,
                                   global_batch_size=args.batch, forward_dtype=args.dtype, epochs=100000)  # fmt: skip
        trainer = Trainer(run, log=lambda s: None)
        batches = list(b for _, b in zip(range(args.steps + 2), trainer.train_set.train_batches(run.global_batch_size, 0, 1, 100), strict=False))
        times = {"ours": [], "reference": []}
        ref = None
        if args.reference:
            sys.path.insert(0, str(Path(args.reference).resolve()))
            layers = importlib.import_module("models.layers")
            if args.device == "cpu":
                layers.flash_attn_func = None
            losses = importlib.import_module("models.losses")
            mod = importlib.import_module(f"models.air.air_1net_{run.variant}")
            c = trainer.config
            arch = dict(batch_size=run.global_batch_size, seq_len=c.seq_len, puzzle_emb_ndim=c.puzzle_emb_ndim,
                        num_puzzle_identifiers=c.num_puzzle_identifiers, vocab_size=c.vocab_size, H_cycles=c.H_cycles,
                        L_cycles=c.L_cycles, H_layers=c.L_layers, L_layers=c.L_layers, hidden_size=c.hidden_size,
                        expansion=c.expansion, num_heads=c.num_heads, pos_encodings="rope", halt_max_steps=c.halt_max_steps,
                        halt_exploration_prob=c.halt_exploration_prob, forward_dtype=c.forward_dtype)  # fmt: skip
            ref = losses.ACTLossHead(mod.AIR(arch), "stablemax_cross_entropy")
            ref.model.load_state_dict(to_reference_state_dict(trainer.model), strict=False)
            ref = ref.to(args.device).train()
            ref_opt = AdamATan2([q for q in ref.parameters() if q.requires_grad], lr=run.lr,
                                betas=(run.beta1, run.beta2), weight_decay=run.weight_decay)  # fmt: skip
            carry = None

        def ref_step(b):
            nonlocal carry
            batch = {"inputs": torch.from_numpy(b.inputs).to(args.device), "labels": torch.from_numpy(b.labels).to(args.device),
                     "puzzle_identifiers": torch.from_numpy(b.puzzle_identifiers).to(args.device)}  # fmt: skip
            if carry is None:
                with torch.device(args.device):
                    carry = ref.initial_carry(batch)
            carry, loss, _, _, _ = ref(carry=carry, batch=batch, return_keys=[])
            ((1 / run.global_batch_size) * loss).backward()
            ref_opt.step()
            ref_opt.zero_grad()

        for i, b in enumerate(batches):
            for name, fn in (("ours", trainer.train_step), ("reference", ref_step)):
                if name == "reference" and ref is None:
                    continue
                sync(args.device)
                t = time.perf_counter()
                fn(b)
                sync(args.device)
                if i >= 2:  # warm-up
                    times[name].append(time.perf_counter() - t)
        print(f"torch {torch.__version__}, {args.device}, preset {args.preset}, batch {run.global_batch_size}, "
              f"d={trainer.config.hidden_size}, {trainer.config.halt_max_steps} ACT steps max, seq {trainer.config.seq_len}")  # fmt: skip
        for name, ts in times.items():
            if ts:
                print(f"  {name:10s} {1 / statistics.median(ts):8.2f} steps/s  (median of {len(ts)})")
        if times["reference"]:
            print(f"  ours / reference steps/s = {statistics.median(times['reference']) / statistics.median(times['ours']):.3f}")


if __name__ == "__main__":
    main()
