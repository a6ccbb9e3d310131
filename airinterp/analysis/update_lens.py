"""Use ``transformer_lens.patching`` on one update of the rollout.

TransformerLens's patching utilities address activations as ``blocks.{layer}.hook_{site}`` of a
single forward pass. :class:`UpdateLens` presents one update of an AIR rollout (say ``act.3.H0``)
as such a model: ``blocks.{i}.…`` resolves to ``act.3.H0.blocks.{i}.…`` and the update-level
``hook_in``/``hook_out`` keep their short names. Everything else (``cfg``, ``to_tokens``, the
eval-mode check) is the wrapped model's::

    lens = UpdateLens(model, "act.3.H0")
    _, clean_cache = lens.run_with_cache(clean_tokens)
    effect = transformer_lens.patching.generic_activation_patch(
        lens, corrupted_tokens, clean_cache, metric, layer_pos_patch_setter, "resid_pre",
        index_axis_names=("layer", "pos"))

The ``pos`` axis indexes state positions (0 = puzzle prefix, cell j at j + prefix length);
TransformerLens sizes it by the token count, so pass ``index_df`` to reach the last prefix-shifted
position.
"""

from collections.abc import Callable
from typing import Any

from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.hooks import ActivationCache, Address
from airinterp.model.inputs import check_n_act


class UpdateLens:
    """A TransformerLensModel view of one update (``act.{a}.{u}``) of a HookedAIR rollout."""

    def __init__(self, model: HookedAIR, update: str, **forward_kwargs: Any) -> None:
        addr = Address.parse(f"{update}.hook_in")
        self.prefix = f"act.{addr.act}.{addr.update}"
        n_act = check_n_act(forward_kwargs.get("n_act"), model.config.halt_max_steps)
        if addr.act >= n_act:  # type: ignore[operator]
            raise InputError(f"{update} lies beyond the rollout's {n_act} ACT steps")
        self.original_model = model  # read by transformer_lens' eval-mode check
        self.forward_kwargs = forward_kwargs

    @property
    def cfg(self):
        return self.original_model.cfg

    def to_tokens(self, *args: Any, **kwargs: Any):
        return self.original_model.to_tokens(*args, **kwargs)

    def full_name(self, local: str) -> str:
        return f"{self.prefix}.{local}"

    def _translate(self, hooks: list) -> list:
        out = []
        for name, fn in hooks:
            if callable(name):
                pred: Callable[[str], bool] = name
                p = self.prefix + "."
                out.append((lambda full, pred=pred, p=p: full.startswith(p) and pred(full[len(p):]), fn))
            else:
                out.append((self.full_name(name), fn))
        return out

    def __call__(self, tokens: Any, *args: Any, **kwargs: Any):
        return self.original_model(tokens, *args, **{**self.forward_kwargs, **kwargs})

    def run_with_hooks(self, tokens: Any, *args: Any, fwd_hooks: list = (), bwd_hooks: list = (), **kwargs: Any):  # type: ignore[assignment]
        return self.original_model.run_with_hooks(
            tokens, *args, fwd_hooks=self._translate(list(fwd_hooks)),
            bwd_hooks=self._translate(list(bwd_hooks)), **{**self.forward_kwargs, **kwargs},
        )  # fmt: skip

    def run_with_cache(self, tokens: Any, *args: Any, names_filter: Any = None, **kwargs: Any):
        p = self.prefix + "."
        if names_filter is None:
            keep: Callable[[str], bool] = lambda local: True  # noqa: E731
        elif isinstance(names_filter, str):
            keep = lambda local: local == names_filter  # noqa: E731
        elif callable(names_filter):
            keep = names_filter
        else:
            wanted = set(names_filter)
            keep = lambda local: local in wanted  # noqa: E731
        out, cache = self.original_model.run_with_cache(
            tokens, *args, names_filter=lambda full: full.startswith(p) and keep(full[len(p):]),
            **{**self.forward_kwargs, **kwargs},
        )  # fmt: skip
        local = {k[len(p) :]: v for k, v in cache.cache_dict.items()}
        return out, ActivationCache(local, self.original_model)
