"""The growing HookPoint tree: one HookPoint per name, built with TransformerLens's registry.

:class:`GrowingHookRoot` is a ``HookedRootModule`` whose hook tree has one branch per ACT step
(``act.{a}.…``) and can grow past the steps built at construction, because a rollout may run any
number of ACT steps. Every override of TransformerLens's hook API lives here, around one
invariant:

    **Steps ``0 .. built-1`` are complete and permanent** (built by ``__init__`` through
    :meth:`ensure_act_steps`, listed in ``_full_steps``). **A HookPoint on a later step exists only
    while something addresses it**: a call that names it (``run_with_hooks``, ``run_with_cache``,
    ``hooks()``) creates it and removes it when the call returns; ``add_hook`` and
    :meth:`hook_point` keep what they create, as do hooks kept with ``reset_hooks_end=False``
    (until ``reset_hooks``). ``mod_dict`` and ``hook_dict`` always list exactly the HookPoints
    that exist; a HookPoint's name is its module path, and its :class:`~airinterp.model.hooks.Address`
    is ``Address.parse(name)`` (nothing is stamped onto TransformerLens's ``HookPoint``).

Predicate hooks (``names_filter``-style functions) reach later steps too: the predicates of open
``hooks()`` contexts are kept in ``_predicate_hooks`` and attached, for one forward, to the
HookPoints :meth:`_beyond_built_steps` creates. Subclasses name a step's hooks
(:meth:`step_hook_names`) and check a name (:meth:`check_hook_name`); the forward asks
:meth:`active_hooks` once and fires sites with :func:`fire`.
"""

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from torch import Tensor, nn

from airinterp.errors import InputError
from airinterp.model.hooks import ActivationCache, Address, HookedRootModule, HookPoint, HookTree, has_hooks

Sites = dict[str, HookPoint]


@dataclass
class ActiveHooks:
    """The HookPoints that have something attached, for one forward, by where they fire."""

    forward: Sites = field(default_factory=dict)
    act: dict[int, Sites] = field(default_factory=dict)
    update: dict[tuple[int, str], Sites] = field(default_factory=dict)
    block: dict[tuple[int, str, int], Sites] = field(default_factory=dict)


#: fires nothing: for forwards that never hook (training), so no scan of the tree is needed
NO_HOOKS = ActiveHooks()


def fire(sites: Sites | None, site: str, x: Tensor) -> Tensor:
    """``x`` through the HookPoint ``site`` of ``sites`` if it has something attached, else ``x``."""
    hp = sites.get(site) if sites else None
    return x if hp is None else hp(x)


def hook_list_names(hooks: object, what: str) -> list:
    """The names of a TransformerLens hook list, checked: strings or predicates on names."""
    names = []
    for entry in hooks or ():  # type: ignore[attr-defined]
        if not (isinstance(entry, tuple) and len(entry) == 2 and callable(entry[1])):
            raise InputError(f"{what}: expected (name, hook function) pairs, got {entry!r:.80}")
        if not (isinstance(entry[0], str) or callable(entry[0])):
            raise InputError(f"{what}: a hook name must be a string or a predicate on names, got {entry[0]!r:.80}")
        names.append(entry[0])
    return names


class GrowingHookRoot(HookedRootModule):
    """A ``HookedRootModule`` whose ``act.{a}`` branches grow on demand (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._full_steps: set[int] = set()
        #: predicate hooks of the open ``hooks()`` contexts: (context level, [(predicate, fn, dir)])
        self._predicate_hooks: list[tuple[int, list]] = []

    # ---- what a subclass says about its names -------------------------------------------------
    def step_hook_names(self, act: int) -> Iterator[str]:
        """Every hook name of ACT step ``act``, in firing order."""
        raise NotImplementedError

    def check_hook_name(self, name: str) -> Address:
        """``name`` parsed and checked against this model (any ACT step); an InputError if not a hook."""
        raise NotImplementedError

    # ---- growth ----------------------------------------------------------------------------------
    def ensure_act_steps(self, n_act: int) -> None:
        """Build every HookPoint of ACT steps ``0..n_act-1`` for good.

        Steps up to ``halt_max_steps`` exist from the start, as many as fit the model's hook budget
        (see the module's invariant). ``run_with_hooks``, ``run_with_cache``,
        ``hooks()``, ``add_hook`` and :meth:`hook_point` create the HookPoints they address on
        steps beyond (the first three only for the call); this is for code that wants whole later
        steps to stay in ``hook_dict``. Memory grows with ``n_act`` (about 0.5k modules a step).
        """
        for a in range(n_act):
            if a in self._full_steps:
                continue
            for name in self.step_hook_names(a):
                if name not in self.hook_dict:
                    self._add_point(name)
            self._full_steps.add(a)

    def _add_point(self, name: str) -> list[str]:
        """Create the HookPoint ``name`` (and its containers); returns the module paths created."""
        addr = self.check_hook_name(name)
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
                    for name in self.step_hook_names(a):
                        if name not in self.hook_dict and any(p(name) for p in predicates):
                            created += self._add_point(name)
            yield
        finally:
            if not keep:
                self._remove_points(created)

    @contextlib.contextmanager
    def hooks(self, fwd_hooks=(), bwd_hooks=(), reset_hooks_end: bool = True, clear_contexts: bool = False):  # type: ignore[override]
        """As TransformerLens; hooks named on ACT steps beyond the built ones get HookPoints for
        the duration (kept if ``reset_hooks_end`` is False, as the hooks are)."""
        fwd_hooks, bwd_hooks = list(fwd_hooks or ()), list(bwd_hooks or ())  # a generator is read once
        names = hook_list_names(fwd_hooks, "fwd_hooks") + hook_list_names(bwd_hooks, "bwd_hooks")
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
        names = hook_list_names(fwd_hooks, "fwd_hooks") + hook_list_names(bwd_hooks, "bwd_hooks")
        with self._on_demand(names, _steps_of(kwargs), keep=not reset_hooks_end):
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
        with self._on_demand(names, _steps_of(kwargs), keep=not kwargs.get("reset_hooks_end", True)):
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

    def active_hooks(self, n_act: int) -> "ActiveHooks":
        """The HookPoints of an ``n_act``-step forward that have something attached, by where they
        fire (one scan per forward; the forward then looks sites up, never names)."""
        active = ActiveHooks()
        for name, hp in self.hook_dict.items():
            if not has_hooks(hp):
                continue
            addr = Address.parse(name)
            act, update, layer, site = addr.act, addr.update, addr.layer, addr.site
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

    @contextlib.contextmanager
    def _beyond_built_steps(self, n_act: int) -> Iterator[None]:
        """For this forward, HookPoints on steps beyond the built ones for every name a predicate
        of an open ``hooks()`` context accepts, with those hooks attached in their order."""
        missing = [a for a in range(n_act) if a not in self._full_steps] if self._predicate_hooks else []
        created: list[str] = []
        added: list[tuple[HookPoint, str, object]] = []
        try:
            for a in missing:
                for name in self.step_hook_names(a):
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


def _steps_of(kwargs: dict) -> object:
    """The ACT steps a run_with_* call's forward will run: ``n_act`` or ``stop_at_layer`` (the
    forward checks them; an invalid pair is refused there)."""
    n, stop = kwargs.get("n_act"), kwargs.get("stop_at_layer")
    return n if stop is None or isinstance(stop, bool) or not isinstance(stop, int) else stop
