#!/usr/bin/env python
"""The freeze experiment's cost against two plain rollouts, side by side in one run.

For one batch: **freeze** = ``run_freeze`` (a normal and a frozen rollout of the batch, both
decoded after every update by read-only hooks, reduced to per-puzzle counts) vs **two hooks-off**
= ``model(tokens)`` twice under ``inference_mode``. Target (issue 9): freeze <= 1.2x time. The two
are interleaved and repeated; medians are reported. Memory: the freeze keeps only token ids
(``uint8`` [batch, sub-steps, cells] per state and arm) while a batch runs; the table prints that
size, the size of the float states a state cache would hold instead, and the peak memory of each
arm (CUDA: ``max_memory_allocated``; CPU: the growth of the process's peak RSS, coarse).

    python benchmarks/bench_dynamics.py                          # the shipped default checkpoint
    python benchmarks/bench_dynamics.py --paper --task sudoku    # d=512, 16 ACT steps, 9x9
    python benchmarks/bench_dynamics.py --paper --task maze --device cuda --batch 16
"""

import argparse
import resource
import statistics
import time

import numpy as np
import torch

from airinterp.analysis.freeze import Freeze, run_freeze
from airinterp.model import AIRConfig, HookedAIR
from airinterp.tasks.dataset import write_split


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--checkpoint", default=None, help="airinterp checkpoint (default: the shipped one for --task)")
    ap.add_argument("--paper", action="store_true", help="a random paper-size model instead (d=512, 8 heads, 16 ACT steps)")
    ap.add_argument("--task", default="sudoku", choices=["sudoku", "maze"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="forward dtype (default: the model's)")
    args = ap.parse_args()

    if args.paper:
        seq, vocab = (81, 11) if args.task == "sudoku" else (900, 6)
        cfg = AIRConfig(vocab_size=vocab, seq_len=seq, puzzle_emb_ndim=512, hidden_size=512, num_heads=8,
                        forward_dtype=args.dtype or ("bfloat16" if args.device != "cpu" else "float32"))  # fmt: skip
        model = HookedAIR(cfg, seed=0).to(args.device)
        name = f"random paper-size {args.task}"
    else:
        import airinterp
        from airinterp.checkpoints.paths import DEFAULT_CHECKPOINTS, REPO

        path = args.checkpoint or REPO / DEFAULT_CHECKPOINTS[args.task]
        model = airinterp.load(path, device=args.device, dtype=args.dtype)
        cfg = model.config
        name = str(path)
    import tempfile

    rng = np.random.default_rng(0)
    tmp = tempfile.mkdtemp()
    inputs = rng.integers(1, cfg.vocab_size, (args.batch, cfg.seq_len)).astype(np.uint8)
    write_split(tmp, "test", inputs, inputs, [1] * args.batch, cfg.vocab_size)
    from airinterp.tasks.dataset import PuzzleDataset

    ds = PuzzleDataset(tmp, "test")
    idx = np.arange(args.batch)
    tokens = torch.from_numpy(inputs.astype(np.int64)).to(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def two_plain():
        with torch.inference_mode():
            model(tokens)
            model(tokens)

    def freeze():
        run_freeze(model, ds, idx, Freeze("zH"), batch_size=args.batch)

    arms = {"two hooks-off": two_plain, "freeze": freeze}
    for fn in arms.values():  # warm up
        fn()
    times: dict[str, list[float]] = {k: [] for k in arms}
    peaks: dict[str, float] = {}
    for _ in range(args.repeats):
        for k, fn in arms.items():
            if args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            before = peak_rss_mb()
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t)
            peaks[k] = max(peaks.get(k, 0.0), torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda")
                           else peak_rss_mb() - before)  # fmt: skip
    K = model.config.halt_max_steps * model.config.n_updates
    kept = 2 * 2 * args.batch * K * cfg.seq_len  # uint8, 2 states x 2 arms
    states = 2 * 2 * args.batch * K * model.config.n_pos * cfg.hidden_size * torch.finfo(model.dtype).bits // 8
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{name}: batch {args.batch}, {K} sub-steps, {cfg.seq_len} cells, d={cfg.hidden_size}, {args.device}, {model.dtype}")
    print(f"{'arm':<16}{'median s':>10}{'peak MB':>10}")
    for k in arms:
        print(f"{k:<16}{med[k]:>10.4f}{peaks[k]:>10.1f}")
    print(f"freeze / two hooks-off: {med['freeze'] / med['two hooks-off']:.3f}x  (target <= 1.2x)")
    print(f"kept while a batch runs: {kept / 2**20:.2f} MB of token ids; caching the states instead: {states / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
