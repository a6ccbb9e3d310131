"""Two silent bugs found in review (issue 9), each with the test that failed before its fix."""

import pytest
import torch

from airinterp.analysis.freeze import freeze_hooks
from airinterp.model import select
from tests.helpers import make_model, make_tokens


@pytest.mark.parametrize("grad_mode", [torch.inference_mode, torch.no_grad])
def test_an_unmarked_hook_that_only_reads_patterns_leaves_the_rollout_bitwise(grad_mode):
    """Before: under inference_mode an unmarked reader switched every hooked call to pattern @ v
    (max |diff| 1.6e-4 over 3 ACT steps); the pattern now carries a version counter there too."""
    model = make_model()
    tokens = make_tokens()
    base = model(tokens, return_type="output")
    seen = []

    def look(pattern, hook):  # reads, returns None, not marked read_only
        seen.append(float(pattern[0, 0, 0, 0]))

    with grad_mode():
        out = model.run_with_hooks(tokens, fwd_hooks=[(select(site="attn.hook_pattern"), look)], return_type="output")
    assert len(seen) == 3 * 6 * 2
    assert torch.equal(out.logits, base.logits) and torch.equal(out.carry.z_L, base.carry.z_L)


def test_freeze_holds_on_act_steps_beyond_halt_max_steps():
    """Before: hooks were listed for steps 0..halt_max_steps-1 only, so steps 3-4 of a 5-step
    rollout ran unfrozen."""
    model = make_model()  # halt_max_steps = 3
    tokens = make_tokens()
    with model.hooks(fwd_hooks=freeze_hooks(model, "zH")):
        _, cache = model.run_with_cache(tokens, n_act=5, names_filter=select(site="hook_zH", scope="act"))
    init = model.H_init.expand_as(cache["act.0.hook_zH"])
    for a in range(5):
        assert torch.equal(cache[f"act.{a}.hook_zH"], init), a
    # and through run_with_hooks, the reproduction: z_H never leaves H_init
    out = model.run_with_hooks(tokens, n_act=5, fwd_hooks=freeze_hooks(model, "zH"), return_type="output")
    assert torch.equal(out.carry.z_H, init)
    assert not any(name.startswith("act.3") for name in model.hook_dict)  # nothing left behind


def test_a_first_forward_under_inference_mode_does_not_poison_later_gradient_forwards():
    """Found while building the analyses: the RoPE tables cached by a first forward under
    inference_mode were inference tensors, and every later forward with gradients failed."""
    model = make_model()
    with torch.inference_mode():
        model(make_tokens(), n_act=1)
    model.full_grad = True
    out = model(make_tokens(), n_act=1)
    out.sum().backward()
    assert model.lm_head.weight.grad is not None


def test_review_findings_stay_fixed(tmp_path):
    """From the review of issues 9-10: kept predicate hooks still reach later steps, a generator
    of hooks is read once, not lost."""
    model = make_model()
    tokens = make_tokens()
    with model.hooks(fwd_hooks=freeze_hooks(model, "zH"), reset_hooks_end=False):
        pass
    out = model(tokens, n_act=5, return_type="output")
    assert torch.equal(out.carry.z_H, model.H_init.expand_as(out.carry.z_H))  # steps 3-4 frozen too
    model.reset_hooks()
    assert not torch.equal(model(tokens, n_act=5), out.logits)
    seen = []
    gen = ((name, lambda x, hook: seen.append(1)) for name in ["act.0.H0.hook_out"])
    model.run_with_hooks(tokens, fwd_hooks=gen)
    assert seen == [1]
