"""One query's attention across ACT steps, its temporal persistence, and the example selector (spec 4.e).

:func:`attention_example` keeps the raw rows of one query of one puzzle for the compared L- and
H-update (:func:`~airinterp.analysis.attention_metrics.compared_updates`) at each shown step;
:func:`propose_examples` ranks candidate (puzzle, query, head) examples by spec 4.e's scores.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from airinterp.analysis.attention_metrics import (
    compared_updates,
    default_steps,
    head_score,
    query_metrics,
    row_metrics,
    violation_set,
)
from airinterp.analysis.run import Hook, Hooks, PuzzleBatch, puzzle_batches, rollout
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.hooks import read_only
from airinterp.tasks.rules import SudokuRules, rules_for


@dataclass(frozen=True)
class AttentionExample:
    """Raw attention rows of one query for L (``L0_0``) and H (``H0``) at each step.

    ``rows``: tidy (step, update, cell, attention) with the raw, not renormalised, row over the
    cells; ``grids``: per step the decoded z_H both updates read and its V/E set; ``metrics``: per
    (step, update) :func:`query_metrics`; ``persistence``: top-k overlap between consecutive steps."""

    task: str
    puzzle: int
    query: int
    layer: int
    head: int
    side: int
    rows: pd.DataFrame
    grids: dict
    metrics: pd.DataFrame
    persistence: pd.DataFrame
    inputs: np.ndarray
    labels: np.ndarray


def check_example(model: HookedAIR, query: int, layer: int, head: int | None, steps: Sequence[int], top_k: int = 5) -> None:
    c = model.config
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k < c.seq_len:
        raise InputError(f"top_k {top_k!r}: expected 1..{c.seq_len - 1} (the grid has {c.seq_len} cells; "
                         f"k = {c.seq_len} would overlap fully by definition)")  # fmt: skip
    side = math.isqrt(c.seq_len)
    if not 0 <= query < c.seq_len:
        raise InputError(f"query {query} (row {query // side}, col {query % side}) is outside the {side}x{side} grid")
    if c.mlp_t:
        raise InputError("attention example: this model's blocks have no attention (TRM mlp_t mixes positions with an MLP)")
    n_layers = min(c.layers_of("L"), c.layers_of("H"))
    if not 0 <= layer < n_layers:
        raise InputError(f"layer {layer}: the stack has layers 0..{n_layers - 1}")
    if head is not None and not 0 <= head < c.num_heads:
        raise InputError(f"head {head}: the model has heads 0..{c.num_heads - 1}")
    bad = [a for a in steps if not 0 <= a < c.halt_max_steps]
    if not steps or bad:
        raise InputError(f"steps {list(steps)}: ACT steps must lie in 0..{c.halt_max_steps - 1}")


def attention_example(
    model: HookedAIR, batch: PuzzleBatch, query: int, *, layer: int = 0, head: int | None = None,
    steps: Sequence[int] | None = None, top_k: int = 5,
) -> AttentionExample:  # fmt: skip
    """One puzzle's (``batch`` of one) query row at ``layer``/``head`` across ``steps``. ``head``
    None: the head with the largest score delta_nbr + delta_viol + 0.5 delta_ent at the first step."""
    c = model.config
    steps = default_steps(c.halt_max_steps) if steps is None else sorted(set(steps))
    check_example(model, query, layer, head, steps, top_k)
    if len(batch) != 1:
        raise InputError("attention_example: a batch of one puzzle")
    rules = rules_for(c.task, c.seq_len)
    C = rules.n_cells
    lu, hu = compared_updates(model.schedule)
    kept: dict[tuple[int, str], Tensor] = {}
    grids: dict[int, dict] = {}
    labels = torch.from_numpy(batch.labels).to(batch.inputs.device)

    hooks: list[Hook] = []
    for a in steps:
        @read_only
        def on_state(x, hook, a=a):
            dec = model.decode(x)
            grids[a] = {"decoded": dec[0].cpu().numpy(), "violations": violation_set(rules, dec, labels)[0].cpu().numpy()}

        hooks.append((model.state_site(model.config.output_state, before=f"act.{a}.{lu}"), on_state))
        for u in (lu, hu):
            @read_only
            def on_pattern(p, hook, a=a, u=u):
                kept[(a, u)] = p[0, :, -C:, :].float().cpu()  # [head, cell query, key], on the CPU

            hooks.append((f"act.{a}.{u}.blocks.{layer}.attn.hook_pattern", on_pattern))
    rollout(model, batch, n_act=max(steps) + 1, interventions=[Hooks(hooks)])
    viol0 = torch.from_numpy(grids[steps[0]]["violations"])
    if head is None:
        mL = row_metrics(kept[(steps[0], lu)], viol0, rules)  # [head, cell]
        mH = row_metrics(kept[(steps[0], hu)], viol0, rules)
        head = int(head_score(mL, mH, c.task)[:, query].argmax())
    qmask = rules.query_mask(batch.inputs, torch.from_numpy(batch.labels).to(batch.inputs.device))
    is_query = bool(qmask[0, query])
    rows, mets = [], []
    for a in steps:
        for u in (lu, hu):
            full = kept[(a, u)][head]  # [cell query, key]
            raw = full[query, -C:].numpy()
            rows.append(pd.DataFrame({"step": a, "update": u, "cell": np.arange(C), "attention": raw}))
            r = query_metrics(c.task, full.numpy() if full.shape[-1] == C else _square(full), grids[a]["decoded"], query,
                              batch.labels[0])  # fmt: skip
            if not is_query:  # its class would name a query class it does not belong to
                r["query_class"] = "not a query cell"
            mets.append({"step": a, "update": u, **r})
    rows_df = pd.concat(rows, ignore_index=True)
    pers = []
    for u in (lu, hu):
        tops = [set(np.argsort(-rows_df[(rows_df["step"] == a) & (rows_df["update"] == u)].attention.to_numpy())[:top_k].tolist()) for a in steps]
        for i in range(1, len(steps)):
            pers.append({"update": u, "from_step": steps[i - 1], "to_step": steps[i], "top_k": top_k,
                         "overlap": len(tops[i - 1] & tops[i]) / top_k})  # fmt: skip
    return AttentionExample(task=c.task, puzzle=int(batch.indices[0]), query=query, layer=layer, head=head, side=rules.side,
                            rows=rows_df, grids=grids, metrics=pd.DataFrame(mets),
                            persistence=pd.DataFrame(pers, columns=["update", "from_step", "to_step", "top_k", "overlap"]),
                            inputs=batch.inputs[0].cpu().numpy(), labels=batch.labels[0])  # fmt: skip


def _square(full: Tensor) -> np.ndarray:
    """[cell, prefix + cell] query rows -> a square [prefix + cell]^2 map (prefix rows zero),
    the form :func:`query_metrics` takes when prefix mass is to be reported."""
    C, T = full.shape
    out = torch.zeros(T, T)
    out[T - C :] = full
    return out.numpy()


def propose_examples(model: HookedAIR, ds, indices: np.ndarray, *, step: int, layer: int = 0, n: int = 3,
                     seed: int = 0, batch_size: int = 16) -> pd.DataFrame:  # fmt: skip
    """Candidate (puzzle, query, head) examples ranked by spec 4.e's scores: cell score
    2 * violated peers + 0.5 * ambiguity (Sudoku: distinct digits among the peers; Maze: erroneous
    4-neighbours), head score delta_nbr + delta_viol + 0.5 delta_ent of the best head; composite
    1.5 * cell + 1.5 * head (each scaled to [0, 1] over the candidates). The top ``n`` are drawn
    from the best ``5 n`` with a seeded generator, so reruns agree and near-ties do not always
    pick the same puzzle. (The z_L BLANK-flip term of the reference's scorer is left out: it is
    0 whenever z_L never decodes BLANK, as in our shipped models.)"""
    c = model.config
    check_example(model, 0, layer, None, [step])
    rules = rules_for(c.task, c.seq_len)
    lu, hu = compared_updates(model.schedule)
    found = []
    for batch in puzzle_batches(model, ds, indices, batch_size):
        held: dict[str, Tensor] = {}

        hooks: list[Hook] = []
        for u in (lu, hu):
            @read_only
            def fn(p, hook, u=u):
                held[u] = p[:, :, -rules.n_cells :, :].float().clone()

            hooks.append((f"act.{step}.{u}.blocks.{layer}.attn.hook_pattern", fn))

        @read_only
        def st(x, hook):
            held["dec"] = model.decode(x)

        hooks.append((model.state_site(model.config.output_state, before=f"act.{step}.{lu}"), st))
        rollout(model, batch, n_act=step + 1, interventions=[Hooks(hooks)])
        labels = torch.from_numpy(batch.labels).to(batch.inputs.device)
        viol = violation_set(rules, held["dec"], labels)
        queries = rules.query_mask(batch.inputs, labels)
        nbr = rules.neighbourhood().to(viol.device)
        n_viol = (nbr & viol[:, None, :]).sum(-1).float()  # [B, C]
        if isinstance(rules, SudokuRules):  # distinct digits among the query's peers in the decoded z_H
            digits = rules.digit_one_hot(held["dec"]).float()  # [B, C, digit]
            ambiguity = ((nbr.float() @ digits) > 0).sum(-1).float()
        else:
            ambiguity = torch.zeros_like(n_viol)
        mL = row_metrics(held[lu], viol[:, None, :], rules)
        mH = row_metrics(held[hu], viol[:, None, :], rules)
        hs = head_score(mL, mH, c.task)
        best_score, best_head = hs.max(1)  # [B, C]
        for b, q in torch.nonzero(queries).tolist():
            found.append({"puzzle": int(batch.indices[b]), "query": q, "row": q // rules.side, "col": q % rules.side,
                          "head": int(best_head[b, q]), "violated_neighbours": int(n_viol[b, q]),
                          "cell_score": float(2 * n_viol[b, q] + 0.5 * ambiguity[b, q]), "head_score": float(best_score[b, q])})  # fmt: skip
    df = pd.DataFrame(found)
    if df.empty:
        return df
    scale = lambda x: (x - x.min()) / (x.max() - x.min()) if x.max() > x.min() else x * 0  # noqa: E731
    df["score"] = 1.5 * scale(df.cell_score) + 1.5 * scale(df.head_score)
    top = df.sort_values(["score", "puzzle", "query"], ascending=[False, True, True]).head(5 * n)
    pick = np.random.default_rng(seed).choice(len(top), size=min(n, len(top)), replace=False)
    return top.iloc[np.sort(pick)].reset_index(drop=True)
