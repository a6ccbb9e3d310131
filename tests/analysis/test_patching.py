"""Patching across sub-steps."""

import numpy as np
import pytest

from airinterp.analysis.patching import run_patch, site_targets, state_targets
from tests.helpers import make_model


def test_patching_a_puzzle_with_its_own_value_changes_nothing_bitwise(tiny_data):
    model = make_model()
    idx = np.arange(6)
    for t in state_targets(model, "zL", [2]) + state_targets(model, "zH", [1], update="H0") + site_targets(model, "L0_1.blocks.1.hook_resid_post", [1]):
        res = run_patch(model, tiny_data, idx, [t], source=t.act, batch_size=3)
        p = res.puzzles
        assert (p.output_cells_changed == 0).all(), t.label
        assert (p.zL_content_changes_clean == p.zL_content_changes_patched).all()
        assert (p.zH_content_changes_clean == p.zH_content_changes_patched).all()
        assert (p.donor == p.puzzle).all()


def test_patching_from_another_puzzle(tiny_data):
    model = make_model()
    idx = np.arange(8)
    targets = state_targets(model, "zH", [0, 1, 2])
    assert [t.site for t in targets] == ["hook_zH_init", "act.0.hook_zH", "act.1.hook_zH"]
    res = run_patch(model, tiny_data, idx, targets, batch_size=4, seed=1)
    p = res.puzzles
    assert (p.donor != p.puzzle).all()  # a derangement inside each batch
    assert (p.donor // 4 == p.puzzle // 4).all()
    # step 0 reads the init state, the same for every puzzle: nothing changes
    assert (p[p.act == 0].output_cells_changed == 0).all()
    assert p[p.act == 2].output_cells_changed.sum() > 0
    again = run_patch(model, tiny_data, idx, targets, batch_size=4, seed=1)
    assert again.summary.equals(res.summary)
    assert len(res.summary) == 3 and {"exact_delta", "exact_delta_ci_low", "zL_content_changes_delta"} <= set(res.summary.columns)


def test_bad_targets(tiny_data):
    model = make_model()
    with pytest.raises(ValueError, match="outside the rollout"):
        run_patch(model, tiny_data, np.arange(4), state_targets(model, "zL", [5]))
    with pytest.raises(ValueError, match="ACT step"):
        run_patch(model, tiny_data, np.arange(4), state_targets(model, "zL", [1]), source=7)
    with pytest.raises(ValueError, match="schedule"):
        state_targets(model, "zL", [1], update="L2_0")
    with pytest.raises(ValueError, match="update site"):
        site_targets(model, "hook_zH", [1])


def test_own_value_patch_is_bitwise_on_the_states():
    """The hook-level statement behind run_patch's self-patch: replacing a state with the same
    puzzle's own cached value leaves every later state bitwise equal."""
    import torch

    from tests.helpers import make_tokens

    model = make_model()
    tokens = make_tokens(batch=3)
    clean, cache = model.run_with_cache(tokens, return_type="output", names_filter=["act.1.hook_zL", "act.1.hook_zH"])
    for site in ("act.1.hook_zL", "act.1.hook_zH"):
        value = cache[site].clone()
        out = model.run_with_hooks(tokens, return_type="output", fwd_hooks=[(site, lambda x, hook, v=value: v)])
        assert torch.equal(out.carry.z_L, clean.carry.z_L) and torch.equal(out.carry.z_H, clean.carry.z_H)
        assert torch.equal(out.logits, clean.logits)
