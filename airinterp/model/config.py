"""AIRConfig: every field the reference AIR model takes, as a frozen pydantic model.

Reference fields that do not change the model are handled by :func:`from_reference_dict`:
``batch_size`` only sizes training buffers of the reference's sparse puzzle embedding,
``H_layers`` is required by the reference config class but never used (the single shared stack
has ``L_layers`` blocks), and ``causal`` is ignored by the reference (its blocks are always
bidirectional). They are accepted there, checked, and not stored.
"""

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from airinterp.errors import InputError
from airinterp.model.schedule import State, Update, act_schedule, states_of
from airinterp.model.variants import VARIANT_NAMES, VARIANT_TABLE, LevelToken
from airinterp.model.variants import Variant as VariantSpec

#: the variant names, from the one variant table (:mod:`airinterp.model.variants`)
Variant = Literal[VARIANT_NAMES]  # type: ignore[valid-type]
VARIANTS: tuple[str, ...] = VARIANT_NAMES
#: the variants of each family (injection, level-token controls, operator-form controls)
INJECTION_VARIANTS = tuple(n for n, v in VARIANT_TABLE.items() if v.family == "injection")
LEVEL_TOKEN_VARIANTS = tuple(n for n, v in VARIANT_TABLE.items() if v.family == "level_token")
OPERATOR_VARIANTS = tuple(n for n, v in VARIANT_TABLE.items() if v.family == "operator")

Task = Literal["sudoku", "maze"]
DType = Literal["float32", "bfloat16", "float16"]


#: vocabulary size -> task, the one table (Sudoku ids 0..10, Maze ids 0..5; AIR_SPEC 1.5)
TASK_BY_VOCAB: dict[int, str] = {11: "sudoku", 6: "maze"}


class UnknownVariantError(ValueError):
    """A variant name that the reference does not define."""


def normalize_variant(name: str) -> str:
    """Map any spelling the reference uses to our variant name.

    Accepts ``Lx_H``, ``air_1net_Lx_H``, ``air.air_1net_Lx_H`` and ``air.air_1net_Lx_H@AIR``.
    """
    short = name.split("@", 1)[0]
    short = short.rsplit(".", 1)[-1]
    if short.startswith("air_1net_"):
        short = short[len("air_1net_") :]
    if short not in VARIANTS:
        raise UnknownVariantError(
            f"unknown AIR variant {name!r}; valid variants are: {', '.join(VARIANTS)}"
        )
    return short


#: reference architecture names (``arch.name`` of all_config.yaml, before ``@``) of AIR's siblings -> (family, variant)
SIBLINGS = {
    "recursive_reasoning.trm": ("trm", "Lx_H"),
    "recursive_reasoning.trm_singlez": ("trm_singlez", "Lx_H"),
    "hrm.hrm_act_v1": ("hrm", "Lx_H"),
}
#: siblings whose import is not built yet, with what is missing
NOT_YET: dict[str, str] = {}


def family_and_variant(name: str) -> tuple[str, str]:
    """(family, variant) of a reference ``arch.name``: AIR's ``air.air_1net_Lx_H@AIR`` -> ("air", "Lx_H"),
    TRM's ``recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1`` -> ("trm", "Lx_H")."""
    module = name.split("@", 1)[0]
    if module in SIBLINGS:
        return SIBLINGS[module]
    if module in NOT_YET:
        raise InputError(f"{name}: {NOT_YET[module]}")
    return "air", normalize_variant(name)


def swiglu_width(hidden_size: int, expansion: float) -> int:
    """Reference SwiGLU width: round(expansion * D * 2/3) rounded up to a multiple of 256."""
    raw = round(expansion * hidden_size * 2 / 3)
    return -(raw // -256) * 256


#: what a config may ask for, checked before anything is built (a checkpoint's config is untrusted
#: input): ACT steps per rollout, block calls (updates x layers) per ACT step (the paper: 16 and
#: 6 x 4; TRM: 16 and 21 x 2), besides each field's own bound below
MAX_ACT_STEPS = 1024
MAX_BLOCK_CALLS = 1024


class AIRConfig(BaseModel):
    """The AIR model configuration (reference ``AIRConfig`` plus the variant name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant: Variant = "Lx_H"
    family: Literal["air", "trm", "trm_singlez", "hrm"] = Field(
        default="air",
        description="AIR; TRM (AIR's Lx_H rule, one stack, its whole last H-cycle trains); TRM single-z (one state z_L: "
        "L-updates z <- f(z + x~), H-updates z <- f(z)); HRM (two stacks: H-updates run H_layers blocks of their own)",
    )
    task: Task | None = Field(
        default=None, description="puzzle family of the vocabulary; inferred from vocab_size"
    )
    vocab_size: int = Field(gt=1, le=65536)
    seq_len: int = Field(gt=0, le=65536, description="cells per puzzle, without the puzzle-embedding prefix")
    num_puzzle_identifiers: int = Field(default=1, gt=0, le=10**8)
    puzzle_emb_ndim: int = Field(default=0, ge=0, le=65536)
    puzzle_emb_len: int = Field(
        default=0, ge=0, le=1024, description="prefix positions; 0: ceil(puzzle_emb_ndim / hidden_size) (TRM sets 16)"
    )
    hidden_size: int = Field(gt=0, le=16384)
    num_heads: int = Field(gt=0, le=1024)
    expansion: float = Field(default=4.0, gt=0, le=64)
    H_cycles: int = Field(default=2, gt=0, le=64)
    L_cycles: int = Field(default=2, gt=0, le=64)
    L_layers: int = Field(default=4, gt=0, le=64)
    H_layers: int = Field(default=0, ge=0, le=64, description="HRM only: blocks of the H stack (AIR and TRM have one stack)")
    pos_encodings: Literal["rope", "learned", "none"] = "rope"
    mlp_t: bool = Field(default=False, description="TRM: a SwiGLU across positions replaces attention in every block")
    rms_norm_eps: float = Field(default=1e-5, gt=0)
    rope_theta: float = Field(default=10000.0, gt=0)
    halt_max_steps: int = Field(default=16, gt=0, le=MAX_ACT_STEPS)
    halt_exploration_prob: float = Field(default=0.1, ge=0, le=1)
    forward_dtype: DType = "bfloat16"

    @field_validator("variant", mode="before")
    @classmethod
    def _normalize_variant(cls, value: Any) -> Any:
        return normalize_variant(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> "AIRConfig":
        depth = max(self.L_layers, self.H_layers)
        if self.n_updates * depth > MAX_BLOCK_CALLS:
            raise InputError(f"H_cycles {self.H_cycles} x (L_cycles {self.L_cycles} + 1) updates x {depth} layers = "
                             f"{self.n_updates * depth} block calls per ACT step: at most {MAX_BLOCK_CALLS}")  # fmt: skip
        if self.hidden_size % self.num_heads:
            raise InputError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        if self.family == "hrm" and self.H_layers < 1:
            raise InputError("H_layers: HRM's H stack needs at least one block")
        if self.family != "hrm" and self.H_layers:
            raise InputError(f"H_layers {self.H_layers}: only HRM has an H stack ({self.family} has one stack)")
        if self.mlp_t and not self.trm_like:
            raise InputError("mlp_t: TRM's sequence-axis MLP blocks belong to family trm or trm_singlez")
        if self.single_z and self.variant != "Lx_H":
            raise InputError(f"variant {self.variant}: TRM single-z has its own update rule (variant Lx_H stands for it)")
        if self.pos_encodings == "none" and not self.mlp_t:
            raise InputError("pos_encodings none: only TRM's mlp_t blocks can do without positions (attention would see none)")
        if self.head_dim % 2:
            raise InputError(f"head dim {self.head_dim} must be even for RoPE")
        if self.task is None:
            inferred = TASK_BY_VOCAB.get(self.vocab_size)
            if inferred is not None:
                object.__setattr__(self, "task", inferred)
        return self

    # ---- derived values -------------------------------------------------------------------
    @property
    def label(self) -> str:
        """The model's name in titles: the AIR variant, or ``HRM``, ``TRM``, ``TRM mlp_t``, ``TRM single-z``."""
        if self.family == "air":
            return self.variant
        name = {"hrm": "HRM", "trm": "TRM", "trm_singlez": "TRM single-z"}[self.family]
        return f"{name} mlp_t" if self.mlp_t else name

    @property
    def trm_like(self) -> bool:
        """TRM or TRM single-z: halting on q_halt > 0 with no target-Q pass, the whole last
        H-cycle trains, mlp_t blocks possible."""
        return self.family in ("trm", "trm_singlez")

    @property
    def output_state(self) -> "State":
        """The state the model decodes into its logits: ``zH``, or single-z's one state ``zL``."""
        return "zL" if self.single_z else "zH"

    @property
    def single_z(self) -> bool:
        """TRM single-z: one state (``zL``), written by every update."""
        return self.family == "trm_singlez"

    @property
    def schedule(self) -> "tuple[Update, ...]":
        """The updates of one ACT step (:func:`airinterp.model.schedule.act_schedule`)."""
        return act_schedule(self.H_cycles, self.L_cycles, self.trm_like, self.single_z)

    @property
    def states(self) -> "tuple[State, ...]":
        """The model's recurrent states: ``("zL", "zH")``, or ``("zL",)`` for TRM single-z (the
        states its schedule writes)."""
        return states_of(self.schedule)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def d_mlp(self) -> int:
        return swiglu_width(self.hidden_size, self.expansion)

    @property
    def prefix_len(self) -> int:
        """Prefix positions before the cells: ``puzzle_emb_len`` when set (TRM), else
        ceil(puzzle_emb_ndim / hidden_size) (AIR, HRM); the puzzle vector fills the first ones, the
        rest are zeros in x~ (and still carry states)."""
        return self.puzzle_emb_len or -(self.puzzle_emb_ndim // -self.hidden_size)

    @property
    def n_pos(self) -> int:
        """Positions of the states z_L, z_H (prefix + cells; + 1 level slot for no-strip)."""
        extra = 1 if self.spec.level_token is LevelToken.in_state else 0
        return self.seq_len + self.prefix_len + extra

    @property
    def n_stack_pos(self) -> int:
        """Positions the shared stack attends over (one more for prepend-and-strip)."""
        extra = 1 if self.spec.level_token is LevelToken.prepended else 0
        return self.n_pos + extra

    @property
    def n_prefix(self) -> int:
        """State positions in front of the first cell (puzzle prefix, plus the level slot)."""
        return self.n_pos - self.seq_len

    @property
    def state_cells(self) -> slice:
        """Where the cells are inside z_L / z_H (and update-level sites): the last ``seq_len``."""
        return slice(self.n_pos - self.seq_len, self.n_pos)

    @property
    def stack_cells(self) -> slice:
        """Where the cells are inside block sites (residuals, attention rows and columns); one
        position later than in the states for ``L2x_H2x_input_token_prepend``, whose level
        token sits at block position 0."""
        return slice(self.n_stack_pos - self.seq_len, self.n_stack_pos)

    @property
    def embed_scale(self) -> float:
        return math.sqrt(self.hidden_size)

    def layers_of(self, stage: str) -> int:
        """Blocks of the stack an update of ``stage`` (L or H) runs through."""
        return self.H_layers if self.family == "hrm" and stage == "H" else self.L_layers

    @property
    def mlp_t_width(self) -> int:
        """The width of TRM's sequence-axis SwiGLU (over the n_pos positions)."""
        return swiglu_width(self.n_pos, self.expansion)

    @property
    def n_updates(self) -> int:
        """Updates of the shared stack per ACT step."""
        return self.H_cycles * (self.L_cycles + 1)

    @property
    def spec(self) -> VariantSpec:
        """The variant's row of the variant table: update rules, level tokens, g(x~)."""
        return VARIANT_TABLE[self.variant]

    @property
    def has_level_tokens(self) -> bool:
        return self.spec.level_token is not None

    @property
    def has_g_input(self) -> bool:
        return self.spec.g_input is not None

    # ---- reference interop ---------------------------------------------------------------
    @classmethod
    def from_reference_dict(cls, arch: dict[str, Any], **overrides: Any) -> "AIRConfig":
        """Build from a reference ``AIRConfig`` dict (or the ``arch`` section of all_config.yaml).

        ``name`` (``air.air_1net_Lx_H@AIR``) selects the variant; ``loss`` is a training
        setting and is ignored here; ``batch_size``, ``H_layers`` and ``causal`` do not change the
        model (module docstring). Unknown keys are an error.
        """
        data = dict(arch)
        data.update(overrides)
        name = data.pop("name", None)
        if name is not None and "variant" not in data:
            data["family"], data["variant"] = family_and_variant(str(name))
        data.pop("no_ACT_continue", None)  # TRM's training-time halting rule (q_halt > 0); evaluation halts at halt_max_steps
        data.pop("loss", None)
        data.pop("batch_size", None)
        if data.get("family", "air") != "hrm":
            data.pop("H_layers", None)  # AIR and TRM take it and ignore it
        causal = data.pop("causal", False)
        if causal not in (False, None):
            raise InputError(
                "causal=True: the reference AIR ignores this field and always builds bidirectional "
                "blocks, so a checkpoint with it set was trained non-causal; remove the key"
            )
        known = set(cls.model_fields)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown AIR config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**data)
