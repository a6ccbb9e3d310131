"""Every analysis of the paper on one checkpoint, reduced to tables (what ``airinterp report`` draws).

:func:`analyse` runs, on one seeded sample of test puzzles, the decoded rollouts and content
changes (AIR_SPEC 4.a-4.b), the paired freezes of z_H and of z_L from ACT step 0 (4.c),
patching of both states across ACT steps with another puzzle's value, the L0_0 vs H0 attention
contrasts per layer and head (4.d), one attention example across the analysed steps (4.e), and
the convergence panel (layer lens, commit points, residuals over twice the rollout) and the
causal locality of writes (one cell perturbed after each update of ACT step 1), and the states'
geometry (participation ratios with an untrained control, one shared PCA basis, perturbation
basins) and linear probes with their causal test; those four are not in the paper.
What it returns holds DataFrames and small arrays only, no tensors and no model, so the report
code draws figures from tables.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from airinterp.analysis.attention import AttentionExample, AttentionResult
from airinterp.analysis.freeze import FreezeResult
from airinterp.analysis.inputs import AnalysisInputs
from airinterp.analysis.patching import PatchResult
from airinterp.analysis.roles import RolesResult
from airinterp.types import ProgressFactory

if TYPE_CHECKING:
    from airinterp.analysis.convergence import ConvergenceTables
    from airinterp.analysis.decode import DecodedRollout
    from airinterp.analysis.geometry import GeometryTables
    from airinterp.analysis.probes import Probes
    from airinterp.analysis.write_locality import WriteLocality
    from airinterp.tasks.rules import TaskRules, TokenRoles
from airinterp.errors import InputError


@dataclass
class CheckpointAnalyses:
    """One checkpoint's analyses on one puzzle sample (tables, no tensors)."""

    name: str
    card: dict
    config: dict  # AnalysisInputs.config(): checkpoint, data fingerprint, puzzles, seed, versions
    task: str
    variant: str
    side: int
    box: tuple[int, int] | None
    token_names: dict[int, str]
    roles: "TokenRoles"  # the task's token ids by role, for the figures
    updates: list[str]  # the name of every flat sub-step, act.{a}.{update}
    indices: np.ndarray
    outcome: pd.DataFrame  # per puzzle: exact, token_accuracy, nongiven_accuracy (the model's output)
    accuracy: dict  # exact (with its exact CI), token, non-given on the sample
    tokens: pd.DataFrame  # decode table of the puzzles drawn as grids
    changes: pd.DataFrame  # per (puzzle, state)
    changes_summary: pd.DataFrame
    substeps: pd.DataFrame
    freeze: dict[str, FreezeResult]  # frozen state -> result
    patch: PatchResult | None
    attention: AttentionResult
    example: AttentionExample | None
    candidates: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    family: str = "air"  # air, trm, trm_singlez or hrm: which model family the checkpoint is
    presence: pd.DataFrame = field(default_factory=pd.DataFrame)  # DecodeSection.presence
    grid_io: dict = field(default_factory=dict)  # puzzle -> (inputs, labels) of the puzzles drawn as grids
    state_roles: RolesResult | None = None  # what each state holds (None: TRM single-z, one state)
    convergence: "ConvergenceTables | None" = None  # layer lens, commit points, residuals (beyond the paper)
    write_locality: "WriteLocality | None" = None  # where updates carry a one-cell perturbation (beyond the paper)
    geometry: "GeometryTables | None" = None  # participation ratios, shared PCA basis, basins (beyond the paper)
    probes: "Probes | None" = None  # linear probes and their causal test (beyond the paper)

    @property
    def label(self) -> str:
        """The model's name in titles (the AIR variant, HRM, TRM, TRM mlp_t, TRM single-z)."""
        from airinterp.model.config import AIRConfig

        mc = self.config.get("model_config")
        return AIRConfig(**mc).label if isinstance(mc, dict) else self.variant


@dataclass(frozen=True)
class DecodeSection:
    """Decoded rollouts and the content-change tables of one puzzle sample (AIR_SPEC 4.a-4.b)."""

    rules: "TaskRules"
    rollout: "DecodedRollout"
    changes: pd.DataFrame  # per (puzzle, state)
    summary: pd.DataFrame  # per (state, metric), with seeded CIs
    substeps: pd.DataFrame  # per (sub-step, state)
    updates: list[str]  # the name of every flat sub-step, act.{a}.{update}
    presence: pd.DataFrame  # per (state, token set): how often and how mobile undecided / BLANK cells are


def decode_section(inp: AnalysisInputs, *, batch_size: int = 64, probs: bool = False,
                   progress: "Callable[[int], None] | None" = None) -> DecodeSection:  # fmt: skip
    """Decode ``inp``'s puzzles after every update and count content changes: what ``airinterp
    decode`` writes and the report's decode section draws."""
    from airinterp.analysis.decode import decode_rollouts
    from airinterp.analysis.dynamics import changes_summary, changes_table, presence_table, substep_table
    from airinterp.model.schedule import substep_names

    model, rules = inp.model, inp.rules
    r = decode_rollouts(model, inp.ds, inp.indices, n_act=inp.n_act, batch_size=batch_size, probs=probs, progress=progress)
    changes = changes_table(r, rules, model.schedule)
    return DecodeSection(rules=rules, rollout=r, changes=changes, summary=changes_summary(changes, inp.seed),
                         substeps=substep_table(r, rules, model.schedule), updates=substep_names(model.schedule, r.n_substeps),
                         presence=presence_table(r, rules, model.schedule))  # fmt: skip


def sample_accuracy(sec: DecodeSection, seed: int, label: str = "accuracy") -> tuple[pd.DataFrame, dict]:
    """The model's output on a decoded sample: per puzzle (exact, token and non-given accuracy) and
    summarised (exact with its Clopper-Pearson CI, the others with seeded bootstrap CIs; ``label``
    names the bootstrap stream)."""
    from airinterp.analysis.outcome import outcome as measure_outcome
    from airinterp.analysis.stats import mean_ci, rate_ci

    r = sec.rollout
    outcome = pd.concat([pd.DataFrame({"puzzle": r.indices}), measure_outcome(r.output, r.labels, sec.rules.given_mask(r.inputs))], axis=1)
    outcome["exact"] = outcome["exact"].astype(float)
    lo, hi = rate_ci(outcome.exact.to_numpy())
    accuracy = {"n": len(outcome), "exact": float(outcome.exact.mean()), "exact_ci_low": lo, "exact_ci_high": hi,
                **{k: mean_ci(outcome[k].to_numpy(), seed, label, k) for k in ("token_accuracy", "nongiven_accuracy")}}  # fmt: skip
    return outcome, accuracy


def patch_batch_size(n: int, batch_size: int) -> int:
    """A batch size near ``batch_size`` (at least 2) that leaves no last batch of one puzzle
    (patching takes each puzzle's value from another puzzle of its batch)."""
    want = max(2, min(batch_size, n))
    bs = want
    while bs > 2 and n % bs == 1:
        bs -= 1
    if n % bs == 1:
        bs = want
        while n % bs == 1:
            bs += 1
    return bs


def patch_acts(n_act: int) -> list[int]:
    """The ACT steps whose carried-in states the report patches: every step of a rollout of at most
    8 steps; else 0, 1, 2, 4, 8, ... and the last (each patched step costs a whole rollout)."""
    if n_act <= 8:
        return list(range(n_act))
    return sorted({0, *(2**k for k in range(n_act.bit_length()) if 2**k < n_act), n_act - 1})


def analyse(
    inp: AnalysisInputs,
    *,
    batch_size: int = 64,
    attention_batch_size: int = 16,
    grid_puzzles: int = 2,
    progress: ProgressFactory | None = None,
    name: str | None = None,
) -> CheckpointAnalyses:
    """Run every analysis on ``inp`` (its model, test split and puzzle sample, at least 2);
    ``name``: the checkpoint's label (default: its directory's name)."""
    from airinterp.analysis.attention import attention_example, default_steps, propose_examples, run_attention
    from airinterp.analysis.freeze import Freeze, run_freeze
    from airinterp.analysis.patching import run_patch, state_targets
    from airinterp.analysis.run import puzzle_batches

    model, c = inp.model, inp.model.config
    n = len(inp.indices)
    if n < 2:
        raise InputError(f"n_puzzles {n}: the report's paired statistics and patching need at least 2 puzzles")
    rules = inp.rules
    name = name or inp.source.name
    bar = (lambda label, total: progress(f"{name}: {label}", total)) if progress else (lambda label, total: None)
    notes: list[str] = []

    sec = decode_section(inp, batch_size=batch_size, probs=True, progress=bar("decode", n))  # probs: the roles' confidence
    r = sec.rollout
    outcome, accuracy = sample_accuracy(sec, inp.seed)

    state_roles = None
    if c.single_z:
        notes.append("the roles analysis does not apply: TRM single-z has one state")
    else:
        from airinterp.analysis.roles import roles_analysis

        state_roles = roles_analysis(r, rules, model.schedule, inp.seed)

    freezes = {}
    if c.single_z:
        notes.append("freeze does not apply: TRM single-z has one state, written by every update (the design freezes one "
                     "state and measures the other)")  # fmt: skip
    for s in () if c.single_z else ("zH", "zL"):
        fr = Freeze(s)
        freezes[s] = run_freeze(model, inp.ds, inp.indices, fr, n_act=inp.n_act, batch_size=batch_size, seed=inp.seed,
                                progress=bar(fr.label(), n))  # fmt: skip

    acts = patch_acts(inp.n_act)
    targets = [t for s in c.states for t in state_targets(model, s, acts)]
    pbs = patch_batch_size(n, batch_size)
    patch = run_patch(model, inp.ds, inp.indices, targets, source="other", n_act=inp.n_act, batch_size=pbs,
                      seed=inp.seed, progress=bar(f"patch ({len(targets)} targets)", n))  # fmt: skip

    steps = default_steps(min(inp.n_act, c.halt_max_steps))
    example = None
    if c.mlp_t:  # no attention to analyse: the sections say so and everything else runs
        att = AttentionResult.empty(steps)
        candidates = pd.DataFrame()
        notes.append("attention analyses do not apply: TRM mlp_t blocks mix positions with an MLP, not attention")
    else:
        att = run_attention(model, inp.ds, inp.indices, steps=steps, batch_size=attention_batch_size, seed=inp.seed,
                            per_head=True, progress=bar("attention", n))  # fmt: skip
        pool = inp.indices[: min(50, n)]
        candidates = propose_examples(model, inp.ds, pool, step=steps[0], layer=0, n=3, seed=inp.seed)
        if candidates.empty:
            notes.append("no attention example: the sampled puzzles have no query cells")
        else:
            best = candidates.sort_values("score", ascending=False).iloc[0]
            batch = next(puzzle_batches(model, inp.ds, np.array([int(best["puzzle"])]), 1))
            example = attention_example(model, batch, int(best["query"]), layer=0, head=None, steps=steps)

    from airinterp.analysis.convergence import run_convergence, tables

    conv = tables(run_convergence(model, inp.ds, inp.indices, rules, n_act=2 * inp.n_act, batch_size=batch_size,
                                  progress=bar("convergence", n), answer_act=inp.n_act), inp.seed)  # fmt: skip
    from airinterp.analysis.write_locality import run_write_locality

    locality = run_write_locality(model, inp.ds, inp.indices, rules, act=min(1, c.halt_max_steps - 1), batch_size=batch_size,
                                  seed=inp.seed, progress=bar("write locality", n))  # fmt: skip
    from airinterp.analysis.geometry import geometry_tables

    geometry = geometry_tables(model, inp.ds, inp.indices, rules, n_act=inp.n_act, seed=inp.seed, batch_size=batch_size, bar=bar)
    from airinterp.analysis.probes import report_probes

    probes = report_probes(model, inp.ds, inp.indices, rules, seed=inp.seed, batch_size=batch_size, bars=bar) if n >= 2 else None

    tokens = r.frame(puzzles=grid_puzzles)
    return CheckpointAnalyses(
        name=name, card=inp.source.card, config=inp.config(), task=c.task, variant=c.variant, side=rules.side,
        box=rules.box, token_names=rules.token_names, roles=rules.roles(), updates=sec.updates, indices=np.asarray(inp.indices),
        outcome=outcome, accuracy=accuracy, tokens=tokens, changes=sec.changes, changes_summary=sec.summary, substeps=sec.substeps,
        freeze=freezes, patch=patch, attention=att, example=example, candidates=candidates, notes=notes, family=c.family,
        presence=sec.presence, state_roles=state_roles, grid_io=r.grid_io(grid_puzzles), convergence=conv,
        write_locality=locality, geometry=geometry, probes=probes,
    )  # fmt: skip
