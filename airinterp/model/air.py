"""HookedAIR: the AIR model as a TransformerLens ``HookedRootModule``.

One shared stack of post-norm blocks updates two recurrent states. Every ACT step runs the
schedule of :mod:`airinterp.model.schedule` (``L0_0 L0_1 H0 L1_0 L1_1 H1`` by default); the
variant decides what each update's input sum is (:data:`RULES`). For analysis the ACT loop runs
in eval lockstep: every row runs ``n_act`` steps from a fresh carry, halting logits are recorded,
not obeyed (the reference's evaluation behaviour).
"""

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from airinterp.errors import InputError
from airinterp.model.config import AIRConfig
from airinterp.model.hooks import (
    PATTERN_SITES,
    ActivationCache,
    Address,
    HookedRootModule,
    HookPoint,
    HookTree,
    air_key,
    check_name,
    has_hooks,
    step_names,
)
from airinterp.model.layers import Block, Linear, rope_tables
from airinterp.model.schedule import SubStep, Update, act_schedule, state_hook

# (first operand, injection) of f_level(first, injection) = first + injection, per variant and
# stage. Codes: s = the state being updated, o = the other state, x = x~, t = the stage's level
# token, g = g(x~). The grouping is the reference's, which matters for bitwise parity.
_FIRST = {"s": "s", "s+x": "s+x", "s+x+t": "s+x+t"}
_INJ = ("o", "o+x", "o+g", "(o+s)*x", "o-x")
RULES: dict[str, dict[str, tuple[str, str]]] = {
    "Lx_H": {"L": ("s", "o+x"), "H": ("s", "o")},
    "L_Hx": {"L": ("s", "o"), "H": ("s+x", "o")},
    "L2x_H": {"L": ("s+x", "o+x"), "H": ("s", "o")},
    "L_H2x": {"L": ("s", "o"), "H": ("s+x", "o+x")},
    "Lx_H2x": {"L": ("s", "o+x"), "H": ("s+x", "o+x")},
    "L2x_Hx": {"L": ("s+x", "o+x"), "H": ("s+x", "o")},
    "Lx_Hx": {"L": ("s", "o+x"), "H": ("s+x", "o")},
    "L2x_H2x": {"L": ("s+x", "o+x"), "H": ("s+x", "o+x")},
    "L2x_H2x_input_token_addition": {"L": ("s+x+t", "o+x"), "H": ("s+x+t", "o+x")},
    "L2x_H2x_input_token_prepend": {"L": ("s+x", "o+x"), "H": ("s+x", "o+x")},
    "L2x_H2x_input_token_prepend_no_strip": {"L": ("s+x", "o+x"), "H": ("s+x", "o+x")},
    "gx_linear": {"L": ("s", "o+g"), "H": ("s", "o")},
    "gx_non_linear": {"L": ("s", "o+g"), "H": ("s", "o")},
    "had_prod": {"L": ("s", "(o+s)*x"), "H": ("s", "o")},
    "minus_x": {"L": ("s", "o-x"), "H": ("s", "o")},
}


def update_rule_text(variant: str, stage: str) -> str:
    """Human-readable update rule, e.g. ``z_L <- f(z_L + (z_H + x))``."""
    first, inj = RULES[variant][stage]
    s, o = ("z_L", "z_H") if stage == "L" else ("z_H", "z_L")
    t = f"t_{stage}"
    f = {"s": s, "s+x": f"({s} + x)", "s+x+t": f"({s} + x + {t})"}[first]
    i = {"o": o, "o+x": f"({o} + x)", "o+g": f"({o} + g(x))", "(o+s)*x": f"(({o} + {s}) * x)",
         "o-x": f"({o} - x)"}[inj]  # fmt: skip
    return f"{s} <- f({f} + {i})"


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


Sites = dict[str, HookPoint]


@dataclass
class _Active:
    """The HookPoints that have something attached, for one forward, by where they fire."""

    forward: Sites = field(default_factory=dict)
    act: dict[int, Sites] = field(default_factory=dict)
    update: dict[tuple[int, str], Sites] = field(default_factory=dict)
    block: dict[tuple[int, str, int], Sites] = field(default_factory=dict)


def no_hooks() -> _Active:
    """Hook state that fires nothing: for callers of :meth:`HookedAIR.act_step` that never hook
    (training), so no scan of the HookPoint tree is needed."""
    return _Active()


def _fire(sites: Sites | None, site: str, x: Tensor) -> Tensor:
    hp = sites.get(site) if sites else None
    return x if hp is None else hp(x)


def _hook_names(hooks: object, what: str) -> list:
    """The names of a TransformerLens hook list, checked: strings or predicates on names."""
    names = []
    for entry in hooks or ():  # type: ignore[attr-defined]
        if not (isinstance(entry, tuple) and len(entry) == 2 and callable(entry[1])):
            raise InputError(f"{what}: expected (name, hook function) pairs, got {entry!r:.80}")
        if not (isinstance(entry[0], str) or callable(entry[0])):
            raise InputError(f"{what}: a hook name must be a string or a predicate on names, got {entry[0]!r:.80}")
        names.append(entry[0])
    return names


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


class HookedAIR(HookedRootModule):
    """AIR with a HookPoint per (ACT step, update, layer, site); see :mod:`airinterp.model.hooks`."""

    def __init__(self, config: AIRConfig, *, seed: int | None = 0) -> None:
        super().__init__()
        self.config = config
        c = config
        D = c.hidden_size
        self.embed_tokens = nn.Embedding(c.vocab_size, D)
        if c.pos_encodings == "learned":
            self.embed_pos = nn.Embedding(c.seq_len + c.puzzle_emb_len, D)
        if c.puzzle_emb_ndim > 0:
            self.register_buffer("puzzle_emb", torch.zeros(c.num_puzzle_identifiers, c.puzzle_emb_ndim))
        self.blocks = nn.ModuleList(
            Block(D, c.num_heads, c.d_mlp, c.rms_norm_eps) for _ in range(c.L_layers)
        )
        self.lm_head = Linear(D, c.vocab_size)
        self.q_head = Linear(D, 2, bias=True)
        self.register_buffer("H_init", torch.zeros(D))
        self.register_buffer("L_init", torch.zeros(D))
        if c.has_level_tokens:
            self.level_token_L = nn.Parameter(torch.zeros(D))
            self.level_token_H = nn.Parameter(torch.zeros(D))
        if c.has_g_input:
            self.g_input = Linear(D, D)

        self.schedule: tuple[Update, ...] = act_schedule(c.H_cycles, c.L_cycles)
        for site in ("hook_embed", "hook_input", "hook_zH_init", "hook_zL_init"):
            self.add_module(site, HookPoint())
        if c.has_g_input:
            self.hook_g_input = HookPoint()
        self.act = HookTree()  # act.{a}.…: see airinterp.model.hooks, "the HookPoint tree"
        #: attention implementation: "auto" (SDPA unless a hook needs the pattern), "eager", "sdpa"
        self.attention: Literal["auto", "eager", "sdpa"] = "auto"
        #: False: the reference's 1-step gradient (only the last L and H update get gradients)
        self.full_grad = False
        self._rope_cache: dict[tuple[str, int], tuple[Tensor, Tensor]] = {}
        self._full_steps: set[int] = set()
        #: predicate hooks of the open ``hooks()`` contexts: (context level, [(predicate, fn, dir)])
        self._predicate_hooks: list[tuple[int, list]] = []
        self.setup()
        for name, hp in self.hook_dict.items():
            hp.air_key = (None, None, None, name)
        self.ensure_act_steps(c.halt_max_steps)
        if seed is not None:
            self.init_weights(seed)
        self.eval()

    # ---- the HookPoint tree ------------------------------------------------------------------
    def ensure_act_steps(self, n_act: int) -> None:
        """Build every HookPoint of ACT steps ``0..n_act-1`` for good.

        Steps up to ``halt_max_steps`` exist from the start. ``run_with_hooks``, ``run_with_cache``,
        ``hooks()``, ``add_hook`` and :meth:`hook_point` create the HookPoints they address on
        steps beyond (the first three only for the call); this is for code that wants whole later
        steps to stay in ``hook_dict``. Memory grows with ``n_act`` (about 0.5k modules a step).
        """
        for a in range(n_act):
            if a in self._full_steps:
                continue
            for name, _ in step_names(self.config, a):
                if name not in self.hook_dict:
                    self._add_point(name)
            self._full_steps.add(a)

    def _add_point(self, name: str) -> list[str]:
        """Create the HookPoint ``name`` (and its containers); returns the module paths created."""
        addr = check_name(self.config, name)
        if addr.act is None:
            raise InputError(f"hook {name!r} does not exist in this model")
        parts = name.split(".")
        node: nn.Module = self
        created: list[str] = []
        for i, part in enumerate(parts):
            child = node._modules.get(part)
            if child is None:
                child = HookPoint() if i == len(parts) - 1 else HookTree()
                node.add_module(part, child)
                path = ".".join(parts[: i + 1])
                child.name = path
                child.train(self.training)
                self.mod_dict[path] = child
                created.append(path)
            node = child
        if not isinstance(node, HookPoint):
            raise InputError(f"{name!r} names a container of the hook tree, not a hook")
        node.air_key = air_key(addr)
        self.hook_dict[name] = node
        return created

    def _remove_points(self, created: list[str]) -> None:
        """Undo :meth:`_add_point` (children first; a container that has gained others stays)."""
        for path in reversed(created):
            module = self.mod_dict.get(path)
            if module is None or (isinstance(module, HookTree) and module._modules):
                continue
            parent, _, leaf = path.rpartition(".")
            del self.get_submodule(parent)._modules[leaf]
            del self.mod_dict[path]
            self.hook_dict.pop(path, None)

    @contextlib.contextmanager
    def _on_demand(self, names: Sequence, n_act: object = None, keep: bool = False) -> Iterator[None]:
        """HookPoints for the string ``names`` and, on steps ``< n_act`` beyond the built ones,
        for every name a predicate in ``names`` accepts; removed on exit unless ``keep``."""
        created: list[str] = []
        try:
            for name in names:
                if isinstance(name, str) and name not in self.hook_dict:
                    created += self._add_point(name)
            predicates: list[Callable[[str], bool]] = [n for n in names if callable(n)]
            if predicates and isinstance(n_act, int):
                for a in range(n_act):
                    if a in self._full_steps:
                        continue
                    for name, _ in step_names(self.config, a):
                        if name not in self.hook_dict and any(p(name) for p in predicates):
                            created += self._add_point(name)
            yield
        finally:
            if not keep:
                self._remove_points(created)

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
        return self.H_init.device

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

    def to_tokens(
        self, puzzles: object, *args: object, **kwargs: object
    ) -> Int[Tensor, "batch cell"]:
        """Puzzle text (one string or a list) -> token ids [batch, cell] on the model's device.

        Token ids (an integer tensor, array or nested list [batch, seq_len]) are checked and
        passed through."""
        if isinstance(puzzles, str) or (
            isinstance(puzzles, (list, tuple)) and len(puzzles) > 0 and any(isinstance(p, str) for p in puzzles)
        ):
            from airinterp.tasks import encode_puzzles

            if self.config.task is None:
                raise InputError(
                    f"to_tokens: the model's task is unknown (vocab_size {self.config.vocab_size}); "
                    "set AIRConfig.task or pass token ids"
                )
            if not isinstance(puzzles, str):
                bad = [i for i, p in enumerate(puzzles) if not isinstance(p, str)]
                if bad:
                    raise InputError(f"puzzle {bad[0]}: expected puzzle text (str), got {type(puzzles[bad[0]]).__name__}")
            tokens = encode_puzzles(self.config.task, puzzles, self.config.seq_len)
            return tokens.to(self.device)
        return self._check_tokens(puzzles)

    @contextlib.contextmanager
    def hooks(self, fwd_hooks=(), bwd_hooks=(), reset_hooks_end: bool = True, clear_contexts: bool = False):  # type: ignore[override]
        """As TransformerLens; hooks named on ACT steps beyond the built ones get HookPoints for
        the duration (kept if ``reset_hooks_end`` is False, as the hooks are)."""
        fwd_hooks, bwd_hooks = list(fwd_hooks or ()), list(bwd_hooks or ())  # a generator is read once
        names = _hook_names(fwd_hooks, "fwd_hooks") + _hook_names(bwd_hooks, "bwd_hooks")
        pending = [(n, fn, d) for d, hooks in (("fwd", fwd_hooks), ("bwd", bwd_hooks)) for n, fn in hooks if callable(n)]
        with self._on_demand(names, keep=not reset_hooks_end), super().hooks(
            fwd_hooks, bwd_hooks, reset_hooks_end, clear_contexts
        ) as model:
            # predicates also reach the ACT steps a later forward runs beyond the built ones
            # (see forward), so an intervention given by predicate holds on every step; kept
            # hooks (reset_hooks_end=False) keep doing so until reset_hooks()
            entry = (self.context_level, pending)
            if pending:
                self._predicate_hooks.append(entry)
            try:
                yield model
            finally:
                if reset_hooks_end and entry in self._predicate_hooks:
                    self._predicate_hooks.remove(entry)

    def reset_hooks(self, clear_contexts: bool = True, direction="both", including_permanent: bool = False, level=None):  # type: ignore[override]
        """As TransformerLens; also forgets the predicate hooks of the levels it removes."""
        super().reset_hooks(clear_contexts, direction, including_permanent, level)
        if direction == "both" and hasattr(self, "_predicate_hooks"):
            self._predicate_hooks = [e for e in self._predicate_hooks if level is not None and e[0] != level]

    def run_with_hooks(self, *model_args, fwd_hooks=(), bwd_hooks=(), reset_hooks_end: bool = True,
                       clear_contexts: bool = False, **kwargs):  # type: ignore[override]  # fmt: skip
        """As TransformerLens. Predicates among the hook names also reach ACT steps beyond
        ``halt_max_steps`` when ``n_act`` asks for them (their HookPoints live for this call)."""
        fwd_hooks, bwd_hooks = list(fwd_hooks or ()), list(bwd_hooks or ())
        names = _hook_names(fwd_hooks, "fwd_hooks") + _hook_names(bwd_hooks, "bwd_hooks")
        with self._on_demand(names, kwargs.get("n_act"), keep=not reset_hooks_end):
            return super().run_with_hooks(*model_args, fwd_hooks=fwd_hooks, bwd_hooks=bwd_hooks,
                                          reset_hooks_end=reset_hooks_end, clear_contexts=clear_contexts, **kwargs)  # fmt: skip

    def run_with_cache(self, *model_args, names_filter=None, return_cache_object: bool = True, **kwargs):  # type: ignore[override]
        """As TransformerLens: ``(output, ActivationCache)``; pass ``names_filter`` to keep it small.
        Steps beyond ``halt_max_steps`` (``n_act=...``) are cached too, their HookPoints made for
        this call only."""
        if names_filter is None:
            names: list = [lambda name: True]
        elif isinstance(names_filter, str):
            names = [names_filter]
        elif isinstance(names_filter, (list, tuple, set, frozenset)):
            names = list(names_filter)
            names_filter = list(names_filter)
            bad = [n for n in names if not isinstance(n, str)]
            if bad:
                raise InputError(f"names_filter: a list of hook names must hold strings, got {bad[0]!r:.80}")
        elif callable(names_filter):
            names = [names_filter]
        else:
            raise InputError(f"names_filter must be None, a hook name, a list of names or a predicate, got {names_filter!r:.80}")
        with self._on_demand(names, kwargs.get("n_act"), keep=not kwargs.get("reset_hooks_end", True)):
            out, cache = super().run_with_cache(*model_args, names_filter=names_filter, **kwargs)
        if return_cache_object:
            cache = ActivationCache(cache, self, has_batch_dim=not kwargs.get("remove_batch_dim", False))
        return out, cache

    def add_hook(self, name, hook, dir="fwd", is_permanent=False, level=None, prepend=False):  # type: ignore[override]
        """As TransformerLens; a named HookPoint on a step beyond the built ones is created (and stays)."""
        if isinstance(name, str) and name not in self.hook_dict:
            self._add_point(name)
        return super().add_hook(name, hook, dir=dir, is_permanent=is_permanent, level=level, prepend=prepend)

    def hook_point(self, addr: "Address | str") -> HookPoint:
        """The HookPoint at ``addr`` (created, and kept, on ACT steps beyond the built ones); a
        ValueError names what is wrong with a name that does not exist."""
        name = str(addr)
        if name not in self.hook_dict:
            self._add_point(name)
        return self.hook_dict[name]

    # ---- input checks ----------------------------------------------------------------------
    def _check_tokens(self, tokens: object) -> Int[Tensor, "batch cell"]:
        c = self.config
        expected = (
            f"expected puzzle text (a str or a list of str) or token ids (an integer tensor or nested "
            f"list of shape [batch, {c.seq_len}])"
        )
        if isinstance(tokens, str) or (
            isinstance(tokens, (list, tuple)) and len(tokens) > 0 and any(isinstance(t, str) for t in tokens)
        ):
            return self.to_tokens(tokens)  # type: ignore[arg-type]
        if isinstance(tokens, (bytes, bytearray)):
            raise InputError(f"tokens: got bytes; decode puzzle text to str first ({expected})")
        if isinstance(tokens, (list, tuple)) and len(tokens) == 0:
            raise InputError("tokens: empty batch (no puzzles given)")
        if not isinstance(tokens, Tensor):
            if tokens is None or not isinstance(tokens, (list, tuple)) and not hasattr(tokens, "__array__"):
                raise InputError(f"tokens: {expected}; got {type(tokens).__name__}")
            try:
                tokens = torch.as_tensor(tokens)
            except (ValueError, TypeError, RuntimeError) as err:
                raise InputError(f"tokens: {expected}; could not read {type(tokens).__name__} as one ({err})") from None
        if tokens.dtype.is_floating_point or tokens.dtype == torch.bool or tokens.is_complex():
            raise InputError(f"tokens must be integer ids, got dtype {tokens.dtype} ({expected})")
        if tokens.ndim != 2 or tokens.shape[0] == 0:
            raise InputError(
                f"tokens must have shape [batch >= 1, {c.seq_len}], got {tuple(tokens.shape)}"
            )
        if tokens.shape[1] != c.seq_len:
            raise InputError(
                f"sequence length {tokens.shape[1]} does not match the model's seq_len {c.seq_len}"
                + (f" ({c.task})" if c.task else "")
            )
        if tokens.numel():
            lo, hi = int(tokens.min()), int(tokens.max())
            if lo < 0 or hi >= c.vocab_size:
                bad = sorted({int(v) for v in tokens.flatten().tolist() if not 0 <= v < c.vocab_size})
                raise InputError(
                    f"token ids {bad[:10]} are outside the vocabulary [0, {c.vocab_size})"
                )
        return tokens.to(self.device, torch.long)

    def _check_ids(self, ids: object, batch: int) -> Int[Tensor, " batch"]:
        c = self.config
        if ids is None:
            return torch.zeros(batch, dtype=torch.long, device=self.device)
        if not isinstance(ids, Tensor):
            try:
                ids = torch.as_tensor(ids)
            except (ValueError, TypeError, RuntimeError):
                raise InputError(f"puzzle_identifiers must be a 1-D integer tensor, got {type(ids).__name__}") from None
        if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.is_complex() or ids.ndim != 1:
            raise InputError(f"puzzle_identifiers must be a 1-D integer tensor, got {ids.dtype} {tuple(ids.shape)}")
        if ids.shape[0] != batch:
            raise InputError(
                f"puzzle_identifiers has {ids.shape[0]} entries but the batch has {batch} puzzles"
            )
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= c.num_puzzle_identifiers):
            raise InputError(
                f"puzzle identifiers must lie in [0, {c.num_puzzle_identifiers}), got "
                f"{sorted(set(ids.tolist()))[:10]}"
            )
        return ids.to(self.device, torch.long)

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

    def _scan_hooks(self, n_act: int) -> _Active:
        active = _Active()
        for hp in self.hook_dict.values():
            if not has_hooks(hp):
                continue
            act, update, layer, site = hp.air_key
            if act is None:
                active.forward[site] = hp
            elif act >= n_act:
                continue
            elif update is None:
                active.act.setdefault(act, {})[site] = hp
            elif layer is None:
                active.update.setdefault((act, update), {})[site] = hp
            else:
                active.block.setdefault((act, update, layer), {})[site] = hp
        return active

    def embed(
        self, tokens: Int[Tensor, "batch cell"], ids: Int[Tensor, " batch"], active: _Active | None = None,
        prefix_rows: Tensor | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """x~ = sqrt(D) * [puzzle prefix ; token embedding] (the reference's input encoding).

        ``prefix_rows`` [batch, puzzle_emb_ndim] replaces ``puzzle_emb[ids]`` (training passes a
        leaf tensor to collect the puzzle-embedding gradients, as the reference's sparse embedding)."""  # fmt: skip
        c, dtype = self.config, self.dtype
        fwd = active.forward if active is not None else None
        emb = nn.functional.embedding(tokens, self.embed_tokens.weight.to(dtype))
        emb = _fire(fwd, "hook_embed", emb)
        if c.puzzle_emb_ndim > 0:
            prefix = (self.puzzle_emb[ids] if prefix_rows is None else prefix_rows).to(dtype)
            pad = c.puzzle_emb_len * c.hidden_size - prefix.shape[-1]
            if pad > 0:
                prefix = nn.functional.pad(prefix, (0, pad))
            emb = torch.cat((prefix.view(-1, c.puzzle_emb_len, c.hidden_size), emb), dim=-2)
        if c.pos_encodings == "learned":
            emb = 0.707106781 * (emb + self.embed_pos.weight.to(dtype))
        x = c.embed_scale * emb
        return _fire(fwd, "hook_input", x)

    def initial_carry(self, batch: int, active: _Active | None = None) -> Carry:
        """Fresh states: H_init / L_init at every position (level tokens in slot 0 for no-strip)."""
        c, dtype = self.config, self.dtype
        shape = (batch, c.n_pos, c.hidden_size)
        z_H = self.H_init.to(dtype).expand(shape)
        z_L = self.L_init.to(dtype).expand(shape)
        if c.variant == "L2x_H2x_input_token_prepend_no_strip":
            z_H = torch.cat((self.level_token_H.to(dtype).expand(batch, 1, -1), z_H[:, 1:]), dim=1)
            z_L = torch.cat((self.level_token_L.to(dtype).expand(batch, 1, -1), z_L[:, 1:]), dim=1)
        fwd = active.forward if active is not None else None
        z_H = _fire(fwd, "hook_zH_init", z_H)
        z_L = _fire(fwd, "hook_zL_init", z_L)
        return Carry(z_H=z_H, z_L=z_L)

    def _operands(self, u: Update, s: Tensor, o: Tensor, x: Tensor, g: Tensor | None) -> tuple[Tensor, Tensor]:
        first, inj = RULES[self.config.variant][u.stage]
        if first == "s":
            a = s
        elif first == "s+x":
            a = s + x
        else:  # s+x+t
            a = (s + x) + getattr(self, f"level_token_{u.stage}").to(s.dtype)
        if inj == "o":
            b = o
        elif inj == "o+x":
            b = o + x
        elif inj == "o+g":
            b = o + g  # type: ignore[operator]
        elif inj == "(o+s)*x":
            b = (o + s) * x
        else:  # o-x
            b = o - x
        return a, b

    def _update(
        self, act: int, u: Update, carry: Carry, x: Tensor, g: Tensor | None, active: _Active
    ) -> Tensor:
        """One application of the shared stack; returns the new value of the updated state."""
        hooks = active.update.get((act, u.name))
        s, o = (carry.z_L, carry.z_H) if u.stage == "L" else (carry.z_H, carry.z_L)
        s = _fire(hooks, "hook_state_in", s)
        a, b = self._operands(u, s, o, x, g)
        b = _fire(hooks, "hook_injection", b)
        h = _fire(hooks, "hook_in", a + b)
        prepend = self.config.variant == "L2x_H2x_input_token_prepend"
        if prepend:
            token = getattr(self, f"level_token_{u.stage}").to(h.dtype)
            h = torch.cat((token.expand(h.shape[0], 1, -1), h), dim=1)
        rope = self._rope()
        eager = self.attention == "eager"
        for i, block in enumerate(self.blocks):
            bh = active.block.get((act, u.name, i))
            wants = bh is not None and any(site in bh for site in PATTERN_SITES)
            h = block(h, rope, bh, wants_pattern=wants, eager=eager)
        if prepend:
            h = h[:, 1:]
        return _fire(hooks, "hook_out", h)

    def act_step(
        self, carry: Carry, x: Tensor, act: int, g: Tensor | None = None, active: _Active | None = None
    ) -> AIROutput:
        """One ACT step (all updates of the schedule) from ``carry``; returns outputs and new carry.

        With gradients enabled and ``full_grad`` False, only the updates of the 1-step-gradient
        segment record gradients, as in the reference.
        """
        if active is None:
            active = self._scan_hooks(act + 1)
        for u in self.schedule:
            ctx = (
                torch.no_grad()
                if (not u.grad and not self.full_grad and torch.is_grad_enabled())
                else contextlib.nullcontext()
            )
            with ctx:
                new = self._update(act, u, carry, x, g, active)
            carry = Carry(z_H=new, z_L=carry.z_L) if u.stage == "H" else Carry(z_H=carry.z_H, z_L=new)
        hooks = active.act.get(act)
        z_L = _fire(hooks, "hook_zL", carry.z_L)
        z_H = _fire(hooks, "hook_zH", carry.z_H)
        logits = self.lm_head(z_H)[:, self.config.n_prefix :]
        q = self.q_head(z_H[:, 0]).to(torch.float32)
        q_halt, q_cont = q[..., 0], q[..., 1]
        logits = _fire(hooks, "hook_logits", logits)
        q_halt = _fire(hooks, "hook_q_halt", q_halt)
        q_cont = _fire(hooks, "hook_q_continue", q_cont)
        return AIROutput(logits=logits, q_halt=q_halt, q_continue=q_cont, carry=Carry(z_H=z_H, z_L=z_L))

    def encode(
        self, tokens: Int[Tensor, "batch cell"], ids: Int[Tensor, " batch"], active: _Active | None = None,
        prefix_rows: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """x~ (zero-padded in front for the no-strip control) and g(x~) for the gx_* controls."""
        x = self.embed(tokens, ids, active, prefix_rows)
        g = None
        if self.config.has_g_input:
            g = self.g_input(x)
            if self.config.variant == "gx_non_linear":
                g = torch.tanh(g)
            g = _fire(active.forward if active is not None else None, "hook_g_input", g)
        if self.config.variant == "L2x_H2x_input_token_prepend_no_strip":
            x = nn.functional.pad(x, (0, 0, 1, 0))
        return x, g

    def forward(
        self,
        tokens: object,
        puzzle_identifiers: object = None,
        *,
        n_act: object = None,
        return_type: Literal["logits", "output"] = "logits",
    ):
        """Evaluation rollout: ``n_act`` ACT steps (default ``halt_max_steps``) from a fresh carry.

        ``tokens`` are ids [batch, cell] (a tensor, array or nested list) or puzzle text (see
        :meth:`to_tokens`), validated here (type, length, vocabulary, dtype); anything else is a
        ValueError saying what was expected. ``puzzle_identifiers`` [batch] default to 0.

        Returns the logits decoded from z_H after the last step, [batch, cell, vocab]
        (``return_type="output"``: an :class:`AIROutput` with the Q logits and the final carry).
        """
        tokens = self._check_tokens(tokens)
        ids = self._check_ids(puzzle_identifiers, tokens.shape[0])
        n_act = self.config.halt_max_steps if n_act is None else n_act
        if isinstance(n_act, bool) or not isinstance(n_act, int) or n_act < 1:
            raise InputError(f"n_act must be a whole number of ACT steps >= 1, got {n_act!r}")
        with self._beyond_built_steps(n_act):
            active = self._scan_hooks(n_act)
            x, g = self.encode(tokens, ids, active)
            carry = self.initial_carry(tokens.shape[0], active)
            for a in range(n_act):
                out = self.act_step(carry, x, a, g, active)
                carry = out.carry
        return out if return_type == "output" else out.logits

    @contextlib.contextmanager
    def _beyond_built_steps(self, n_act: int) -> Iterator[None]:
        """For this forward, HookPoints on steps beyond the built ones for every name a predicate
        of an open ``hooks()`` context accepts, with those hooks attached in their order."""
        missing = [a for a in range(n_act) if a not in self._full_steps] if self._predicate_hooks else []
        created: list[str] = []
        added: list[tuple[HookPoint, str, object]] = []
        try:
            for a in missing:
                for name, _ in step_names(self.config, a):
                    todo = []
                    for level, pending in self._predicate_hooks:
                        for pred, fn, direction in pending:
                            if pred(name):
                                todo.append((level, fn, direction))
                    if not todo:
                        continue
                    if name not in self.hook_dict:
                        created += self._add_point(name)
                    hp = self.hook_dict[name]
                    for direction in ("fwd", "bwd"):
                        handles = hp.fwd_hooks if direction == "fwd" else hp.bwd_hooks
                        # skip hooks the point got when the context opened; go in front of hooks
                        # of inner contexts (a cache opened inside an intervention sees its result)
                        new = [(lv, fn) for lv, fn, d in todo if d == direction and not any(h.user_hook is fn for h in handles)]
                        front = any((h.context_level or 0) > max((lv for lv, _ in new), default=0) for h in handles)
                        for lv, fn in reversed(new) if front else new:
                            handle = hp.add_hook(fn, dir=direction, level=lv, prepend=front)
                            added.append((hp, direction, handle))
            yield
        finally:
            for hp, direction, handle in added:
                handle.hook.remove()
                if direction == "fwd":
                    hp.fwd_hooks = [h for h in hp.fwd_hooks if h is not handle]
                else:
                    hp.bwd_hooks = [h for h in hp.bwd_hooks if h is not handle]
            self._remove_points(created)

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
