"""The roles of the two states, measured directly (not a figure of the paper).

The paper reads its decoded figures as "zH a committed proposal, zL a shifting scratchpad". This
measures what each state holds, per puzzle and per sub-step, from the same decoded rollout
(:func:`airinterp.analysis.decode.decode_rollouts` with ``probs=True``):

- ``disagreement``: the share of cells where zL's and zH's decodes differ;
- ``undecided``: the share of cells a state decodes to an undecided token (Sudoku PAD / BLANK,
  Maze PAD);
- ``accuracy_nongiven``: the share of non-given cells a state decodes to the label;
- ``low_confidence``: the share of non-given cells whose decoded token has softmax probability
  below :data:`LOW_CONFIDENCE` (the LM head's max probability);
- Maze: ``path_cells`` (cells decoded as path), ``path_recall`` / ``path_precision`` against the
  label's path, and the asymmetric candidate cells ``zL_path_zH_open`` / ``zH_path_zL_open``
  (one state marks path where the other says open).

Per-puzzle values are means over the grids of ACT steps >= 1 (``mean``) and the values after the
last update (``final``); the summary gives each state's mean with a puzzle-level bootstrap CI and
the paired zL - zH difference with its CI and sign-flip p. The same on the symmetric control is
the comparison that says whether a split is the variant's.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from airinterp.analysis.decode import DecodedRollout
from airinterp.analysis.stats import mean_ci, paired
from airinterp.errors import InputError
from airinterp.model.schedule import Update, substeps
from airinterp.tasks.rules import TaskRules

#: below this softmax probability a decoded token counts as low-confidence
LOW_CONFIDENCE = 0.5
#: metrics measured per state (the rest are measured across the two states)
STATE_METRICS = ("undecided", "accuracy_nongiven", "low_confidence", "path_cells", "path_recall", "path_precision")
PAIR_METRICS = ("disagreement", "zL_path_zH_open", "zH_path_zL_open")


@dataclass(frozen=True)
class RolesResult:
    puzzles: pd.DataFrame  # puzzle, when (mean / final), state (zL, zH or both), metric, value
    substeps: pd.DataFrame  # substep, act, update, state, metric, value (means over puzzles)
    summary: pd.DataFrame  # when, metric, state ("zL", "zH", "zL - zH" or "both"), mean, ci_low, ci_high, n, p

    def substep_columns(self, metrics: "tuple[str, ...]") -> "tuple[pd.DataFrame, list[str]]":
        """The per-sub-step means wide (a column per metric, a row per sub-step and state: what
        ``figures.substep_lines`` draws) and those of ``metrics`` that have values."""
        wide = self.substeps.pivot_table(index=["substep", "state"], columns="metric", values="value").reset_index()
        return wide, [m for m in metrics if m in wide and wide[m].notna().any()]


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def _grid_metrics(r: DecodedRollout, rules: TaskRules, keep: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """(state, metric) -> [puzzle, kept sub-step] values."""
    if r.zH is None:
        raise InputError("roles: this model (TRM single-z) has one state; the roles analysis compares zL with zH")
    if r.labels is None or r.inputs is None:
        raise InputError("roles: the rollout has no labels or inputs to measure against")
    labels = np.asarray(r.labels)[:, None, :]
    free = ~rules.given_mask(r.inputs)[:, None, :]
    n_free = free.sum(-1)
    out: dict[tuple[str, str], np.ndarray] = {}
    grids = {s: r.state(s)[:, keep] for s in ("zL", "zH")}
    for s, g in grids.items():
        out[(s, "undecided")] = np.isin(g, rules.undecided).mean(-1)
        out[(s, "accuracy_nongiven")] = _safe_ratio(((g == labels) & free).sum(-1), n_free)
        p = getattr(r, f"{s}_p")
        out[(s, "low_confidence")] = (_safe_ratio(((p[:, keep] < LOW_CONFIDENCE) & free).sum(-1), n_free) if p is not None
                                      else np.full(g.shape[:2], np.nan))  # fmt: skip
        if rules.path is not None:
            path, truth = g == rules.path, labels == rules.path
            out[(s, "path_cells")] = path.sum(-1).astype(np.float64)
            out[(s, "path_recall")] = _safe_ratio((path & truth).sum(-1), truth.sum(-1))
            out[(s, "path_precision")] = _safe_ratio((path & truth).sum(-1), path.sum(-1))
    out[("both", "disagreement")] = (grids["zL"] != grids["zH"]).mean(-1)
    if rules.path is not None and getattr(rules, "open", None) is not None:
        gl, gh = grids["zL"], grids["zH"]
        out[("both", "zL_path_zH_open")] = ((gl == rules.path) & (gh == rules.open)).sum(-1).astype(np.float64)
        out[("both", "zH_path_zL_open")] = ((gh == rules.path) & (gl == rules.open)).sum(-1).astype(np.float64)
    return out


def roles_analysis(rollout: DecodedRollout, rules: TaskRules, schedule: tuple[Update, ...], seed: int, *,
                   from_act: int = 1) -> RolesResult:  # fmt: skip
    """The roles tables of one decoded sample (``rollout`` decoded with ``probs=True`` for the
    confidence metric; without, it is NaN)."""
    K = rollout.n_substeps
    steps = substeps(schedule, K)
    acts = np.array([s.act for s in steps])
    keep = acts >= from_act
    if not keep.any():  # a one-step rollout: use what there is
        keep = np.ones(K, dtype=bool)
    m = _grid_metrics(rollout, rules, keep)
    kept = np.flatnonzero(keep)
    rows, sub = [], []
    for (s, metric), v in m.items():
        with warnings.catch_warnings():  # a puzzle with no non-given / path cells has no value: NaN, dropped later
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(v, axis=1)
            per_step = np.nanmean(v, axis=0)
        for when, vals in (("mean", mean), ("final", v[:, -1])):
            rows.append(pd.DataFrame({"puzzle": rollout.indices, "when": when, "state": s, "metric": metric, "value": vals}))
        sub.append(pd.DataFrame({"substep": kept, "act": acts[kept], "update": [steps[k].update.name for k in kept],
                                 "state": s, "metric": metric, "value": per_step}))  # fmt: skip
    puzzles = pd.concat(rows, ignore_index=True)
    summary = []
    for (when, metric), g in puzzles.groupby(["when", "metric"], sort=False):
        by = {s: gg.set_index("puzzle").value for s, gg in g.groupby("state")}
        for s, v in by.items():
            x = v.to_numpy(np.float64)
            x = x[np.isfinite(x)]
            ci = mean_ci(x, seed, "roles", when, metric, s)
            summary.append({"when": when, "metric": metric, "state": s, "mean": ci["mean"], "ci_low": ci["ci_low"],
                            "ci_high": ci["ci_high"], "n": ci["n"], "p": np.nan})  # fmt: skip
        if "zL" in by and "zH" in by:
            both = pd.concat([by["zL"].rename("zL"), by["zH"].rename("zH")], axis=1).dropna()
            d = paired(both.zH.to_numpy(), both.zL.to_numpy(), seed, "roles", when, metric)
            summary.append({"when": when, "metric": metric, "state": "zL - zH", "mean": d["delta_mean"], "ci_low": d["delta_ci_low"],
                            "ci_high": d["delta_ci_high"], "n": d["n"], "p": d["p_sign_flip"]})  # fmt: skip
    return RolesResult(puzzles=puzzles, substeps=pd.concat(sub, ignore_index=True), summary=pd.DataFrame(summary))
