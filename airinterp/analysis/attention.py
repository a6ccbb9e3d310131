"""Attention locality (AIR_SPEC 4.d): L- vs H-update attention per layer and head, streamed.

For each analysed ACT step ``a`` the first L-update (``L0_0``) and the first H-update (``H0``) are
compared at every layer and head. Each query row of the pattern is cut to the cell keys and
renormalised over them (the mass on the prefix, which that discards, is reported as
``prefix_mass``). Per row:

- ``nbr_mass``: mass on the query's neighbourhood, the query excluded (Sudoku: its 20 peers;
  Maze: its 4-neighbours); ``nbr_mass_incl_self`` adds the query itself (the Sudoku reference's);
- ``entropy``: H(p) / log(n_cells);
- ``viol_mass``: mass on violated peers (Sudoku: N(q) with q excluded, intersected with V; Maze:
  N4(q) intersected with E), the definition the paper's data implies; ``viol_mass_incl_self`` adds
  the query itself when it is in V / E (one query convention with ``nbr_mass_incl_self``, the
  reproduction table's); ``viol_mass_board``: mass
  on every violated/erroneous cell (the released Sudoku code's, A10);
- Maze also: ``mass_n8`` / ``mass_5x5`` and densities with the actual neighbour count
  (``density_n4`` ...) and the nominal 4 / 8 / 24 (``density_n4_nominal`` ..., A14).

Queries: Sudoku input blanks; Maze label-path cells (S and G are other tokens). V (Sudoku: digits
repeated among peers) / E (Maze: decoded != label) come from the decoded z_H that both compared
updates read (default, ``violations="pre"``: z_H carried into the step) or, as the reference,
from z_H after ``H0`` (``"post_h0"``, one extra decode pass). Class: violation-/error-adjacent if
a peer (Maze: a 4-neighbour) is in V / E, else control.

Contrasts: ``delta = L - H`` for every metric except entropy, where ``delta = H - L`` (positive:
L more local, more focused, more on violations). Aggregation: head average per row, mean over
each puzzle's rows per class (all analysed steps together), mean over puzzles with a seeded
puzzle-level bootstrap CI and the normal 1.96 sd / sqrt(n_puzzles) one. Labelled reference
options: the best head per row (ranked by delta_nbr + delta_viol + 0.5 delta_ent) and pooled rows
with 1.96 sd / sqrt(n_rows).

Streamed: the metrics are computed inside read-only hooks as each pattern is produced and folded
into per-(puzzle, step, layer, head, class) sums; no pattern outlives its hook.
"""


import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from airinterp.analysis.attention_example import (
    AttentionExample,
    attention_example,
    check_example,
    propose_examples,
)
from airinterp.analysis.attention_metrics import (
    PAPER_STEPS,
    PER_HEAD,
    compared_updates,
    default_steps,
    head_score,
    metric_names,
    neighbour_sets,
    query_classes,
    query_metrics,
    row_metrics,
    sign,
    violation_set,
)
from airinterp.analysis.run import Hook, PuzzleBatch, puzzle_batches, rollout
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.hooks import HookPoint, read_only
from airinterp.tasks.rules import rules_for

# ---- the streamed recorder -------------------------------------------------------------------------


@dataclass(frozen=True)
class PooledRows:
    """Sums over every query row of the head-averaged deltas [layer, class, metric] (``n``: rows)."""

    sum: Tensor
    sq: Tensor
    pos: Tensor
    n: Tensor


class AttentionRecorder:
    """Folds L0_0 vs H0 attention metrics of the analysed steps into per-puzzle sums."""

    def __init__(self, model: HookedAIR, steps: Sequence[int], *, violations: str = "pre") -> None:
        if violations not in ("pre", "post_h0"):
            raise InputError(f"violations {violations!r}: expected 'pre' (the z_H both updates read) or 'post_h0'")
        c = model.config
        self.model = model
        self.rules = rules_for(c.task, c.seq_len)
        self.steps = list(steps)
        self.violations = violations
        self.updates = compared_updates(model.schedule)
        self.metrics = metric_names(c.task)
        self.sets = neighbour_sets(self.rules, model.device)
        self.parts: list[dict[str, np.ndarray]] = []
        if c.mlp_t:
            raise InputError("attention locality: this model's blocks have no attention (TRM mlp_t mixes positions with an MLP)")
        #: layers compared: those both updates' stacks have (HRM's two stacks may differ in depth)
        self.n_layers = min(c.layers_of("L"), c.layers_of("H"))
        Ly, M = self.n_layers, len(self.metrics)
        #: the reference script's pooled rows, per (layer, class): head-averaged deltas summed over every row
        self.pooled = PooledRows(sum=torch.zeros(Ly, 2, M, dtype=torch.float64), sq=torch.zeros(Ly, 2, M, dtype=torch.float64),
                                 pos=torch.zeros(Ly, 2, M, dtype=torch.long), n=torch.zeros(Ly, 2, dtype=torch.long))  # fmt: skip
        self.post_viol: dict[int, Tensor] | None = None  # step -> V/E from the pre-pass (post_h0)

    # -- hooks
    def hooks(self, model: HookedAIR) -> list[Hook]:
        hooks: list[Hook] = []
        if self.violations == "pre":
            for si, a in enumerate(self.steps):
                site = model.state_site(model.config.output_state, before=f"act.{a}.{self.updates[0]}")
                hooks.append((site, self._on_state(si)))
        for si, a in enumerate(self.steps):
            for ui, u in enumerate(self.updates):
                for layer in range(self.n_layers):
                    hooks.append((f"act.{a}.{u}.blocks.{layer}.attn.hook_pattern", self._on_pattern(si, ui, layer)))
        return hooks

    def _on_state(self, si: int) -> Callable:
        @read_only
        def fn(x: Tensor, hook: HookPoint) -> None:
            self._set_step(si, violation_set(self.rules, self.model.decode(x), self._labels))

        return fn

    def _set_step(self, si: int, viol: Tensor) -> None:
        self._viol[si] = viol
        self._cls[si] = query_classes(self.rules, viol, self.sets)  # True: adjacent

    def _on_pattern(self, si: int, ui: int, layer: int) -> Callable:
        @read_only
        def fn(pattern: Tensor, hook: HookPoint) -> None:
            C = self.rules.n_cells
            rows = pattern[:, :, -C:, :]  # cell query rows (prefix / level-token rows dropped)
            # a few heads at a time, so the temporaries stay near one pattern's size
            step = max(1, (1 << 24) // max(1, rows[:, :1].numel()))
            parts = []
            for h0 in range(0, rows.shape[1], step):
                m = row_metrics(rows[:, h0 : h0 + step], self._viol[si][:, None, :], self.rules, self.sets)
                parts.append(torch.stack([m[k] for k in self.metrics], -1))
            stacked = torch.cat(parts, 1)  # [B, head, cell, M]
            if ui == 0:
                self._held[layer] = stacked
                return
            self._fold(si, layer, self._held.pop(layer), stacked)

        return fn

    def _fold(self, si: int, layer: int, L: Tensor, H: Tensor) -> None:
        q = self._queries  # [B, C]
        adj = self._cls[si]  # [B, C]
        sgn = torch.tensor([sign(k) for k in self.metrics], device=L.device, dtype=L.dtype)
        delta = (L - H) * sgn  # [B, head, cell, M]
        for ci, cmask in enumerate((adj & q, ~adj & q)):
            w = cmask[:, None, :, None].to(L.dtype)
            self._sum_L[:, si, layer, :, ci] = (L * w).sum(2).double()
            self._sum_H[:, si, layer, :, ci] = (H * w).sum(2).double()
            # best head per row (reference option): the head with the largest score
            k = {m: i for i, m in enumerate(self.metrics)}
            score = head_score({m: L[..., i] for m, i in k.items()}, {m: H[..., i] for m, i in k.items()}, self.rules.name)
            best = score.argmax(1)  # [B, cell]
            chosen = torch.gather(delta, 1, best[:, None, :, None].expand(-1, 1, -1, delta.shape[-1]))[:, 0]
            self._sum_best[:, si, layer, ci] = (chosen * cmask[..., None]).sum(1).double()
            havg = delta.mean(1)  # [B, cell, M]: head average per row
            sel = havg[cmask]  # [rows, M]
            self.pooled.sum[layer, ci] += sel.double().sum(0).cpu()
            self.pooled.sq[layer, ci] += sel.double().square().sum(0).cpu()
            self.pooled.pos[layer, ci] += (sel > 0).sum(0).cpu()
            self.pooled.n[layer, ci] += sel.shape[0]
        self._n[:, si] = torch.stack(((adj & q).sum(1), (~adj & q).sum(1)), 1)

    # -- batches
    def start_batch(self, batch: PuzzleBatch, n_act: int) -> None:
        c = self.model.config
        B, S, Ly, Hh, M = len(batch), len(self.steps), self.n_layers, c.num_heads, len(self.metrics)
        dev = batch.inputs.device
        labels = torch.from_numpy(batch.labels).to(dev)
        self._labels = labels
        self._queries = self.rules.query_mask(batch.inputs, labels)
        self._viol: dict[int, Tensor] = {}
        self._cls: dict[int, Tensor] = {}
        self._held: dict[int, Tensor] = {}
        if self.post_viol is not None:
            for si in range(S):
                self._set_step(si, self.post_viol[si])
        z = lambda *shape: torch.zeros(*shape, dtype=torch.float64, device=dev)  # noqa: E731
        self._sum_L, self._sum_H = z(B, S, Ly, Hh, 2, M), z(B, S, Ly, Hh, 2, M)
        self._sum_best = z(B, S, Ly, 2, M)
        self._n = torch.zeros(B, S, 2, dtype=torch.long, device=dev)
        self._batch = batch

    def end_batch(self) -> None:
        self.parts.append({
            "indices": self._batch.indices, "sum_L": self._sum_L.cpu().numpy(), "sum_H": self._sum_H.cpu().numpy(),
            "sum_best": self._sum_best.cpu().numpy(), "n": self._n.cpu().numpy(),
        })  # fmt: skip
        self._held.clear()


class _PostH0:
    """Pre-pass of the ``post_h0`` option: z_H decoded after H0 of each analysed step."""

    def __init__(self, rec: AttentionRecorder) -> None:
        self.rec = rec
        self.viol: dict[int, Tensor] = {}

    def hooks(self, model: HookedAIR) -> list[Hook]:
        out = []
        for si, a in enumerate(self.rec.steps):
            @read_only
            def fn(x, hook, si=si):
                self.viol[si] = violation_set(self.rec.rules, model.decode(x), self._labels)

            out.append((f"act.{a}.{self.rec.updates[1]}.hook_out", fn))
        return out

    def start_batch(self, batch: PuzzleBatch, n_act: int) -> None:
        self._labels = torch.from_numpy(batch.labels).to(batch.inputs.device)

    def end_batch(self) -> None:
        pass


# ---- the experiment and its tables -----------------------------------------------------------------


@dataclass(frozen=True)
class AttentionResult:
    puzzles: pd.DataFrame  # per (puzzle, layer, class, metric): L, H, delta (head average)
    summary: pd.DataFrame  # per (method, layer, class, metric): across puzzles, with CIs
    heads: pd.DataFrame  # per (layer, head, class, metric): across puzzles, with CIs
    steps: list[int]
    updates: tuple[str, str] = ("L0_0", "H0")  # the compared (L, H) updates

    @classmethod
    def empty(cls, steps: "list[int]") -> "AttentionResult":
        """No attention to analyse (TRM mlp_t): the tables with their columns and no rows."""
        summary_cols = ["method", "layer", "class", "metric", "delta_mean", "ci_low", "ci_high", "ci95_normal", "pct_positive",
                        "n_puzzles", "n_rows", "L_mean", "H_mean"]  # fmt: skip
        return cls(puzzles=pd.DataFrame(columns=["puzzle", "layer", "class", "metric", "L", "H", "delta", "n_rows"]),
                   summary=pd.DataFrame(columns=summary_cols),
                   heads=pd.DataFrame(columns=["layer", "head", "class", "metric", "delta_mean", "ci_low", "ci_high", "n_puzzles"]),
                   steps=list(steps))  # fmt: skip


def run_attention(
    model: HookedAIR,
    ds,
    indices: np.ndarray,
    *,
    steps: Sequence[int] | None = None,
    violations: str = "pre",
    batch_size: int = 16,
    seed: int = 0,
    per_head: bool = False,
    progress: Callable[[int], None] | None = None,
) -> AttentionResult:
    """The L0_0-vs-H0 attention analysis of the puzzles ``indices`` (module docstring).
    ``per_head``: also the across-puzzle contrasts of every head (``heads``; the main metrics)."""
    from airinterp.analysis.stats import mean_ci

    n_act = model.config.halt_max_steps
    steps = default_steps(n_act) if steps is None else sorted(set(steps))
    bad = [a for a in steps if not 0 <= a < n_act]
    if not steps or bad:
        raise InputError(f"steps {steps}: ACT steps must lie in 0..{n_act - 1} (the rollout's {n_act} steps)")
    rec = AttentionRecorder(model, steps, violations=violations)
    for batch in puzzle_batches(model, ds, indices, batch_size):
        if violations == "post_h0":
            pre = _PostH0(rec)
            rollout(model, batch, n_act=max(steps) + 1, recorders=[pre])
            rec.post_viol = pre.viol
        rollout(model, batch, n_act=max(steps) + 1, recorders=[rec])
        rec.post_viol = None
        if progress:
            progress(len(batch))
    cat = {k: np.concatenate([p[k] for p in rec.parts]) for k in rec.parts[0]}
    classes = rec.rules.classes
    Ly, Hh = rec.n_layers, model.config.num_heads
    n = cat["n"].sum(1)  # [P, 2]
    sL, sH = cat["sum_L"].sum(1), cat["sum_H"].sum(1)  # [P, layer, head, class, M]
    sgn = np.array([sign(m) for m in rec.metrics])
    rows, summary, heads = [], [], []
    with np.errstate(invalid="ignore", divide="ignore"):
        mL = sL.mean(2) / n[:, None, :, None]  # head average per row, mean over the puzzle's rows
        mH = sH.mean(2) / n[:, None, :, None]
        best = cat["sum_best"].sum(1) / n[:, None, :, None]
        perhead = (sL - sH) * sgn / n[:, None, None, :, None]
    for layer in range(Ly):
        for ci, cname in enumerate(classes):
            has = n[:, ci] > 0
            for mi, m in enumerate(rec.metrics):
                d = sgn[mi] * (mL[:, layer, ci, mi] - mH[:, layer, ci, mi])
                rows.append(pd.DataFrame({"puzzle": cat["indices"][has], "layer": layer, "class": cname, "metric": m,
                                          "L": mL[has, layer, ci, mi], "H": mH[has, layer, ci, mi], "delta": d[has],
                                          "n_rows": n[has, ci]}))  # fmt: skip
                for method, vals in (("head_mean", d[has]), ("best_head (reference option)", best[has, layer, ci, mi])):
                    s = mean_ci(vals, seed, "attention", method, layer, cname, m)
                    summary.append({
                        "method": method, "layer": layer, "class": cname, "metric": m, "delta_mean": s["mean"],
                        "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                        "ci95_normal": 1.96 * s["sd"] / math.sqrt(s["n"]) if s["n"] > 1 else math.nan,
                        "pct_positive": float((vals > 0).mean()) if len(vals) else math.nan,
                        "n_puzzles": int(has.sum()), "n_rows": int(n[has, ci].sum()),
                        "L_mean": float(np.nanmean(mL[has, layer, ci, mi])) if has.any() else math.nan,
                        "H_mean": float(np.nanmean(mH[has, layer, ci, mi])) if has.any() else math.nan,
                    })  # fmt: skip
                pn = int(rec.pooled.n[layer, ci])
                if pn:
                    mean = float(rec.pooled.sum[layer, ci, mi]) / pn
                    var = max(float(rec.pooled.sq[layer, ci, mi]) / pn - mean * mean, 0.0) * pn / max(pn - 1, 1)
                    summary.append({"method": "pooled_rows (reference's released script)", "layer": layer, "class": cname,
                                    "metric": m, "delta_mean": mean, "ci95_normal": 1.96 * math.sqrt(var / pn),
                                    "pct_positive": float(rec.pooled.pos[layer, ci, mi]) / pn, "n_puzzles": int(has.sum()),
                                    "n_rows": pn})  # fmt: skip
                for h in range(Hh if per_head and m in PER_HEAD else 0):
                    s = mean_ci(perhead[has, layer, h, ci, mi], seed, "attention-head", layer, h, cname, m)
                    heads.append({"layer": layer, "head": h, "class": cname, "metric": m, "delta_mean": s["mean"],
                                  "ci_low": s["ci_low"], "ci_high": s["ci_high"], "n_puzzles": int(has.sum())})  # fmt: skip
    heads_df = pd.DataFrame(heads, columns=["layer", "head", "class", "metric", "delta_mean", "ci_low", "ci_high", "n_puzzles"])
    return AttentionResult(puzzles=pd.concat(rows, ignore_index=True), summary=pd.DataFrame(summary),
                           heads=heads_df, steps=list(steps), updates=rec.updates)  # fmt: skip


__all__ = [
    "PAPER_STEPS", "PER_HEAD", "AttentionExample", "AttentionRecorder", "AttentionResult", "attention_example",
    "check_example", "compared_updates", "default_steps", "head_score", "metric_names", "propose_examples",
    "query_classes", "query_metrics", "row_metrics", "run_attention", "sign", "violation_set",
]  # fmt: skip
