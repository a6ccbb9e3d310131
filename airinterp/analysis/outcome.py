"""The model's output measured against the labels, per puzzle: the one accuracy function.

Used by evaluation (``airinterp eval``, training's evaluations), the freeze and patch experiments
and the report's summary, so "exact", "token accuracy" and "non-given accuracy" mean one thing:

- ``exact``: every labelled cell right (and at least one labelled);
- ``token_accuracy``: the fraction of labelled cells right;
- ``nongiven_accuracy``: the fraction of labelled non-given cells right (Sudoku blanks, Maze
  open cells; all labelled cells when the task, hence the givens, is unknown).
"""

import numpy as np
import pandas as pd

METRICS = ("exact", "token_accuracy", "nongiven_accuracy")


def outcome(
    pred: np.ndarray, labels: np.ndarray, given: "np.ndarray | None" = None, labelled: "np.ndarray | None" = None
) -> pd.DataFrame:
    """Per puzzle (row of ``pred``/``labels`` [puzzle, cell]): :data:`METRICS`. ``given`` [puzzle,
    cell] bool marks the cells fixed by the input; ``labelled`` the cells with a label (default all)."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    labelled = np.ones(labels.shape, bool) if labelled is None else np.asarray(labelled, bool)
    ok = (pred == labels) & labelled
    free = labelled if given is None else labelled & ~np.asarray(given, bool)
    n_lab, n_ok = labelled.sum(1), ok.sum(1)
    return pd.DataFrame({
        "exact": (n_ok == n_lab) & (n_lab > 0),
        "token_accuracy": n_ok / np.maximum(1, n_lab),
        "nongiven_accuracy": (ok & free).sum(1) / np.maximum(1, free.sum(1)),
    })  # fmt: skip
