"""How the states converge (issue 25.1, not in the paper): a layer lens over every update, the
commit point of each cell, and fixed-point residuals, also past the trained rollout length.

One rollout per batch with read-only hooks (:class:`ConvergenceRecorder`), nothing cached:

- **Layer lens.** After every block ``l`` of every update ``k`` the residual stream
  (``act.{a}.{u}.blocks.{l}.hook_resid_post``) is decoded through the LM head
  (:meth:`HookedAIR.unembed`, argmax over all tokens, the same as :mod:`decode`); per puzzle the
  ``accuracy`` (non-given cells decoded to their label) and the mean softmax ``entropy`` (nats,
  over the vocabulary) of those cells. The block outputs of an update are partial values of the
  state it writes, so update ``k``'s layers belong to ``state_of[k]``; at the last block the lens
  is the decode of the update's output (a tested identity).
- **Commit point.** Along each state's own timeline (its updates' layers, in order), the first
  (sub-step, layer) from which the cell's decode equals the model's **answer** (the output at
  the trained length: ``min(n_act, halt_max_steps)`` ACT steps) and never leaves it until then;
  ``-1`` where the state ends on another token (it never commits to the answer). Streamed: a
  running token and the position its current run began, per cell.
- **Fixed-point residual.** Per update, ``||f(z) - z|| / ||z||`` between the state the update
  overwrites (``hook_state_in``) and what it writes (``hook_out``), over the whole state (every
  position, puzzle prefix included), per puzzle; per ACT step, the same between a carried state
  and its value one ACT step earlier (``hook_zH``/``hook_zL``; step 0 against the initial state).
- **Past the trained length.** With ``n_act`` above ``halt_max_steps`` (the CLI's default is
  twice it) the rollout goes on; per puzzle the answer at the trained length and at the end
  say whether wrong answers stay trapped or escape (and right ones drift).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from airinterp.analysis.run import Hook, PuzzleBatch, puzzle_batches, rollout
from airinterp.analysis.stats import mean_ci, rate_ci
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.hooks import Address, HookPoint, read_only, select
from airinterp.model.inputs import check_n_act
from airinterp.model.schedule import SubStep, substep_names
from airinterp.tasks.dataset import PuzzleDataset
from airinterp.tasks.rules import TaskRules

#: the CLI's and the report's rollout length, in multiples of the trained halt_max_steps
DEFAULT_LENGTH = 2


def relative_change(new: Tensor, old: Tensor) -> Tensor:
    """``||new - old|| / ||old||`` per batch row (Frobenius over every other axis), float32; 0 where
    both are 0, inf where only ``old`` is."""
    if new.shape != old.shape:
        raise InputError(f"relative_change: shapes {tuple(new.shape)} and {tuple(old.shape)} differ")
    d = (new.float() - old.float()).flatten(1).norm(dim=1)
    n = old.float().flatten(1).norm(dim=1)
    return torch.where(n > 0, d / n.clamp_min(torch.finfo(torch.float32).tiny), torch.where(d > 0, math.inf, 0.0))


def commit_points(tokens: np.ndarray, answer: np.ndarray) -> np.ndarray:
    """[..., T, cell] tokens along one timeline and [..., cell] answers -> [..., cell] the first
    position from which every token equals the answer (``-1``: the last token is not the answer).
    The oracle of :class:`ConvergenceRecorder`'s streamed commit points."""
    tokens, answer = np.asarray(tokens), np.asarray(answer)
    T = tokens.shape[-2]
    same = tokens == answer[..., None, :]
    # the last position where the token differs from the answer; commit = the position after it
    differs = np.where(~same, np.arange(T)[:, None], -1).max(-2)
    return np.where(same[..., -1, :], differs + 1, -1)


class ConvergenceRecorder:
    """Streams the layer lens, commit points and residuals of each batch (module docstring)."""

    def __init__(self, model: HookedAIR, rules: TaskRules, n_act: int, answer_act: int | None = None) -> None:
        c = model.config
        self.model = model
        self.rules = rules
        self.n_act = n_act
        # the length whose output is "the answer": the trained one, or what the caller analyses
        self.trained_act = min(n_act, c.halt_max_steps if answer_act is None else check_n_act(answer_act, c.halt_max_steps))
        self.schedule = model.schedule
        self.n_updates = len(self.schedule)
        self.layers = [len(model.stack(u.stage)) for u in self.schedule]  # per update of one ACT step
        self.n_layers = max(self.layers)
        self.answer_state = self.schedule[-1].state  # the state the logits read (zH; TRM single-z: zL)
        self.answer_k = self.trained_act * self.n_updates - 1  # its last write at the trained length
        self.batches: list[Convergence] = []

    # ---- hooks -------------------------------------------------------------------------------------
    def hooks(self, model: HookedAIR) -> list[Hook]:
        @read_only
        def on_layer(x: Tensor, hook: HookPoint) -> None:
            addr = Address.parse(hook.name)  # type: ignore[arg-type]
            s = SubStep.of(self.schedule, addr.act, addr.update)  # type: ignore[arg-type]
            k, layer = s.flat, int(addr.layer)  # type: ignore[arg-type]
            logits = model.unembed(x).float()
            logp = logits.log_softmax(-1)
            tok = logits.argmax(-1)
            ent = -(logp.exp() * logp).sum(-1)
            free = self._free
            self._acc[:, k, layer] = ((tok == self._labels) & free).sum(1) / self._n_free
            self._ent[:, k, layer] = (ent * free).sum(1) / self._n_free
            st = s.update.state
            t = k * self.n_layers + layer
            if st in self._cur:
                self._since[st] = torch.where(tok != self._cur[st], t, self._since[st])
            else:
                self._since[st] = torch.full_like(tok, t, dtype=torch.int32)
            self._cur[st] = tok
            last = layer == self.layers[s.update.index] - 1
            if last and st == self.answer_state and k == self.answer_k:  # the answer at the trained length
                self._answer = tok
                self._commit = {name: torch.where(cur == tok, self._since[name], -1) for name, cur in self._cur.items()}
            if last and st == self.answer_state:
                self._last_answer = tok

        @read_only
        def on_state_in(x: Tensor, hook: HookPoint) -> None:
            self._state_in = x

        @read_only
        def on_out(x: Tensor, hook: HookPoint) -> None:
            addr = Address.parse(hook.name)  # type: ignore[arg-type]
            k = SubStep.of(self.schedule, addr.act, addr.update).flat  # type: ignore[arg-type]
            self._res[:, k] = relative_change(x, self._state_in)

        @read_only
        def on_carried(x: Tensor, hook: HookPoint) -> None:
            addr = Address.parse(hook.name)  # type: ignore[arg-type]
            st = addr.site[len("hook_"):].removesuffix("_init")
            if addr.act is not None:
                self._step[:, addr.act, self._state_index[st]] = relative_change(x, self._carried[st])
            self._carried[st] = x

        states = self.model.config.states
        return [
            (select(site="hook_resid_post", scope="block"), on_layer),
            (select(site="hook_state_in", scope="update"), on_state_in),
            (select(site="hook_out", scope="update"), on_out),
            (select(site=[f"hook_{s}_init" for s in states] + [f"hook_{s}" for s in states]), on_carried),
        ]

    # ---- batches -------------------------------------------------------------------------------------
    def start_batch(self, batch: PuzzleBatch, n_act: int) -> None:
        if n_act != self.n_act:
            raise InputError(f"ConvergenceRecorder was made for {self.n_act} ACT steps, the rollout has {n_act}")
        B, dev = len(batch), batch.inputs.device
        K = n_act * self.n_updates
        labels = torch.as_tensor(batch.labels, device=dev)
        given = torch.as_tensor(np.asarray(self.rules.given_mask(batch.inputs.cpu().numpy()), bool), device=dev)
        self._batch = batch
        self._labels = labels
        self._free = ~given & (labels >= 0)
        self._n_free = self._free.sum(1).clamp_min(1)
        nan = torch.full((B, K, self.n_layers), math.nan, device=dev)
        self._acc, self._ent = nan.clone(), nan.clone()
        self._res = torch.full((B, K), math.nan, device=dev)
        states = self.model.config.states
        self._state_index = {s: i for i, s in enumerate(states)}
        self._step = torch.full((B, n_act, len(states)), math.nan, device=dev)
        self._carried: dict[str, Tensor] = {}
        self._cur: dict[str, Tensor] = {}
        self._since: dict[str, Tensor] = {}
        self._commit: dict[str, Tensor] = {}
        self._answer = self._last_answer = None

    def end_batch(self) -> None:
        b = self._batch
        free = self._free.cpu().numpy()
        self.batches.append(Convergence(
            indices=b.indices, labels=b.labels, free=free,
            accuracy=self._acc.cpu().numpy(), entropy=self._ent.cpu().numpy(), residual=self._res.cpu().numpy(),
            step_change=self._step.cpu().numpy(),
            commit={s: v.cpu().numpy() for s, v in self._commit.items()},
            answer=self._answer.cpu().numpy(), final_answer=self._last_answer.cpu().numpy(),  # type: ignore[union-attr]
            updates=substep_names(self.schedule, self.n_act * self.n_updates),
            state_of=[SubStep.at(self.schedule, k).update.state for k in range(self.n_act * self.n_updates)],
            layers=[self.layers[k % self.n_updates] for k in range(self.n_act * self.n_updates)],
            states=list(self.model.config.states), trained_act=self.trained_act, n_act=self.n_act,
        ))  # fmt: skip

    def result(self) -> "Convergence":
        if not self.batches:
            raise InputError("no batch was recorded")
        return Convergence.concat(self.batches)


@dataclass(frozen=True)
class Convergence:
    """Per-puzzle results of the convergence panel (module docstring).

    ``accuracy``/``entropy`` [puzzle, substep, layer] (NaN for a layer an update does not have:
    HRM's stacks may differ), ``residual`` [puzzle, substep], ``step_change`` [puzzle, act, state]
    (states in ``states`` order), ``commit[state]`` [puzzle, cell] as a flat lens position
    ``substep * n_layers + layer`` (-1: never), ``answer`` / ``final_answer`` [puzzle, cell] the
    output at the trained length and at the end, ``free`` [puzzle, cell] the non-given labelled
    cells every metric counts."""

    indices: np.ndarray
    labels: np.ndarray
    free: np.ndarray
    accuracy: np.ndarray
    entropy: np.ndarray
    residual: np.ndarray
    step_change: np.ndarray
    commit: dict[str, np.ndarray]
    answer: np.ndarray
    final_answer: np.ndarray
    updates: list[str]
    state_of: list[str]
    layers: list[int]
    states: list[str]
    trained_act: int
    n_act: int
    meta: dict = field(default_factory=dict)

    @classmethod
    def concat(cls, parts: "list[Convergence]") -> "Convergence":
        p0 = parts[0]
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        arrays = {n: cat(n) for n in ("indices", "labels", "free", "accuracy", "entropy", "residual", "step_change", "answer", "final_answer")}
        commit = {s: np.concatenate([p.commit[s] for p in parts]) for s in p0.commit}
        return cls(**arrays, commit=commit, updates=p0.updates, state_of=p0.state_of, layers=p0.layers, states=p0.states,
                   trained_act=p0.trained_act, n_act=p0.n_act)  # fmt: skip

    @property
    def n_layers(self) -> int:
        return self.accuracy.shape[2]

    @property
    def n_updates(self) -> int:
        return len(self.updates) // self.n_act

    @property
    def trained_substeps(self) -> int:
        """Sub-steps inside the trained length (the answer is the output after the last of them)."""
        return self.trained_act * self.n_updates

    def _substep_cols(self) -> pd.DataFrame:
        K = len(self.updates)
        return pd.DataFrame({"substep": np.arange(K), "act": np.arange(K) // self.n_updates,
                             "update": [u.split(".")[2] for u in self.updates], "state": self.state_of,
                             "past_trained": np.arange(K) >= self.trained_substeps})  # fmt: skip

    # ---- tidy tables -----------------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """The lens per (puzzle, substep, layer): accuracy and entropy of the non-given cells, the
        substep's act, update and state (the one it writes), and its residual."""
        P, K, L = self.accuracy.shape
        sub = self._substep_cols()
        df = pd.DataFrame({
            "puzzle": np.repeat(self.indices, K * L), "substep": np.tile(np.repeat(np.arange(K), L), P),
            "layer": np.tile(np.arange(L), P * K), "accuracy": self.accuracy.reshape(-1), "entropy": self.entropy.reshape(-1),
            "residual": np.repeat(self.residual.reshape(-1), L),
        })  # fmt: skip
        df = df.merge(sub, on="substep", how="left")
        df = df[df.layer < np.asarray(self.layers)[df.substep]]  # HRM: layers an update does not have
        cols = ["puzzle", "substep", "act", "update", "state", "layer", "past_trained", "accuracy", "entropy", "residual"]
        return df[cols].reset_index(drop=True)

    def lens_summary(self, seed: int) -> pd.DataFrame:
        """Per (substep, layer): mean accuracy and entropy over puzzles with seeded bootstrap CIs."""
        rows = []
        sub = self._substep_cols()
        for k, r in sub.iterrows():
            for layer in range(self.layers[k]):  # type: ignore[index]
                row = r.to_dict() | {"layer": layer}
                for m in ("accuracy", "entropy"):
                    ci = mean_ci(getattr(self, m)[:, k, layer], seed, "lens", m, k, layer)
                    row |= {m: ci["mean"], f"{m}_ci_low": ci["ci_low"], f"{m}_ci_high": ci["ci_high"]}
                rows.append(row)
        return pd.DataFrame(rows)

    def residual_summary(self, seed: int) -> pd.DataFrame:
        """Per substep (``kind`` update: ``||f(z) - z|| / ||z||`` of the state it writes) and per
        (ACT step, state) (``kind`` act: the carried state's change over the step): means over
        puzzles with seeded bootstrap CIs, over ``all`` puzzles and apart over those ``right`` and
        ``wrong`` (exact) at the trained length (a group with no puzzle is left out)."""
        exact = self.outcome_frame().exact_trained.to_numpy(bool)
        groups = [("all", np.ones_like(exact)), ("right", exact), ("wrong", ~exact)]
        rows = []
        sub = self._substep_cols()
        for group, sel in groups:
            if not sel.any():
                continue
            for k, r in sub.iterrows():
                ci = mean_ci(self.residual[sel, k], seed, "residual", group, k)
                rows.append({"kind": "update", "puzzles": group, **r.to_dict(), "residual": ci["mean"], "ci_low": ci["ci_low"],
                             "ci_high": ci["ci_high"], "n": ci["n"]})  # fmt: skip
            for a in range(self.n_act):
                for i, s in enumerate(self.states):
                    ci = mean_ci(self.step_change[sel, a, i], seed, "step_change", group, a, s)
                    rows.append({"kind": "act", "puzzles": group, "substep": (a + 1) * self.n_updates - 1, "act": a, "update": "",
                                 "state": s, "past_trained": a >= self.trained_act, "residual": ci["mean"], "ci_low": ci["ci_low"],
                                 "ci_high": ci["ci_high"], "n": ci["n"]})  # fmt: skip
        return pd.DataFrame(rows)

    def commit_frame(self) -> pd.DataFrame:
        """One row per (puzzle, state, non-given cell): the commit point as ``commit_substep`` and
        ``commit_layer`` (-1: never), whether the answer there is right."""
        parts = []
        for s in self.states:
            c = self.commit[s]
            p, cell = np.nonzero(self.free)
            pos = c[p, cell]
            parts.append(pd.DataFrame({
                "puzzle": self.indices[p], "state": s, "cell": cell,
                "commit_substep": np.where(pos >= 0, pos // self.n_layers, -1), "commit_layer": np.where(pos >= 0, pos % self.n_layers, -1),
                "answer": self.answer[p, cell], "correct": self.answer[p, cell] == self.labels[p, cell],
            }))  # fmt: skip
        return pd.concat(parts, ignore_index=True)

    def committed_by(self, state: str) -> np.ndarray:
        """[puzzle, substep] the share of non-given cells whose ``state`` has committed by the end of
        each sub-step of the trained length."""
        K = self.trained_substeps
        c = self.commit[state]
        sub = np.where(c >= 0, c // self.n_layers, K)  # never: after the last
        n = np.maximum(1, self.free.sum(1))
        return np.stack([((sub <= k) & self.free).sum(1) / n for k in range(K)], axis=1)

    def commit_summary(self, seed: int) -> pd.DataFrame:
        """Per (state, substep of the trained length): the mean share of non-given cells committed
        by then (CI over puzzles); and per state (``substep`` -1) the share that never commits,
        the mean commit sub-step of the cells that do (per puzzle, then over the puzzles that have
        one: ``n``; NaN if none) and the share committing at each block."""
        rows = []
        K = self.trained_substeps
        for s in self.states:
            by = self.committed_by(s)
            for k in range(K):
                ci = mean_ci(by[:, k], seed, "committed", s, k)
                rows.append({"state": s, "substep": k, "act": k // self.n_updates, "metric": "committed",
                             "mean": ci["mean"], "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "n": ci["n"]})  # fmt: skip
            c = self.commit[s]
            n = np.maximum(1, self.free.sum(1))
            never = ((c < 0) & self.free).sum(1) / n
            sub = np.where((c >= 0) & self.free, c // self.n_layers, np.nan).astype(float)
            some = ~np.isnan(sub).all(1)  # puzzles with a committed cell: the mean commit sub-step is theirs
            mean_sub = np.array([np.nanmean(row) for row in sub[some]])
            for metric, v in (("never", never), ("commit_substep", mean_sub)):
                ci = mean_ci(v, seed, "commit", s, metric)
                rows.append({"state": s, "substep": -1, "act": -1, "metric": metric, "mean": ci["mean"],
                             "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "n": ci["n"]})  # fmt: skip
            lay = c[(c >= 0) & self.free] % self.n_layers
            for layer in range(self.n_layers):
                rows.append({"state": s, "substep": -1, "act": -1, "metric": f"commit_layer_{layer}",
                             "mean": float((lay == layer).mean()) if lay.size else math.nan, "ci_low": math.nan,
                             "ci_high": math.nan, "n": int(lay.size)})  # fmt: skip
        return pd.DataFrame(rows)

    def outcome_frame(self) -> pd.DataFrame:
        """Per puzzle: exact and non-given accuracy of the answer at the trained length and at the
        end of the rollout, and how many cells changed in between."""
        ok_t = (self.answer == self.labels) | ~self.free
        ok_f = (self.final_answer == self.labels) | ~self.free
        n = np.maximum(1, self.free.sum(1))
        return pd.DataFrame({
            "puzzle": self.indices, "exact_trained": ok_t.all(1), "exact_final": ok_f.all(1),
            "nongiven_accuracy_trained": ((self.answer == self.labels) & self.free).sum(1) / n,
            "nongiven_accuracy_final": ((self.final_answer == self.labels) & self.free).sum(1) / n,
            "cells_changed": (self.answer != self.final_answer).sum(1),
        })  # fmt: skip

    def escape_summary(self) -> pd.DataFrame:
        """Past the trained length, two rows: of the puzzles wrong at the trained length, how many
        are right at the end (``moved``: escaped); of those right, how many are wrong at the end
        (drifted); the share with its Clopper-Pearson interval and how many changed any cell."""
        o = self.outcome_frame()
        rows = []
        for group, sel, moved_is in (("wrong at the trained length", ~o.exact_trained, "escaped: right at the end"),
                                     ("right at the trained length", o.exact_trained, "drifted: wrong at the end")):  # fmt: skip
            g = o[sel.to_numpy()]
            moved = (g.exact_final if moved_is.startswith("escaped") else ~g.exact_final).to_numpy(bool)
            lo, hi = rate_ci(moved) if len(g) else (math.nan, math.nan)
            rows.append({"group": group, "n": len(g), "moved": int(moved.sum()), "moved_is": moved_is,
                         "share": float(moved.mean()) if len(g) else math.nan, "ci_low": lo, "ci_high": hi,
                         "answer_changed": int((g.cells_changed > 0).sum()), "trained_act": self.trained_act,
                         "n_act": self.n_act})  # fmt: skip
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class ConvergenceTables:
    """What the report draws of a :class:`Convergence` (tables only, no per-cell arrays)."""

    lens: pd.DataFrame  # Convergence.lens_summary
    residual: pd.DataFrame  # Convergence.residual_summary
    commit: pd.DataFrame  # Convergence.commit_summary
    escape: pd.DataFrame  # Convergence.escape_summary
    trained_act: int
    n_act: int
    trained_substeps: int


def tables(res: Convergence, seed: int) -> ConvergenceTables:
    """The summaries of ``res`` with seeded intervals."""
    return ConvergenceTables(lens=res.lens_summary(seed), residual=res.residual_summary(seed), commit=res.commit_summary(seed),
                             escape=res.escape_summary(), trained_act=res.trained_act, n_act=res.n_act,
                             trained_substeps=res.trained_substeps)  # fmt: skip


def check_length(model: HookedAIR, n_act: "int | None") -> int:
    """The convergence rollout's ACT steps: ``n_act``, or :data:`DEFAULT_LENGTH` x halt_max_steps."""
    return check_n_act(n_act, DEFAULT_LENGTH * model.config.halt_max_steps)


def run_convergence(
    model: HookedAIR,
    ds: PuzzleDataset,
    indices: np.ndarray,
    rules: TaskRules,
    *,
    n_act: int | None = None,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    answer_act: int | None = None,
) -> Convergence:
    """The convergence panel of the puzzles ``indices`` of ``ds`` (``n_act`` None: twice the
    trained length); ``answer_act``: the rollout length whose output is the answer (default the
    trained ``halt_max_steps``; the report passes the length it analyses)."""
    n_act = check_length(model, n_act)
    rec = ConvergenceRecorder(model, rules, n_act, answer_act)
    for batch in puzzle_batches(model, ds, indices, batch_size):
        rollout(model, batch, n_act=n_act, recorders=[rec])
        if progress:
            progress(len(batch))
    return rec.result()
