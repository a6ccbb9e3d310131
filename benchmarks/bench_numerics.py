#!/usr/bin/env python
"""bf16 numerics: our bf16 rollout against the reference's bf16 rollout and against float32.

Paper-size random models (d=512), eval mode, one Sudoku-size and one Maze-size batch. Per ACT step
it prints the max |difference| of the logits and the fraction of cells whose argmax agrees:

- ours bf16 vs reference bf16 (``--reference DIR``): the same operations in the same order, so
  on a given device this should be 0;
- ours bf16 vs ours float32: what the reference's training precision costs against float32. On
  random weights the recurrence amplifies differences (it is not contracting), so agreement decays
  with ACT steps; trained models are the meaningful case.

    python benchmarks/bench_numerics.py --reference ../air --device cuda
"""

import argparse
import sys
from pathlib import Path

import torch

from airinterp.model import AIRConfig, HookedAIR, select

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import CASES, build_reference  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference")
    p.add_argument("--device", default="cpu")
    p.add_argument("--n-act", type=int, default=16)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--heads", type=int, default=8)
    args = p.parse_args()
    torch.manual_seed(0)
    for task, case in CASES.items():
        models = {}
        for dtype in ("float32", "bfloat16"):
            cfg = AIRConfig(vocab_size=case["vocab_size"], seq_len=case["seq_len"], puzzle_emb_ndim=args.hidden,
                            hidden_size=args.hidden, num_heads=args.heads, forward_dtype=dtype)  # fmt: skip
            models[dtype] = HookedAIR(cfg, seed=0).to(args.device).eval()
        tokens = torch.randint(1, case["vocab_size"], (case["batch"], case["seq_len"]), device=args.device)
        per_step = select(scope="act", site="hook_logits")
        with torch.inference_mode():
            _, c32 = models["float32"].run_with_cache(tokens, n_act=args.n_act, names_filter=per_step)
            _, c16 = models["bfloat16"].run_with_cache(tokens, n_act=args.n_act, names_filter=per_step)
            ref_steps = []
            if args.reference:
                ref = build_reference(args.reference, models["bfloat16"].config, models["bfloat16"], case["batch"], args.device)
                b = dict(inputs=tokens.to(torch.int32), labels=tokens.to(torch.int32),
                         puzzle_identifiers=torch.zeros(case["batch"], dtype=torch.int32, device=args.device))  # fmt: skip
                carry = ref.initial_carry(b)
                carry.inner_carry.z_H, carry.inner_carry.z_L = (t.to(args.device) for t in (carry.inner_carry.z_H, carry.inner_carry.z_L))
                carry.steps, carry.halted = carry.steps.to(args.device), carry.halted.to(args.device)
                for _ in range(args.n_act):
                    carry, out = ref(carry, b)
                    ref_steps.append(out["logits"])
        print(f"\n{task} ({args.device}, d={args.hidden}, batch {case['batch']}):")
        print("  act | bf16 vs ref-bf16: max|d| argmax-agree | bf16 vs fp32: max|d| argmax-agree")
        for a in range(args.n_act):
            l32, l16 = c32[f"act.{a}.hook_logits"].float(), c16[f"act.{a}.hook_logits"].float()
            line = f"  {a:3d} |"
            if ref_steps:
                r = ref_steps[a].float()
                line += f" {(l16 - r).abs().max().item():10.3g} {(l16.argmax(-1) == r.argmax(-1)).float().mean().item():8.4f}     |"
            line += f" {(l16 - l32).abs().max().item():10.3g} {(l16.argmax(-1) == l32.argmax(-1)).float().mean().item():8.4f}"
            print(line)


if __name__ == "__main__":
    main()
