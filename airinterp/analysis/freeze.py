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

from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.hooks import Address, HookPoint, read_only, select
from airinterp.model.inputs import check_n_act
from airinterp.model.schedule import SubStep, check_state, check_state_of, writes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airinterp.tasks.dataset import PuzzleDataset

HookList = list[tuple[str | Callable[[str], bool], Callable[..., Tensor | None]]]


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
    states = [check_state_of(model.schedule, s) for s in states]
    for name, value in (("from_act", from_act), ("until_act", until_act)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InputError(f"{name} must be an ACT step >= 0, got {value!r}")
    if until_act is not None and until_act < from_act:
        raise InputError(f"freeze window [{from_act}, {until_act}) is empty")
    if updates is not None:
        names = {u.name for u in model.schedule}
        bad = sorted(set(updates) - names)
        if bad:
            raise InputError(f"unknown update(s) {bad}; this model's updates are {sorted(names)}")
    chosen = {
        u.name for u in model.schedule if u.state in states and (updates is None or u.name in updates)
    }
    if updates is not None:
        other = sorted(set(updates) - chosen)
        if other:
            raise InputError(f"updates {other} write the other state, not {', '.join(states)}: "
                             "freezing there would freeze nothing")  # fmt: skip
    in_window = lambda a: a >= from_act and (until_act is None or a < until_act)  # noqa: E731
    saved: dict[tuple, Tensor] = {}

    def update_of(hook: HookPoint) -> tuple:
        addr = Address.parse(hook.name)  # type: ignore[arg-type]
        return addr.act, addr.update

    @read_only
    def remember(x: Tensor, hook: HookPoint) -> None:
        saved[update_of(hook)] = x

    def frozen(x: Tensor, hook: HookPoint) -> Tensor:
        return saved.pop(update_of(hook))

    @read_only
    def passthrough(x: Tensor, hook: HookPoint) -> None:
        saved.pop(update_of(hook), None)

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
        """The freeze lies inside an ``n_act``-step rollout of ``model``; InputError otherwise."""
        if model.config.single_z:
            raise InputError(f"{self.label()}: TRM single-z has one state, written by every update; the freeze design "
                             "freezes one state and measures the other, which this model does not have")  # fmt: skip
        if self.substep is not None:
            total = n_act * model.config.n_updates
            if not 0 <= self.substep < total:
                raise InputError(f"substep {self.substep} is outside the rollout's sub-steps 0..{total - 1}")
            u = SubStep.at(model.schedule, self.substep).update
            if u.state != self.state:
                raise InputError(
                    f"substep {self.substep} is update {u.name}, which writes {u.state}, not {self.state}; "
                    f"{self.state} is written at sub-steps {model.config.n_updates}*act + {writes(model.schedule, self.state)}"
                )
        elif not 0 <= self.from_act < n_act:
            raise InputError(f"from_act {self.from_act} is outside the rollout's ACT steps 0..{n_act - 1}")

    def hooks(self, model: HookedAIR) -> HookList:
        if self.substep is None:
            return freeze_hooks(model, self.state, from_act=self.from_act)
        s = SubStep.at(model.schedule, self.substep)
        return freeze_hooks(model, self.state, from_act=s.act, until_act=s.act + 1, updates=[s.update.name])

    def label(self) -> str:
        if self.substep is not None:
            return f"freeze {self.state} at sub-step {self.substep}"
        return f"freeze {self.state}" + (f" from ACT step {self.from_act}" if self.from_act else "")


# ---- the paired freeze experiment (spec 4.c) ---------------------------------------------------

OTHER = {"zH": "zL", "zL": "zH"}
#: the per-puzzle content-change columns of the measured state compared by the design
CHANGE_COLUMNS = ("content_changes", "content_changes_harmonized", "content_changes_nongiven",
                  "content_changes_nongiven_harmonized", "mask_flips", "mask_flips_harmonized",
                  "token_changes", "content_per_updated", "content_per_updated_harmonized")  # fmt: skip


@dataclass(frozen=True)
class FreezeResult:
    """The paired freeze experiment: per-puzzle values (``puzzles``: ``{metric}_normal`` and
    ``{metric}_frozen`` per puzzle), their paired summary, and what was run.

    ``input_independent``: the frozen rollout's measured state decodes to the same trajectory for
    every puzzle (None with fewer than 2 puzzles: undetermined)."""

    freeze: Freeze
    n_act: int
    puzzles: "pd.DataFrame"
    summary: "pd.DataFrame"
    input_independent: bool | None

    @property
    def measured_state(self) -> str:
        return OTHER[self.freeze.state]

    def input_independent_note(self) -> str:
        if not self.input_independent:
            return ""
        return (f"with {self.freeze.state} frozen, {self.measured_state} decodes to the same trajectory for every puzzle: "
                "the frozen rollout does not see the input, so its content changes are a property of the weights, not of "
                "puzzles (spec A2)")  # fmt: skip

    def measured_exact_reference_note(self) -> str:
        m = self.measured_state
        return (f"measured_exact_reference is the exact accuracy of the decoded {m}, the quantity the reference's "
                "freeze-zH scripts report as 'accuracy' (spec A1); the model's output is output_exact (from zH)")

    def notes(self) -> list[str]:
        """What a reader of the tables needs to know, in order."""
        notes = [self.measured_exact_reference_note()]
        if self.input_independent:
            notes.insert(0, "INPUT-INDEPENDENT: " + self.input_independent_note())
        return notes

    @property
    def flags(self) -> dict:
        """The run and its findings as one dict (``config.json``)."""
        fr = self.freeze
        return {
            "frozen_state": fr.state, "measured_state": self.measured_state, "from_act": fr.from_act,
            "substep": fr.substep, "n_act": self.n_act, "n_puzzles": len(self.puzzles),
            "input_independent": self.input_independent, "input_independent_note": self.input_independent_note(),
            "measured_exact_reference_note": self.measured_exact_reference_note(),
        }  # fmt: skip


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
    """Normal and frozen rollouts of the same puzzles, batch by batch (:mod:`.paired`); measures
    the **other** state's content changes (both modes, all and non-given cells), the model's output
    accuracy (from z_H, as always) and, labelled as the reference's quantity, the measured state's
    own decode accuracy. Only per-puzzle numbers are kept."""
    import pandas as pd

    from airinterp.analysis.dynamics import changes_table
    from airinterp.analysis.outcome import outcome
    from airinterp.analysis.paired import compare, measured_rollout, per_batch
    from airinterp.tasks.rules import rules_for

    n_act = check_n_act(n_act, model.config.halt_max_steps)
    freeze.check(model, n_act)
    rules = rules_for(model.config.task, model.config.seq_len)
    measured = OTHER[freeze.state]
    trajectories: list = []

    def measure(batch) -> pd.DataFrame:
        per: dict[str, pd.DataFrame] = {}
        for cond, ivs in (("normal", ()), ("frozen", (freeze,))):
            r = measured_rollout(model, batch, n_act, ivs)
            ch = changes_table(r, rules, model.schedule)
            ch = ch[ch.state == measured].set_index("puzzle")
            df = outcome(r.output, r.labels, rules.given_mask(r.inputs)).add_prefix("output_").set_index(ch.index)
            df["measured_exact_reference"] = (r.state(measured)[:, -1] == r.labels).all(1)
            for col in CHANGE_COLUMNS:
                df[col] = ch[col].to_numpy()
            per[cond] = df
            if cond == "frozen":
                trajectories.append(r.state(measured))
        return per["normal"].add_suffix("_normal").join(per["frozen"].add_suffix("_frozen"))

    puzzles = per_batch(model, ds, indices, batch_size, measure, progress)
    puzzles = puzzles.reset_index().rename(columns={"index": "puzzle"})
    first = trajectories[0][0]
    independent = all(bool((t == first).all()) for t in trajectories)
    metrics = [c[: -len("_normal")] for c in puzzles.columns if c.endswith("_normal")]
    rows = []
    for m in metrics:
        row = {"metric": m, **compare(puzzles, m, "normal", "frozen", seed, freeze.label())}
        row["frozen_sd"] = float(puzzles[m + "_frozen"].std(ddof=1)) if len(puzzles) > 1 else float("nan")
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary.insert(0, "measured_state", measured)
    summary.insert(0, "condition", freeze.label())
    return FreezeResult(freeze=freeze, n_act=n_act, puzzles=puzzles, summary=summary,
                        input_independent=bool(independent) if len(puzzles) >= 2 else None)  # fmt: skip
