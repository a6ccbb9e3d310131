"""Interventions that would silently do nothing are errors (issue 22.6)."""

import numpy as np
import pytest
import torch

from airinterp.analysis.freeze import freeze_hooks
from airinterp.analysis.run import Hooks, puzzle_batches, rollout
from airinterp.errors import InputError
from tests.helpers import make_dataset, make_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from airinterp.tasks.dataset import PuzzleDataset

    return make_model(), PuzzleDataset(make_dataset(tmp_path_factory.mktemp("d") / "d"), "test")


def test_hooks_from_a_generator_apply_to_every_batch(setup):
    model, ds = setup
    seen = []
    iv = Hooks((name, lambda x, hook: seen.append(hook.name)) for name in ["act.0.H0.hook_out"])  # a generator
    for batch in puzzle_batches(model, ds, np.arange(4), 2):
        rollout(model, batch, n_act=1, interventions=[iv])
    assert len(seen) == 2  # was 1: the generator was spent by the first batch


def test_a_hook_beyond_the_rollout_is_refused(setup):
    model, ds = setup
    batch = next(puzzle_batches(model, ds, np.arange(2), 2))
    with pytest.raises(InputError, match=r"hook act.2.H0.hook_out: ACT step 2 is beyond the rollout's 2 steps"):
        rollout(model, batch, n_act=2, interventions=[Hooks([("act.2.H0.hook_out", lambda x, hook: torch.zeros_like(x))])])


def test_freezing_a_state_at_the_other_states_updates_is_refused(setup):
    model, _ = setup
    with pytest.raises(InputError, match=r"updates \['L0_0'\] write the other state, not zH"):
        freeze_hooks(model, "zH", updates=["L0_0"])
    assert freeze_hooks(model, "zH", updates=["H0"])  # the state's own update: fine


def test_an_example_on_a_cell_that_is_no_query_says_so(setup):
    """attention-example --cell on a given reported it under a query class (issue 22.6)."""
    from airinterp.analysis.attention_example import attention_example
    from airinterp.analysis.run import tokens_batch
    from airinterp.tasks.rules import rules_for

    model, _ = setup
    rules = rules_for("sudoku", 16)
    tokens = torch.full((1, 16), rules.blank, dtype=torch.long)
    tokens[0, :8] = torch.tensor([2, 3, 4, 5, 4, 5, 2, 3])  # the top half given
    batch = tokens_batch(model, tokens, labels=np.full((1, 16), 2))
    given, blank = 0, 12
    ex = attention_example(model, batch, given, layer=0, head=0, steps=[1])
    assert set(ex.metrics.query_class) == {"not a query cell"}
    ex = attention_example(model, batch, blank, layer=0, head=0, steps=[1])
    assert set(ex.metrics.query_class) <= {"violation-adjacent", "control"}
