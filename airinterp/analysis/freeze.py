"""State-freeze interventions as hooks: a frozen update returns its input state as its output.

``freeze_hooks(model, ["zH"])`` makes every H-update of the rollout a no-op, so z_H keeps its
reset value (H_init) for the whole rollout: the reference's "freeze z_H" (spec 4.c). ``from_act``
starts the freeze at a later ACT step; ``updates`` restricts it to named updates (``["H0"]``).
With no state selected the hooks still run at every update and pass the output through
unchanged, which is how the tests show that the hook machinery itself changes nothing.
"""

from collections.abc import Callable, Collection

from torch import Tensor

from airinterp.model.air import HookedAIR
from airinterp.model.hooks import HookPoint

HookList = list[tuple[str, Callable[..., Tensor | None]]]
_STATES = {"zH": "H", "zL": "L", "z_H": "H", "z_L": "L"}


def freeze_hooks(
    model: HookedAIR,
    states: Collection[str] = ("zH",),
    *,
    n_act: int | None = None,
    from_act: int = 0,
    until_act: int | None = None,
    updates: Collection[str] | None = None,
) -> HookList:
    """Forward hooks that freeze ``states`` (``"zH"``/``"zL"``) at ACT steps [from_act, until_act)."""
    if isinstance(states, str):
        states = [states]
    unknown = [s for s in states if s not in _STATES]
    if unknown:
        raise ValueError(f"unknown state(s) {unknown}; choose from zH, zL")
    stages = {_STATES[s] for s in states}
    n_act = model.config.halt_max_steps if n_act is None else n_act
    until_act = n_act if until_act is None else min(until_act, n_act)
    if not 0 <= from_act <= until_act:
        raise ValueError(f"freeze window [{from_act}, {until_act}) is not inside 0..{n_act}")
    if updates is not None:
        names = {u.name for u in model.schedule}
        bad = sorted(set(updates) - names)
        if bad:
            raise ValueError(f"unknown update(s) {bad}; this model's updates are {sorted(names)}")
    saved: dict[str, Tensor] = {}

    def remember(x: Tensor, hook: HookPoint) -> None:
        saved[hook.name.rsplit(".", 1)[0]] = x  # type: ignore[union-attr]

    def frozen(x: Tensor, hook: HookPoint) -> Tensor:
        return saved.pop(hook.name.rsplit(".", 1)[0])  # type: ignore[union-attr]

    def passthrough(x: Tensor, hook: HookPoint) -> None:
        saved.pop(hook.name.rsplit(".", 1)[0], None)  # type: ignore[union-attr]

    hooks: HookList = []
    for a in range(from_act, until_act):
        for u in model.schedule:
            prefix = f"act.{a}.{u.name}"
            chosen = u.stage in stages and (updates is None or u.name in updates)
            hooks.append((f"{prefix}.hook_state_in", remember))
            hooks.append((f"{prefix}.hook_out", frozen if chosen else passthrough))
    return hooks
