#!/usr/bin/env python
"""Streamed attention analysis vs a full cache vs a hooks-off rollout, side by side in one run.

One 30x30 maze (900 cells) through a random paper-size model (d=512, 8 heads, 4 blocks,
``--n-act`` ACT steps, default 16). Three arms, each in its own fresh subprocess so each peak
RSS is its own (CPU; on CUDA ``max_memory_allocated``):

- **hooks-off**: ``model(tokens, n_act)`` under ``inference_mode``;
- **streamed**: ``run_attention`` (metrics folded inside read-only hooks, no pattern kept);
- **full cache**: ``run_with_cache`` of the analysed patterns (L0_0 and H0 of every analysed
  step, every layer: what a cache-then-compute pipeline holds), then the same metrics from it.

Targets (issue 10): streamed >= 10x less memory than the full cache, <= 1.3x the hooks-off time.

    python benchmarks/bench_attention.py                 # the paper's 16 ACT steps (a few minutes on 2 cores)
    python benchmarks/bench_attention.py --n-act 6       # quicker
    python benchmarks/bench_attention.py --device cuda
"""

import argparse
import json
import subprocess
import sys
import time


def arm(name: str, n_act: int, device: str) -> dict:
    import resource

    import numpy as np
    import torch

    from airinterp.analysis.attention import default_steps, row_metrics, violation_set
    from airinterp.model import AIRConfig, HookedAIR, select
    from airinterp.tasks.dataset import PuzzleDataset, write_split
    from airinterp.tasks.rules import rules_for

    torch.manual_seed(0)
    cfg = AIRConfig(vocab_size=6, seq_len=900, puzzle_emb_ndim=512, hidden_size=512, num_heads=8, halt_max_steps=n_act,
                    forward_dtype="bfloat16" if device != "cpu" else "float32")  # fmt: skip
    model = HookedAIR(cfg, seed=0).to(device)
    rng = np.random.default_rng(0)
    inputs = rng.integers(1, 5, (1, 900)).astype(np.uint8)
    labels = rng.integers(1, 6, (1, 900)).astype(np.uint8)
    import tempfile

    tmp = tempfile.mkdtemp()
    write_split(tmp, "test", inputs, labels, [1], 6)
    ds = PuzzleDataset(tmp, "test")
    tokens = torch.from_numpy(inputs.astype(np.int64)).to(device)
    steps = default_steps(n_act)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    if name == "hooks-off":
        with torch.inference_mode():
            model(tokens, n_act=max(steps) + 1)
    elif name == "streamed":
        from airinterp.analysis.attention import run_attention

        run_attention(model, ds, np.arange(1), steps=steps, batch_size=1)
    else:
        rules = rules_for("maze", 900)
        with torch.inference_mode():
            names = select(act=steps, update=["L0_0", "H0"], site="attn.hook_pattern")
            _, cache = model.run_with_cache(tokens, n_act=max(steps) + 1,
                                            names_filter=lambda n: names(n) or n.endswith("hook_zH") or n == "hook_zH_init")  # fmt: skip
            lab = torch.from_numpy(labels.astype(np.int64)).to(device)
            for a in steps:
                viol = violation_set(rules, model.decode(cache[model.state_site("zH", before=f"act.{a}.L0_0")]), lab)
                for u in ("L0_0", "H0"):
                    for layer in range(cfg.L_layers):
                        p = cache[f"act.{a}.{u}.blocks.{layer}.attn.hook_pattern"][:, :, -900:]
                        row_metrics(p, viol[:, None, :], rules)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # fmt: skip
    return {"arm": name, "seconds": seconds, "peak_mb": peak, "base_mb": base_rss, "steps": steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--n-act", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--_arm", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._arm:
        print(json.dumps(arm(args._arm, args.n_act, args.device)))
        return
    res = {}
    for name in ("hooks-off", "streamed", "full cache"):
        out = subprocess.run([sys.executable, __file__, "--n-act", str(args.n_act), "--device", args.device, "--_arm", name],
                             capture_output=True, text=True, check=True)  # fmt: skip
        res[name] = json.loads(out.stdout.strip().splitlines()[-1])
    steps = res["streamed"]["steps"]
    print(f"one 30x30 maze, random d=512 model, {args.n_act} ACT steps, analysed steps {steps}, {args.device}")
    print(f"{'arm':<12}{'seconds':>10}{'peak MB':>10}{'above start MB':>16}")
    for name, r in res.items():
        print(f"{name:<12}{r['seconds']:>10.2f}{r['peak_mb']:>10.0f}{r['peak_mb'] - r['base_mb']:>16.0f}")
    grow = {k: max(r["peak_mb"] - r["base_mb"], 1.0) for k, r in res.items()}
    print(f"streamed / hooks-off time: {res['streamed']['seconds'] / res['hooks-off']['seconds']:.2f}x  (target <= 1.3x)")
    print(f"full cache / streamed memory above start: {grow['full cache'] / grow['streamed']:.1f}x  (target >= 10x)")


if __name__ == "__main__":
    main()
