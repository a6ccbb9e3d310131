"""The HookPoint tree: fixed size whatever rollouts ran, HookPoints on demand beyond halt_max_steps."""

import pytest
import torch
from transformer_lens.patching import generic_activation_patch, layer_pos_patch_setter

from airinterp.analysis.patching import UpdateLens
from airinterp.model import glob, hook_names
from tests.helpers import make_model, make_tokens


def _tree_size(model) -> tuple[int, int, int]:
    return len(list(model.modules())), len(model.hook_dict), len(model.mod_dict)


def test_patching_works_after_a_longer_rollout():
    """HookPoints made for a longer rollout were left in training mode, which TransformerLens'
    patching refuses (the README tour runs n_act=8 before patching)."""
    model = make_model()  # halt_max_steps 3
    clean, corrupt = make_tokens(seed=1), make_tokens(seed=2)
    model(clean, n_act=5)
    lens = UpdateLens(model, "act.4.H1", n_act=5)  # a step beyond halt_max_steps
    clean_logits, clean_cache = lens.run_with_cache(clean)
    assert torch.equal(clean_logits, model(clean, n_act=5))

    def cells_equal_to_clean(logits):
        return ((logits - clean_logits).abs().amax(-1) < 1e-6).all(0).sum().float()

    result = generic_activation_patch(
        lens, corrupt, clean_cache, cells_equal_to_clean, layer_pos_patch_setter, "resid_post",
        index_axis_names=("layer", "pos"),
    )  # fmt: skip
    assert result[1, 1:].tolist() == [1.0] * 15  # patching state position p fixes cell p - 1
    assert all(not m.training for m in model.modules())


def test_long_rollouts_leave_the_tree_as_it_was():
    model = make_model()
    before = _tree_size(model)
    tokens = make_tokens()
    model(tokens, n_act=200)
    assert _tree_size(model) == before
    _, cache = model.run_with_cache(tokens, n_act=40, names_filter=glob("act.*.hook_zH"))
    assert sorted(cache.keys(), key=lambda n: int(n.split(".")[1])) == [f"act.{a}.hook_zH" for a in range(40)]
    assert _tree_size(model) == before
    model.run_with_hooks(tokens, n_act=9, fwd_hooks=[("act.8.H1.blocks.1.attn.hook_pattern", lambda x, hook: None)])
    assert _tree_size(model) == before
    with model.hooks(fwd_hooks=[("act.7.hook_zL", lambda x, hook: None)]):
        assert "act.7.hook_zL" in model.hook_dict
    assert _tree_size(model) == before


def test_a_2000_step_rollout_finishes():
    model = make_model(L_layers=1, H_cycles=1, L_cycles=1)
    out = model(make_tokens(batch=1), n_act=2000)
    assert torch.isfinite(out).all()
    assert len(model.hook_dict) == len(hook_names(model.config, 3))


def test_steps_beyond_halt_max_steps_are_cached_exactly():
    model = make_model()
    tokens = make_tokens()
    logits, cache = model.run_with_cache(tokens, n_act=6)
    assert len(cache.keys()) == len(hook_names(model.config, 6))
    assert torch.equal(cache["act.5.hook_logits"], logits)
    assert torch.equal(cache["act.4.hook_logits"], model(tokens, n_act=5))


def test_hooks_beyond_the_built_steps_fire():
    model = make_model()
    tokens = make_tokens()
    seen = []
    model.add_hook("act.6.hook_zH", lambda x, hook: seen.append(hook.name))
    model(tokens, n_act=7)
    assert seen == ["act.6.hook_zH"]
    model.reset_hooks()
    assert model.hook_point("act.6.hook_zH") is model.hook_dict["act.6.hook_zH"]  # add_hook's stays


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("act.0.Q.hook_out", r"not an update name: 'Q'"),
        ("act.0.L5_0.hook_out", r"update 'L5_0' is not in this model's schedule \['L0_0', 'L0_1', 'H0', 'L1_0', 'L1_1', 'H1'\]"),
        ("act.0.H0.blocks.7.hook_resid_pre", r"layer 7 does not exist \(the stack has blocks 0..1\)"),
        ("act.0.H0.blocks.0.hook_nope", r"unknown block site 'hook_nope'; block sites are hook_resid_pre, attn.hook_q"),
        ("act.0.hook_zQ", r"ACT-step sites are hook_zL, hook_zH"),
        ("hook_g_input", r"only the gx_linear / gx_non_linear variants"),
        ("blocks.0.hook_resid_pre", r"forward sites are hook_embed"),
    ],
)
def test_bad_hook_names_are_explained(name, message):
    model = make_model()
    before = _tree_size(model)
    with pytest.raises(ValueError, match=message):
        model.hook_point(name)
    with pytest.raises(ValueError, match=message):
        model.run_with_hooks(make_tokens(), fwd_hooks=[(name, lambda x, hook: None)])
    with pytest.raises(ValueError, match=message):
        model.run_with_cache(make_tokens(), names_filter=["act.0.hook_zH", name])
    assert _tree_size(model) == before


def test_malformed_hook_lists_are_explained():
    model = make_model()
    with pytest.raises(ValueError, match="expected \\(name, hook function\\) pairs"):
        model.run_with_hooks(make_tokens(), fwd_hooks=["act.0.hook_zH"])
    with pytest.raises(ValueError, match="names_filter must be None, a hook name"):
        model.run_with_cache(make_tokens(), names_filter=3)


@pytest.mark.parametrize("variant", ["Lx_H", "L2x_H2x_input_token_prepend", "L2x_H2x_input_token_prepend_no_strip"])
def test_unembed_decodes_states_as_the_model_does(variant):
    model = make_model(variant=variant)
    tokens = make_tokens()
    logits, cache = model.run_with_cache(tokens, names_filter=["act.2.hook_zH", "act.2.H1.blocks.1.hook_resid_post"])
    assert torch.equal(model.unembed(cache["act.2.hook_zH"]), logits)
    assert torch.equal(model.decode(cache["act.2.H1.blocks.1.hook_resid_post"]), logits.argmax(-1))
    with pytest.raises(ValueError, match=r"unembed: expected a state \[..., pos >= 16, 32\]"):
        model.unembed(torch.zeros(2, 16, 7))


def test_the_call_shapes_of_transformerlens_tools():
    """SAELens-style calls: stop_at_layer from the first integer of a hook name + 1 (the ACT step in
    our names) runs exactly through that step and caches the same values as a full rollout;
    prepend_bos=False and padding_side=None are accepted; the rest fails in one line naming it."""
    import re

    import pytest
    import torch

    from airinterp.errors import InputError
    from tests.helpers import make_model

    model = make_model()
    tokens = torch.randint(1, model.config.vocab_size, (2, model.config.seq_len))
    hook = "act.1.H0.blocks.1.hook_resid_post"
    stop = int(re.search(r"\d+", hook).group()) + 1  # SAELens: extract_layer_from_hook_name(hook) + 1
    _, full = model.run_with_cache(tokens, names_filter=[hook])
    seen = []
    model.add_hook("act.2.hook_zH", lambda z, hook: seen.append(hook.name))
    try:
        out, cache = model.run_with_cache(tokens, names_filter=[hook], stop_at_layer=stop, prepend_bos=False, padding_side=None)
    finally:
        model.reset_hooks()
    assert torch.equal(cache[hook], full[hook]) and seen == []  # ACT step 2 never ran
    assert torch.equal(out, model(tokens, n_act=stop))
    beyond = model.config.halt_max_steps + 1  # predicates reach steps beyond the built ones under stop_at_layer too
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == f"act.{beyond - 1}.hook_zH", stop_at_layer=beyond)
    assert list(cache.keys()) == [f"act.{beyond - 1}.hook_zH"]
    for kwargs, needle in [({"stop_at_layer": 0}, "stop_at_layer 0"), ({"stop_at_layer": 2, "n_act": 3}, "give one"),
                           ({"prepend_bos": True}, "no BOS"), ({"padding_side": "left"}, "padding_side 'left'"),
                           ({"loss_per_token": True}, "loss_per_token: not an argument")]:  # fmt: skip
        with pytest.raises(InputError, match=needle) as err:
            model.run_with_cache(tokens, names_filter=[hook], **kwargs)
        assert "\n" not in str(err.value)
