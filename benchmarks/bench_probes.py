#!/usr/bin/env python
"""The probes' cost by part against a hooks-off rollout of the same batch, side by side in one run.

**hooks-off** = ``model(tokens)`` (``halt_max_steps`` ACT steps) under ``inference_mode``;
**record** = one rollout with the probe recorder (the non-given cells of the probed updates'
outputs and the answer state's decode at every update); **probes** = ``run_probes`` with no causal
test (record + the cross-validated fits: points x targets x folds x 2 with the control);
**probes + causal** = the CLI's default (ablations at ACT steps 1 and the last: one rollout per
update, target group and arm). The issue's 1.5x target is for the streamed analyses (convergence,
write locality, geometry); here the recording is what compares with them, the fits and the
ablation rollouts are the analysis itself. Interleaved, repeated, medians. Inputs are random
tokens (the solution labels = the inputs), so accuracies mean nothing here, only the time.

    python benchmarks/bench_probes.py                  # the shipped default checkpoint
    python benchmarks/bench_probes.py --task maze
"""

import numpy as np
import torch
from bench_convergence import _setup, median_times, parse_args  # benchmarks/, beside this script


def main() -> None:
    args = parse_args(__doc__)
    from airinterp.analysis.probes import ProbeRecorder, default_acts, run_probes
    from airinterp.analysis.run import puzzle_batches, rollout

    model, ds, tokens, rules, name = _setup(args)
    c = model.config
    T, n = c.halt_max_steps, c.n_updates
    idx = np.arange(args.batch)
    points = [a * n + u for a in default_acts(T) for u in range(n)]

    def plain():
        with torch.inference_mode():
            model(tokens)

    def record():
        rec = ProbeRecorder(model, rules, points)
        for batch in puzzle_batches(model, ds, idx, args.batch):
            rollout(model, batch, recorders=[rec])
        rec.result()

    def probes():
        run_probes(model, ds, idx, rules, ablate_acts=(), batch_size=args.batch)

    def causal():
        run_probes(model, ds, idx, rules, batch_size=args.batch)

    arms = {"hooks-off": plain, "record": record, "probes": probes, "probes + causal": causal}
    med = median_times(arms, args.repeats, args.device)
    print(f"{name}: batch {args.batch}, {T} ACT steps, {len(points)} probed updates, {c.seq_len} cells, d={c.hidden_size}, "
          f"{args.device}, {args.threads} threads")  # fmt: skip
    print("arm               median s   / hooks-off")
    for k in arms:
        print(f"{k:<18}{med[k]:>9.3f}  {med[k] / med['hooks-off']:>9.2f}x")


if __name__ == "__main__":
    main()
