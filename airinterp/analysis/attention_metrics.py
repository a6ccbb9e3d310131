"""Attention locality per query row (AIR_SPEC 4.d): the metrics, their neighbourhood sets, V/E.

The row kernels :func:`row_metrics` (batched, inside read-only hooks) and :func:`query_metrics` (one
row, the reference's form) and what they need: a task's neighbourhoods as padded index lists
(:class:`NeighbourSets`), violation / error sets, query classes, the head score. The definitions
are in :mod:`airinterp.analysis.attention`'s docstring.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from airinterp.errors import InputError
from airinterp.tasks.rules import TaskRules, rules_for

#: the paper's analysed ACT steps (0-based)
PAPER_STEPS = (2, 4, 6, 8, 10, 12, 14, 15)
_COMMON = ("nbr_mass", "nbr_mass_incl_self", "entropy", "viol_mass", "viol_mass_incl_self", "viol_mass_board", "prefix_mass")
_MAZE = ("mass_n8", "mass_5x5", "density_n4", "density_n8", "density_5x5",
         "density_n4_nominal", "density_n8_nominal", "density_5x5_nominal")  # fmt: skip


PER_HEAD = ("nbr_mass", "nbr_mass_incl_self", "entropy", "viol_mass", "density_n4")


def metric_names(task: str) -> tuple[str, ...]:
    return _COMMON + (_MAZE if task == "maze" else ())


def sign(metric: str) -> int:
    """+1: delta = L - H; -1 (entropy): delta = H - L."""
    return -1 if metric == "entropy" else 1


def head_score(L: dict, H: dict, task: str) -> Tensor:
    """The reference's head score delta_nbr + delta_viol + 0.5 delta_ent (its Sudoku delta_nbr
    includes the query cell), from per-update metric dicts; one definition for the best-head
    aggregation, the example's default head and the selector."""
    nbr = "nbr_mass_incl_self" if task == "sudoku" else "nbr_mass"
    return (L[nbr] - H[nbr]) + (L["viol_mass"] - H["viol_mass"]) + 0.5 * (H["entropy"] - L["entropy"])


def compared_updates(schedule) -> tuple[str, str]:
    """The compared updates of an ACT step: its first L-update and its first H-update (L0_0, H0)."""
    return next(u.name for u in schedule if u.stage == "L"), next(u.name for u in schedule if u.stage == "H")


def default_steps(n_act: int) -> list[int]:
    """The paper's steps inside an ``n_act``-step rollout, plus its last step (the paper's 15)."""
    steps = sorted({a for a in PAPER_STEPS if a < n_act} | {n_act - 1})
    return steps


# ---- per-row metrics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeighbourSets:
    """Neighbourhoods of a task (q excluded) as masks [cell, cell] and as padded index lists
    [cell, k] (``valid`` marks the real entries), so masses are gathers, not [cell, cell] passes."""

    nbr: Tensor
    idx: dict
    valid: dict


#: the extra neighbourhoods a task's metrics use, beyond its own (key -> kind)
EXTRA_SETS = {"maze": {"n8": "N8", "w5": "5x5"}}


def neighbour_sets(rules: TaskRules, device: torch.device) -> NeighbourSets:
    kinds = {"nbr": None} | EXTRA_SETS.get(rules.name, {})
    idx, valid, nbr = {}, {}, None
    for key, kind in kinds.items():
        m = rules.neighbourhood(kind) if kind else rules.neighbourhood()
        if key == "nbr":
            nbr = m.to(device)
        k = int(m.sum(1).max())
        order = torch.argsort(m.to(torch.int8), dim=1, descending=True, stable=True)[:, :k]
        idx[key] = order.to(device)
        valid[key] = torch.gather(m, 1, order).to(device)
    return NeighbourSets(nbr=nbr, idx=idx, valid=valid)  # type: ignore[arg-type]


def _masses(p: Tensor, v: Tensor | None, sets: NeighbourSets, key: str) -> tuple[Tensor, Tensor | None]:
    """Row masses of ``p`` [..., cell, cell] on the ``key`` neighbourhood and on its V cells."""
    idx, valid = sets.idx[key], sets.valid[key].to(p.dtype)
    g = torch.gather(p, -1, idx.expand(*p.shape[:-1], idx.shape[-1])) * valid
    mass = g.sum(-1)
    if v is None:
        return mass, None
    vg = v[..., idx]  # [..., cell, k]
    return mass, (g * vg).sum(-1)


def violation_set(rules: TaskRules, decoded: Tensor, labels: Tensor | None = None) -> Tensor:
    """V (Sudoku: digits repeated among peers) or E (Maze: decoded != label), [..., cell] bool."""
    return rules.violation_set(decoded, labels)


def query_classes(rules: TaskRules, viol: Tensor, sets: "NeighbourSets | None" = None) -> Tensor:
    """[..., cell] bool: True = violation-/error-adjacent (a peer / 4-neighbour is in V / E)."""
    nbr = (sets or neighbour_sets(rules, viol.device)).nbr
    return (nbr & viol[..., None, :]).any(-1)


def row_metrics(raw: Tensor, viol: Tensor, rules: TaskRules, sets: "NeighbourSets | None" = None) -> dict[str, Tensor]:
    """Metrics of every cell query row of ``raw`` [..., cell, key] (keys: any prefix keys first,
    then the cells), with V/E ``viol`` [..., cell] broadcastable to the rows' batch dims."""
    C = rules.n_cells
    sets = sets or neighbour_sets(rules, raw.device)
    raw = raw.float()
    cells = raw[..., -C:]
    total = cells.sum(-1)
    p = cells / total.clamp_min(1e-30)[..., None]
    v = viol.to(p.dtype)
    nbr, viol_nbr = _masses(p, v, sets, "nbr")
    out = {
        "nbr_mass": nbr,
        "entropy": -torch.special.xlogy(p, p).sum(-1) / math.log(C),
        "viol_mass": viol_nbr,
        "viol_mass_board": (p @ v.unsqueeze(-1)).squeeze(-1),  # v [..., cell] or [..., 1, cell]
        "prefix_mass": 1.0 - total if raw.shape[-1] > C else torch.zeros_like(total),
    }
    self_mass = torch.diagonal(p, dim1=-2, dim2=-1)  # [..., query]: the query's attention to itself
    out["nbr_mass_incl_self"] = out["nbr_mass"] + self_mass
    out["viol_mass_incl_self"] = viol_nbr + self_mass * v.expand(self_mass.shape)  # + itself when the query is in V/E
    if "n8" in sets.idx:
        out["mass_n8"] = _masses(p, None, sets, "n8")[0]
        out["mass_5x5"] = _masses(p, None, sets, "w5")[0]
        for key, mass, sk, nominal in (("n4", "nbr_mass", "nbr", 4), ("n8", "mass_n8", "n8", 8), ("5x5", "mass_5x5", "w5", 24)):
            out[f"density_{key}"] = out[mass] / sets.valid[sk].sum(-1).to(p.dtype)
            out[f"density_{key}_nominal"] = out[mass] / nominal
    return out


def query_metrics(task: str, pattern: "Tensor | np.ndarray", decoded: "Tensor | np.ndarray", query: int,
                  labels: "Tensor | np.ndarray | None" = None) -> dict:  # fmt: skip
    """The metrics of one query row of one head's attention map.

    ``pattern``: a raw [n, n] map over the cells (n = cells) or over prefix + cells (n > cells,
    the prefix first; its mass is then reported as ``prefix_mass``); ``decoded``: the z_H token
    grid [cells] (the reference's saved form); ``labels`` [cells]: Maze only. The row is
    renormalised over the cells first. Returns ``nbr_mass``, ``nbr_mass_incl_self``,
    ``entropy``, ``viol_mass``, ``viol_mass_board``, ``prefix_mass``, ``query_class`` (and the
    Maze densities)."""
    pat = torch.as_tensor(np.asarray(pattern)).float()
    dec = torch.as_tensor(np.asarray(decoded)).long().reshape(-1)
    rules = rules_for(task, dec.numel())
    C = rules.n_cells
    if pat.ndim != 2 or pat.shape[0] != pat.shape[1] or pat.shape[0] < C:
        raise InputError(f"pattern: expected one head's square map [n, n] with n >= {C} cells, got {tuple(pat.shape)}")
    if not 0 <= int(query) < C:
        raise InputError(f"query {query}: outside the grid's cells 0..{C - 1}")
    row = pat[int(query) - C]
    total = float(row.sum())  # a map over prefix + cells sums to 1; one cropped to the cells to at most 1
    bad_sum = not abs(total - 1.0) <= 1e-3 if pat.shape[0] > C else not 0.0 < total <= 1.0 + 1e-3
    if not torch.isfinite(pat).all() or (pat < 0).any() or bad_sum:
        raise InputError(f"pattern: expected attention probabilities (rows >= 0 summing to 1, softmax output: hook_pattern), "
                         f"got a row of query {query} summing to {float(row.sum()):.4g} with min {float(pat.min()):.4g}; "
                         "raw scores (hook_attn_scores) are not a pattern")  # fmt: skip
    lab = None if labels is None else torch.as_tensor(np.asarray(labels)).long().reshape(-1)
    viol = violation_set(rules, dec, lab)
    m = row_metrics(pat[-C:], viol, rules)
    out = {k: float(v[int(query)]) for k, v in m.items()}
    adj = bool(query_classes(rules, viol)[int(query)])
    out["query_class"] = rules.classes[0 if adj else 1]
    return out
