"""The variants as typed data: the one variant list, each update's input sum, level tokens, g(x~).

Every update computes ``f(first + injection)`` with the shared stack ``f``; a variant fixes, per
stage (L or H), what ``first`` and ``injection`` are (:class:`Rule`), whether learned level tokens
are added or prepended, and whether the L-update sees ``g(x~)`` instead of ``x~``. The grouping of
each sum is the reference's, which matters for bitwise parity. The model reads these rows; it
has no branch on a variant's name.
"""

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from torch import Tensor


class First(str, Enum):
    """The first operand (``s``: the updated state, ``x``: x~, ``t``: the stage's level token)."""

    s = "s"
    s_x = "s+x"
    s_x_t = "s+x+t"


class Injection(str, Enum):
    """The second operand (``o``: the other state, ``g``: g(x~))."""

    o = "o"
    o_x = "o+x"
    o_g = "o+g"
    o_s_times_x = "(o+s)*x"
    o_minus_x = "o-x"


class Rule(NamedTuple):
    first: First
    injection: Injection


class LevelToken(str, Enum):
    """How the learned level tokens ``t_L``/``t_H`` enter (the level-token controls)."""

    added = "added"  # in the first operand of every update (s + x + t)
    prepended = "prepended"  # one extra stack position per update, stripped after the stack
    in_state = "in_state"  # the states carry them in a slot of their own (no strip)


class GInput(str, Enum):
    """g(x~) of the operator controls: a linear map, or tanh of it."""

    linear = "linear"
    tanh = "tanh"


@dataclass(frozen=True)
class Variant:
    name: str
    family: str  # "injection", "level_token" or "operator"
    L: Rule
    H: Rule
    level_token: LevelToken | None = None
    g_input: GInput | None = None

    def rule(self, stage: str) -> Rule:
        return self.L if stage == "L" else self.H


def _r(first: str, injection: str) -> Rule:
    return Rule(First(first), Injection(injection))


_LX, _L2X, _H, _HX, _H2X = _r("s", "o+x"), _r("s+x", "o+x"), _r("s", "o"), _r("s+x", "o"), _r("s+x", "o+x")
_TABLE = (
    Variant("Lx_H", "injection", _LX, _H),
    Variant("L_Hx", "injection", _H, _HX),
    Variant("L2x_H", "injection", _L2X, _H),
    Variant("L_H2x", "injection", _H, _H2X),
    Variant("Lx_H2x", "injection", _LX, _H2X),
    Variant("L2x_Hx", "injection", _L2X, _HX),
    Variant("Lx_Hx", "injection", _LX, _HX),
    Variant("L2x_H2x", "injection", _L2X, _H2X),
    Variant("L2x_H2x_input_token_addition", "level_token", _r("s+x+t", "o+x"), _r("s+x+t", "o+x"), LevelToken.added),
    Variant("L2x_H2x_input_token_prepend", "level_token", _L2X, _H2X, LevelToken.prepended),
    Variant("L2x_H2x_input_token_prepend_no_strip", "level_token", _L2X, _H2X, LevelToken.in_state),
    Variant("gx_linear", "operator", _r("s", "o+g"), _H, g_input=GInput.linear),
    Variant("gx_non_linear", "operator", _r("s", "o+g"), _H, g_input=GInput.tanh),
    Variant("had_prod", "operator", _r("s", "(o+s)*x"), _H),
    Variant("minus_x", "operator", _r("s", "o-x"), _H),
)
#: every variant by name, in the paper's order: the one variant list
VARIANT_TABLE: dict[str, Variant] = {v.name: v for v in _TABLE}
VARIANT_NAMES: tuple[str, ...] = tuple(VARIANT_TABLE)
#: variant -> stage -> (first, injection); read by the model at every update
RULES: dict[str, dict[str, Rule]] = {v.name: {"L": v.L, "H": v.H} for v in _TABLE}


def operands(rule: Rule, s: Tensor, o: Tensor, x: Tensor, g: Tensor | None, token: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(first, injection)`` of one update: ``s`` the updated state, ``o`` the other, ``x`` x~,
    ``g`` g(x~), ``token`` the stage's level token."""
    first = {First.s: lambda: s, First.s_x: lambda: s + x, First.s_x_t: lambda: (s + x) + token}[rule.first]()  # type: ignore[operator]
    injection = {
        Injection.o: lambda: o, Injection.o_x: lambda: o + x, Injection.o_g: lambda: o + g,  # type: ignore[operator]
        Injection.o_s_times_x: lambda: (o + s) * x, Injection.o_minus_x: lambda: o - x,
    }[rule.injection]()  # fmt: skip
    return first, injection


def update_rule_text(variant: str, stage: str) -> str:
    """Human-readable update rule, e.g. ``zL <- f(zL + (zH + x))`` (the states as every output names them)."""
    first, inj = RULES[variant][stage]
    s, o = ("zL", "zH") if stage == "L" else ("zH", "zL")
    t = f"t_{stage}"
    f = {First.s: s, First.s_x: f"({s} + x)", First.s_x_t: f"({s} + x + {t})"}[first]
    i = {Injection.o: o, Injection.o_x: f"({o} + x)", Injection.o_g: f"({o} + g(x))",
         Injection.o_s_times_x: f"(({o} + {s}) * x)", Injection.o_minus_x: f"({o} - x)"}[inj]  # fmt: skip
    return f"{s} <- f({f} + {i})"
