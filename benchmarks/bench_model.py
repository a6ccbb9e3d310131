#!/usr/bin/env python
"""Rollout speed at paper size (d=512, 8 heads, 4 blocks), measured side by side in one run.

For a Sudoku-size input (batch 16, 81 cells) and a Maze-size input (batch 2, 900 cells), eval
mode, ``torch.inference_mode()``:

- **reference**: the reference implementation's AIR (``--reference DIR``: a checkout of
  github.com/juchengshen/air, imported at run time) carrying its own ACT loop for ``--n-act`` steps;
- **hooks-off**: ``HookedAIR(tokens)`` with the same weights;
- **filtered cache**: ``run_with_cache`` keeping the attention patterns of every layer for the
  first L- and the first H-update of every ACT step (what the attention analysis reads).

Targets (issue 3): hooks-off <= 1.0x the reference; filtered cache <= 1.3x hooks-off. The three
are interleaved and repeated; medians are reported. Outputs of the reference and of our model are
compared too (max |diff| of the final logits).

    python benchmarks/bench_model.py --reference ../air
    python benchmarks/bench_model.py --reference ../air --device cuda --dtype bfloat16 --n-act 16
"""

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

import torch

from airinterp.checkpoints import to_reference_state_dict
from airinterp.model import AIRConfig, HookedAIR, select

CASES = {"sudoku": dict(vocab_size=11, seq_len=81, batch=16), "maze": dict(vocab_size=6, seq_len=900, batch=2)}


def build_reference(ref_dir: str, cfg: AIRConfig, model: HookedAIR, batch: int, device: str):
    sys.path.insert(0, str(Path(ref_dir).resolve()))
    layers = importlib.import_module("models.layers")
    if getattr(layers, "flash_attn_func", None) is not None and device == "cpu":
        layers.flash_attn_func = None
    mod = importlib.import_module(f"models.air.air_1net_{cfg.variant}")
    arch = dict(
        batch_size=batch, seq_len=cfg.seq_len, puzzle_emb_ndim=cfg.puzzle_emb_ndim,
        num_puzzle_identifiers=cfg.num_puzzle_identifiers, vocab_size=cfg.vocab_size, H_cycles=cfg.H_cycles,
        L_cycles=cfg.L_cycles, H_layers=cfg.L_layers, L_layers=cfg.L_layers, hidden_size=cfg.hidden_size,
        expansion=cfg.expansion, num_heads=cfg.num_heads, pos_encodings=cfg.pos_encodings,
        halt_max_steps=cfg.halt_max_steps, halt_exploration_prob=cfg.halt_exploration_prob,
        forward_dtype=cfg.forward_dtype,
    )  # fmt: skip
    ref = mod.AIR(arch)
    state = {k: v.to(ref.state_dict()[k].dtype) for k, v in to_reference_state_dict(model).items()}
    ref.load_state_dict(state, strict=True)
    return ref.to(device).eval()


def reference_rollout(ref, tokens: torch.Tensor, n_act: int) -> torch.Tensor:
    batch = dict(
        inputs=tokens.to(torch.int32), labels=tokens.to(torch.int32),
        puzzle_identifiers=torch.zeros(tokens.shape[0], dtype=torch.int32, device=tokens.device),
    )  # fmt: skip
    carry = ref.initial_carry(batch)
    carry.inner_carry.z_H = carry.inner_carry.z_H.to(tokens.device)
    carry.inner_carry.z_L = carry.inner_carry.z_L.to(tokens.device)
    carry.steps, carry.halted = carry.steps.to(tokens.device), carry.halted.to(tokens.device)
    for _ in range(n_act):
        carry, out = ref(carry, batch)
    return out["logits"]


def timed(fn, device: str) -> tuple[float, object]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", help="checkout of the reference AIR repository")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--n-act", type=int, default=16, help="ACT steps per rollout (paper: 16)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tasks", default="sudoku,maze")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    args = p.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {args.device}, dtype {args.dtype}, threads {torch.get_num_threads()}, "
          f"d={args.hidden}, heads={args.heads}, {args.n_act} ACT steps, median of {args.repeats}")  # fmt: skip
    for task in args.tasks.split(","):
        case = CASES[task]
        cfg = AIRConfig(
            vocab_size=case["vocab_size"], seq_len=case["seq_len"], puzzle_emb_ndim=args.hidden,
            hidden_size=args.hidden, num_heads=args.heads, forward_dtype=args.dtype,
        )  # fmt: skip
        model = HookedAIR(cfg, seed=0).to(args.device).eval()
        tokens = torch.randint(1, cfg.vocab_size, (case["batch"], cfg.seq_len), device=args.device)
        first_l, first_h = model.schedule[0].name, next(u.name for u in model.schedule if u.stage == "H")
        pattern_filter = select(update=[first_l, first_h], site="attn.hook_pattern")
        runs = {
            "ours hooks-off": lambda: model(tokens, n_act=args.n_act),
            "ours filtered cache": lambda: model.run_with_cache(tokens, n_act=args.n_act, names_filter=pattern_filter),
        }
        ref = None
        if args.reference:
            ref = build_reference(args.reference, cfg, model, case["batch"], args.device)
            runs = {"reference": lambda: reference_rollout(ref, tokens, args.n_act), **runs}
        times: dict[str, list[float]] = {k: [] for k in runs}
        outputs = {}
        with torch.inference_mode():
            for name, fn in runs.items():  # warm-up
                outputs[name] = fn()
            for _ in range(args.repeats):
                for name, fn in runs.items():
                    t, out = timed(fn, args.device)
                    times[name].append(t)
                    del out  # free the previous cache outside the timed region
        med = {k: statistics.median(v) for k, v in times.items()}
        n_cached = len(outputs["ours filtered cache"][1].cache_dict)
        print(f"\n{task}: batch {case['batch']}, {cfg.seq_len} cells; filtered cache holds {n_cached} patterns")
        for k, v in med.items():
            print(f"  {k:22s} {v * 1000:10.1f} ms   (runs: {', '.join(f'{t * 1000:.0f}' for t in times[k])})")
        if ref is not None:
            diff = (outputs["reference"].float() - outputs["ours hooks-off"].float()).abs().max().item()
            print(f"  hooks-off / reference     = {med['ours hooks-off'] / med['reference']:.3f}   (target <= 1.0)")
            print(f"  max |logits diff| vs reference = {diff:.3g}")
        print(f"  filtered cache / hooks-off = {med['ours filtered cache'] / med['ours hooks-off']:.3f}   (target <= 1.3)")


if __name__ == "__main__":
    main()
