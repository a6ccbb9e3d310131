"""The update order of one ACT step, sub-steps and the two states: the only place that knows them.

With ``H_cycles`` = 2 and ``L_cycles`` = 2 one ACT step runs ``L0_0 L0_1 H0 L1_0 L1_1 H1``:
the nested loop over H-cycles and L-cycles, where the last L-update and the last H-update form
the "1-step gradient" segment (the only updates that get gradients in training).

A rollout's updates are numbered by the flat **sub-step** ``k = n_updates * act + update.index``
(:class:`SubStep`); a **state** is ``zL`` or ``zH`` (:data:`State`), the one an update of stage
``L`` or ``H`` writes. Analysis code asks these, never re-deriving the loop.
"""

from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np

from airinterp.errors import InputError

Stage = Literal["L", "H"]
State = Literal["zL", "zH"]
#: both states, in the order tables list them
STATES: tuple[State, ...] = ("zL", "zH")
_STAGE_OF: dict[str, Stage] = {"zL": "L", "zH": "H", "z_L": "L", "z_H": "H"}


def check_state(state: object) -> State:
    """``zH``/``zL`` (``z_H``/``z_L`` accepted) as :data:`State`; an InputError names the choices."""
    if state not in _STAGE_OF:
        raise InputError(f"unknown state {state!r}; choose zH or zL")
    return "z" + _STAGE_OF[state]  # type: ignore[return-value,index]


def stage_of(state: str) -> Stage:
    """The stage whose updates write ``state``: ``zL`` -> ``L``."""
    return _STAGE_OF[check_state(state)]


@dataclass(frozen=True)
class Update:
    """One application of the shared stack inside an ACT step."""

    index: int  # position inside the ACT step, 0-based
    stage: Stage  # which state is updated
    cycle: int  # H-cycle h
    step: int | None  # L-step l inside the H-cycle (None for H-updates)
    grad: bool  # part of the 1-step-gradient segment
    single: bool = False  # TRM single-z: one state, written by every update (H-updates do not see x~)

    @property
    def name(self) -> str:
        """``L{h}_{l}`` or ``H{h}``: the update's part of a hook name."""
        return f"L{self.cycle}_{self.step}" if self.stage == "L" else f"H{self.cycle}"

    @property
    def state(self) -> State:
        """``zL`` or ``zH``: the state this update writes (single-z: always its one state, ``zL``)."""
        return "zL" if self.stage == "L" or self.single else "zH"

    def __str__(self) -> str:
        return self.name


@cache
def act_schedule(
    H_cycles: int, L_cycles: int, whole_last_cycle: bool = False, single: bool = False
) -> tuple[Update, ...]:
    """The updates of one ACT step in execution order. ``grad`` marks the segment that gets
    gradients in training: the last L- and the last H-update (AIR, HRM), or with
    ``whole_last_cycle`` every update of the last H-cycle (TRM). ``single``: TRM single-z, whose
    one state (``zL``, the reference's ``z_L``) every update writes."""
    updates: list[Update] = []
    for h in range(H_cycles):
        last_h = h == H_cycles - 1
        for l in range(L_cycles):  # noqa: E741
            grad = last_h and (whole_last_cycle or l == L_cycles - 1)
            updates.append(Update(len(updates), "L", h, l, grad, single))
        updates.append(Update(len(updates), "H", h, None, last_h, single))
    return tuple(updates)


def states_of(schedule: "tuple[Update, ...]") -> tuple[State, ...]:
    """The states a model has, in :data:`STATES` order: both, or ``("zL",)`` for TRM single-z."""
    return tuple(s for s in STATES if any(u.state == s for u in schedule))


def check_state_of(schedule: "tuple[Update, ...]", state: object) -> State:
    """:func:`check_state`, and the state must exist in this schedule's model (single-z has only zL)."""
    s = check_state(state)
    if s not in states_of(schedule):
        raise InputError(f"state {s}: this model (TRM single-z) has one state, zL; there is no {s}")
    return s


def parse_update_name(name: str) -> tuple[Stage, int, int | None]:
    """``"L1_0"`` -> ("L", 1, 0); ``"H1"`` -> ("H", 1, None)."""
    import re

    m = re.fullmatch(r"L([0-9]+)_([0-9]+)|H([0-9]+)", name) if isinstance(name, str) else None  # not int("0_1") == 1
    if m and m.group(3) is None:
        return "L", int(m.group(1)), int(m.group(2))
    if m:
        return "H", int(m.group(3)), None
    raise InputError(f"not an update name: {name!r} (expected like 'L0_1' or 'H1')")


@dataclass(frozen=True)
class SubStep:
    """One update of a rollout: ACT step ``act``, update ``update`` of a schedule of ``n_updates``."""

    act: int
    update: Update
    n_updates: int

    @property
    def flat(self) -> int:
        """``n_updates * act + update.index``: the flat sub-step (plot x-axes, table rows)."""
        return self.n_updates * self.act + self.update.index

    @property
    def name(self) -> str:
        """``act.{a}.{update}``: the update's hook-name prefix."""
        return f"act.{self.act}.{self.update.name}"

    @classmethod
    def at(cls, schedule: "tuple[Update, ...]", k: int) -> "SubStep":
        """The sub-step at flat index ``k`` (>= 0)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InputError(f"substep {k!r}: expected a flat sub-step index >= 0")
        act, index = divmod(k, len(schedule))
        return cls(act, schedule[index], len(schedule))

    @classmethod
    def of(cls, schedule: "tuple[Update, ...]", act: int, update: str) -> "SubStep":
        """The sub-step of update ``update`` (a name like ``L0_1``) in ACT step ``act``."""
        for u in schedule:
            if u.name == update:
                return cls(act, u, len(schedule))
        raise InputError(f"update {update!r} is not in this model's schedule {[u.name for u in schedule]}")


def substeps(schedule: "tuple[Update, ...]", n_substeps: int) -> list[SubStep]:
    """The first ``n_substeps`` sub-steps of a rollout, in order."""
    return [SubStep.at(schedule, k) for k in range(n_substeps)]


def substep_names(schedule: "tuple[Update, ...]", n_substeps: int) -> list[str]:
    """``act.{a}.{update}`` of every flat sub-step."""
    return [s.name for s in substeps(schedule, n_substeps)]


def written(schedule: "tuple[Update, ...]", state: str, n_substeps: int) -> np.ndarray:
    """[n_substeps] bool: does sub-step k's update write ``state``?"""
    state = check_state(state)
    return np.array([s.update.state == state for s in substeps(schedule, n_substeps)], dtype=bool)


def writes(schedule: "tuple[Update, ...]", state: str) -> list[int]:
    """The indices (inside one ACT step) of the updates that write ``state``."""
    state = check_state(state)
    return [u.index for u in schedule if u.state == state]


def state_hook(schedule: tuple[Update, ...], state: str, act: int, index: int, *, after: bool = False) -> str:
    """The hook whose value is ``state`` (``zL``/``zH``) as update ``index`` of ACT step ``act``
    reads it (``after``: as it stands once that update has run).

    The last earlier update of the state inside the step gives ``act.{a}.{u}.hook_out``; none
    gives the state carried in, ``act.{a-1}.hook_{state}``, or ``hook_{state}_init`` at step 0."""
    state = check_state(state)
    if not 0 <= index < len(schedule):
        raise InputError(f"update index {index} is outside the schedule's 0..{len(schedule) - 1}")
    last = index if after else index - 1
    for u in reversed(schedule[: last + 1]):
        if u.state == state:
            return f"act.{act}.{u.name}.hook_out"
    return f"act.{act - 1}.hook_{state}" if act > 0 else f"hook_{state}_init"
