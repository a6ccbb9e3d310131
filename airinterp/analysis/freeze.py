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

from torch import Tensor

from airinterp.model.air import HookedAIR
from airinterp.model.hooks import HookPoint, select

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

    def remember(x: Tensor, hook: HookPoint) -> None:
        saved[hook.air_key[:2]] = x  # type: ignore[attr-defined]

    def frozen(x: Tensor, hook: HookPoint) -> Tensor:
        return saved.pop(hook.air_key[:2])  # type: ignore[attr-defined]

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
