"""Causal locality of writes: geometry, query cells, and the change against a hand-made patch."""

import numpy as np
import pytest
import torch

from airinterp.analysis.run import sample_puzzles
from airinterp.analysis.write_locality import geometry_classes, query_cells, run_write_locality
from airinterp.errors import InputError
from airinterp.model import select
from airinterp.tasks.rules import rules_for
from tests.helpers import make_model


def test_geometry_classes_partition_the_grid():
    for task, n, sizes in (("sudoku", 16, {"self": 1, "peers": 7, "elsewhere": 8}),
                           ("maze", 25, None)):  # fmt: skip
        cls = geometry_classes(rules_for(task, n))
        total = sum(m.astype(int) for m in cls.values())
        assert (total == 1).all()  # disjoint, and every cell in one class
        if sizes:
            assert {k: int(v[0].sum()) for k, v in cls.items()} == sizes
    maze = geometry_classes(rules_for("maze", 25))
    centre = 12  # row 2, col 2 of 5x5
    assert maze["N4"][centre].sum() == 4 and maze["N8 diagonal"][centre].sum() == 4 and maze["elsewhere"][centre].sum() == 16


def test_query_cells_are_seeded_non_given_and_batch_independent():
    free = np.array([[False, True, True, False], [False] * 4, [True] * 4])
    q = query_cells(free, np.array([5, 6, 7]), seed=0)
    assert free[0, q[0]] and q[1] == -1 and 0 <= q[2] < 4
    assert (query_cells(free[[2]], np.array([7]), seed=0) == q[2]).all()


@pytest.mark.parametrize("variant", ["Lx_H", "L2x_H2x_input_token_prepend"])
def test_change_equals_a_hand_made_patch(tiny_data, variant):
    model = make_model(variant=variant)
    rules = rules_for("sudoku", 16)
    idx = sample_puzzles(tiny_data.n_examples, 4, seed=0)
    res = run_write_locality(model, tiny_data, idx, rules, act=1, source="other", batch_size=4, seed=3)
    first = res.puzzles[(res.puzzles.target == "H0") & (res.puzzles.offset == 1)]
    # by hand: the same donors (a cycle through the seeded order), the value at each puzzle's query cell
    tokens = torch.from_numpy(np.asarray(tiny_data.data["inputs"][idx], np.int64))
    q = query_cells(~rules.given_mask(tokens.numpy()), idx, seed=3)
    ok = torch.from_numpy(q >= 0)
    assert ok.any() and set(first.puzzle) == set(idx[q >= 0])
    q = np.where(q >= 0, q, 0)
    order = np.random.default_rng([3, int(idx[0]), 11]).permutation(4)
    donor = np.empty(4, np.int64)
    donor[order] = order[np.r_[1:4, 0]]

    def patch(x, hook):
        x = x.clone()
        pos = x.shape[1] - 16 + torch.from_numpy(q)
        x[torch.arange(4), pos] = torch.where(ok[:, None], x[torch.from_numpy(donor), pos], x[torch.arange(4), pos])
        return x

    names = select(site="hook_out", act=1, update="L1_0")
    with torch.no_grad():
        _, clean = model.run_with_cache(tokens, n_act=3, names_filter=names)
        with model.hooks(fwd_hooks=[("act.1.H0.hook_out", patch)]):
            _, pert = model.run_with_cache(tokens, n_act=3, names_filter=names)
    a, b = clean["act.1.L1_0.hook_out"][:, -16:], pert["act.1.L1_0.hook_out"][:, -16:]
    change = ((b - a).norm(dim=-1) / a.norm(dim=-1)).numpy()
    cls = geometry_classes(rules)
    for i, p in enumerate(idx):
        if not ok[i]:
            continue
        rows = first[first.puzzle == p].set_index("class")
        assert rows.loc["self", "reader"] == "act.1.L1_0"
        for name, mask in cls.items():
            assert rows.loc[name, "change"] == pytest.approx(change[i][mask[q[i]]].mean(), rel=1e-4), (p, name)


def test_summaries_and_bad_options(tiny_data):
    model = make_model()
    rules = rules_for("sudoku", 16)
    idx = sample_puzzles(tiny_data.n_examples, 6, seed=0)
    res = run_write_locality(model, tiny_data, idx, rules, act=1, noise=0.5, batch_size=4, seed=0)
    assert len(res.locality) == model.config.n_updates and set(res.locality.reader_stage) == {"L", "H"}
    assert res.contrast.loc[0, "L_target"] == "L0_0" and res.contrast.loc[0, "H_target"] == "L0_1"
    again = run_write_locality(model, tiny_data, idx, rules, act=1, noise=0.5, batch_size=6, seed=0)
    assert np.allclose(res.puzzles.sort_values(list(res.puzzles.columns[:8])).change.to_numpy(),
                       again.puzzles.sort_values(list(again.puzzles.columns[:8])).change.to_numpy(), rtol=1e-4)  # fmt: skip
    for kwargs, needle in (({"source": "x"}, "source 'x'"), ({"noise": 0.0}, "noise 0.0"), ({"act": 3}, "act 3"),
                           ({"window": 0}, "window 0")):  # fmt: skip
        with pytest.raises(InputError, match=needle):
            run_write_locality(model, tiny_data, idx, rules, **kwargs)


def test_figures_take_a_trm_schedule(tiny_data):
    """TRM's 3 H-cycles x (6 L-updates + 1) = 21 perturbed updates: 7 rows of panels (the first
    spacing refused more than 5)."""
    from airinterp.report import figures

    model = make_model(family="trm", H_cycles=3, L_cycles=6, halt_max_steps=2)
    res = run_write_locality(model, tiny_data, sample_puzzles(tiny_data.n_examples, 3, seed=0), rules_for("sudoku", 16),
                             act=1, window=2, batch_size=3)  # fmt: skip
    assert len(res.locality) == 21
    fig = figures.write_locality_lines(res.summary, "t")
    assert len({t.xaxis for t in fig.data}) == 21
    figures.locality_bars(res.locality, "t")
