"""Trajectories and dimensionality of the two states (issue 25.4, not in the paper).

One rollout per batch with read-only hooks (:class:`GeometryRecorder`), nothing cached: every
update's output (``act.{a}.{u}.hook_out``, the state it writes) is reduced, on its cells (the
last ``seq_len`` positions, as the decode reads them), to

- **pooled sums** per sub-step (count, sum and sum of outer products of the cell vectors, float64),
  from which the pooled covariance of that state's cell vectors over every puzzle and cell;
- each puzzle's **own participation ratio** (covariance over its cells) and its **cell-mean**
  vector.

Definitions (the cell vector of a state is its ``d_model`` vector at one cell):

- **Participation ratio** ``PR = (sum_i l_i)^2 / sum_i l_i^2`` of the eigenvalues of a covariance,
  computed as ``tr(S)^2 / ||S||_F^2``: between 1 (one direction) and ``d_model`` (isotropic).
  ``pooled``: the covariance of one state's cell vectors over every analysed puzzle and cell at
  one sub-step (the HRM paper's reading, states of many puzzles in the hidden space);
  ``per_puzzle``: over one puzzle's cells, then the mean over puzzles.
- **Shared basis**: the principal components of the pooled covariance of *both* states' cell
  vectors over *every* sub-step (one basis for zL and zH and the whole rollout). A puzzle's
  **trajectory** is its cell-mean state projected on it (centred on the pooled mean), per sub-step;
  ``capture`` is the share of a state's variance at a sub-step that the basis's first components
  hold.
- **Untrained control**: the same analysis on a freshly initialised model of the same config
  (the reference's init, :class:`HookedAIR` with a seed): what the architecture gives before any
  training.

**Perturbation basins** (:func:`run_basins`): the state carried into ACT step ``act`` gets seeded
Gaussian noise of ``scale`` x each cell's norm at every cell (one direction per puzzle and state,
grown along the scales), the rollout runs to the trained length; per puzzle, whether the answer
(the output's argmax) is the unperturbed one at every cell, the share of non-given cells that
changed, and exact accuracy.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from airinterp.analysis.run import Hook, Hooks, PuzzleBatch, puzzle_batches, rollout
from airinterp.analysis.stats import mean_ci, paired, rate_ci
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.hooks import Address, HookPoint, read_only, select
from airinterp.model.inputs import check_n_act
from airinterp.model.schedule import SubStep, substep_names
from airinterp.tasks.dataset import PuzzleDataset
from airinterp.tasks.rules import TaskRules

#: noise sizes of the basins, relative to each cell's norm
DEFAULT_SCALES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
#: principal components of the shared basis kept in the tables
N_COMPONENTS = 3


def participation_ratio(cov: np.ndarray) -> np.ndarray:
    """``tr(S)^2 / ||S||_F^2`` of covariance matrices ``[..., d, d]`` (= (sum l)^2 / sum l^2 of
    their eigenvalues); NaN where the covariance is 0."""
    cov = np.asarray(cov, np.float64)
    tr = np.trace(cov, axis1=-2, axis2=-1)
    fro = (cov**2).sum((-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(fro > 0, tr**2 / np.where(fro > 0, fro, 1.0), np.nan)


def _puzzle_pr(x: Tensor) -> Tensor:
    """[batch] participation ratio of each row's covariance over its cells (x [batch, cell, d]),
    through the smaller of the cell Gram and the feature covariance (same non-zero spectrum)."""
    xc = x - x.mean(1, keepdim=True)
    g = xc @ xc.transpose(1, 2) if x.shape[1] <= x.shape[2] else xc.transpose(1, 2) @ xc
    tr = g.diagonal(dim1=1, dim2=2).sum(-1)
    fro = (g**2).sum((1, 2))
    return torch.where(fro > 0, tr**2 / fro.clamp_min(1e-300), torch.full_like(tr, math.nan))


class GeometryRecorder:
    """Streams the pooled sums, per-puzzle participation ratios and cell-means of every update's
    output (module docstring)."""

    def __init__(self, model: HookedAIR, n_act: int) -> None:
        c = model.config
        self.model = model
        self.n_act = n_act
        self.schedule = model.schedule
        self.K = n_act * len(self.schedule)
        d = c.hidden_size
        self.count = np.zeros(self.K, np.int64)
        self.s1 = np.zeros((self.K, d), np.float64)
        self.s2 = np.zeros((self.K, d, d), np.float64)
        self._pr: list[np.ndarray] = []
        self._mean: list[np.ndarray] = []
        self._indices: list[np.ndarray] = []

    def hooks(self, model: HookedAIR) -> list[Hook]:
        C = model.config.seq_len

        @read_only
        def on_out(x: Tensor, hook: HookPoint) -> None:
            addr = Address.parse(hook.name)  # type: ignore[arg-type]
            k = SubStep.of(self.schedule, addr.act, addr.update).flat  # type: ignore[arg-type]
            cells = x[:, -C:].double()
            flat = cells.reshape(-1, cells.shape[-1])
            self.count[k] += flat.shape[0]
            self.s1[k] += flat.sum(0).cpu().numpy()
            self.s2[k] += (flat.T @ flat).cpu().numpy()
            self._b_pr[:, k] = _puzzle_pr(cells).cpu().numpy()
            self._b_mean[:, k] = cells.mean(1).cpu().numpy()

        return [(select(site="hook_out", scope="update"), on_out)]

    def start_batch(self, batch: PuzzleBatch, n_act: int) -> None:
        if n_act != self.n_act:
            raise InputError(f"GeometryRecorder was made for {self.n_act} ACT steps, the rollout has {n_act}")
        B, d = len(batch), self.model.config.hidden_size
        self._b_pr = np.full((B, self.K), np.nan)
        self._b_mean = np.full((B, self.K, d), np.nan)
        self._b_idx = batch.indices

    def end_batch(self) -> None:
        self._pr.append(self._b_pr)
        self._mean.append(self._b_mean)
        self._indices.append(np.asarray(self._b_idx))

    def result(self, model_kind: str = "trained") -> "Geometry":
        if not self._pr:
            raise InputError("no batch was recorded")
        return Geometry(
            indices=np.concatenate(self._indices), puzzle_pr=np.concatenate(self._pr), cell_mean=np.concatenate(self._mean),
            count=self.count.copy(), s1=self.s1.copy(), s2=self.s2.copy(), updates=substep_names(self.schedule, self.K),
            state_of=[SubStep.at(self.schedule, k).update.state for k in range(self.K)], n_act=self.n_act,
            trained_act=self.model.config.halt_max_steps, model=model_kind,
        )  # fmt: skip


@dataclass(frozen=True)
class Geometry:
    """One model's state geometry (module docstring): ``puzzle_pr`` [puzzle, substep],
    ``cell_mean`` [puzzle, substep, d], pooled ``count``/``s1``/``s2`` per substep; sub-step k's
    update writes ``state_of[k]``; ``model`` says ``trained`` or ``untrained`` (the control)."""

    indices: np.ndarray
    puzzle_pr: np.ndarray
    cell_mean: np.ndarray
    count: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    updates: list[str]
    state_of: list[str]
    n_act: int
    trained_act: int
    model: str

    @property
    def n_updates(self) -> int:
        return len(self.updates) // self.n_act

    @property
    def states(self) -> list[str]:
        return list(dict.fromkeys(self.state_of))

    def covariance(self, sel: "np.ndarray | slice | list[int]" = slice(None)) -> np.ndarray:
        """The pooled covariance (ddof 1) of the cell vectors of the sub-steps ``sel`` together."""
        n = self.count[sel].sum()
        if n < 2:
            return np.full(self.s2.shape[1:], np.nan)
        s1, s2 = self.s1[sel].sum(0), self.s2[sel].sum(0)
        mu = s1 / n
        return (s2 - n * np.outer(mu, mu)) / (n - 1)

    def pooled_mean(self) -> np.ndarray:
        return self.s1.sum(0) / max(1, self.count.sum())

    def _substep_cols(self) -> pd.DataFrame:
        K = len(self.updates)
        return pd.DataFrame({"substep": np.arange(K), "act": np.arange(K) // self.n_updates,
                             "update": [u.split(".")[2] for u in self.updates], "state": self.state_of})  # fmt: skip

    def pr_summary(self, seed: int) -> pd.DataFrame:
        """Per sub-step (the state its update writes): the pooled participation ratio and the mean
        per-puzzle one with its bootstrap CI; ``model`` trained or untrained."""
        rows = []
        for k, r in self._substep_cols().iterrows():
            ci = mean_ci(self.puzzle_pr[:, k][np.isfinite(self.puzzle_pr[:, k])], seed, "pr", self.model, k)
            rows.append({**r.to_dict(), "model": self.model, "pr_pooled": float(participation_ratio(self.covariance([k]))),
                         "pr_per_puzzle": ci["mean"], "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "n": ci["n"]})  # fmt: skip
        return pd.DataFrame(rows)

    def state_pr(self, seed: int) -> pd.DataFrame:
        """Per state: the pooled participation ratio over all its sub-steps together and at its last
        write of the trained length, and the per-puzzle one there (mean, CI)."""
        rows = []
        K_trained = min(self.n_act, self.trained_act) * self.n_updates
        for s in self.states:
            mine = np.array([st == s for st in self.state_of])
            last = int(np.flatnonzero(mine[:K_trained])[-1])
            v = self.puzzle_pr[:, last]
            ci = mean_ci(v[np.isfinite(v)], seed, "state_pr", self.model, s)
            rows.append({"model": self.model, "state": s, "pr_all_substeps": float(participation_ratio(self.covariance(mine))),
                         "pr_last": float(participation_ratio(self.covariance([last]))), "last_update": self.updates[last],
                         "pr_per_puzzle_last": ci["mean"], "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "n": ci["n"]})  # fmt: skip
        return pd.DataFrame(rows)

    def basis(self, n_components: int = N_COMPONENTS) -> tuple[np.ndarray, np.ndarray]:
        """The shared basis: [n_components, d] principal directions of the pooled covariance of
        every sub-step and both states, and their explained-variance ratios."""
        cov = self.covariance()
        w, v = np.linalg.eigh(cov)
        order = np.argsort(w)[::-1][:n_components]
        total = w.clip(min=0).sum()
        return v[:, order].T, (w[order] / total if total > 0 else np.full(len(order), np.nan))

    def components(self, n_components: int = N_COMPONENTS) -> pd.DataFrame:
        _, ratio = self.basis(n_components)
        return pd.DataFrame({"model": self.model, "component": np.arange(1, len(ratio) + 1), "explained_variance_ratio": ratio,
                             "cumulative": np.cumsum(ratio)})  # fmt: skip

    def trajectories(self, n_components: int = N_COMPONENTS) -> pd.DataFrame:
        """Per (puzzle, substep): the cell-mean state its update wrote, on the shared basis."""
        comps, _ = self.basis(n_components)
        proj = (self.cell_mean - self.pooled_mean()) @ comps.T  # [P, K, n]
        P, K, n = proj.shape
        df = pd.DataFrame({"puzzle": np.repeat(self.indices, K), "substep": np.tile(np.arange(K), P)})
        df = df.merge(self._substep_cols(), on="substep", how="left")
        df.insert(0, "model", self.model)
        for j in range(n):
            df[f"pc{j + 1}"] = proj[:, :, j].reshape(-1)
        return df

    def capture(self, n_components: int = N_COMPONENTS) -> pd.DataFrame:
        """Per sub-step: the share of that state's pooled variance there that the shared basis's
        first ``n_components`` directions hold."""
        comps, _ = self.basis(n_components)
        rows = []
        for k, r in self._substep_cols().iterrows():
            cov = self.covariance([k])
            tr = np.trace(cov)
            held = float(np.einsum("id,de,ie->", comps, cov, comps))
            rows.append({**r.to_dict(), "model": self.model, "captured": held / tr if tr > 0 else math.nan})
        return pd.DataFrame(rows)

    def frame(self) -> pd.DataFrame:
        """One row per (puzzle, substep): the per-puzzle participation ratio and the trajectory."""
        P, K = self.puzzle_pr.shape
        t = self.trajectories()
        t["pr_per_puzzle"] = self.puzzle_pr.reshape(-1)
        return t


def run_geometry(
    model: HookedAIR,
    ds: PuzzleDataset,
    indices: np.ndarray,
    *,
    n_act: int | None = None,
    batch_size: int = 64,
    model_kind: str = "trained",
    progress: Callable[[int], None] | None = None,
) -> Geometry:
    """The state geometry of the puzzles ``indices`` over a rollout of ``n_act`` ACT steps
    (default the trained length)."""
    n_act = check_n_act(n_act, model.config.halt_max_steps)
    rec = GeometryRecorder(model, n_act)
    for batch in puzzle_batches(model, ds, indices, batch_size):
        rollout(model, batch, n_act=n_act, recorders=[rec])
        if progress:
            progress(len(batch))
    return rec.result(model_kind)


def untrained_like(model: HookedAIR, seed: int) -> HookedAIR:
    """A freshly initialised model of ``model``'s config (the reference's init, seeded), on its
    device and dtype, in eval mode: the untrained control."""
    fresh = HookedAIR(model.config, seed=seed).to(device=model.device, dtype=model.dtype)
    return fresh.eval()


# ---- perturbation basins ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Basins:
    """``puzzles``: one row per (puzzle, state, scale): ``unchanged`` (every cell of the answer is
    the unperturbed one), ``cells_changed`` (share of non-given cells), ``exact`` and
    ``exact_clean``; ``summary``: per (state, scale), the unchanged share with its
    Clopper-Pearson interval, the mean share of cells changed and the paired change of exact
    accuracy (bootstrap CI)."""

    puzzles: pd.DataFrame
    summary: pd.DataFrame
    act: int
    scales: tuple[float, ...]

    def frame(self) -> pd.DataFrame:
        return self.puzzles


def check_basins(model: HookedAIR, *, act: object, scales: object) -> tuple[float, ...]:
    """The basin options checked before any rollout (an InputError names the first bad one)."""
    T = model.config.halt_max_steps
    if isinstance(act, bool) or not isinstance(act, int) or not 1 <= act < T:
        raise InputError(f"act {act!r}: expected the ACT step the perturbed state is carried into, 1..{T - 1} "
                         f"(the model's rollout has {T} steps)")  # fmt: skip
    given = scales
    try:
        out = tuple(float(s) for s in (scales.split(",") if isinstance(scales, str) else scales))  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise InputError(f"scales {given!r}: expected numbers > 0") from None
    if not out or any(not math.isfinite(s) or s <= 0 for s in out):
        raise InputError(f"scales {given!r}: expected one or more finite numbers > 0")
    return out


def _directions(indices: np.ndarray, state: str, C: int, d: int, seed: int) -> np.ndarray:
    """[batch, C, d] unit noise directions per cell, seeded by (seed, puzzle, state)."""
    tag = {"zH": 1, "zL": 2}[state]
    g = np.stack([np.random.default_rng([seed, int(p), tag, 19]).standard_normal((C, d)) for p in indices])
    return g / np.linalg.norm(g, axis=-1, keepdims=True)


def run_basins(
    model: HookedAIR,
    ds: PuzzleDataset,
    indices: np.ndarray,
    rules: TaskRules,
    *,
    act: int = 1,
    scales: Sequence[float] = DEFAULT_SCALES,
    batch_size: int = 64,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Basins:
    """Noise of growing ``scales`` on each state as carried into ACT step ``act``; the answer at
    the trained length against the unperturbed one (module docstring)."""
    c = model.config
    scales = check_basins(model, act=act, scales=scales)
    C, T = c.seq_len, c.halt_max_steps
    first = model.schedule[0].name
    rows = []
    for batch in puzzle_batches(model, ds, indices, batch_size):
        labels = batch.labels
        free = ~np.asarray(rules.given_mask(batch.inputs.cpu().numpy()), bool) & (labels >= 0)
        n_free = np.maximum(1, free.sum(1))
        clean = rollout(model, batch, n_act=T).logits.argmax(-1).cpu().numpy()
        exact_clean = ((clean == labels) | ~free).all(1)
        for state in c.states:
            site = model.state_site(state, before=f"act.{act}.{first}")
            dirs = torch.from_numpy(_directions(batch.indices, state, C, c.hidden_size, seed))
            for scale in scales:

                def perturb(x: Tensor, hook: HookPoint, scale=scale, dirs=dirs) -> Tensor:
                    x = x.clone()
                    cells = x[:, -C:]
                    step = scale * cells.float().norm(dim=-1, keepdim=True) * dirs.to(x.device)
                    x[:, -C:] = (cells.float() + step).to(x.dtype)
                    return x

                ans = rollout(model, batch, n_act=T, interventions=[Hooks([(site, perturb)])]).logits.argmax(-1).cpu().numpy()
                changed = (ans != clean) & free
                exact = ((ans == labels) | ~free).all(1)
                for i in range(len(batch)):
                    rows.append((int(batch.indices[i]), state, site, float(scale), bool((ans[i] == clean[i]).all()),
                                 float(changed[i].sum() / n_free[i]), bool(exact[i]), bool(exact_clean[i])))  # fmt: skip
        if progress:
            progress(len(batch))
    puzzles = pd.DataFrame(rows, columns=["puzzle", "state", "site", "scale", "unchanged", "cells_changed", "exact", "exact_clean"])
    return Basins(puzzles=puzzles, summary=basin_summary(puzzles, seed), act=act, scales=scales)


def basin_summary(puzzles: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per (state, scale): unchanged share [Clopper-Pearson], mean share of cells changed
    [bootstrap], exact accuracy perturbed vs clean (paired)."""
    rows = []
    for (state, scale), g in puzzles.groupby(["state", "scale"], sort=False):
        u = g.unchanged.to_numpy(bool)
        lo, hi = rate_ci(u)
        ch = mean_ci(g.cells_changed.to_numpy(), seed, "basin cells", state, scale)
        p = paired(g.exact_clean.to_numpy(float), g.exact.to_numpy(float), seed, "basin exact", state, scale, rate=True)
        rows.append({"state": state, "site": g.site.iloc[0], "scale": scale, "unchanged": float(u.mean()), "unchanged_ci_low": lo,
                     "unchanged_ci_high": hi, "cells_changed": ch["mean"], "cells_changed_ci_low": ch["ci_low"],
                     "cells_changed_ci_high": ch["ci_high"], "exact": p["treated_mean"], "exact_clean": p["base_mean"],
                     "exact_delta": p["delta_mean"], "exact_delta_ci_low": p["delta_ci_low"],
                     "exact_delta_ci_high": p["delta_ci_high"], "n": len(g)})  # fmt: skip
    return pd.DataFrame(rows)


#: the report's basin scales (fewer rollouts than the CLI's default)
REPORT_SCALES = (1.0, 3.0, 10.0, 30.0)


@dataclass(frozen=True)
class GeometryTables:
    """What the report draws (tables only): participation ratios of the trained model and its
    untrained control, per-state PRs, the trained model's trajectories on its shared basis, and
    the basins' summary (None: not run)."""

    pr: pd.DataFrame
    state_pr: pd.DataFrame
    trajectories: pd.DataFrame
    components: pd.DataFrame
    basins: "pd.DataFrame | None"
    act: int


def geometry_tables(model: HookedAIR, ds: PuzzleDataset, indices: np.ndarray, rules: TaskRules, *, n_act: int, seed: int,
                    batch_size: int = 64, scales: Sequence[float] = REPORT_SCALES,
                    bar: "Callable[[str, int], Callable[[int], None] | None] | None" = None) -> GeometryTables:  # fmt: skip
    """The report's geometry: the trained model and its untrained control over ``n_act`` ACT
    steps, and basins at ACT step 1 (when the rollout has a second step)."""
    n = len(indices)

    def tick(label: str):
        return bar(label, n) if bar else None

    geos = [run_geometry(model, ds, indices, n_act=n_act, batch_size=batch_size, progress=tick("geometry")),
            run_geometry(untrained_like(model, seed), ds, indices, n_act=n_act, batch_size=batch_size, model_kind="untrained",
                         progress=tick("geometry, untrained"))]  # fmt: skip
    basins = None
    if model.config.halt_max_steps >= 2:
        basins = run_basins(model, ds, indices, rules, act=1, scales=scales, batch_size=batch_size, seed=seed,
                            progress=tick(f"basins ({len(model.config.states) * len(scales)} rollouts)")).summary  # fmt: skip
    return GeometryTables(pr=pd.concat([g.pr_summary(seed) for g in geos], ignore_index=True),
                          state_pr=pd.concat([g.state_pr(seed) for g in geos], ignore_index=True),
                          trajectories=geos[0].trajectories(), components=geos[0].components(), basins=basins, act=1)  # fmt: skip
