"""Patching across sub-steps: when does each state start to matter?

Each target (a state as carried into an ACT step, or any update/block site) is replaced by another
puzzle's value (a seeded derangement within the batch) or the same puzzle's at another ACT step,
and the rest of the rollout runs; the paired design (:mod:`.paired`) compares it with the clean
run. :class:`~airinterp.analysis.update_lens.UpdateLens` (re-exported here) puts one update under
TransformerLens's own patching utilities.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airinterp.analysis.update_lens import UpdateLens
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.hooks import Address, check_name
from airinterp.model.inputs import check_n_act
from airinterp.model.schedule import SubStep, check_state

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airinterp.tasks.dataset import PuzzleDataset


# ---- patching across sub-steps: when does each state start to matter? --------------------------


@dataclass(frozen=True)
class PatchTarget:
    """A hook whose value is replaced: ``site`` the hook name, ``substep`` the first sub-step
    whose computation sees the replaced value, ``label`` for tables."""

    site: str
    substep: int
    label: str
    state: str | None = None
    act: int | None = None

    def source_site(self, model: HookedAIR, source: "int | str") -> str:
        """The hook the replacement is read from: the same site (``"other"``: another puzzle's
        value) or the site as of ACT step ``source`` (the same puzzle at another step)."""
        if source == "other":
            return self.site
        if self.state is not None:
            update = SubStep.at(model.schedule, self.substep).update.name
            return model.state_site(self.state, before=f"act.{source}.{update}")
        addr = Address.parse(self.site)
        return str(Address(site=addr.site, act=int(source), stage=addr.stage, cycle=addr.cycle, step=addr.step, layer=addr.layer))


def state_targets(model: HookedAIR, state: str, acts: "list[int]", update: str | None = None) -> list[PatchTarget]:
    """``state`` as update ``update`` (default the first of the schedule) of each ACT step in
    ``acts`` reads it: with the default, the state carried into the step."""
    state = check_state(state)
    update = update or model.schedule[0].name
    steps = [SubStep.of(model.schedule, a, update) for a in acts]
    return [
        PatchTarget(site=model.state_site(state, before=s.name), substep=s.flat, label=f"{state} before {s.name}", state=state,
                    act=s.act)
        for s in steps
    ]  # fmt: skip


def site_targets(model: HookedAIR, site: str, acts: "list[int]") -> list[PatchTarget]:
    """An update-level or block-level site (``H0.hook_out``, ``L0_1.blocks.2.hook_resid_post``)
    at each ACT step in ``acts``."""
    out = []
    for a in acts:
        name = f"act.{a}.{site}"
        addr = check_name(model.config, name)
        if addr.scope not in ("update", "block"):
            raise InputError(f"site {site!r}: expected an update site like H0.hook_out or L0_1.blocks.2.hook_resid_post")
        sub = addr.substep(model.config)
        out.append(PatchTarget(site=name, substep=sub, label=name, act=a))  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class PatchResult:
    puzzles: "pd.DataFrame"  # one row per (target, puzzle)
    summary: "pd.DataFrame"  # one row per target


def check_patch(model: HookedAIR, targets: "list[PatchTarget]", n_puzzles: int, *, source: "int | str" = "other",
                n_act: int, batch_size: int) -> None:  # fmt: skip
    """The patch experiment is well posed: targets inside the rollout, each once; a source step
    inside it, or ``"other"`` with every batch holding at least 2 puzzles (each takes another's
    value). An InputError naming the parameter otherwise; :func:`run_patch` calls it first."""
    if not targets:
        raise InputError("no patch targets")
    if len({t.site for t in targets}) != len(targets):
        raise InputError("patch targets repeat a site; give each once (a repeat would count its puzzles twice)")
    total = n_act * model.config.n_updates
    for t in targets:
        if t.act is not None and not 0 <= t.act < n_act:
            raise InputError(f"{t.label}: ACT step {t.act} is outside the rollout's 0..{n_act - 1}")
        if not 0 <= t.substep < total:
            raise InputError(f"{t.label}: sub-step {t.substep} is outside the rollout's 0..{total - 1}")
    if source != "other":
        if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < n_act:
            raise InputError(f"source {source!r}: ACT step outside the rollout's 0..{n_act - 1}")
        return
    if n_puzzles < 2:
        raise InputError("source other needs at least 2 puzzles (each takes another's value)")
    if batch_size == 1:
        raise InputError("batch_size 1: source other takes each puzzle's value from another puzzle of its batch; use a batch size >= 2")
    if n_puzzles % batch_size == 1:
        raise InputError(f"batch_size {batch_size}: {n_puzzles} puzzles leave a last batch of 1, which has no other puzzle to take a value from")


def run_patch(
    model: HookedAIR,
    ds: "PuzzleDataset",
    indices: "np.ndarray",
    targets: "list[PatchTarget]",
    *,
    source: "int | str" = "other",
    n_act: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: "Callable[[int], None] | None" = None,
) -> PatchResult:
    """Replace each target's value with another puzzle's (``source="other"``: a seeded
    derangement inside each batch, donors recorded) or the same puzzle's at ACT step ``source``,
    and measure the output (exact and token accuracy from z_H, cells changed against the clean
    run) and both states' content changes from the patched sub-step on, against the clean run."""
    import numpy as np
    import pandas as pd
    import torch

    from airinterp.analysis.dynamics import changes_table
    from airinterp.analysis.outcome import outcome
    from airinterp.analysis.paired import compare, measured_rollout, per_batch
    from airinterp.analysis.run import Hooks
    from airinterp.model.hooks import read_only
    from airinterp.tasks.rules import rules_for

    n_act = check_n_act(n_act, model.config.halt_max_steps)
    check_patch(model, targets, len(indices), source=source, n_act=n_act, batch_size=batch_size)
    rules = rules_for(model.config.task, model.config.seq_len)
    gen = np.random.default_rng(seed)
    sources = sorted({t.source_site(model, source) for t in targets})

    def measure(batch) -> pd.DataFrame:
        B = len(batch)
        captured: dict[str, torch.Tensor] = {}

        @read_only
        def keep(x, hook):
            captured[hook.name] = x.clone()

        clean = measured_rollout(model, batch, n_act, [Hooks([(name, keep) for name in sources])])
        clean_out = outcome(clean.output, clean.labels)
        if source == "other":
            perm = gen.permutation(B)
            donor = np.empty(B, np.int64)
            donor[perm] = perm[np.r_[1:B, 0]]  # a cycle through a random order: nobody keeps its own
        else:
            donor = np.arange(B)
        rows = []
        for t in targets:
            value = captured[t.source_site(model, source)][torch.from_numpy(donor).to(batch.inputs.device)]

            def patch(x, hook, value=value):
                return value.to(x.dtype)

            patched = measured_rollout(model, batch, n_act, [Hooks([(t.site, patch)])])
            out = outcome(patched.output, patched.labels)
            df = pd.DataFrame({
                "target": t.label, "site": t.site, "state": t.state, "act": t.act, "substep": t.substep,
                "puzzle": batch.indices, "donor": batch.indices[donor],
                "exact_clean": clean_out["exact"].to_numpy(), "exact_patched": out["exact"].to_numpy(),
                "token_accuracy_clean": clean_out["token_accuracy"].to_numpy(),
                "token_accuracy_patched": out["token_accuracy"].to_numpy(),
                "output_cells_changed": (patched.output != clean.output).sum(1),
            })  # fmt: skip
            for cond, r in (("clean", clean), ("patched", patched)):
                ch = changes_table(r, rules, model.schedule, start=t.substep).set_index(["state", "puzzle"])
                for s in model.config.states:
                    df[f"{s}_content_changes_{cond}"] = ch.loc[s, "content_changes"].to_numpy()
            rows.append(df)
        return pd.concat(rows, ignore_index=True)

    puzzles = per_batch(model, ds, indices, batch_size, measure, progress).reset_index(drop=True)
    summary = []
    for (label, site, substep), g in puzzles.groupby(["target", "site", "substep"], sort=False):
        row = {"target": label, "site": site, "state": g["state"].iloc[0], "act": g["act"].iloc[0], "substep": substep}
        for m in ("exact", "token_accuracy", *[f"{s}_content_changes" for s in model.config.states]):
            stats = compare(g, m, "clean", "patched", seed, label)
            row |= {f"{m}_clean": stats["base_mean"], f"{m}_patched": stats["treated_mean"],
                    f"{m}_delta": stats["delta_mean"], f"{m}_delta_ci_low": stats["delta_ci_low"],
                    f"{m}_delta_ci_high": stats["delta_ci_high"], f"{m}_p": stats["p_sign_flip"],
                    f"{m}_clean_ci_low": stats["base_ci_low"], f"{m}_clean_ci_high": stats["base_ci_high"],
                    f"{m}_patched_ci_low": stats["treated_ci_low"], f"{m}_patched_ci_high": stats["treated_ci_high"]}  # fmt: skip
        row["output_cells_changed"] = float(g["output_cells_changed"].mean())
        row["n"] = len(g)
        summary.append(row)
    return PatchResult(puzzles=puzzles, summary=pd.DataFrame(summary))


__all__ = ["PatchResult", "PatchTarget", "UpdateLens", "check_patch", "run_patch", "site_targets", "state_targets"]
