"""HookedAIR: the AIR model as a TransformerLens ``HookedRootModule``.

One shared stack of post-norm blocks updates two recurrent states. Every ACT step runs the
schedule of :mod:`airinterp.model.schedule` (``L0_0 L0_1 H0 L1_0 L1_1 H1`` by default); the
variant's row of :mod:`airinterp.model.variants` decides each update's input sum. For analysis
the ACT loop runs in eval lockstep: every row runs ``n_act`` steps from a fresh carry, halting
logits are recorded, not obeyed (the reference's evaluation behaviour). Training calls
:meth:`HookedAIR.step`, one ACT step without hooks. The hook tree is
:mod:`airinterp.model.hook_tree`'s; input checks are :mod:`airinterp.model.inputs`'.
"""

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from airinterp.errors import InputError
from airinterp.model.config import AIRConfig
from airinterp.model.hook_tree import NO_HOOKS, ActiveHooks, GrowingHookRoot, fire
from airinterp.model.hooks import PATTERN_SITES, Address, HookPoint, HookTree, check_name, step_names
from airinterp.model.inputs import check_ids, check_n_act, check_tokens, encode_text, is_text, steps_requested
from airinterp.model.layers import Block, Linear, rope_tables
from airinterp.model.schedule import SubStep, Update, check_state_of, state_hook
from airinterp.model.variants import RULES, GInput, LevelToken, operands, update_rule_text

__all__ = ["AIROutput", "Carry", "HookedAIR", "RULES", "update_rule_text"]


@dataclass(frozen=True)
class Carry:
    """The recurrent state between ACT steps."""

    z_H: Float[Tensor, "batch pos d_model"]
    z_L: Float[Tensor, "batch pos d_model"]


@dataclass(frozen=True)
class AIROutput:
    logits: Float[Tensor, "batch cell vocab"]
    q_halt: Float[Tensor, " batch"]
    q_continue: Float[Tensor, " batch"]
    carry: Carry


def _trunc_normal_(t: Tensor, std: float, gen: torch.Generator | None = None) -> Tensor:
    """Truncated normal on [-2 std', 2 std'] with the JAX-style correction so the std is ``std``."""
    if std == 0:
        return t.zero_()
    phi2 = math.exp(-2.0) / math.sqrt(2 * math.pi)  # standard normal pdf at 2
    mass = math.erf(2 / math.sqrt(2))  # P(-2 < Z < 2)
    var = 1 - 2 * 2 * phi2 / mass  # variance of the standard normal truncated to [-2, 2]
    s = std / math.sqrt(var)
    with torch.no_grad():
        return nn.init.trunc_normal_(t, mean=0.0, std=s, a=-2 * s, b=2 * s, generator=gen)


#: HookPoints built at construction at most (the paper's model: 16 steps, 6.6k): building costs
#: ~0.1 ms each, so loading time does not grow with what a config claims (later steps grow on demand)
HOOK_BUDGET = 20_000


class HookedAIR(GrowingHookRoot):
    """AIR with a HookPoint per (ACT step, update, layer, site); see :mod:`airinterp.model.hooks`."""

    def __init__(self, config: AIRConfig, *, seed: int | None = 0) -> None:
        super().__init__()
        self.config = config
        c = config
        D = c.hidden_size
        self.embed_tokens = nn.Embedding(c.vocab_size, D)
        if c.pos_encodings == "learned":
            self.embed_pos = nn.Embedding(c.seq_len + c.prefix_len, D)
        if c.puzzle_emb_ndim > 0:
            self.register_buffer("puzzle_emb", torch.zeros(c.num_puzzle_identifiers, c.puzzle_emb_ndim))
        #: the stack every update runs through (AIR, TRM); HRM's L stack, its H-updates run ``h_blocks``
        mlp_t = (c.n_pos, c.mlp_t_width) if c.mlp_t else None
        self.blocks = nn.ModuleList(Block(D, c.num_heads, c.d_mlp, c.rms_norm_eps, mlp_t) for _ in range(c.L_layers))
        if c.family == "hrm":
            self.h_blocks = nn.ModuleList(Block(D, c.num_heads, c.d_mlp, c.rms_norm_eps) for _ in range(c.H_layers))
        self.lm_head = Linear(D, c.vocab_size)
        self.q_head = Linear(D, 2, bias=True)
        if not c.single_z:  # TRM single-z has one state: L_init only, as its reference
            self.register_buffer("H_init", torch.zeros(D))
        self.register_buffer("L_init", torch.zeros(D))
        if c.has_level_tokens:
            self.level_token_L = nn.Parameter(torch.zeros(D))
            self.level_token_H = nn.Parameter(torch.zeros(D))
        if c.has_g_input:
            self.g_input = Linear(D, D)

        self.schedule: tuple[Update, ...] = c.schedule
        for site in ("hook_embed", "hook_input", "hook_zH_init", "hook_zL_init"):
            if not (c.single_z and site == "hook_zH_init"):
                self.add_module(site, HookPoint())
        if c.has_g_input:
            self.hook_g_input = HookPoint()
        self.act = HookTree()  # act.{a}.…: see airinterp.model.hooks, "the HookPoint tree"
        #: attention implementation: "auto" (SDPA unless a hook needs the pattern), "eager", "sdpa"
        self.attention: Literal["auto", "eager", "sdpa"] = "auto"
        #: False: the reference's 1-step gradient (only the last L and H update get gradients)
        self.full_grad = False
        self._rope_cache: dict[tuple[str, int], tuple[Tensor, Tensor]] = {}
        self.setup()
        # steps 0..halt_max_steps-1 built up front, as many as fit HOOK_BUDGET (the rest grow on demand)
        per_step = sum(1 for _ in self.step_hook_names(0))
        self.ensure_act_steps(max(1, min(c.halt_max_steps, HOOK_BUDGET // per_step)))
        if seed is not None:
            self.init_weights(seed)
        self.eval()

    # ---- the hook tree's names (airinterp.model.hook_tree) ---------------------------------------
    def step_hook_names(self, act: int) -> Iterator[str]:
        return (name for name, _ in step_names(self.config, act))

    def check_hook_name(self, name: str) -> Address:
        return check_name(self.config, name)

    def stack(self, stage: str) -> nn.ModuleList:
        """The blocks an update of ``stage`` runs through: the one shared stack, or HRM's H stack."""
        return self.h_blocks if stage == "H" and self.config.family == "hrm" else self.blocks

    def init_weights(self, seed: int) -> None:
        """The reference initialisation (truncated LeCun normal, Q head 0 / -5, zero prefix)."""
        gen = torch.Generator().manual_seed(seed)
        c = self.config
        D = c.hidden_size
        with torch.no_grad():
            _trunc_normal_(self.embed_tokens.weight, 1 / math.sqrt(D), gen)
            if c.pos_encodings == "learned":
                _trunc_normal_(self.embed_pos.weight, 1 / math.sqrt(D), gen)
            for mod in self.modules():
                if isinstance(mod, Linear):
                    _trunc_normal_(mod.weight, 1 / math.sqrt(mod.weight.shape[1]), gen)
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)  # type: ignore[union-attr]
            if not c.single_z:
                _trunc_normal_(self.H_init, 1.0, gen)
            _trunc_normal_(self.L_init, 1.0, gen)
            if c.puzzle_emb_ndim > 0:
                self.puzzle_emb.zero_()
            if c.has_level_tokens:
                self.level_token_L.zero_()
                self.level_token_H.zero_()

    # ---- TransformerLens surface -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.L_init.device

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.config.forward_dtype)

    @property
    def cfg(self):  # -> TransformerLensConfig
        """The TransformerLens view of the config (``n_layers`` = blocks of the shared stack)."""
        from transformer_lens.config import TransformerLensConfig

        c = self.config
        return TransformerLensConfig(
            d_model=c.hidden_size,
            d_head=c.head_dim,
            n_layers=c.L_layers,
            n_ctx=c.n_stack_pos,
            n_heads=c.num_heads,
            d_mlp=c.d_mlp,
            d_vocab=c.vocab_size,
            device=str(self.device),
            positional_embedding_type="rotary" if c.pos_encodings == "rope" else "standard",
            n_key_value_heads=c.num_heads,
            gated_mlp=True,
            uses_rms_norm=True,
            eps=c.rms_norm_eps,
            act_fn="silu",
            normalization_type="RMSPre",
            dtype=self.dtype,
        )

    def to_tokens(self, puzzles: object, *args: object, **kwargs: object) -> Int[Tensor, "batch cell"]:
        """Puzzle text (one string or a list) -> token ids [batch, cell] on the model's device.

        Token ids (an integer tensor, array or nested list [batch, seq_len]) are checked and
        passed through."""
        if is_text(puzzles):
            return encode_text(puzzles, self.config, self.device)  # type: ignore[arg-type]
        return check_tokens(puzzles, self.config, self.device)

    # ---- pieces of the forward -------------------------------------------------------------
    def _rope(self) -> tuple[Tensor, Tensor] | None:
        if self.config.pos_encodings != "rope":
            return None
        key = (str(self.device), self.config.n_stack_pos)
        if key not in self._rope_cache:
            # normal tensors even when first built under inference_mode: an inference tensor in
            # the cache would break every later forward that records gradients
            with torch.inference_mode(False), torch.no_grad():
                cos, sin = rope_tables(self.config.n_stack_pos, self.config.head_dim, self.config.rope_theta)
                self._rope_cache[key] = (cos.to(self.device), sin.to(self.device))
        return self._rope_cache[key]

    def embed(
        self, tokens: Int[Tensor, "batch cell"], ids: Int[Tensor, " batch"], active: ActiveHooks | None = None,
        prefix_rows: Tensor | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """x~ = sqrt(D) * [puzzle prefix ; token embedding] (the reference's input encoding).

        ``prefix_rows`` [batch, puzzle_emb_ndim] replaces ``puzzle_emb[ids]`` (training passes a
        leaf tensor to collect the puzzle-embedding gradients, as the reference's sparse embedding)."""  # fmt: skip
        c, dtype = self.config, self.dtype
        fwd = active.forward if active is not None else None
        emb = nn.functional.embedding(tokens, self.embed_tokens.weight.to(dtype))
        emb = fire(fwd, "hook_embed", emb)
        if c.puzzle_emb_ndim > 0:
            prefix = (self.puzzle_emb[ids] if prefix_rows is None else prefix_rows).to(dtype)
            pad = c.prefix_len * c.hidden_size - prefix.shape[-1]
            if pad > 0:
                prefix = nn.functional.pad(prefix, (0, pad))
            emb = torch.cat((prefix.view(-1, c.prefix_len, c.hidden_size), emb), dim=-2)
        if c.pos_encodings == "learned":
            emb = 0.707106781 * (emb + self.embed_pos.weight.to(dtype))
        x = c.embed_scale * emb
        return fire(fwd, "hook_input", x)

    def initial_carry(self, batch: int, active: ActiveHooks | None = None) -> Carry:
        """Fresh states: H_init / L_init at every position (level tokens in slot 0 for no-strip).

        TRM single-z has one state, carried as ``z_L``; its ``z_H`` is the same tensor (what the
        model decodes), with no hooks of its own."""
        c, dtype = self.config, self.dtype
        shape = (batch, c.n_pos, c.hidden_size)
        fwd = active.forward if active is not None else None
        if c.single_z:
            z = fire(fwd, "hook_zL_init", self.L_init.to(dtype).expand(shape))
            return Carry(z_H=z, z_L=z)
        z_H = self.H_init.to(dtype).expand(shape)
        z_L = self.L_init.to(dtype).expand(shape)
        if c.spec.level_token is LevelToken.in_state:
            z_H = torch.cat((self.level_token_H.to(dtype).expand(batch, 1, -1), z_H[:, 1:]), dim=1)
            z_L = torch.cat((self.level_token_L.to(dtype).expand(batch, 1, -1), z_L[:, 1:]), dim=1)
        z_H = fire(fwd, "hook_zH_init", z_H)
        z_L = fire(fwd, "hook_zL_init", z_L)
        return Carry(z_H=z_H, z_L=z_L)

    def _operands(self, u: Update, s: Tensor, o: Tensor, x: Tensor, g: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if self.config.single_z:  # the reference's L_level(z + x~) and L_level(z)
            return s, (x if u.stage == "L" else None)
        rule = RULES[self.config.variant][u.stage]
        token = getattr(self, f"level_token_{u.stage}").to(s.dtype) if self.config.has_level_tokens else None
        return operands(rule, s, o, x, g, token)

    def _update(
        self, act: int, u: Update, carry: Carry, x: Tensor, g: Tensor | None, active: ActiveHooks
    ) -> Tensor:
        """One application of the shared stack; returns the new value of the updated state."""
        hooks = active.update.get((act, u.name))
        s, o = (carry.z_L, carry.z_H) if u.stage == "L" or self.config.single_z else (carry.z_H, carry.z_L)
        s = fire(hooks, "hook_state_in", s)
        a, b = self._operands(u, s, o, x, g)
        if b is not None:
            b = fire(hooks, "hook_injection", b)
        h = fire(hooks, "hook_in", a if b is None else a + b)
        prepend = self.config.spec.level_token is LevelToken.prepended
        if prepend:
            token = getattr(self, f"level_token_{u.stage}").to(h.dtype)
            h = torch.cat((token.expand(h.shape[0], 1, -1), h), dim=1)
        rope = self._rope()
        eager = self.attention == "eager"
        for i, block in enumerate(self.stack(u.stage)):
            bh = active.block.get((act, u.name, i))
            wants = bh is not None and any(site in bh for site in PATTERN_SITES)
            h = block(h, rope, bh, wants_pattern=wants, eager=eager)
        if prepend:
            h = h[:, 1:]
        return fire(hooks, "hook_out", h)

    def act_step(
        self, carry: Carry, x: Tensor, act: int, g: Tensor | None = None, active: ActiveHooks | None = None
    ) -> AIROutput:
        """One ACT step (all updates of the schedule) from ``carry``; returns outputs and new carry.

        With gradients enabled and ``full_grad`` False, only the updates of the 1-step-gradient
        segment record gradients, as in the reference.
        """
        if active is None:
            active = self.active_hooks(act + 1)
        for u in self.schedule:
            ctx = (
                torch.no_grad()
                if (not u.grad and not self.full_grad and torch.is_grad_enabled())
                else contextlib.nullcontext()
            )
            with ctx:
                new = self._update(act, u, carry, x, g, active)
            if self.config.single_z:
                carry = Carry(z_H=new, z_L=new)
            else:
                carry = Carry(z_H=new, z_L=carry.z_L) if u.stage == "H" else Carry(z_H=carry.z_H, z_L=new)
        hooks = active.act.get(act)
        z_L = fire(hooks, "hook_zL", carry.z_L)
        z_H = z_L if self.config.single_z else fire(hooks, "hook_zH", carry.z_H)
        logits = self.lm_head(z_H)[:, self.config.n_prefix :]
        q = self.q_head(z_H[:, 0]).to(torch.float32)
        q_halt, q_cont = q[..., 0], q[..., 1]
        logits = fire(hooks, "hook_logits", logits)
        q_halt = fire(hooks, "hook_q_halt", q_halt)
        q_cont = fire(hooks, "hook_q_continue", q_cont)
        return AIROutput(logits=logits, q_halt=q_halt, q_continue=q_cont, carry=Carry(z_H=z_H, z_L=z_L))

    def step(self, carry: Carry, x: Tensor, g: Tensor | None = None) -> AIROutput:
        """One ACT step with no hook fired (training): :meth:`act_step` without the scan of the
        hook tree. ``x``, ``g`` from :meth:`encode`."""
        return self.act_step(carry, x, 0, g, NO_HOOKS)

    def encode(
        self, tokens: Int[Tensor, "batch cell"], ids: Int[Tensor, " batch"], active: ActiveHooks | None = None,
        prefix_rows: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """x~ (zero-padded in front for the no-strip control) and g(x~) for the gx_* controls."""
        x = self.embed(tokens, ids, active, prefix_rows)
        g = None
        if self.config.has_g_input:
            g = self.g_input(x)
            if self.config.spec.g_input is GInput.tanh:
                g = torch.tanh(g)
            g = fire(active.forward if active is not None else None, "hook_g_input", g)
        if self.config.spec.level_token is LevelToken.in_state:
            x = nn.functional.pad(x, (0, 0, 1, 0))
        return x, g

    def forward(
        self,
        tokens: object,
        puzzle_identifiers: object = None,
        *,
        n_act: object = None,
        return_type: Literal["logits", "output"] = "logits",
        stop_at_layer: object = None,
        prepend_bos: object = None,
        padding_side: object = None,
        **unknown: object,
    ):
        """Evaluation rollout: ``n_act`` ACT steps (default ``halt_max_steps``) from a fresh carry.

        ``tokens`` are ids [batch, cell] (a tensor, array or nested list) or puzzle text (see
        :meth:`to_tokens`), validated here (type, length, vocabulary, dtype); anything else is a
        ValueError saying what was expected. ``puzzle_identifiers`` [batch] default to 0.

        Returns the logits decoded from zH after the last step, [batch, cell, vocab]
        (``return_type="output"``: an :class:`AIROutput` with the Q logits and the final carry).

        TransformerLens's keyword arguments, as tools built on it pass them: ``stop_at_layer=k``
        runs ``k`` ACT steps (the same as ``n_act=k``; SAELens derives it from the first integer of
        a hook name plus one, which in airinterp's names is the ACT step, so the rollout runs
        exactly through the hooked step; the return value is as for ``n_act=k``, not a residual
        stream); ``prepend_bos`` None or False and ``padding_side`` None are accepted (a puzzle has
        no BOS token and a fixed length); anything else is an InputError naming it.
        """
        if unknown:
            raise InputError(f"{', '.join(sorted(unknown))}: not an argument of HookedAIR.forward (tokens, "
                             "puzzle_identifiers, n_act, return_type, stop_at_layer, prepend_bos, padding_side)")  # fmt: skip
        if prepend_bos not in (None, False):
            raise InputError(f"prepend_bos {prepend_bos!r}: a puzzle has no BOS token (None or False only)")
        if padding_side is not None:
            raise InputError(f"padding_side {padding_side!r}: puzzles have a fixed length, nothing is padded (None only)")
        n_act = steps_requested(n_act, stop_at_layer)
        return_type = return_type or "logits"  # None: TransformerLens's run_with_hooks default
        if return_type not in ("logits", "output"):  # anything else returned the logits, silently
            raise InputError(f"return_type {return_type!r}: expected 'logits' or 'output'")
        tokens = self.to_tokens(tokens)
        ids = check_ids(puzzle_identifiers, tokens.shape[0], self.config, self.device)
        n_act = check_n_act(n_act, self.config.halt_max_steps)
        with self._beyond_built_steps(n_act):
            active = self.active_hooks(n_act)
            x, g = self.encode(tokens, ids, active)
            carry = self.initial_carry(tokens.shape[0], active)
            for a in range(n_act):
                out = self.act_step(carry, x, a, g, active)
                carry = out.carry
        return out if return_type == "output" else out.logits

    # ---- reading states ----------------------------------------------------------------------
    def state_site(self, state: str, *, before: "str | None" = None, after: "str | None" = None) -> str:
        """The hook holding ``state`` (``zL``/``zH``) as an update reads it, from the schedule.

        ``before="act.4.L0_0"``: the value update L0_0 of ACT step 4 reads (``act.3.hook_zH`` for
        z_H; ``hook_zH_init`` at step 0); ``after="act.4.H0"``: the value once that update ran
        (``act.4.H0.hook_out`` for z_H, the latest z_L write for z_L)."""
        if (before is None) == (after is None):
            raise InputError("state_site: give exactly one of before= or after= (an update like 'act.4.L0_0')")
        where = str(before if before is not None else after)
        try:
            addr = Address.parse(f"{where}.hook_in")
        except InputError:
            raise InputError(f"state_site: expected an update like 'act.4.L0_0', got {where!r}") from None
        if addr.update is None or where != f"act.{addr.act}.{addr.update}":
            raise InputError(f"state_site: expected an update like 'act.4.L0_0', got {where!r}")
        s = SubStep.of(self.schedule, addr.act, addr.update)  # type: ignore[arg-type]
        state = check_state_of(self.schedule, state)
        return state_hook(self.schedule, state, s.act, s.update.index, after=after is not None)

    def unembed(self, state: Float[Tensor, "... pos d_model"]) -> Float[Tensor, "... cell vocab"]:
        """Decode any state through the LM head, as the model decodes z_H: logits per cell.

        ``state`` is z_L or z_H (``act.{a}.hook_zL``, ``act.{a}.{u}.hook_out``, ...) or a block
        site's residual (``...blocks.{i}.hook_resid_post``); the cells are its last ``seq_len``
        positions in every variant (the prefix, and the level slot of the prepend controls, come
        first), so they are what is decoded."""
        c = self.config
        if state.ndim < 2 or state.shape[-1] != c.hidden_size or state.shape[-2] < c.seq_len:
            raise InputError(
                f"unembed: expected a state [..., pos >= {c.seq_len}, {c.hidden_size}], got {tuple(state.shape)}"
            )
        return self.lm_head(state[..., -c.seq_len :, :].to(self.dtype))  # state_cells == stack_cells == last seq_len

    def decode(self, state: Float[Tensor, "... pos d_model"]) -> Int[Tensor, "... cell"]:
        """Token ids a state decodes to (argmax of :meth:`unembed`), e.g. zL's blank cells."""
        return self.unembed(state).argmax(-1)
