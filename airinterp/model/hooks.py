"""Hook names for a recurrent model: Address, name catalogue, selectors, HookPoint containers.

This is the only module that imports ``transformer_lens``. The shared block's weights are shared;
its HookPoints are not: there is one HookPoint per (ACT step, update, layer, site), so every
activation of a rollout has one stable name and ``run_with_cache`` keeps every sub-step::

    hook_embed, hook_input, hook_g_input, hook_zH_init, hook_zL_init       once per forward
    act.{a}.hook_zL | hook_zH | hook_logits | hook_q_halt | hook_q_continue  once per ACT step
    act.{a}.{u}.hook_state_in | hook_injection | hook_in | hook_out          once per update
    act.{a}.{u}.blocks.{i}.{site}                                            once per block call

``u`` is ``L{h}_{l}`` (L-update ``l`` inside H-cycle ``h``) or ``H{h}`` (the H-update closing
H-cycle ``h``); see :mod:`airinterp.model.schedule`. ``hook_injection`` is the second operand of
the reference's sum (``f_level(first, injection)`` computes ``first + injection``), ``hook_in``
that sum, i.e. the input of block 0.
"""

import fnmatch
import numbers
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from torch import nn
from transformer_lens import ActivationCache, HookedRootModule
from transformer_lens.hook_points import HookPoint

from airinterp.errors import InputError
from airinterp.model.schedule import Stage, SubStep, parse_update_name

if TYPE_CHECKING:
    from airinterp.model.config import AIRConfig

__all__ = [
    "ActivationCache",
    "HookPoint",
    "HookedRootModule",
    "Address",
    "select",
    "glob",
    "hook_catalogue",
    "hook_names",
    "step_names",
    "check_name",
    "read_only",
    "FORWARD_SITES",
    "ACT_SITES",
    "UPDATE_SITES",
    "BLOCK_SITES",
]

#: Sites fired once per forward, with the shape of their activation.
FORWARD_SITES: dict[str, str] = {
    "hook_embed": "batch cell d_model",  # token embedding rows, before the prefix and the scale
    "hook_input": "batch pos d_model",  # x~: sqrt(D) * [prefix ; token embedding]
    "hook_g_input": "batch pos d_model",  # g(x~) of the gx_* operator controls only
    "hook_zH_init": "batch pos d_model",  # z_H after the reset (H_init at every position)
    "hook_zL_init": "batch pos d_model",
}
#: Sites fired once per ACT step.
ACT_SITES: dict[str, str] = {
    "hook_zL": "batch pos d_model",  # z_L carried out of the ACT step
    "hook_zH": "batch pos d_model",  # z_H carried out of the ACT step (decoded into logits)
    "hook_logits": "batch cell vocab",
    "hook_q_halt": "batch",
    "hook_q_continue": "batch",
}
#: Sites fired once per update of the shared stack.
UPDATE_SITES: dict[str, str] = {
    "hook_state_in": "batch pos d_model",  # the state this update overwrites
    "hook_injection": "batch pos d_model",  # second operand of the input sum
    "hook_in": "batch pos d_model",  # the summed input of block 0
    "hook_out": "batch pos d_model",  # the stack output, the new state
}
#: Sites fired once per block call, in firing order (TransformerLens suffixes).
BLOCK_SITES: dict[str, str] = {
    "hook_resid_pre": "batch pos d_model",
    "attn.hook_q": "batch pos head d_head",
    "attn.hook_k": "batch pos head d_head",
    "attn.hook_v": "batch pos head d_head",
    "attn.hook_rot_q": "batch pos head d_head",
    "attn.hook_rot_k": "batch pos head d_head",
    "attn.hook_attn_scores": "batch head pos_q pos_k",  # q.k / sqrt(d_head), float32
    "attn.hook_pattern": "batch head pos_q pos_k",  # softmax over keys, float32
    "attn.hook_z": "batch pos head d_head",
    "hook_attn_out": "batch pos d_model",
    "hook_resid_mid": "batch pos d_model",  # after the first RMSNorm (post-norm block)
    "mlp.hook_pre": "batch pos d_mlp",  # SwiGLU gate pre-activation
    "mlp.hook_pre_linear": "batch pos d_mlp",  # SwiGLU up projection
    "mlp.hook_post": "batch pos d_mlp",  # silu(gate) * up
    "hook_mlp_out": "batch pos d_model",
    "hook_resid_post": "batch pos d_model",  # after the second RMSNorm
}
PATTERN_SITES = ("attn.hook_attn_scores", "attn.hook_pattern")
#: Sites of TRM's ``mlp_t`` blocks (a SwiGLU across positions instead of attention), in firing order.
MLP_T_BLOCK_SITES: dict[str, str] = {
    "hook_resid_pre": "batch pos d_model",
    "mlp_t.hook_pre": "batch d_model d_mlp_t",  # gate of the sequence-axis SwiGLU, on the transposed residual
    "mlp_t.hook_pre_linear": "batch d_model d_mlp_t",
    "mlp_t.hook_post": "batch d_model d_mlp_t",
    "hook_mlp_t_out": "batch d_model pos",  # the position mixing's output, before the norm over positions
    "hook_resid_mid": "batch pos d_model",  # after that norm, transposed back
    **{k: v for k, v in BLOCK_SITES.items() if k.startswith("mlp.") or k in ("hook_mlp_out", "hook_resid_post")},
}


def block_sites(cfg: "AIRConfig") -> dict[str, str]:
    """The sites of one block call of models of ``cfg`` (attention blocks, or TRM's mlp_t blocks)."""
    return MLP_T_BLOCK_SITES if getattr(cfg, "mlp_t", False) else BLOCK_SITES


@dataclass(frozen=True)
class Address:
    """Where a hook sits: ``str(addr)`` is its name and ``Address.parse(name)`` inverts it.

    ``act`` is the 0-based ACT step; ``stage``/``cycle``/``step`` identify the update
    (``step`` is None for H-updates); ``layer`` the block. Fields that do not apply are None.
    """

    site: str
    act: int | None = None
    stage: Stage | None = None
    cycle: int | None = None
    step: int | None = None
    layer: int | None = None

    @property
    def update(self) -> str | None:
        """The update's name (``L0_1``, ``H1``) or None above update level."""
        if self.stage is None:
            return None
        return f"L{self.cycle}_{self.step}" if self.stage == "L" else f"H{self.cycle}"

    @property
    def scope(self) -> str:
        """``forward``, ``act``, ``update`` or ``block``: how often the hook fires."""
        if self.act is None:
            return "forward"
        if self.stage is None:
            return "act"
        return "update" if self.layer is None else "block"

    def coords(self, cfg: "AIRConfig") -> tuple[int | None, int | None, Stage | None, int | None]:
        """(ACT step, flat sub-step, level L/H, layer); None where the hook sits above it."""
        return self.act, self.substep(cfg), self.stage, self.layer

    @classmethod
    def at(cls, cfg: "AIRConfig", substep: int, site: str, layer: int | None = None) -> "Address":
        """The address of ``site`` at flat sub-step ``substep`` (inverse of :meth:`coords`)."""
        if substep < 0:
            raise InputError(f"sub-step must be >= 0, got {substep}")
        s = SubStep.at(cfg.schedule, substep)
        u = s.update
        addr = cls(site=site, act=s.act, stage=u.stage, cycle=u.cycle, step=u.step, layer=layer)
        return _parse(str(addr))  # validates site against layer

    def substep(self, cfg: "AIRConfig") -> int | None:
        """Flat 0-based sub-step index ``n_updates * act + update index`` (plot x-axes)."""
        if self.stage is None or self.act is None:
            return None
        try:
            return SubStep.of(cfg.schedule, self.act, self.update).flat  # type: ignore[arg-type]
        except InputError:
            raise InputError(f"update {self.update} is not in the schedule of {cfg.variant}") from None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.act is not None:
            parts.append(f"act.{self.act}")
            if self.stage is not None:
                parts.append(self.update)  # type: ignore[arg-type]
                if self.layer is not None:
                    parts.append(f"blocks.{self.layer}")
        parts.append(self.site)
        return ".".join(parts)

    @classmethod
    def parse(cls, name: str) -> "Address":
        return _parse(name)


@lru_cache(maxsize=65536)
def _parse(name: str) -> Address:
    def bad(why: str) -> ValueError:
        return InputError(f"not an airinterp hook name: {name!r} ({why})")

    if not name.startswith("act."):
        if name not in FORWARD_SITES:
            raise bad(f"unknown forward-level site; forward sites are {', '.join(FORWARD_SITES)}, "
                      "the rest start with act.<step>.")
        return Address(site=name)
    parts = name.split(".")
    if len(parts) < 3 or not parts[1].isdigit():
        raise bad("expected act.<step>.…")
    act = int(parts[1])
    rest = parts[2:]
    if rest[0].startswith("hook_"):
        site = ".".join(rest)
        if site not in ACT_SITES:
            raise bad(f"unknown ACT-step site {site!r}; ACT-step sites are {', '.join(ACT_SITES)}")
        return Address(site=site, act=act)
    try:
        stage, cycle, step = parse_update_name(rest[0])
    except ValueError as err:
        raise bad(str(err)) from None
    rest = rest[1:]
    if rest and rest[0] == "blocks":
        if len(rest) < 3 or not rest[1].isdigit():
            raise bad("expected blocks.<layer>.<site>")
        site = ".".join(rest[2:])
        if site not in BLOCK_SITES and site not in MLP_T_BLOCK_SITES:
            raise bad(f"unknown block site {site!r}; block sites are {', '.join(BLOCK_SITES)} (TRM mlp_t blocks: "
                      f"{', '.join(k for k in MLP_T_BLOCK_SITES if k not in BLOCK_SITES)})")
        return Address(site=site, act=act, stage=stage, cycle=cycle, step=step, layer=int(rest[1]))
    site = ".".join(rest)
    if site not in UPDATE_SITES:
        raise bad(f"unknown update site {site!r}; update sites are {', '.join(UPDATE_SITES)}, "
                  "block sites go under blocks.<layer>.")
    return Address(site=site, act=act, stage=stage, cycle=cycle, step=step)


def _matches(value: Any, wanted: Any) -> bool:
    if wanted is None:
        return True
    if isinstance(wanted, (str, int)) or wanted is True or wanted is False:
        return value == wanted
    if isinstance(wanted, Collection):
        return value in wanted
    if callable(wanted):
        return bool(wanted(value))
    return value == wanted


def select(
    *,
    site: "str | Collection[str] | Callable[[str], bool] | None" = None,
    act: "int | Collection[int] | Callable[[int], bool] | None" = None,
    stage: Stage | None = None,
    update: "str | Collection[str] | Callable[[str], bool] | None" = None,
    layer: "int | Collection[int] | Callable[[int], bool] | None" = None,
    scope: "str | Collection[str] | None" = None,
) -> Callable[[str], bool]:
    """A ``names_filter`` predicate on address fields; None means any value.

    ``select(stage="H", layer=3, site="attn.hook_pattern")`` keeps every H-update's layer-3
    pattern. Values may be single values, collections or predicates (``act=lambda a: a % 2``).
    A value no hook name can have (a misspelt site, stage ``"X"``, update ``"H0_1"``, a negative
    step) is an InputError: it would match nothing, silently.
    """
    from airinterp.model.schedule import parse_update_name

    sites = {*FORWARD_SITES, *ACT_SITES, *UPDATE_SITES, *BLOCK_SITES, *MLP_T_BLOCK_SITES}

    def values(v: Any) -> list:
        if v is None or callable(v):
            return []
        if isinstance(v, (str, numbers.Integral)) or not hasattr(v, "__iter__"):
            return [v]
        return list(v)

    for v in values(site):
        if v not in sites:
            raise InputError(f"select: site {v!r} is no hook site; sites are {', '.join(sorted(sites))}")
    for v in values(stage):
        if v not in ("L", "H"):
            raise InputError(f"select: stage {v!r}; expected 'L' or 'H'")
    for v in values(scope):
        if v not in ("forward", "act", "update", "block"):
            raise InputError(f"select: scope {v!r}; expected forward, act, update or block")
    for v in values(update):
        try:
            if not isinstance(v, str):
                raise ValueError(v)
            parse_update_name(v)
        except (ValueError, InputError):
            raise InputError(f"select: update {v!r} is no update name (L<cycle>_<step> or H<cycle>, e.g. L0_1, H0)") from None
    for key, vs in (("act", values(act)), ("layer", values(layer))):
        for v in vs:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise InputError(f"select: {key} {v!r}; expected a whole number >= 0")

    def predicate(name: str) -> bool:
        try:
            addr = _parse(name)
        except ValueError:
            return False
        return (
            _matches(addr.site, site)
            and _matches(addr.act, act)
            and _matches(addr.stage, stage)
            and _matches(addr.update, update)
            and _matches(addr.layer, layer)
            and _matches(addr.scope, scope)
        )

    return predicate


def glob(*patterns: str) -> Callable[[str], bool]:
    """A ``names_filter`` from shell-style patterns: ``glob("act.*.H*.blocks.3.attn.hook_pattern")``."""
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def hook_catalogue(cfg: "AIRConfig", n_act: int) -> Iterator[tuple[str, str]]:
    """Every hook name of an ``n_act``-step rollout with its shape, in firing order."""
    for site, shape in FORWARD_SITES.items():
        if site == "hook_g_input" and not cfg.has_g_input or site == "hook_zH_init" and cfg.single_z:
            continue
        yield site, shape
    for a in range(n_act):
        yield from step_names(cfg, a)


def hook_names(cfg: "AIRConfig", n_act: int) -> list[str]:
    return [name for name, _ in hook_catalogue(cfg, n_act)]


# ---- the HookPoint tree --------------------------------------------------------------------------
#
# The module tree's paths are the names above: ``act`` holds one container per ACT step
# (``act.3``), each holding update containers (``act.3.H0``), ``blocks``, layer containers and the
# HookPoints. How the tree grows beyond the steps built with the model, and the invariant it
# keeps, is airinterp.model.hook_tree's; a HookPoint's Address is Address.parse(its name).


class HookTree(nn.Module):
    """A container node of the HookPoint tree; children are containers or HookPoints."""


def step_names(cfg: "AIRConfig", act: int) -> Iterator[tuple[str, str]]:
    """Every hook name of ACT step ``act`` with its shape, in firing order."""
    for u in cfg.schedule:
        prefix = f"act.{act}.{u.name}"
        for site in ("hook_state_in", "hook_injection", "hook_in"):
            if site == "hook_injection" and cfg.single_z and u.stage == "H":
                continue  # single-z H-updates compute f(z): no second operand
            yield f"{prefix}.{site}", UPDATE_SITES[site]
        for i in range(cfg.layers_of(u.stage)):
            for site, shape in block_sites(cfg).items():
                yield f"{prefix}.blocks.{i}.{site}", shape
        yield f"{prefix}.hook_out", UPDATE_SITES["hook_out"]
    for site, shape in ACT_SITES.items():
        if site == "hook_zH" and cfg.single_z:
            continue
        yield f"act.{act}.{site}", shape


def check_name(cfg: "AIRConfig", name: str) -> Address:
    """Parse ``name`` and check it exists for models of ``cfg`` (any ACT step >= 0); a ValueError
    says what is wrong and what the valid choices are."""
    addr = _parse(name)
    updates = [u.name for u in cfg.schedule]
    if addr.update is not None and addr.update not in updates:
        raise InputError(f"hook {name!r}: update {addr.update!r} is not in this model's schedule {updates}")
    if addr.layer is not None and addr.layer >= cfg.layers_of(addr.stage):  # type: ignore[arg-type]
        n = cfg.layers_of(addr.stage)  # type: ignore[arg-type]
        raise InputError(f"hook {name!r}: layer {addr.layer} does not exist (the stack has blocks 0..{n - 1})")
    if addr.layer is not None and addr.site not in block_sites(cfg):
        kind = "TRM mlp_t blocks (no attention)" if cfg.mlp_t else "attention blocks"
        raise InputError(f"hook {name!r}: {addr.site} is not a site of this model's {kind}; its block sites are "
                         f"{', '.join(block_sites(cfg))}")
    if addr.site == "hook_injection" and addr.stage == "H" and cfg.single_z:
        raise InputError(f"hook {name!r}: TRM single-z H-updates compute f(z) with no second operand (no hook_injection)")
    if addr.site in ("hook_zH", "hook_zH_init") and cfg.single_z:
        raise InputError(f"hook {name!r}: TRM single-z has one state, zL (its hooks: hook_zL_init, act.{{a}}.hook_zL)")
    if addr.site == "hook_g_input" and not cfg.has_g_input:
        raise InputError(f"hook {name!r}: only the gx_linear / gx_non_linear variants have g(x~)")
    return addr


def read_only(fn: Callable) -> Callable:
    """Mark a hook function as one that only reads its activation; returns ``fn``.

    Any hook that returns None (or its input) and writes nothing leaves the rollout bitwise that
    of a hooks-off run, under ``no_grad`` and ``inference_mode`` alike: on the attention scores
    and pattern the model sees edits through the tensor's version counter. The mark adds a
    check there: a marked hook that edits them raises instead of silently switching that call
    to ``pattern @ v`` (see docs/gotchas.md). Every analysis hook of airinterp is marked."""
    fn.read_only = True  # type: ignore[attr-defined]
    return fn


def has_hooks(hp: nn.Module) -> bool:
    """True if anything is attached to this HookPoint (TransformerLens or raw torch hooks)."""
    return bool(
        hp._forward_hooks or hp._forward_pre_hooks or hp._backward_hooks or hp._backward_pre_hooks
    )
