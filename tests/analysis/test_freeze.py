"""Freeze interventions and the paired freeze experiment."""

import numpy as np
import pytest
import torch

from airinterp.analysis.decode import DecodeRecorder, record
from airinterp.analysis.freeze import Freeze, run_freeze
from airinterp.analysis.run import puzzle_batches, tokens_batch
from airinterp.model import select
from tests.helpers import make_model, make_tokens


def _cache(model, tokens, freeze, n_act=3):
    with model.hooks(fwd_hooks=freeze.hooks(model)):
        return model.run_with_cache(tokens, n_act=n_act, names_filter=select(site=["hook_out", "hook_zH", "hook_zL"]))


@pytest.mark.parametrize("state", ["zH", "zL"])
def test_a_freeze_holds_at_every_substep_of_every_step(state):
    model = make_model()
    tokens = make_tokens(batch=3)
    _, cache = _cache(model, tokens, Freeze(state), n_act=4)  # one step beyond halt_max_steps too
    init = (model.H_init if state == "zH" else model.L_init).expand(3, model.config.n_pos, -1)
    for a in range(4):
        for u in model.schedule:
            if u.state == state:
                assert torch.equal(cache[f"act.{a}.{u.name}.hook_out"], init), (a, u.name)
        assert torch.equal(cache[f"act.{a}.hook_{state}"], init)


def test_a_freeze_from_a_later_step_changes_nothing_before_it():
    model = make_model()
    tokens = make_tokens(batch=3)
    _, clean = model.run_with_cache(tokens, names_filter=select(site=["hook_out", "hook_zH", "hook_zL"]))
    _, frozen = _cache(model, tokens, Freeze("zH", from_act=2))
    for name, value in clean.items():
        a = int(name.split(".")[1])
        if a < 2:
            assert torch.equal(frozen[name], value), name
    # from step 2 on z_H keeps the value it carried out of step 1
    for h in ("H0", "H1"):
        assert torch.equal(frozen[f"act.2.{h}.hook_out"], clean["act.1.hook_zH"])
    assert not torch.equal(frozen["act.2.hook_zL"], clean["act.2.hook_zL"])


def test_a_one_substep_freeze_touches_only_that_update():
    model = make_model()
    tokens = make_tokens(batch=2)
    _, clean = model.run_with_cache(tokens, names_filter=select(site="hook_out"))
    fr = Freeze("zL", substep=6 + 1)  # act 1, L0_1
    _, frozen = _cache(model, tokens, fr)
    assert torch.equal(frozen["act.1.L0_1.hook_out"], clean["act.1.L0_0.hook_out"])
    for name in ("act.1.L0_0.hook_out", "act.0.H1.hook_out"):
        assert torch.equal(frozen[name], clean[name])
    assert not torch.equal(frozen["act.1.H0.hook_out"], clean["act.1.H0.hook_out"])
    with pytest.raises(ValueError, match="writes zH, not zL"):
        Freeze("zL", substep=2).check(model, 3)
    with pytest.raises(ValueError, match="outside the rollout"):
        Freeze("zL", substep=18).check(model, 3)
    with pytest.raises(ValueError, match="outside the rollout"):
        Freeze("zH", from_act=3).check(model, 3)
    with pytest.raises(ValueError, match="unknown state"):
        Freeze("zX")


def test_recorders_see_the_frozen_rollout():
    model = make_model()
    batch = tokens_batch(model, make_tokens(batch=2))
    rec = DecodeRecorder(model)
    record(model, batch, rec, interventions=[Freeze("zH")])
    const = model.decode(model.H_init.expand(1, model.config.n_pos, -1))[0].numpy()
    assert (rec.batch["zH"] == const).all()


def test_paired_experiment(tiny_data):
    model = make_model()
    idx = np.array([0, 3, 4, 7, 9])
    res = run_freeze(model, tiny_data, idx, Freeze("zL"), batch_size=2, seed=3)
    p = res.puzzles
    assert p.puzzle.tolist() == idx.tolist()  # the same puzzles, in order, in both arms
    # the normal arm is the plain rollout of those puzzles
    for batch in puzzle_batches(model, tiny_data, idx, 5):
        with torch.inference_mode():
            pred = model(batch.inputs, batch.ids).argmax(-1).numpy()
        assert p.output_token_accuracy_normal.tolist() == pytest.approx((pred == batch.labels).mean(1).tolist())
    # Lx_H with z_L frozen: z_H never sees the input, and the experiment says so
    assert res.flags["input_independent"] and res.flags["measured_state"] == "zH"
    assert p.content_changes_frozen.nunique() == 1
    assert not run_freeze(model, tiny_data, idx, Freeze("zH"), batch_size=2, seed=3).flags["input_independent"]
    # deterministic given the seed; another seed moves the bootstrap interval, not the means
    again = run_freeze(model, tiny_data, idx, Freeze("zL"), batch_size=5, seed=3)
    cols = ["base_mean", "treated_mean", "delta_mean", "delta_ci_low", "delta_ci_high", "p_sign_flip"]
    assert again.summary[cols].equals(res.summary[cols])
    other = run_freeze(model, tiny_data, idx, Freeze("zL"), batch_size=2, seed=4).summary
    assert other.delta_mean.equals(res.summary.delta_mean)
    assert "measured_exact_reference" in set(res.summary.metric)


def test_one_puzzle_cannot_show_input_independence(tiny_data):
    res = run_freeze(make_model(), tiny_data, np.array([2]), Freeze("zH"))
    assert res.flags["input_independent"] is None and res.flags["input_independent_note"] == ""
