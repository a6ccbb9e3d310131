"""The content-change metric (AIR_SPEC 4.b) and per-sub-step summaries of decoded rollouts.

For a state's decoded grids ``G_0 .. G_{K-1}`` (after updates 0 .. K-1) and each of the ``K - 1``
transitions ``k = 1 .. K-1`` and every cell:

- token change: ``G_{k-1} != G_k``;
- mask flip: exactly one of the two is a mask token (:meth:`TaskRules.mask_tokens`, per mode);
- content change: a change from one non-mask token to another (so, in harmonized mode, a change
  between the two Sudoku mask tokens PAD and BLANK is neither a flip nor a content change).

Per puzzle: totals over the transitions; ``per_step`` divides by all ``K - 1`` transitions (the
spec's divisor, 95 for 16 ACT steps, also where the state is not updated), ``per_updated``
by the transitions where the state is written (63 for z_L, 32 for z_H). Every count is also given
on non-given cells only (Sudoku blanks, Maze open cells).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from airinterp.analysis.decode import DecodedRollout
from airinterp.errors import InputError
from airinterp.model.schedule import Update, substep_names, substeps, written
from airinterp.tasks.rules import MODES, Mode, TaskRules

KINDS = ("token_changes", "mask_flips", "content_changes")


@dataclass(frozen=True)
class Changes:
    """Counts per puzzle and transition [puzzle, K-1] for one state in one counting mode;
    ``*_nongiven`` the same on non-given cells."""

    token_changes: np.ndarray
    mask_flips: np.ndarray
    content_changes: np.ndarray
    token_changes_nongiven: np.ndarray | None = None
    mask_flips_nongiven: np.ndarray | None = None
    content_changes_nongiven: np.ndarray | None = None


def count_changes(
    grids: "np.ndarray | torch.Tensor", rules: TaskRules, mode: Mode = "reference", given: "np.ndarray | None" = None
) -> Changes:
    """Counts of ``grids`` [puzzle, K, cell] (``given`` [puzzle, cell] bool for the non-given counts)."""
    g = torch.as_tensor(np.asarray(grids)).long()
    if g.ndim != 3:
        raise InputError(f"grids must be [puzzle, substep, cell], got shape {tuple(g.shape)}")
    prev, cur = g[:, :-1], g[:, 1:]
    token = prev != cur
    m_prev, m_cur = rules.is_mask(prev, mode), rules.is_mask(cur, mode)
    flip = m_prev ^ m_cur
    content = token & ~(m_prev | m_cur)  # one non-mask token to another (PAD <-> BLANK is neither)
    out = {"token_changes": token, "mask_flips": flip, "content_changes": content}
    counts = {k: v.sum(-1).numpy() for k, v in out.items()}
    if given is not None:
        free = ~torch.as_tensor(np.asarray(given, bool))[:, None, :]
        counts |= {f"{k}_nongiven": (v & free).sum(-1).numpy() for k, v in out.items()}
    return Changes(**counts)


def changes_table(
    rollout: DecodedRollout, rules: TaskRules, schedule: tuple[Update, ...], *, start: int = 0
) -> pd.DataFrame:
    """One row per (puzzle, state): totals of every count in both modes (``content_changes`` is
    the reference mode, the paper's; ``*_harmonized`` the harmonized mode), non-given variants,
    the per-step mean (divisor: all transitions) and the rate per updated transition; and two
    fractions over the sub-steps ``>= start``: ``undecided_fraction`` (cells the state decodes to
    an undecided token) and ``disagreement`` (cells where z_L's and z_H's decodes differ; the same
    for both states' rows).

    ``start``: count only transitions into sub-steps ``>= start`` (after an intervention there)."""
    given = rules.given_mask(rollout.inputs) if rollout.inputs is not None else None
    rows = []
    for s in rollout.states:
        g = rollout.state(s)
        K = g.shape[1]
        trans = np.arange(1, K) >= max(start, 1)
        n_trans = int(trans.sum())
        n_upd = int((written(schedule, s, K)[1:] & trans).sum())
        cols: dict[str, np.ndarray] = {}
        for mode in MODES:
            ch = count_changes(g, rules, mode, given)
            suffix = "" if mode == "reference" else "_harmonized"
            for kind in KINDS:
                if kind == "token_changes" and mode != "reference":
                    continue  # the same in both modes
                cols[kind + suffix] = getattr(ch, kind)[:, trans].sum(1)
                if given is not None:
                    cols[kind + "_nongiven" + suffix] = getattr(ch, kind + "_nongiven")[:, trans].sum(1)
        kept = slice(min(start, K - 1), None)
        cols["undecided_fraction"] = np.isin(g[:, kept], rules.undecided).mean((1, 2))
        if rollout.zH is None:  # TRM single-z: one state, nothing to disagree with
            cols["disagreement"] = np.full(len(g), np.nan)
        else:
            cols["disagreement"] = (rollout.state("zL")[:, kept] != rollout.state("zH")[:, kept]).mean((1, 2))
        df = pd.DataFrame({"puzzle": rollout.indices, "state": s, **cols})
        df["n_transitions"] = n_trans
        df["n_updated_transitions"] = n_upd
        for mode_suffix in ("", "_harmonized"):
            c = df["content_changes" + mode_suffix]
            df["content_per_step" + mode_suffix] = c / max(n_trans, 1)
            df["content_per_updated" + mode_suffix] = c / max(n_upd, 1)
        rows.append(df)
    return pd.concat(rows, ignore_index=True)


def substep_table(rollout: DecodedRollout, rules: TaskRules, schedule: tuple[Update, ...]) -> pd.DataFrame:
    """Per (sub-step, state), means over puzzles: cell accuracy against the label (givens
    included, the reference's), the blank fraction (Sudoku BLANK), the undecided fraction (the
    renderer's grey tokens), and the content changes / mask flips into that sub-step in both modes."""
    rows = []
    for s in rollout.states:
        g = rollout.state(s)
        P, K, _ = g.shape
        steps = substeps(schedule, K)
        und = np.isin(g, rules.undecided)
        ref = count_changes(g, rules, "reference")
        har = count_changes(g, rules, "harmonized")
        pad = lambda a: np.concatenate([np.zeros((P, 1)), a], axis=1)  # noqa: E731  (no transition into 0)
        frame = {
            "substep": np.arange(K), "act": np.array([st.act for st in steps]),
            "update": [st.update.name for st in steps], "state": s,
            "written": written(schedule, s, K),
            "undecided_fraction": und.mean((0, 2)),
            "content_changes": pad(ref.content_changes).mean(0),
            "mask_flips": pad(ref.mask_flips).mean(0),
            "content_changes_harmonized": pad(har.content_changes).mean(0),
            "mask_flips_harmonized": pad(har.mask_flips).mean(0),
        }  # fmt: skip
        if rules.blank is not None:
            blank = g == rules.blank
            frame["blank_fraction"] = blank.mean((0, 2))
            frame["blank_fraction_sem"] = blank.mean(2).std(0, ddof=1) / np.sqrt(P) if P > 1 else np.nan
            frame["blank_cells_max"] = blank.sum(2).max(0)
        if rollout.labels is not None and (rollout.labels >= 0).all():
            acc = (g == rollout.labels[:, None, :]).mean(2)
            frame["cell_accuracy"] = acc.mean(0)
            frame["cell_accuracy_sem"] = acc.std(0, ddof=1) / np.sqrt(P) if P > 1 else np.nan
        rows.append(pd.DataFrame(frame))
    return pd.concat(rows, ignore_index=True)


#: the per-puzzle change counts :func:`changes_summary` summarises
CHANGE_METRICS = ("content_changes", "content_changes_harmonized", "content_changes_nongiven", "mask_flips",
                  "mask_flips_harmonized", "token_changes", "content_per_step", "content_per_updated",
                  "undecided_fraction", "disagreement")  # fmt: skip


def changes_summary(changes: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per (state, metric) of :func:`changes_table`: mean, sd, sem and the seeded bootstrap CI over puzzles."""
    from airinterp.analysis.stats import mean_ci

    return pd.DataFrame([{"state": s, "metric": m, **mean_ci(g[m].to_numpy(float), seed, "decode", s, m)}
                         for s, g in changes.groupby("state", sort=False) for m in CHANGE_METRICS])  # fmt: skip


__all__ = ["CHANGE_METRICS", "KINDS", "Changes", "changes_summary", "changes_table", "count_changes", "substep_names",
           "substep_table", "written"]  # fmt: skip


#: the observation rows' rule: cells "present" in a state when at least PRESENCE_MIN_CELLS of them show
#: in at least PRESENCE_MIN_SHARE of its (puzzle, sub-step) grids of ACT steps >= 1; "moving" when,
#: of consecutive sub-steps that both show some, at least PRESENCE_MIN_SHARE differ in where they are
PRESENCE_MIN_CELLS = 1
PRESENCE_MIN_SHARE = 0.05


def presence_table(rollout: DecodedRollout, rules: TaskRules, schedule: tuple[Update, ...], *, from_act: int = 1) -> pd.DataFrame:
    """Per (state, token set): how often a state decodes cells of the paper's figures' kind (Sudoku
    BLANK, ``blank``; the undecided tokens, ``undecided``) in the grids of ACT steps >= ``from_act``:
    the share of (puzzle, sub-step) grids with >= PRESENCE_MIN_CELLS such cells, the share of puzzles
    with any, the most cells in one grid, and how often such cells move (the set of such cells differs
    between consecutive sub-steps that both show some), with ``present`` / ``moving`` by the rule.
    Movement is counted over the transitions into sub-steps that write the state (a state repeats
    its grid where another update runs)."""
    K = rollout.n_substeps
    acts = np.array([s.act for s in substeps(schedule, K)])
    keep = acts >= from_act
    sets = {"undecided": rules.undecided}
    if rules.blank is not None:
        sets["blank"] = (rules.blank,)
    rows = []
    for s in rollout.states:
        g = rollout.state(s)[:, keep]
        into_write = written(schedule, s, K)[keep][1:]  # transitions k-1 -> k where k writes the state
        for name, tokens in sets.items():
            mask = np.isin(g, tokens)  # [puzzle, kept sub-step, cell]
            n = mask.sum(-1)
            shown = n >= PRESENCE_MIN_CELLS
            both = shown[:, 1:] & shown[:, :-1] & into_write
            moved = (mask[:, 1:] != mask[:, :-1]).any(-1) & both
            share = float(shown.mean()) if shown.size else float("nan")
            move_share = float(moved.sum() / both.sum()) if both.sum() else float("nan")
            rows.append({
                "state": s, "tokens": name, "from_act": from_act, "grids": int(shown.size), "share_grids": share,
                "share_puzzles": float(shown.any(1).mean()) if shown.size else float("nan"),
                "max_cells": int(n.max()) if n.size else 0, "share_moving": move_share,
                "present": bool(share >= PRESENCE_MIN_SHARE),
                "moving": bool(np.isfinite(move_share) and move_share >= PRESENCE_MIN_SHARE),
            })  # fmt: skip
    return pd.DataFrame(rows)
