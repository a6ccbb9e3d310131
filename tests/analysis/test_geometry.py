"""State geometry: participation ratios, the shared PCA basis and perturbation basins, against
numpy / scikit-learn on the cache and hand-made values."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from airinterp.analysis.geometry import (
    GeometryRecorder,
    check_basins,
    participation_ratio,
    run_basins,
    run_geometry,
    untrained_like,
)
from airinterp.analysis.run import Hooks, PuzzleBatch, rollout, sample_puzzles
from airinterp.errors import InputError
from airinterp.model import select
from airinterp.tasks.rules import rules_for
from tests.helpers import make_model, make_tokens


def test_participation_ratio_of_known_spectra():
    rng = np.random.default_rng(0)
    iso = rng.standard_normal((20_000, 32))
    assert 30.5 < participation_ratio(np.cov(iso.T)) <= 32  # isotropic noise: near the dimension
    line = rng.standard_normal((500, 1)) * rng.standard_normal((1, 32))
    assert participation_ratio(np.cov(line.T)) == pytest.approx(1.0)  # one direction
    two = np.diag([1.0, 1.0] + [0.0] * 30)
    assert participation_ratio(two) == pytest.approx(2.0)
    assert np.isnan(participation_ratio(np.zeros((4, 4))))


@pytest.mark.parametrize("overrides", [{}, {"variant": "L2x_H2x_input_token_prepend"}, {"family": "hrm", "H_layers": 3}],
                         ids=["Lx_H", "prepend", "hrm"])  # fmt: skip
@torch.no_grad()
def test_recorder_equals_the_cache(overrides):
    model = make_model(**overrides)
    tokens = make_tokens(batch=5)
    batch = PuzzleBatch(np.arange(5), tokens, np.zeros((5, 16), np.int64), torch.zeros(5, dtype=torch.long))
    rec = GeometryRecorder(model, 3)
    rollout(model, batch, n_act=3, recorders=[rec])
    geo = rec.result()
    _, cache = model.run_with_cache(tokens, n_act=3, names_filter=select(site="hook_out", scope="update"))
    K = 3 * len(model.schedule)
    states = [cache[f"{name}.hook_out"][:, -16:].double().numpy() for name in geo.updates]  # [B, C, d] per sub-step
    assert len(states) == K and geo.puzzle_pr.shape == (5, K)
    for k, x in enumerate(states):
        flat = x.reshape(-1, x.shape[-1])
        assert participation_ratio(geo.covariance([k])) == pytest.approx(participation_ratio(np.cov(flat.T)), rel=1e-9)
        own = [participation_ratio(np.cov(x[b].T)) for b in range(5)]
        np.testing.assert_allclose(geo.puzzle_pr[:, k], own, rtol=1e-6)
        np.testing.assert_allclose(geo.cell_mean[:, k], x.mean(1), rtol=1e-6, atol=1e-9)
    # the shared basis is scikit-learn's PCA of every state's cell vectors of every sub-step
    pooled = np.concatenate([x.reshape(-1, x.shape[-1]) for x in states])
    pca = PCA(n_components=3).fit(pooled)
    comps, ratio = geo.basis(3)
    np.testing.assert_allclose(ratio, pca.explained_variance_ratio_, rtol=1e-6)
    np.testing.assert_allclose(np.abs(comps @ pca.components_.T), np.eye(3), atol=1e-6)
    traj = geo.trajectories(3)
    mine = traj[["pc1", "pc2", "pc3"]].to_numpy().reshape(5, K, 3)
    theirs = np.stack([pca.transform(x.mean(1)) for x in states], axis=1)
    np.testing.assert_allclose(np.abs(mine), np.abs(theirs), rtol=1e-5, atol=1e-8)
    # capture: the share of each sub-step's variance on the basis, in [0, 1]
    cap = geo.capture(3)
    assert ((cap.captured >= 0) & (cap.captured <= 1 + 1e-9)).all() and set(cap.state) == set(model.config.states)


def test_pr_of_an_isotropic_state_is_near_the_dimension(tiny_data):
    """An intervention that makes every update write isotropic Gaussian cell vectors: the PR is
    what a sample covariance of n isotropic vectors in d dimensions has, about n d / (n + d)
    (Marchenko-Pastur): pooled 8 puzzles x 16 cells in d 32, 128 x 32 / 160 = 25.6; per puzzle 15
    degrees of freedom, 15 x 32 / 47 = 10.2 (the dimension itself only as n grows: the first test)."""
    model = make_model()
    gen = torch.Generator().manual_seed(0)

    def noise(x, hook):
        return torch.randn(x.shape, generator=gen)

    rec = GeometryRecorder(model, 3)
    idx = sample_puzzles(tiny_data.n_examples, 8, seed=0)
    from airinterp.analysis.run import puzzle_batches

    for batch in puzzle_batches(model, tiny_data, idx, 8):
        rollout(model, batch, n_act=3, recorders=[rec], interventions=[Hooks([(select(site="hook_out", scope="update"), noise)])])
    pr = rec.result().pr_summary(0)
    np.testing.assert_allclose(pr.pr_pooled, 128 * 32 / 160, rtol=0.1)
    np.testing.assert_allclose(pr.pr_per_puzzle, 15 * 32 / 47, rtol=0.1)


def test_untrained_control_is_a_fresh_seeded_model():
    model = make_model()
    a, b = untrained_like(model, 0), untrained_like(model, 0)
    assert a.config == model.config and not a.training
    sd, sa, sb = model.state_dict(), a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sd[k]) for k in sa)


def test_basins_against_a_hand_made_perturbation(tiny_data):
    model = make_model()
    rules = rules_for("sudoku", 16)
    idx = sample_puzzles(tiny_data.n_examples, 6, seed=0)
    res = run_basins(model, tiny_data, idx, rules, act=1, scales=[1e-7, 0.5, 50.0], batch_size=4, seed=2)
    assert len(res.puzzles) == 6 * 2 * 3 and list(res.summary.scale.unique()) == [1e-7, 0.5, 50.0]
    tiny = res.puzzles[res.puzzles.scale == 1e-7]
    assert tiny.unchanged.all() and (tiny.cells_changed == 0).all()  # far below the model's sensitivity here
    # by hand: zH as carried into ACT step 1 is act.0.hook_zH; the same seeded directions
    from airinterp.analysis.geometry import _directions

    tokens = torch.from_numpy(np.asarray(tiny_data.data["inputs"][idx], np.int64))
    dirs = torch.from_numpy(_directions(idx, "zH", 16, 32, seed=2))

    def push(x, hook):
        x = x.clone()
        x[:, -16:] = x[:, -16:] + 50.0 * x[:, -16:].norm(dim=-1, keepdim=True) * dirs.float()
        return x

    with torch.no_grad():
        clean = model(tokens, n_act=3).argmax(-1)
        pushed = model.run_with_hooks(tokens, n_act=3, fwd_hooks=[("act.0.hook_zH", push)]).argmax(-1)
    big = res.puzzles[(res.puzzles.scale == 50.0) & (res.puzzles.state == "zH")].set_index("puzzle").loc[idx]
    np.testing.assert_array_equal(big.unchanged.to_numpy(), (pushed == clean).all(1).numpy())
    labels = np.asarray(tiny_data.data["labels"][idx])
    free = ~rules.given_mask(tokens.numpy()) & (labels >= 0)
    changed = ((pushed != clean).numpy() & free).sum(1) / np.maximum(1, free.sum(1))
    np.testing.assert_allclose(big.cells_changed.to_numpy(), changed)
    s = res.summary.set_index(["state", "scale"]).loc[("zH", 50.0)]
    assert s.unchanged == pytest.approx(big.unchanged.mean()) and s.unchanged_ci_low <= s.unchanged <= s.unchanged_ci_high


def test_basin_options_are_checked():
    model = make_model()  # halt_max_steps 3
    assert check_basins(model, act=2, scales="0.1, 3") == (0.1, 3.0)
    for act, scales, needle in ((0, [1.0], "act 0"), (3, [1.0], "act 3"), (1, "a,b", "scales 'a,b'"), (1, [-1.0], "scales"),
                                (1, [float("nan")], "scales"), (1, [], "scales"), (True, [1.0], "act True")):  # fmt: skip
        with pytest.raises(InputError, match=needle):
            check_basins(model, act=act, scales=scales)


def test_geometry_result_tables(tiny_data):
    model = make_model()
    idx = sample_puzzles(tiny_data.n_examples, 6, seed=0)
    geo = run_geometry(model, tiny_data, idx, batch_size=4)
    assert geo.puzzle_pr.shape == (6, 3 * 6)
    sp = geo.state_pr(0)
    assert list(sp.state) == ["zL", "zH"] and (sp.last_update == ["act.2.L1_1", "act.2.H1"]).all()
    f = geo.frame()
    assert len(f) == 6 * 18 and {"pc1", "pc2", "pc3", "pr_per_puzzle", "state", "update"} <= set(f.columns)
    assert list(geo.components().component) == [1, 2, 3]
