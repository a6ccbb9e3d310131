"""Probes and their causal test: a planted feature, the targets on hand-made grids, the ablation
against a hand-made intervention, options."""

import numpy as np
import pandas as pd
import pytest
import torch

from airinterp.analysis.probes import (
    ProbeData,
    _fit_predict,
    ablate,
    check_probes,
    fit_probe,
    orthonormal_span,
    probe_directions,
    random_span,
    run_probes,
    targets_for,
)
from airinterp.errors import InputError
from airinterp.tasks.rules import rules_for
from tests.helpers import make_model


def _planted(n_puzzles=60, cells=10, d=16, classes=4, strength=3.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n_puzzles * cells)
    E = rng.standard_normal((classes, d))
    X = rng.standard_normal((len(y), d)) + strength * E[y]
    return X, y, np.repeat(np.arange(n_puzzles), cells)


def test_a_planted_linear_feature_is_found_and_its_ablation_removes_it():
    X, y, groups = _planted()
    pred, base = _fit_predict(X, y, groups, 5, seed=0)
    assert (pred == y).mean() > 0.97  # held-out puzzles
    ctrl, _ = _fit_predict(X, np.random.default_rng(1).permutation(y), groups, 5, seed=0)
    assert (ctrl == np.random.default_rng(1).permutation(y)).mean() < 0.4  # the permuted control: chance (0.25)
    pipe = fit_probe(X, y)
    q, mu = probe_directions(pipe)
    assert q.shape == (16, 3) and np.allclose(q.T @ q, np.eye(3), atol=1e-8)  # softmax weights: rank classes - 1
    Xa = X - ((X - mu) @ q) @ q.T
    majority = np.bincount(y).max() / len(y)
    assert (pipe.predict(Xa) == y).mean() < majority + 0.1  # the probe's information is gone from its directions
    # ... and nothing else moved: the orthogonal complement is untouched
    perp = np.eye(16) - q @ q.T
    np.testing.assert_allclose(Xa @ perp, X @ perp, atol=1e-10)
    # a random subspace of the same rank leaves the probe working
    r = random_span(16, 3, 0, 1)
    assert (pipe.predict(X - ((X - mu) @ r) @ r.T) == y).mean() > 0.5


def test_a_softmax_probes_span_ignores_what_its_rows_share():
    """Adding one vector to every class's weights changes no prediction of a softmax probe, so it
    is no direction of the probe: the span keeps rank classes - 1 (an unconverged solver leaves
    such a shared part, and it was counted as one more direction to ablate)."""
    X, y, _ = _planted()
    pipe = fit_probe(X, y)
    before = pipe.predict(X)
    lr = pipe[-1]
    lr.coef_ = lr.coef_ + 0.05 * np.random.default_rng(3).standard_normal(lr.coef_.shape[1])
    assert (pipe.predict(X) == before).all()
    q, mu = probe_directions(pipe)
    assert q.shape == (16, 3)
    assert len(set(pipe.predict(X - ((X - mu) @ q) @ q.T))) == 1  # the probe's whole decision is in the span


def test_ablate_is_the_projection_onto_the_complement():
    g = torch.Generator().manual_seed(0)
    x, mean = torch.randn(3, 5, 8, generator=g), torch.randn(8, generator=g)
    q = torch.from_numpy(orthonormal_span(np.random.default_rng(0).standard_normal((2, 8)))).float()
    out = ablate(x, q, mean)
    torch.testing.assert_close((out - mean) @ q, torch.zeros(3, 5, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(out @ (torch.eye(8) - q @ q.T), x @ (torch.eye(8) - q @ q.T), atol=1e-5, rtol=0)
    assert orthonormal_span(np.array([[1.0, 0, 0], [2.0, 0, 0]])).shape == (3, 1)  # rank, not row count


def test_targets_on_a_hand_made_grid():
    """4x4 Sudoku (digit tokens 2..5 for 1..4, blank 1): puzzle 0, two non-given cells."""
    rules = rules_for("sudoku", 16)
    inputs = np.full((1, 16), 1)
    inputs[0, [1, 4, 5]] = [3, 4, 5]  # givens: cell 1 = digit 2, cell 4 = 3, cell 5 = 4
    K = 6  # one answer-state write per three sub-steps
    prop = np.full((1, K, 16), 2)  # the proposal: digit 1 everywhere ...
    prop[0, 3:, 0] = 5  # ... cell 0 changes to 4 at sub-step 3
    samples = pd.DataFrame({"puzzle": [7, 7], "row": [0, 0], "cell": [0, 2], "label": [5, 2]})
    data = ProbeData(samples=samples, features={}, proposals=prop, inputs=inputs)
    t = data.targets(rules, 1)
    assert list(t["solution"]) == [5, 2] and list(t["undecided"]) == [1, 0]  # cell 0 still moves after sub-step 1
    assert list(data.targets(rules, 3)["undecided"]) == [0, 0]
    # cell 0 (row 0, box 0): peers hold given 2 (cell 1), 3 (cell 4), 4 (cell 5) and the proposal's 1 elsewhere
    assert [t[f"candidate_{v}"][0] for v in range(1, 5)] == [0, 0, 0, 0]
    # cell 2 (row 0, box 1): peers cell 1 = 2 (given), cells 0, 3, ... propose 1 -> 3 and 4 allowed
    assert [t[f"candidate_{v}"][1] for v in range(1, 5)] == [0, 0, 1, 1]
    assert targets_for(rules) == ["solution", "undecided", "candidate_1", "candidate_2", "candidate_3", "candidate_4"]
    assert targets_for(rules_for("maze", 25)) == ["solution", "undecided"]


@torch.no_grad()
def test_causal_ablation_equals_a_hand_made_intervention(tmp_path):
    from airinterp.tasks.dataset import PuzzleDataset, write_split

    model = make_model()
    rules = rules_for("sudoku", 16)
    rng = np.random.default_rng(0)  # 4x4 grids of digit tokens (2..5), half of the cells blank (1)
    tokens = torch.from_numpy(np.where(rng.random((6, 16)) < 0.5, 1, rng.integers(2, 6, (6, 16))).astype(np.int64))
    # labels: the model's own clean output, so that any change the ablation makes shows as an error
    labels = model(tokens, n_act=3).argmax(-1).numpy()
    write_split(tmp_path, "test", tokens.numpy().astype(np.uint8), labels.astype(np.uint8), [1] * 6, 11)
    ds = PuzzleDataset(tmp_path, "test")
    idx = np.arange(6)
    res = run_probes(model, ds, idx, rules, acts=[1], targets=["solution"], ablate_acts=[2], folds=2, batch_size=4, seed=5)
    assert set(res.accuracy.substep) == set(range(6, 12)) and (res.accuracy.target == "solution").all()
    k = 2 * 6 + 1  # act.2.L0_1
    row = res.causal[(res.causal.substep == k) & (res.causal.arm == "random")].iloc[0]
    # by hand: the features at that update (the non-given cells, puzzle-major), a random basis of the row's rank
    free = ~rules.given_mask(tokens.numpy()) & (labels >= 0)
    assert free.sum(1).min() > 0
    _, cache = model.run_with_cache(tokens, n_act=3, names_filter=lambda n: n == "act.2.L0_1.hook_out")
    X = cache["act.2.L0_1.hook_out"][:, -16:].numpy()[free]
    q = torch.from_numpy(random_span(32, int(row["rank"]), 5, k, 0)).float()
    mu = torch.from_numpy(X.mean(0)).float()
    ft = torch.from_numpy(free)

    def hit(x, hook):
        x = x.clone()
        x[:, -16:] = torch.where(ft[..., None], ablate(x[:, -16:], q, mu), x[:, -16:])
        return x

    out = model.run_with_hooks(tokens, n_act=3, fwd_hooks=[("act.2.L0_1.hook_out", hit)]).argmax(-1).numpy()
    ng = ((out == labels) & free).sum(1) / free.sum(1)
    assert ng.min() < 1  # the ablation changed some output cells
    mine = res.causal_puzzles[(res.causal_puzzles.substep == k) & (res.causal_puzzles.arm == "random")].set_index("puzzle").loc[idx]
    np.testing.assert_allclose(mine.output_nongiven_ablated.to_numpy(), ng)
    assert row.output_nongiven_ablated == pytest.approx(ng.mean())


def test_probe_options_are_checked(tiny_data):
    model = make_model()  # halt_max_steps 3
    rules = rules_for("sudoku", 16)
    assert check_probes(model, rules, 10, acts=None, targets=None, ablate_acts=None, folds=5) == ([0, 1, 2], targets_for(rules), [1, 2])
    assert check_probes(model, rules, 10, acts="2,0", targets="solution", ablate_acts="", folds=2)[::2] == ([0, 2], [])
    for kw, needle in ((dict(acts="3"), "acts '3'"), (dict(acts="a"), "acts 'a'"), (dict(targets="digits"), "targets 'digits'"),
                       (dict(targets="candidate_5"), "candidate_5"), (dict(ablate_acts="5"), "ablate_acts '5'"),
                       (dict(folds=1), "folds 1"), (dict(folds=11), "n_puzzles >= 11")):  # fmt: skip
        args = dict(acts=None, targets=None, ablate_acts=None, folds=5) | kw
        with pytest.raises(InputError, match=needle):
            check_probes(model, rules, 10, **args)
