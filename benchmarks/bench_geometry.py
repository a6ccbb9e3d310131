#!/usr/bin/env python
"""The state-geometry analysis' cost against a hooks-off rollout of the same batch, side by side in one run.

**hooks-off** = ``model(tokens, n_act=N)`` under ``inference_mode``; **geometry** =
``run_geometry`` on the same puzzles and length (per update: pooled sums of the cell vectors'
outer products, each puzzle's participation ratio and cell-mean). Target (issue 25): <= 1.5x
time. **basins** = ``run_basins`` (one clean rollout and one per state and scale, 2 x 6 + 1 = 13
rollouts of the trained length by design); reported per rollout against hooks-off. Interleaved,
repeated, medians. Memory: each arm once more in a fresh process per rollout length (1x, 2x, 4x
the trained length), peak RSS growth over loading (CUDA: ``max_memory_allocated``), beside what
the recorder keeps (pooled float64 sums per sub-step, per-puzzle scalars and cell-means) and what
a cache of the states would hold.

    python benchmarks/bench_geometry.py                  # the shipped default checkpoint
    python benchmarks/bench_geometry.py --task maze
"""

import numpy as np
import torch
from bench_convergence import _setup, median_times, parse_args, peak_memory  # benchmarks/, beside this script


def _arms(args, model, ds, tokens, rules, n_act):
    from airinterp.analysis.geometry import run_basins, run_geometry

    idx = np.arange(args.batch)

    def plain():
        with torch.inference_mode():
            model(tokens, n_act=n_act)

    def geometry():
        run_geometry(model, ds, idx, n_act=n_act, batch_size=args.batch)

    def basins():
        run_basins(model, ds, idx, rules, act=1, batch_size=args.batch)

    return {"hooks-off": plain, "geometry": geometry, "basins": basins}


def main() -> None:
    args = parse_args(__doc__)
    model, ds, tokens, rules, name = _setup(args)
    c = model.config
    T = c.halt_max_steps
    arms = _arms(args, model, ds, tokens, rules, T)
    med = median_times(arms, args.repeats, args.device)
    n_roll = 1 + len(c.states) * 6
    print(f"{name}: batch {args.batch}, {T} ACT steps = {T * c.n_updates} updates, {c.seq_len} cells, d={c.hidden_size}, "
          f"{args.device}, {args.threads} threads")  # fmt: skip
    print("arm             median s")
    for k in arms:
        print(f"{k:<16}{med[k]:>8.4f}")
    print(f"geometry / hooks-off: {med['geometry'] / med['hooks-off']:.3f}x  (target <= 1.5x)")
    print(f"basins / hooks-off: {med['basins'] / med['hooks-off']:.2f}x for {n_roll} rollouts = "
          f"{med['basins'] / med['hooks-off'] / n_roll:.3f}x per rollout")  # fmt: skip
    print("peak memory growth over loading, one fresh process per cell (MB; CPU max RSS):")
    print("length       hooks-off     geometry  difference    kept  state cache")
    d, C, U = c.hidden_size, c.seq_len, c.n_updates
    for mult in (1, 2, 4):
        n_act = mult * T
        K = n_act * U
        a, b = peak_memory(args, _arms, "hooks-off", n_act), peak_memory(args, _arms, "geometry", n_act)
        kept = (K * (d * d + d + 1) * 8 + args.batch * K * (d + 1) * 8) / 2**20
        cache = args.batch * K * C * d * 4 / 2**20
        print(f"{mult}x ({n_act:>3})  {a:>10.1f}  {b:>11.1f}  {b - a:>10.1f}  {kept:>6.1f}  {cache:>11.1f}")
    print("kept: the recorder's arrays (float64 sums and outer products per sub-step, per-puzzle PR and cell-mean); "
          "state cache: the updates' outputs (float32) a cache-based analysis would hold")  # fmt: skip


if __name__ == "__main__":
    main()
