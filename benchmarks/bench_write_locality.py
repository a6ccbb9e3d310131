#!/usr/bin/env python
"""The write-locality analysis' cost against one hooks-off rollout of the trained length, side by side.

**hooks-off** = ``model(tokens)`` (``halt_max_steps`` ACT steps) under ``inference_mode``;
**write locality** = ``run_write_locality`` on the same puzzles (ACT step 1: one clean and one
perturbed rollout per update of the step, each only as long as the window needs: 3 ACT steps, and
the reductions). Target (issue 25): <= 1.5x the hooks-off rollout. Interleaved, repeated, medians.

    python benchmarks/bench_write_locality.py                  # the shipped default checkpoint
    python benchmarks/bench_write_locality.py --task maze
"""

import argparse
import statistics
import time

import numpy as np
import torch
from bench_convergence import _setup  # benchmarks/, beside this script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--checkpoint", default=None, help="airinterp checkpoint (default: the shipped one for --task)")
    ap.add_argument("--paper", action="store_true", help="a random paper-size model instead (d=512, 8 heads, 16 ACT steps)")
    ap.add_argument("--task", default="sudoku", choices=["sudoku", "maze"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from airinterp.analysis.write_locality import run_write_locality

    model, ds, tokens, rules, name = _setup(args)
    idx = np.arange(args.batch)

    def plain():
        with torch.inference_mode():
            model(tokens)

    def locality():
        run_write_locality(model, ds, idx, rules, act=1, batch_size=args.batch)

    arms = {"hooks-off": plain, "write locality": locality}
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for fn in arms.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(args.repeats):
        for k, fn in arms.items():
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    c = model.config
    print(f"{name}: batch {args.batch}, hooks-off {c.halt_max_steps} ACT steps; write locality: ACT step 1, {c.n_updates} perturbed "
          f"updates x a window of {c.n_updates}; {c.seq_len} cells, d={c.hidden_size}, {args.device}, {args.threads} threads")  # fmt: skip
    for k in arms:
        print(f"{k:<16}{med[k]:>10.4f} s")
    print(f"write locality / hooks-off: {med['write locality'] / med['hooks-off']:.3f}x  (target <= 1.5x)")


if __name__ == "__main__":
    main()
