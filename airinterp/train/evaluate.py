"""Evaluation as the reference does it (spec 3): every ACT step, decoded from z_H at the end."""

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from airinterp.analysis.outcome import outcome
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.tasks.dataset import IGNORE_LABEL_ID, PuzzleDataset
from airinterp.tasks.rules import rules_for

#: tokens per evaluation batch when none is given: CPU throughput peaks around here (measured on
#: maze10 with 2 cores: batch 64 of 101 positions 1.6x faster than 256; larger batches are
#: memory-bound); on a GPU pass a larger batch explicitly.
AUTO_BATCH_TOKENS = 6144


def auto_batch_size(model: HookedAIR) -> int:
    return max(1, min(256, AUTO_BATCH_TOKENS // model.config.n_stack_pos))


def evaluate(
    model: HookedAIR, data: "str | Path | PuzzleDataset", split: str = "test", n: int | None = None, batch_size: int | None = None,
    progress=None, indices: "np.ndarray | None" = None,
) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """Per-puzzle table (index, token accuracy, accuracy on non-given cells, exact, q_halt, and
    ``margin``: the smallest gap between the top two logits over its labelled cells, how close its
    answer is to a tie that last-bit differences between CPUs could flip) and the
    summary ``{exact_accuracy, token_accuracy, nongiven_accuracy, q_halt_accuracy, n}``.

    ``data``: a dataset directory, or the split already opened (then ``split`` is its own);
    ``n``: the first n puzzles of the split (None: all); ``indices``: these puzzles instead (e.g. a
    seeded sample, :func:`airinterp.analysis.run.sample_distinct`; the table's ``index`` is the
    split's); ``batch_size`` None: :func:`auto_batch_size`."""
    if split not in ("train", "test"):
        raise InputError(f"split must be train or test, got {split!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputError(f"n must be a number of puzzles >= 1 (or None for all), got {n!r}")
    if batch_size is None:
        batch_size = auto_batch_size(model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size!r}")
    ds = data if isinstance(data, PuzzleDataset) else PuzzleDataset(data, split)
    ds.check_fits(model.config.seq_len, model.config.vocab_size)
    c = model.config
    rules = rules_for(c.task, c.seq_len) if c.task is not None else None  # unknown task: no givens
    if indices is not None:
        from airinterp.analysis.run import check_indices

        if n is not None:
            raise InputError("n and indices: give one (the first n puzzles, or these puzzles)")
        order = check_indices(ds, indices)
    else:
        order = np.arange(ds.n_examples if n is None else min(n, ds.n_examples))
    rows = []
    was_training = model.training
    model.eval()
    done = 0
    with torch.inference_mode():
        for batch in ds.batches_of(order, batch_size):
            take = batch.n_real
            inputs = torch.from_numpy(batch.inputs[:take]).to(model.device)
            labels = batch.labels[:take]
            ids = torch.from_numpy(batch.puzzle_identifiers[:take]).long().to(model.device)
            out = model(inputs, ids, return_type="output")
            top2 = out.logits.float().topk(2, dim=-1).values.cpu().numpy()
            pred = out.logits.argmax(-1).cpu().numpy()
            q_halt = out.q_halt.float().cpu().numpy()
            mask = labels != IGNORE_LABEL_ID
            given = rules.given_mask(batch.inputs[:take]) if rules is not None else None
            o = outcome(pred, labels, given, labelled=mask)
            exact = o["exact"].to_numpy()
            margin = np.where(mask, top2[..., 0] - top2[..., 1], np.inf).min(1)
            rows.append(pd.DataFrame({
                "index": order[done : done + take],
                "token_accuracy": o["token_accuracy"].to_numpy(),
                "nongiven_accuracy": o["nongiven_accuracy"].to_numpy(),
                "exact": exact,
                "q_halt_logit": q_halt.astype(np.float64),
                "q_halt_correct": (q_halt >= 0) == exact,
                "margin": margin.astype(np.float64),
            }))  # fmt: skip
            done += take
            if progress:
                progress(take)
    model.train(was_training)
    df = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["index", "token_accuracy", "nongiven_accuracy", "exact", "q_halt_logit", "q_halt_correct", "margin"]
    )
    summary = {
        "exact_accuracy": float(df["exact"].mean()) if len(df) else 0.0,
        "token_accuracy": float(df["token_accuracy"].mean()) if len(df) else 0.0,
        "nongiven_accuracy": float(df["nongiven_accuracy"].mean()) if len(df) else 0.0,
        "q_halt_accuracy": float(df["q_halt_correct"].mean()) if len(df) else 0.0,
        "n": len(df),
    }
    return df, summary
