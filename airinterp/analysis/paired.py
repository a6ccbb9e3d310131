"""The paired design: the same puzzles run normally and under a treatment, compared puzzle by puzzle.

Freeze (a state held fixed) and patching (a state replaced) are both this experiment: per batch,
one baseline rollout and one or more treated rollouts of the same puzzles, each measured into a
per-puzzle row (:func:`measured_rollout`: the model's output and both states' decoded grids);
then, per metric, the paired statistics of ``treated - base`` over puzzles (:func:`compare`).
"""

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from airinterp.analysis.decode import DecodedRollout, DecodeRecorder, record
from airinterp.analysis.run import Intervention, PuzzleBatch, puzzle_batches
from airinterp.analysis.stats import paired
from airinterp.model.air import HookedAIR


def measured_rollout(
    model: HookedAIR, batch: PuzzleBatch, n_act: int, interventions: Sequence[Intervention] = ()
) -> DecodedRollout:
    """One rollout of ``batch`` under ``interventions``: both states decoded after every update,
    ``output`` the model's prediction (argmax of its final logits)."""
    rec = DecodeRecorder(model, keep=False)
    out = record(model, batch, rec, n_act=n_act, interventions=interventions)
    b = rec.batch
    assert b is not None
    return DecodedRollout(indices=b.indices, zL=b.zL, zH=b.zH, inputs=b.inputs, labels=b.labels,
                          output=out.logits.argmax(-1).cpu().numpy())  # fmt: skip


def per_batch(
    model: HookedAIR, ds, indices: np.ndarray, batch_size: int, measure: Callable[[PuzzleBatch], pd.DataFrame],
    progress: "Callable[[int], None] | None" = None,
) -> pd.DataFrame:  # fmt: skip
    """``measure`` on each batch of the puzzles ``indices`` (its per-puzzle rows), concatenated."""
    parts = []
    for batch in puzzle_batches(model, ds, indices, batch_size):
        parts.append(measure(batch))
        if progress:
            progress(len(batch))
    return pd.concat(parts)


def compare(rows: pd.DataFrame, metric: str, base: str, treated: str, seed: int, label: str) -> dict:
    """The paired statistics of column ``{metric}_{treated}`` against ``{metric}_{base}`` over the
    rows (:func:`airinterp.analysis.stats.paired`, its bootstrap keyed by ``label`` and ``metric``)."""
    return paired(rows[f"{metric}_{base}"].to_numpy(float), rows[f"{metric}_{treated}"].to_numpy(float), seed, label, metric,
                  rate="exact" in metric)  # exact accuracy: successes; everything else: a mean
