"""State-freeze interventions as hooks: a frozen update returns its input state as its output.

``Freeze("zH")`` makes every H-update of the rollout a no-op, so z_H keeps its reset value
(H_init) for the whole rollout: the reference's "freeze z_H" (spec 4.c). ``from_act`` starts the
freeze at a later ACT step; ``substep`` freezes one flat sub-step only. The hooks are given by
predicate, so they hold on every ACT step the rollout runs, ``n_act`` beyond ``halt_max_steps``
included. With no state selected (:func:`freeze_hooks` with ``states=[]``) the hooks still run at
every update and pass the output through unchanged: the tests use it to show the hook machinery
itself changes nothing.
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

from airinterp.model.air import HookedAIR
from airinterp.model.hooks import HookPoint, read_only, select

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airinterp.tasks.dataset import PuzzleDataset

HookList = list[tuple[str | Callable[[str], bool], Callable[..., Tensor | None]]]
STATES = ("zH", "zL")
_STAGE = {"zH": "H", "zL": "L", "z_H": "H", "z_L": "L"}


def check_state(state: str) -> str:
    """``zH``/``zL`` (``z_H``/``z_L`` accepted); a ValueError names the choices."""
    if state not in _STAGE:
        raise ValueError(f"unknown state {state!r}; choose zH or zL")
    return "z" + _STAGE[state]


def freeze_hooks(
    model: HookedAIR,
    states: Collection[str] | str = ("zH",),
    *,
    from_act: int = 0,
    until_act: int | None = None,
    updates: Collection[str] | None = None,
) -> HookList:
    """Forward hooks that freeze ``states`` at ACT steps ``[from_act, until_act)`` (None: every
    step the rollout runs), at the updates named in ``updates`` (None: all of the state's)."""
    if isinstance(states, str):
        states = [states]
    stages = {_STAGE[check_state(s)] for s in states}
    for name, value in (("from_act", from_act), ("until_act", until_act)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be an ACT step >= 0, got {value!r}")
    if until_act is not None and until_act < from_act:
        raise ValueError(f"freeze window [{from_act}, {until_act}) is empty")
    if updates is not None:
        names = {u.name for u in model.schedule}
        bad = sorted(set(updates) - names)
        if bad:
            raise ValueError(f"unknown update(s) {bad}; this model's updates are {sorted(names)}")
    chosen = {
        u.name for u in model.schedule if u.stage in stages and (updates is None or u.name in updates)
    }
    in_window = lambda a: a >= from_act and (until_act is None or a < until_act)  # noqa: E731
    saved: dict[tuple, Tensor] = {}

    @read_only
    def remember(x: Tensor, hook: HookPoint) -> None:
        saved[hook.air_key[:2]] = x  # type: ignore[attr-defined]

    def frozen(x: Tensor, hook: HookPoint) -> Tensor:
        return saved.pop(hook.air_key[:2])  # type: ignore[attr-defined]

    @read_only
    def passthrough(x: Tensor, hook: HookPoint) -> None:
        saved.pop(hook.air_key[:2], None)  # type: ignore[attr-defined]

    if not chosen:  # nothing frozen: exercise the machinery at every update
        return [
            (select(site="hook_state_in", act=in_window), remember),
            (select(site="hook_out", act=in_window), passthrough),
        ]
    return [
        (select(site="hook_state_in", act=in_window, update=chosen), remember),
        (select(site="hook_out", act=in_window, update=chosen), frozen),
    ]


@dataclass(frozen=True)
class Freeze:
    """Freeze ``state`` from ACT step ``from_act`` on (0: the reference's whole-rollout freeze),
    or, with ``substep`` (a flat index ``n_updates * act + update``), at that one update only
    (then it must be an update of ``state``)."""

    state: str = "zH"
    from_act: int = 0
    substep: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", check_state(self.state))

    def check(self, model: HookedAIR, n_act: int) -> None:
        """The freeze lies inside an ``n_act``-step rollout of ``model``; ValueError otherwise."""
        c = model.config
        if self.substep is not None:
            total = n_act * c.n_updates
            if not 0 <= self.substep < total:
                raise ValueError(f"--substep {self.substep} is outside the rollout's sub-steps 0..{total - 1}")
            u = model.schedule[self.substep % c.n_updates]
            if u.state != self.state:
                writes = [k for k, v in enumerate(model.schedule) if v.state == self.state]
                raise ValueError(
                    f"--substep {self.substep} is update {u.name}, which writes {u.state}, not {self.state}; "
                    f"{self.state} is written at sub-steps {c.n_updates}*act + {writes}"
                )
        elif not 0 <= self.from_act < n_act:
            raise ValueError(f"--from-act {self.from_act} is outside the rollout's ACT steps 0..{n_act - 1}")

    def hooks(self, model: HookedAIR) -> HookList:
        if self.substep is None:
            return freeze_hooks(model, self.state, from_act=self.from_act)
        act, index = divmod(self.substep, model.config.n_updates)
        return freeze_hooks(model, self.state, from_act=act, until_act=act + 1, updates=[model.schedule[index].name])

    def label(self) -> str:
        if self.substep is not None:
            return f"freeze {self.state} at sub-step {self.substep}"
        return f"freeze {self.state}" + (f" from ACT step {self.from_act}" if self.from_act else "")


# ---- the paired freeze experiment (spec 4.c) ---------------------------------------------------

OTHER = {"zH": "zL", "zL": "zH"}


@dataclass(frozen=True)
class FreezeResult:
    """Per-puzzle values of the paired design and the paired summary; ``flags`` holds
    ``input_independent`` (the frozen rollout's measured state decodes to the same trajectory for
    every puzzle) and the context a reader needs."""

    puzzles: "pd.DataFrame"
    summary: "pd.DataFrame"
    flags: dict


def run_freeze(
    model: HookedAIR,
    ds: "PuzzleDataset",
    indices: "np.ndarray",
    freeze: Freeze,
    *,
    n_act: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: "Callable[[int], None] | None" = None,
) -> FreezeResult:
    """Normal and frozen rollouts of the same puzzles, batch by batch; measures the **other**
    state's content changes (both modes, all and non-given cells), the model's output accuracy
    (from z_H, as always) and, labelled as the reference's quantity, the measured state's own
    decode accuracy. Only per-puzzle numbers are kept."""
    import numpy as np
    import pandas as pd

    from airinterp.analysis.decode import DecodedRollout, DecodeRecorder, record
    from airinterp.analysis.dynamics import changes_table
    from airinterp.analysis.run import puzzle_batches
    from airinterp.analysis.stats import paired, rate_ci
    from airinterp.tasks.rules import rules_for

    n_act = model.config.halt_max_steps if n_act is None else n_act
    freeze.check(model, n_act)
    rules = rules_for(model.config.task, model.config.seq_len)
    measured = OTHER[freeze.state]
    first_traj = None
    independent = True
    parts = []
    for batch in puzzle_batches(model, ds, indices, batch_size):
        per: dict[str, pd.DataFrame] = {}
        for cond, ivs in (("normal", ()), ("frozen", (freeze,))):
            rec = DecodeRecorder(model, keep=False)
            out = record(model, batch, rec, n_act=n_act, interventions=ivs)
            b = rec.batch
            inputs = batch.inputs.cpu().numpy()
            r = DecodedRollout(indices=b["indices"], zL=b["zL"], zH=b["zH"], inputs=inputs, labels=batch.labels)
            ch = changes_table(r, rules, model.schedule)
            ch = ch[ch.state == measured].set_index("puzzle")
            pred = out.logits.argmax(-1).cpu().numpy()
            labels = batch.labels
            free = ~rules.given_mask(inputs)
            final = r.state(measured)[:, -1]
            df = pd.DataFrame(index=ch.index)
            df["output_exact"] = (pred == labels).all(1)
            df["output_token_accuracy"] = (pred == labels).mean(1)
            df["output_nongiven_accuracy"] = ((pred == labels) & free).sum(1) / np.maximum(free.sum(1), 1)
            df["measured_exact_reference"] = (final == labels).all(1)
            for col in ("content_changes", "content_changes_harmonized", "content_changes_nongiven",
                        "content_changes_nongiven_harmonized", "mask_flips", "mask_flips_harmonized",
                        "token_changes", "content_per_updated", "content_per_updated_harmonized"):  # fmt: skip
                df[col] = ch[col].to_numpy()
            per[cond] = df
            if cond == "frozen":
                traj = r.state(measured)
                if first_traj is None:
                    first_traj = traj[0]
                independent &= bool((traj == first_traj).all())
        both = per["normal"].add_suffix("_normal").join(per["frozen"].add_suffix("_frozen"))
        parts.append(both)
        if progress:
            progress(len(batch))
    puzzles = pd.concat(parts).reset_index().rename(columns={"index": "puzzle"})
    metrics = [c[: -len("_normal")] for c in puzzles.columns if c.endswith("_normal")]
    rows = []
    for m in metrics:
        row = {"metric": m, **paired(puzzles[m + "_normal"].to_numpy(float), puzzles[m + "_frozen"].to_numpy(float), seed, freeze.label(), m)}
        row["frozen_sd"] = float(puzzles[m + "_frozen"].std(ddof=1)) if len(puzzles) > 1 else float("nan")
        if m.endswith("exact") or m.endswith("exact_reference"):
            row["base_ci_low"], row["base_ci_high"] = rate_ci(puzzles[m + "_normal"].to_numpy())
            row["treated_ci_low"], row["treated_ci_high"] = rate_ci(puzzles[m + "_frozen"].to_numpy())
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary.insert(0, "measured_state", measured)
    summary.insert(0, "condition", freeze.label())
    flags = {
        "frozen_state": freeze.state, "measured_state": measured, "from_act": freeze.from_act,
        "substep": freeze.substep, "n_act": n_act, "n_puzzles": len(puzzles),
        "input_independent": bool(independent) if len(puzzles) >= 2 else None,  # undetermined with one puzzle
        "input_independent_note": (
            f"with {freeze.state} frozen, {measured} decodes to the same trajectory for every puzzle: the frozen "
            "rollout does not see the input, so its content changes are a property of the weights, not of "
            "puzzles (spec A2)" if independent and len(puzzles) >= 2 else ""
        ),
        "measured_exact_reference_note": (
            f"measured_exact_reference is the exact accuracy of the decoded {measured}, the quantity the "
            "reference's freeze-zH scripts report as 'accuracy' (spec A1); the model's output is output_exact (from zH)"
        ),
    }  # fmt: skip
    return FreezeResult(puzzles=puzzles, summary=summary, flags=flags)
