"""Causal locality of writes (issue 25.2, not in the paper): perturb one cell of a state and see
where the next updates carry the change.

For each update ``u`` of one ACT step (the **target**), the state it writes is perturbed at one
cell ``q`` of each puzzle (``act.{a}.{u}.hook_out``, the cell's position): seeded Gaussian noise of
norm ``noise`` x that cell's own norm (``source="noise"``), or the value another puzzle of the batch
has there (``"other"``, a seeded derangement). The rest of the rollout runs; at each of the next
``window`` updates (default: one ACT step's worth) every cell's output is compared with the clean
rollout's: the relative change ``||out' - out|| / ||out||`` per cell and whether its decoded token
changed. Cells are grouped by the task's geometry around ``q``: ``self``, the neighbours (Sudoku:
``peers``, row, column and box; Maze: ``N4`` and the diagonal rest of ``N8``) and ``elsewhere``.

The **locality** of a reading update is ``log(neighbour change / elsewhere change)`` per puzzle at
the first update after the perturbation (the one that reads it): above 0, the update carries the
change to the cell's neighbours more than to the rest of the grid. The contrast the issue asks
for pairs, on the same puzzles and cell, the first zL target read next by an L-update with the first
read next by an H-update (2x2 cycles: ``L0_0``, read by ``L0_1``, and ``L0_1``, read by ``H0``;
TRM's 3x6: ``L0_0`` and ``L0_5``); ``L - H`` > 0: the L-update writes more locally. The query cell is a seeded choice among each puzzle's non-given
cells (Sudoku blanks, Maze open cells), the same for every target.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from airinterp.analysis.run import Hooks, PuzzleBatch, puzzle_batches, rollout
from airinterp.analysis.stats import mean_ci, paired
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.hooks import Address, HookPoint, read_only, select
from airinterp.model.schedule import SubStep
from airinterp.tasks.dataset import PuzzleDataset
from airinterp.tasks.rules import TaskRules

SOURCES = ("noise", "other")


def geometry_classes(rules: TaskRules) -> dict[str, np.ndarray]:
    """Disjoint [cell, cell] bool masks, row ``q`` the cells of each class around query ``q``:
    ``self``, the task's neighbour classes (Sudoku ``peers``; Maze ``N4``, ``N8 diagonal``) and
    ``elsewhere`` (every other cell)."""
    n = rules.n_cells
    eye = np.eye(n, dtype=bool)
    if rules.name == "sudoku":
        near = {"peers": rules.neighbourhood("peers").numpy()}
    elif rules.name == "maze":
        n4, n8 = rules.neighbourhood("N4").numpy(), rules.neighbourhood("N8").numpy()
        near = {"N4": n4, "N8 diagonal": n8 & ~n4}
    else:
        raise InputError(f"write locality: no geometry for task {rules.name!r}")
    classes = {"self": eye, **{k: v & ~eye for k, v in near.items()}}
    taken = np.logical_or.reduce(list(classes.values()))
    classes["elsewhere"] = ~taken
    return classes


def neighbour_class(rules: TaskRules) -> str:
    """The class the locality index takes as the neighbourhood: Sudoku peers, Maze N4."""
    return "peers" if rules.name == "sudoku" else "N4"


def query_cells(free: np.ndarray, indices: np.ndarray, seed: int) -> np.ndarray:
    """One seeded non-given cell per puzzle (``free`` [puzzle, cell]), from a generator of (seed,
    puzzle index), so a puzzle's cell does not depend on its batch; -1 for a puzzle with none."""
    out = np.full(len(indices), -1, np.int64)
    for i, p in enumerate(indices):
        cells = np.flatnonzero(free[i])
        if cells.size:
            out[i] = cells[np.random.default_rng([seed, int(p), 7]).integers(cells.size)]
    return out


class _Outputs:
    """Keeps the cell part of chosen updates' outputs and their decoded tokens (read-only)."""

    def __init__(self, model: HookedAIR, substeps: "set[int]") -> None:
        self.model, self.substeps = model, substeps
        self.kept: dict[int, Tensor] = {}
        self.tokens: dict[int, Tensor] = {}

    def hooks(self, model: HookedAIR):
        C = model.config.seq_len

        @read_only
        def keep(x: Tensor, hook: HookPoint) -> None:
            addr = Address.parse(hook.name)  # type: ignore[arg-type]
            k = SubStep.of(model.schedule, addr.act, addr.update).flat  # type: ignore[arg-type]
            if k in self.substeps:
                self.kept[k] = x[:, -C:].float().clone()
                self.tokens[k] = model.unembed(x).argmax(-1)

        return [(select(site="hook_out", scope="update"), keep)]

    def start_batch(self, batch: PuzzleBatch, n_act: int) -> None:
        self.kept, self.tokens = {}, {}

    def end_batch(self) -> None:
        pass


@dataclass(frozen=True)
class WriteLocality:
    """``puzzles``: one row per (puzzle, target, offset, class): the target update (of ACT step
    ``act``) and the state it writes, the update ``reader`` (``act.{a}.{u}``) ``offset`` updates
    later and its stage, the class's
    mean relative change per cell (``change``) and share of cells whose decoded token changed
    (``flipped``); ``summary``: their means over puzzles with bootstrap CIs; ``locality``: per
    target, the locality index of the first reading update; ``contrast``: the paired L - H
    locality (module docstring)."""

    puzzles: pd.DataFrame
    summary: pd.DataFrame
    locality: pd.DataFrame
    contrast: pd.DataFrame
    act: int
    source: str
    noise: float

    def frame(self) -> pd.DataFrame:
        return self.puzzles


def check_write_locality(model: HookedAIR, n_puzzles: int, *, act: object, source: object, noise: object,
                         window: object) -> int:  # fmt: skip
    """The options of :func:`run_write_locality` checked before any rollout (an InputError names
    the first bad one); returns the window in updates (None: one ACT step's worth)."""
    c = model.config
    if source not in SOURCES:
        raise InputError(f"source {source!r}: expected noise or other")
    if isinstance(noise, bool) or not (isinstance(noise, (int, float)) and noise > 0):
        raise InputError(f"noise {noise!r}: expected a relative size > 0")
    if isinstance(act, bool) or not isinstance(act, int) or not 0 <= act < c.halt_max_steps:
        raise InputError(f"act {act!r}: expected an ACT step of the trained rollout, 0..{c.halt_max_steps - 1}")
    window = c.n_updates if window is None else window
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise InputError(f"window {window!r}: expected a whole number of updates >= 1")
    if source == "other" and n_puzzles < 2:
        raise InputError("source other: needs n_puzzles >= 2 (each puzzle takes another puzzle's value)")
    return window


def run_write_locality(
    model: HookedAIR,
    ds: PuzzleDataset,
    indices: np.ndarray,
    rules: TaskRules,
    *,
    act: int = 1,
    source: str = "noise",
    noise: float = 0.1,
    window: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> WriteLocality:
    """Perturb one cell of the state each update of ACT step ``act`` writes and follow the change
    over the next ``window`` updates (default: one ACT step's worth)."""
    c = model.config
    n = c.n_updates
    window = check_write_locality(model, len(indices), act=act, source=source, noise=noise, window=window)
    targets = [SubStep(act, u, n) for u in model.schedule]
    last = targets[-1].flat + window
    n_act = last // n + 1
    classes = geometry_classes(rules)
    near = neighbour_class(rules)
    rows = []
    for batch in puzzle_batches(model, ds, indices, batch_size):
        B = len(batch)
        free = ~np.asarray(rules.given_mask(batch.inputs.cpu().numpy()), bool)
        q = query_cells(free, batch.indices, seed)
        ok = q >= 0
        qt = torch.from_numpy(np.where(ok, q, 0)).to(batch.inputs.device)
        wanted = {k for t in targets for k in range(t.flat + 1, t.flat + window + 1)}
        clean = _Outputs(model, wanted)
        rollout(model, batch, n_act=n_act, recorders=[clean])
        donor = np.arange(B)  # source other: a cycle through a seeded order, nobody keeps its own value
        if source == "other":
            order = np.random.default_rng([seed, int(batch.indices[0]), 11]).permutation(B)
            donor[order] = order[np.r_[1:B, 0]]
            if B == 1:  # a last batch of one has no other puzzle
                ok[:] = False
        donor_t = torch.from_numpy(donor).to(batch.inputs.device)
        for t in targets:
            C = c.seq_len

            def perturb(x: Tensor, hook: HookPoint, t=t) -> Tensor:
                x = x.clone()
                pos = x.shape[1] - C + qt
                rows_ = torch.arange(B, device=x.device)
                cur = x[rows_, pos]
                if source == "noise":
                    g = np.stack([np.random.default_rng([seed, int(p), t.flat, 13]).standard_normal(x.shape[-1]) for p in batch.indices])
                    dirn = torch.from_numpy(g).to(x.dtype).to(x.device)
                    dirn = dirn / dirn.norm(dim=-1, keepdim=True)
                    new = cur + noise * cur.norm(dim=-1, keepdim=True) * dirn
                else:
                    new = x[donor_t, pos]  # the other puzzle's value at this puzzle's query cell
                keep = torch.from_numpy(ok).to(x.device)
                x[rows_, pos] = torch.where(keep[:, None], new, cur)
                return x

            pert = _Outputs(model, set(range(t.flat + 1, t.flat + window + 1)))
            rollout(model, batch, n_act=n_act, interventions=[Hooks([(f"{t.name}.hook_out", perturb)])], recorders=[pert])
            for off in range(1, window + 1):
                k = t.flat + off
                a, b = clean.kept[k], pert.kept[k]
                change = ((b - a).norm(dim=-1) / a.norm(dim=-1).clamp_min(1e-12)).cpu().numpy()  # [B, C]
                flipped = (pert.tokens[k] != clean.tokens[k]).cpu().numpy()
                reader = SubStep.at(model.schedule, k)
                for name, mask in classes.items():
                    m = mask[np.where(ok, q, 0)]  # [B, C]: this class around each puzzle's query
                    cnt = m.sum(1)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        ch = np.where(cnt > 0, (change * m).sum(1) / cnt, np.nan)
                        fl = np.where(cnt > 0, (flipped * m).sum(1) / cnt, np.nan)
                    for i in np.flatnonzero(ok):
                        rows.append((int(batch.indices[i]), int(q[i]), t.update.name, t.update.state, off, reader.name,
                                     reader.update.stage, name, float(ch[i]), float(fl[i])))  # fmt: skip
        if progress:
            progress(B)
    puzzles = pd.DataFrame(rows, columns=["puzzle", "query", "target", "state", "offset", "reader", "reader_stage", "class",
                                          "change", "flipped"])  # fmt: skip
    return _summarise(puzzles, near, act, source, noise, seed)


def _summarise(puzzles: pd.DataFrame, near: str, act: int, source: str, noise: float, seed: int) -> WriteLocality:
    rows = []
    keys = ["target", "state", "offset", "reader", "reader_stage", "class"]
    for key, g in puzzles.groupby(keys, sort=False):
        row = dict(zip(keys, key, strict=True))
        for m in ("change", "flipped"):
            ci = mean_ci(g[m].dropna().to_numpy(), seed, "write-locality", *key, m)
            row |= {m: ci["mean"], f"{m}_ci_low": ci["ci_low"], f"{m}_ci_high": ci["ci_high"]}
        row["n"] = int(g["change"].notna().sum())
        rows.append(row)
    summary = pd.DataFrame(rows)
    first = puzzles[puzzles.offset == 1].pivot_table(index=["puzzle", "target", "state", "reader", "reader_stage"], columns="class",
                                                   values="change").reset_index()  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        first["locality"] = np.log(first[near] / first["elsewhere"])
    loc_rows = []
    for (target, state, reader, stage), g in first.groupby(["target", "state", "reader", "reader_stage"], sort=False):
        v = g["locality"].replace([np.inf, -np.inf], np.nan).dropna().to_numpy()
        ci = mean_ci(v, seed, "locality", target)
        loc_rows.append({"target": target, "state": state, "reader": reader, "reader_stage": stage, "neighbours": near,
                         "locality": ci["mean"], "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "n": ci["n"]})  # fmt: skip
    locality = pd.DataFrame(loc_rows)
    if len(locality):  # in the schedule's order (the pivot sorted the targets by name)
        order = {t: i for i, t in enumerate(dict.fromkeys(puzzles.target))}
        locality = locality.sort_values("target", key=lambda col: col.map(order), kind="stable").reset_index(drop=True)
    contrast = pd.DataFrame()
    # the two zL targets of the first H-cycle: read next by an L-update and by an H-update
    zl = locality[locality.state == "zL"]
    by_stage = {s: zl[zl.reader_stage == s].target.iloc[0] for s in ("L", "H") if (zl.reader_stage == s).any()}
    if len(by_stage) == 2:
        lt, ht = by_stage["L"], by_stage["H"]
        a = first[first.target == lt].set_index("puzzle")["locality"]
        b = first[first.target == ht].set_index("puzzle")["locality"]
        both = a.index.intersection(b.index)
        a, b = a.loc[both].to_numpy(), b.loc[both].to_numpy()
        keep = np.isfinite(a) & np.isfinite(b)
        p = paired(b[keep], a[keep], seed, "locality L - H")
        contrast = pd.DataFrame([{"quantity": f"locality L - H (zL perturbed; read by {zl[zl.target == lt].reader.iloc[0]} vs "
                                              f"{zl[zl.target == ht].reader.iloc[0]})", "L_target": lt, "H_target": ht,
                                  "L_mean": p["treated_mean"], "H_mean": p["base_mean"], "delta_mean": p["delta_mean"],
                                  "delta_ci_low": p["delta_ci_low"], "delta_ci_high": p["delta_ci_high"],
                                  "p_sign_flip": p["p_sign_flip"], "n": p["n"]}])  # fmt: skip
    return WriteLocality(puzzles=puzzles, summary=summary, locality=locality, contrast=contrast, act=act, source=source, noise=noise)
