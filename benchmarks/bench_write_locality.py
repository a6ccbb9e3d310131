#!/usr/bin/env python
"""The write-locality analysis' cost against one hooks-off rollout of the trained length, side by side.

**hooks-off** = ``model(tokens)`` (``halt_max_steps`` ACT steps) under ``inference_mode``;
**write locality** = ``run_write_locality`` on the same puzzles (ACT step 1: one clean and one
perturbed rollout per update of the step, each only as long as the window needs: 3 ACT steps, and
the reductions). Target (issue 25): <= 1.5x the hooks-off rollout. Interleaved, repeated, medians.

    python benchmarks/bench_write_locality.py                  # the shipped default checkpoint
    python benchmarks/bench_write_locality.py --task maze
"""


import numpy as np
import torch
from bench_convergence import _setup, median_times, parse_args  # benchmarks/, beside this script


def main() -> None:
    args = parse_args(__doc__)
    from airinterp.analysis.write_locality import run_write_locality

    model, ds, tokens, rules, name = _setup(args)
    idx = np.arange(args.batch)

    def plain():
        with torch.inference_mode():
            model(tokens)

    def locality():
        run_write_locality(model, ds, idx, rules, act=1, batch_size=args.batch)

    arms = {"hooks-off": plain, "write locality": locality}
    med = median_times(arms, args.repeats, args.device)
    c = model.config
    print(f"{name}: batch {args.batch}, hooks-off {c.halt_max_steps} ACT steps; write locality: ACT step 1, {c.n_updates} perturbed "
          f"updates x a window of {c.n_updates}; {c.seq_len} cells, d={c.hidden_size}, {args.device}, {args.threads} threads")  # fmt: skip
    for k in arms:
        print(f"{k:<16}{med[k]:>10.4f} s")
    print(f"write locality / hooks-off: {med['write locality'] / med['hooks-off']:.3f}x  (target <= 1.5x)")


if __name__ == "__main__":
    main()
