"""The update order of one ACT step: the only place that knows it.

With ``H_cycles`` = 2 and ``L_cycles`` = 2 one ACT step runs ``L0_0 L0_1 H0 L1_0 L1_1 H1``:
the nested loop over H-cycles and L-cycles, where the last L-update and the last H-update form
the "1-step gradient" segment (the only updates that get gradients in training).
"""

from dataclasses import dataclass
from functools import cache
from typing import Literal

Stage = Literal["L", "H"]


@dataclass(frozen=True)
class Update:
    """One application of the shared stack inside an ACT step."""

    index: int  # position inside the ACT step, 0-based
    stage: Stage  # which state is updated
    cycle: int  # H-cycle h
    step: int | None  # L-step l inside the H-cycle (None for H-updates)
    grad: bool  # part of the 1-step-gradient segment

    @property
    def name(self) -> str:
        """``L{h}_{l}`` or ``H{h}``: the update's part of a hook name."""
        return f"L{self.cycle}_{self.step}" if self.stage == "L" else f"H{self.cycle}"

    @property
    def state(self) -> str:
        """``zL`` or ``zH``: the state this update writes."""
        return "z" + self.stage

    def __str__(self) -> str:
        return self.name


@cache
def act_schedule(H_cycles: int, L_cycles: int) -> tuple[Update, ...]:
    """The updates of one ACT step in execution order."""
    updates: list[Update] = []
    for h in range(H_cycles):
        last_h = h == H_cycles - 1
        for l in range(L_cycles):  # noqa: E741
            grad = last_h and l == L_cycles - 1
            updates.append(Update(len(updates), "L", h, l, grad))
        updates.append(Update(len(updates), "H", h, None, last_h))
    return tuple(updates)


def parse_update_name(name: str) -> tuple[Stage, int, int | None]:
    """``"L1_0"`` -> ("L", 1, 0); ``"H1"`` -> ("H", 1, None)."""
    try:
        if name.startswith("L"):
            h, l = name[1:].split("_")  # noqa: E741
            return "L", int(h), int(l)
        if name.startswith("H"):
            return "H", int(name[1:]), None
    except ValueError:
        pass
    raise ValueError(f"not an update name: {name!r} (expected like 'L0_1' or 'H1')")


def flat_substep(act: int, update: Update, n_updates: int) -> int:
    """Flat sub-step index ``k = n_updates * act + update.index`` (plot x-axes)."""
    return n_updates * act + update.index


def state_hook(schedule: tuple[Update, ...], state: str, act: int, index: int, *, after: bool = False) -> str:
    """The hook whose value is ``state`` (``zL``/``zH``) as update ``index`` of ACT step ``act``
    reads it (``after``: as it stands once that update has run).

    The last earlier update of the state inside the step gives ``act.{a}.{u}.hook_out``; none
    gives the state carried in, ``act.{a-1}.hook_{state}``, or ``hook_{state}_init`` at step 0."""
    if state not in ("zL", "zH"):
        raise ValueError(f"unknown state {state!r}; choose zH or zL")
    if not 0 <= index < len(schedule):
        raise ValueError(f"update index {index} is outside the schedule's 0..{len(schedule) - 1}")
    last = index if after else index - 1
    for u in reversed(schedule[: last + 1]):
        if u.state == state:
            return f"act.{act}.{u.name}.hook_out"
    return f"act.{act - 1}.hook_{state}" if act > 0 else f"hook_{state}_init"
