"""HookedAIR behaviour: TL protocol, attention paths, hooks, variants, freeze, patching."""

import pytest
import torch
from transformer_lens import ActivationCache
from transformer_lens.model_protocol import TransformerLensModel
from transformer_lens.patching import generic_activation_patch, layer_pos_patch_setter

from airinterp.analysis.freeze import freeze_hooks
from airinterp.analysis.patching import UpdateLens
from airinterp.model import VARIANTS, select
from airinterp.model.air import RULES, update_rule_text
from tests.helpers import make_config, make_model, make_tokens, own_spread


def test_transformerlens_protocol():
    model = make_model()
    assert isinstance(model, TransformerLensModel)
    assert model.cfg.n_layers == 2 and model.cfg.n_heads == 2 and model.cfg.d_model == 32
    lens = UpdateLens(model, "act.1.H0")
    assert isinstance(lens, TransformerLensModel)


def test_forward_defaults_to_halt_max_steps_and_zero_ids(device):
    model = make_model().to(device)
    tokens = make_tokens().to(device)
    out = model(tokens)
    assert out.shape == (2, 16, 11)
    explicit = model(tokens, torch.zeros(2, dtype=torch.long), n_act=3)
    assert torch.equal(out, explicit)
    assert not torch.equal(out, model(tokens, n_act=2))


def test_rollout_is_deterministic_and_rows_independent():
    """A row's output depends on that row alone: another row's puzzle changed leaves it bitwise (the
    same batch shape runs the same kernels, so this holds on any CPU). A one-row batch may run other
    kernels, whose last-bit differences this chaotic tiny model amplifies (one-ulp weight noise moves
    its 3-step rollout by ~1.6e-3): within 100x that spread, measured here."""
    model = make_model()
    tokens = make_tokens(batch=3)
    full = model(tokens)
    assert torch.equal(model(tokens), full)
    other = tokens.clone()
    other[1] = make_tokens(batch=1, seed=5)[0]
    changed = model(other)
    assert torch.equal(changed[0], full[0]) and torch.equal(changed[2], full[2])
    assert not torch.equal(changed[1], full[1])
    bound = max(1e-5, 100 * own_spread(model, tokens))
    for i in range(3):
        assert (model(tokens[i : i + 1]) - full[i : i + 1]).abs().max().item() <= bound


def test_eager_attention_matches_sdpa():
    """The explicit path (pattern @ v) agrees with the fused kernel to float32 rounding."""
    model = make_model()
    tokens = make_tokens()
    site = select(act=0, update="L0_0", site="attn.hook_z")
    _, fused = model.run_with_cache(tokens, n_act=1, names_filter=site)
    model.attention = "eager"
    _, eager = model.run_with_cache(tokens, n_act=1, names_filter=site)
    out_eager = model(tokens, n_act=1)
    model.attention = "auto"
    for name, z in fused.items():
        rel = ((eager[name] - z).abs().max() / z.abs().max()).item()
        assert rel <= 1e-6, (name, rel)  # relative to the magnitude: float32 rounding
    # differences of that size, carried through one ACT step (6 updates x 2 blocks): within 100x
    # the model's own one-ulp spread (1.7e-5 here), as another CPU's kernels would be
    bound = max(1e-4, 100 * own_spread(model, tokens, n_act=1))
    assert (out_eager - model(tokens, n_act=1)).abs().max().item() <= bound


def test_reading_patterns_never_changes_the_rollout():
    model = make_model()
    tokens = make_tokens()
    base = model(tokens)
    for grad_mode in (torch.inference_mode, torch.no_grad):
        with grad_mode():
            out, cache = model.run_with_cache(tokens, names_filter=select(site=["attn.hook_pattern", "attn.hook_attn_scores"]))
        assert torch.equal(out, base)
        assert len(cache.cache_dict) == 2 * 3 * 6 * 2

    def look(x, hook):
        return None

    look.read_only = True
    with torch.inference_mode():
        assert torch.equal(model.run_with_hooks(tokens, fwd_hooks=[(select(site="attn.hook_pattern"), look)]), base)


@pytest.mark.parametrize("in_place", [True, False])
@pytest.mark.parametrize("grad_mode", [torch.inference_mode, torch.no_grad])
def test_editing_the_pattern_changes_the_rollout(in_place, grad_mode):
    model = make_model()
    tokens = make_tokens()
    base = model(tokens)

    def uniform_head0(pattern, hook):
        if in_place:
            pattern[:, 0] = 1.0 / pattern.shape[-1]
            return pattern
        out = pattern.clone()
        out[:, 0] = 1.0 / pattern.shape[-1]
        return out

    with grad_mode():
        edited = model.run_with_hooks(tokens, fwd_hooks=[("act.1.H0.blocks.0.attn.hook_pattern", uniform_head0)])
    assert (edited - base).abs().max() > 1e-3


def test_identity_hook_everywhere_is_bit_identical():
    model = make_model()
    tokens = make_tokens()
    base = model(tokens, return_type="output")

    def identity(x, hook):
        return x

    out = model.run_with_hooks(tokens, fwd_hooks=[(select(scope=["forward", "act", "update"]), identity)], return_type="output")
    assert torch.equal(out.logits, base.logits) and torch.equal(out.q_halt, base.q_halt)
    # block sites except the pattern ones (which choose the eager path) also leave it bit-identical
    keep = lambda n: "hook_pattern" not in n and "hook_attn_scores" not in n  # noqa: E731
    out = model.run_with_hooks(tokens, fwd_hooks=[(keep, identity)])
    assert torch.equal(out, base.logits)
    assert not any(hp.fwd_hooks for hp in model.hook_dict.values())  # cleaned up


def test_caching_never_changes_outputs():
    model = make_model()
    tokens = make_tokens()
    base = model(tokens)
    out, _ = model.run_with_cache(tokens, names_filter=lambda n: "pattern" not in n and "scores" not in n)
    assert torch.equal(out, base)
    out, _ = model.run_with_cache(tokens)  # everything, eager attention included
    torch.testing.assert_close(out, base, rtol=0, atol=1e-5)


def test_patching_a_hook_changes_downstream():
    model = make_model()
    tokens = make_tokens()
    base = model(tokens, n_act=2)

    def zero(x, hook):
        return torch.zeros_like(x)

    out = model.run_with_hooks(tokens, n_act=2, fwd_hooks=[("act.1.H1.hook_out", zero)])
    expect = model.lm_head(torch.zeros(2, 17, 32))[:, 1:]
    torch.testing.assert_close(out, expect)
    assert not torch.equal(out, base)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_runs_and_follows_its_rule(variant):
    """hook_in of every update equals the variant's formula applied to the carried states."""
    model = make_model(variant=variant)
    keep = select(act=1, site=["hook_state_in", "hook_in", "hook_out"])
    extra = {"hook_input", "hook_g_input", "act.0.hook_zL", "act.0.hook_zH"}
    out, cache = model.run_with_cache(make_tokens(), n_act=2, names_filter=lambda n: keep(n) or n in extra)
    assert out.shape == (2, 16, 11) and torch.isfinite(out).all()
    x = cache["hook_input"]
    if variant.endswith("no_strip"):
        x = torch.nn.functional.pad(x, (0, 0, 1, 0))
    g = cache.cache_dict.get("hook_g_input")
    state = {"L": cache["act.0.hook_zL"], "H": cache["act.0.hook_zH"]}
    for u in model.schedule:
        s, o = state[u.stage], state["H" if u.stage == "L" else "L"]
        assert torch.equal(cache[f"act.1.{u.name}.hook_state_in"], s)
        first, inj = RULES[variant][u.stage]
        if first == "s":
            a = s
        elif first == "s+x":
            a = s + x
        else:
            a = (s + x) + getattr(model, f"level_token_{u.stage}")
        b = {"o": lambda: o, "o+x": lambda: o + x, "o+g": lambda: o + g, "(o+s)*x": lambda: (o + s) * x,
             "o-x": lambda: o - x}[inj]()  # fmt: skip
        assert torch.equal(cache[f"act.1.{u.name}.hook_in"], a + b), u.name
        state[u.stage] = cache[f"act.1.{u.name}.hook_out"]
    assert update_rule_text(variant, "L").startswith("zL <- f(")
    assert model.config.n_pos == 17 + variant.endswith("no_strip")


def test_unknown_variant_is_a_clear_error():
    from airinterp.model import UnknownVariantError
    from airinterp.model.config import normalize_variant

    with pytest.raises(ValueError, match="unknown AIR variant 'Lx_Hy'; valid variants are: Lx_H, L_Hx"):
        make_config(variant="Lx_Hy")
    with pytest.raises(UnknownVariantError, match="minus_x"):
        normalize_variant("air.air_1net_plus_x@AIR")
    assert make_config(variant="air.air_1net_Lx_Hx@AIR").variant == "Lx_Hx"


def test_freezing_nothing_equals_hooks_off():
    model = make_model()
    tokens = make_tokens()
    base = model(tokens, return_type="output")
    hooks = freeze_hooks(model, states=[])  # a state_in recorder and an out hook at every update
    assert sum(pred(name) for pred, _ in hooks for name in model.hook_dict) == 2 * 6 * 3
    out = model.run_with_hooks(tokens, fwd_hooks=hooks, return_type="output")
    assert torch.equal(out.logits, base.logits)
    assert torch.equal(out.carry.z_L, base.carry.z_L) and torch.equal(out.q_halt, base.q_halt)


def test_freeze_zH_keeps_state_and_makes_output_constant():
    model = make_model()
    tokens = make_tokens(batch=3)
    hooks = freeze_hooks(model, "zH")
    with model.hooks(fwd_hooks=hooks):
        out, cache = model.run_with_cache(tokens, names_filter=select(stage="H", site=["hook_state_in", "hook_out"]))
    for a in range(3):
        for h in range(2):
            assert torch.equal(cache[f"act.{a}.H{h}.hook_out"], cache[f"act.{a}.H{h}.hook_state_in"])
    # z_H never leaves H_init, so every puzzle decodes to lm_head(H_init)
    const = model.lm_head(model.H_init)
    torch.testing.assert_close(out, const.expand_as(out), rtol=0, atol=1e-6)
    assert torch.equal(out, out[:1, :1].expand_as(out))  # the same at every cell of every puzzle
    # freezing z_L from ACT step 1 on leaves a 1-step rollout untouched, a 2-step one not
    one = model.run_with_hooks(tokens, n_act=1, fwd_hooks=freeze_hooks(model, "zL", from_act=1))
    assert torch.equal(one, model(tokens, n_act=1))
    two = model.run_with_hooks(tokens, n_act=2, fwd_hooks=freeze_hooks(model, "zL", from_act=1))
    assert not torch.equal(two, model(tokens, n_act=2))
    with pytest.raises(ValueError, match="unknown state"):
        freeze_hooks(model, "zX")


def test_activation_cache_indexing():
    model = make_model()
    _, cache = model.run_with_cache(make_tokens(), n_act=2, names_filter=select(act=1, update="H0"))
    assert isinstance(cache, ActivationCache)
    assert "act.1.H0.blocks.1.attn.hook_pattern" in cache
    assert cache["act.1.H0.blocks.1.attn.hook_pattern"].shape == (2, 2, 17, 17)
    assert len(list(cache.keys())) == 4 + 2 * 16
    row = model.run_with_cache(make_tokens(batch=1), n_act=2, names_filter="act.1.H0.hook_out", remove_batch_dim=True)[1]
    assert row["act.1.H0.hook_out"].shape == (17, 32)


def test_generic_activation_patch_through_transformer_lens():
    """Patch clean z_H positions into a corrupted run at the last layer of the final update.

    Nothing downstream of the final H-update mixes positions, so patching state position p must
    make exactly cell p - 1 of the output equal to the clean output.
    """
    model = make_model()
    clean, corrupt = make_tokens(seed=1), make_tokens(seed=2)
    lens = UpdateLens(model, "act.2.H1")
    clean_logits, clean_cache = lens.run_with_cache(clean)
    assert "blocks.1.hook_resid_post" in clean_cache

    def cells_equal_to_clean(logits):
        return ((logits - clean_logits).abs().amax(-1) < 1e-6).all(0).sum().float()

    result = generic_activation_patch(
        lens, corrupt, clean_cache, cells_equal_to_clean, layer_pos_patch_setter, "resid_post",
        index_axis_names=("layer", "pos"),
    )  # fmt: skip
    assert result.shape == (2, 16)  # layer x pos (pos sized by the 16 tokens)
    baseline = cells_equal_to_clean(model(corrupt))
    assert baseline == 0
    assert result[1, 0] == baseline  # position 0 is the puzzle prefix
    assert torch.equal(result[1, 1:], torch.ones(15))  # one cell restored per patched position
    assert (result[0] <= 1).all()  # layer 0: the last block still mixes positions


def test_patching_early_update_changes_the_output():
    model = make_model()
    clean, corrupt = make_tokens(seed=1), make_tokens(seed=2)
    lens = UpdateLens(model, "act.0.L0_0")
    clean_logits, clean_cache = lens.run_with_cache(clean)

    def dist(logits):
        return (logits - clean_logits).pow(2).mean()

    result = generic_activation_patch(
        lens, corrupt, clean_cache, dist, layer_pos_patch_setter, "resid_pre", index_axis_names=("layer", "pos")
    )
    base = dist(model(corrupt))
    assert result.shape == (2, 16)
    assert (result != base).any()
    # patching block 0's whole input at the first update reproduces that update's clean output
    patch = [("act.0.L0_0.blocks.0.hook_resid_pre", lambda x, hook: clean_cache["blocks.0.hook_resid_pre"])]
    with model.hooks(fwd_hooks=patch):
        _, cache = model.run_with_cache(corrupt, names_filter="act.0.L0_0.hook_out")
    assert torch.equal(cache["act.0.L0_0.hook_out"], clean_cache["hook_out"])


def test_one_step_gradient_like_the_reference():
    model = make_model().train()
    tokens = make_tokens()
    x, g = model.encode(tokens, torch.zeros(2, dtype=torch.long))
    out = model.act_step(model.initial_carry(2), x, 0, g)
    out.logits.float().pow(2).mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(v is not None for k, v in grads.items() if k.startswith("blocks."))
    assert grads["embed_tokens.weight"] is not None  # x~ enters the gradient-carrying L-update
    # only the 1-step-gradient segment (L1_1, H1) records a graph; full_grad records all
    for full_grad, want in ((False, {"L1_1", "H1"}), (True, {"L0_0", "L0_1", "H0", "L1_0", "L1_1", "H1"})):
        model.full_grad = full_grad
        seen = set()

        def note(x, hook, seen=seen):
            if x.requires_grad:
                seen.add(hook.name.split(".")[2])

        model.run_with_hooks(tokens, n_act=1, fwd_hooks=[(select(site="hook_out"), note)])
        assert seen == want
    model.full_grad = False
