"""Hook names: Address round trip, catalogue, selectors, distinct per-sub-step caching."""

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from airinterp.model import Address, act_schedule, glob, hook_names, select
from airinterp.model.catalogue import markdown_catalogue
from airinterp.model.hooks import ACT_SITES, BLOCK_SITES, FORWARD_SITES, UPDATE_SITES
from tests.helpers import make_config, make_model, make_tokens

ROOT = Path(__file__).parents[2]


@st.composite
def addresses(draw):
    level = draw(st.sampled_from(["forward", "act", "update", "block"]))
    if level == "forward":
        return Address(site=draw(st.sampled_from(sorted(FORWARD_SITES))))
    act = draw(st.integers(0, 200))
    if level == "act":
        return Address(site=draw(st.sampled_from(sorted(ACT_SITES))), act=act)
    stage = draw(st.sampled_from(["L", "H"]))
    cycle = draw(st.integers(0, 9))
    step = draw(st.integers(0, 9)) if stage == "L" else None
    if level == "update":
        return Address(site=draw(st.sampled_from(sorted(UPDATE_SITES))), act=act, stage=stage, cycle=cycle, step=step)
    return Address(
        site=draw(st.sampled_from(sorted(BLOCK_SITES))), act=act, stage=stage, cycle=cycle, step=step,
        layer=draw(st.integers(0, 31)),
    )  # fmt: skip


@given(addresses())
def test_address_round_trip(addr):
    assert Address.parse(str(addr)) == addr


@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 4))
def test_schedule_length(h, l, n_act):  # noqa: E741
    cfg = make_config(H_cycles=h, L_cycles=l)
    updates = act_schedule(h, l)
    assert len(updates) == h * (l + 1) == cfg.n_updates
    assert [u.grad for u in updates].count(True) == 2  # the last L and the last H update
    assert updates[-1].stage == "H" and updates[-1].grad
    outs = [n for n in hook_names(cfg, n_act) if n.endswith(".hook_out")]
    assert len(outs) == n_act * h * (l + 1)


def test_default_schedule_order():
    assert [u.name for u in act_schedule(2, 2)] == ["L0_0", "L0_1", "H0", "L1_0", "L1_1", "H1"]


def test_examples_from_the_style_guide_parse():
    a = Address.parse("act.7.H1.blocks.3.attn.hook_pattern")
    assert (a.act, a.stage, a.cycle, a.step, a.layer, a.site) == (7, "H", 1, None, 3, "attn.hook_pattern")
    assert a.substep(make_config()) == 6 * 7 + 5
    b = Address.parse("act.0.L0_1.hook_out")
    assert (b.update, b.scope) == ("L0_1", "update")
    assert Address.parse("act.15.hook_zH").scope == "act"
    for bad in ("act.x.H1.hook_out", "act.0.Q1.hook_out", "act.0.H1.blocks.2.hook_nope", "blocks.0.hook_resid_pre"):
        with pytest.raises(ValueError, match="not an airinterp hook name"):
            Address.parse(bad)


def test_golden_cache_order_equals_catalogue():
    """Caching everything yields exactly the schedule-derived names, in firing order."""
    model = make_model()
    _, cache = model.run_with_cache(make_tokens(), n_act=2)
    assert list(cache.cache_dict) == hook_names(model.config, 2)


def test_run_with_cache_distinct_per_substep_and_layer():
    model = make_model()
    _, cache = model.run_with_cache(make_tokens(), n_act=2, names_filter=select(site="hook_resid_post"))
    names = list(cache.cache_dict)
    assert len(names) == 2 * 6 * 2  # act x update x layer
    tensors = [cache[n] for n in names]
    for i in range(len(tensors)):
        for j in range(i + 1, len(tensors)):
            assert not torch.equal(tensors[i], tensors[j]), (names[i], names[j])
    # the last block's output of an update is that update's new state
    _, cache2 = model.run_with_cache(make_tokens(), n_act=2, names_filter=glob("act.1.H0.*"))
    assert torch.equal(cache2["act.1.H0.hook_out"], cache2["act.1.H0.blocks.1.hook_resid_post"])


def test_names_filter_caches_only_what_it_names():
    model = make_model()
    tokens = make_tokens()
    pred = select(stage="H", layer=1, site="attn.hook_pattern")
    _, cache = model.run_with_cache(tokens, n_act=3, names_filter=pred)
    assert sorted(cache.cache_dict) == sorted(f"act.{a}.H{h}.blocks.1.attn.hook_pattern" for a in range(3) for h in range(2))
    _, cache = model.run_with_cache(tokens, n_act=3, names_filter="act.2.hook_zH")
    assert list(cache.cache_dict) == ["act.2.hook_zH"]
    names = ["act.0.L0_0.hook_in", "act.1.H1.blocks.0.mlp.hook_post"]
    _, cache = model.run_with_cache(tokens, n_act=3, names_filter=names)
    assert sorted(cache.cache_dict) == sorted(names)
    assert cache[names[1]].shape == (2, 17, model.config.d_mlp)
    _, cache = model.run_with_cache(tokens, n_act=3, names_filter=glob("act.*.H*.blocks.1.attn.hook_pattern"))
    assert len(cache.cache_dict) == 6


def test_select_on_fields():
    cfg = make_config()
    names = hook_names(cfg, 3)
    assert sum(map(select(act=[0, 2], update="L0_1", site="hook_out"), names)) == 2
    assert sum(map(select(scope="act", site="hook_zL"), names)) == 3
    assert sum(map(select(act=lambda a: a >= 1, stage="L", layer=0, site="attn.hook_z"), names)) == 2 * 4


def test_shapes_match_catalogue():
    model = make_model()
    _, cache = model.run_with_cache(make_tokens(batch=3), n_act=1)
    c = model.config
    dims = {"batch": 3, "pos": c.n_pos, "cell": c.seq_len, "d_model": c.hidden_size, "head": c.num_heads,
            "d_head": c.head_dim, "d_mlp": c.d_mlp, "vocab": c.vocab_size, "pos_q": c.n_pos, "pos_k": c.n_pos}  # fmt: skip
    from airinterp.model import hook_catalogue

    for name, shape in hook_catalogue(c, 1):
        assert tuple(cache[name].shape) == tuple(dims[d] for d in shape.split()), name


def test_docs_hooks_md_is_current():
    assert (ROOT / "docs" / "hooks.md").read_text() == markdown_catalogue()


def test_act_steps_beyond_halt_max_steps_grow_the_tree():
    model = make_model()
    assert model.config.halt_max_steps == 3
    out, cache = model.run_with_cache(make_tokens(), n_act=5, names_filter=select(site="hook_zH", scope="act"))
    assert list(cache.cache_dict) == [f"act.{a}.hook_zH" for a in range(5)]
    torch.testing.assert_close(model.lm_head(cache["act.4.hook_zH"])[:, 1:], out, rtol=0, atol=0)


@given(st.integers(0, 6 * 16 - 1), st.sampled_from(sorted(BLOCK_SITES)), st.integers(0, 1))
def test_coords_round_trip(substep, site, layer):
    cfg = make_config()
    addr = Address.at(cfg, substep, site, layer)
    act, k, stage, lay = addr.coords(cfg)
    assert (k, lay) == (substep, layer) and act == substep // 6
    assert stage == act_schedule(2, 2)[substep % 6].stage
    assert Address.parse(str(addr)) == addr
    with pytest.raises(ValueError):
        Address.at(cfg, substep, "hook_out", layer)  # an update site has no layer
