"""Attention locality: metrics on hand-made maps, query classes, streamed == full cache."""

import math

import numpy as np
import pytest
import torch

from airinterp.analysis.attention import query_classes, query_metrics, run_attention, violation_set
from airinterp.analysis.run import puzzle_batches
from airinterp.errors import InputError
from airinterp.model import select
from airinterp.tasks.dataset import PuzzleDataset
from airinterp.tasks.rules import rules_for
from tests.helpers import make_dataset, make_model

# a 4x4 Sudoku (2x2 boxes) decoded grid: digits 1..4 as ids 2..5, cell 1 duplicates cell 0's digit
GRID = np.array([2, 2, 4, 5,  4, 5, 2, 3,  3, 4, 5, 2,  5, 3, 3, 4])  # fmt: skip
C = 16


def one_hot(q, j, n=C, prefix=0):
    m = np.full((n + prefix, n + prefix), 1.0 / (n + prefix))
    m[prefix + q] = 0
    m[prefix + q, prefix + j] = 1.0
    return m


def test_uniform_map():
    r = query_metrics("sudoku", np.full((C, C), 1 / C), GRID, 5)
    assert r["nbr_mass"] == pytest.approx(7 / 16) and r["nbr_mass_incl_self"] == pytest.approx(8 / 16)
    assert r["entropy"] == pytest.approx(1.0) and r["prefix_mass"] == 0.0


def test_one_hot_on_a_peer_on_the_query_and_on_a_violating_cell():
    v = violation_set(rules_for("sudoku", C), torch.from_numpy(GRID))
    violated = set(torch.nonzero(v).flatten().tolist())
    assert {0, 1} <= violated  # row 0 holds digit 1 twice
    r = query_metrics("sudoku", one_hot(5, 1), GRID, 5)  # 1 is a peer of 5 (same column) and violated
    assert r["nbr_mass"] == pytest.approx(1) and r["entropy"] == pytest.approx(0, abs=1e-7)
    assert r["viol_mass"] == pytest.approx(1) and r["viol_mass_board"] == pytest.approx(1)
    assert r["query_class"] == "violation-adjacent"
    r = query_metrics("sudoku", one_hot(5, 5), GRID, 5)
    assert r["nbr_mass"] == 0 and r["nbr_mass_incl_self"] == pytest.approx(1)
    assert 5 not in violated and r["viol_mass_incl_self"] == 0  # the query attends to itself, and it is no violation
    r = query_metrics("sudoku", one_hot(1, 1), GRID, 1)  # cell 1 is violated and attends to itself only
    assert r["viol_mass"] == 0 and r["viol_mass_incl_self"] == pytest.approx(1)
    far = next(j for j in sorted(violated) if j not in (4, 6, 7, 1, 9, 13, 0))  # a violated non-peer of 5
    r = query_metrics("sudoku", one_hot(5, far), GRID, 5)
    assert r["viol_mass"] == 0 and r["viol_mass_board"] == pytest.approx(1) and r["nbr_mass"] == 0


def test_prefix_mass_is_reported_and_discarded():
    m = np.zeros((C + 1, C + 1))
    m[1 + 5, 0] = 0.5  # the prefix key
    m[1 + 5, 1 + 4] = 0.5  # a peer (same row)
    r = query_metrics("sudoku", m, GRID, 5)
    assert r["prefix_mass"] == pytest.approx(0.5) and r["nbr_mass"] == pytest.approx(1.0)


def test_maze_metrics_and_classes():
    # 4x4 maze: labels with a path down column 1; decoded wrong at cell 9
    labels = np.array([1, 3, 1, 1,  1, 5, 1, 1,  1, 5, 2, 1,  1, 4, 1, 1])  # fmt: skip
    decoded = labels.copy()
    decoded[9] = 2
    r = query_metrics("maze", one_hot(5, 9), decoded, 5, labels)
    assert r["query_class"] == "error-adjacent"
    assert r["nbr_mass"] == pytest.approx(1) and r["viol_mass"] == pytest.approx(1)
    assert r["density_n4"] == pytest.approx(1 / 4) and r["density_n4_nominal"] == pytest.approx(1 / 4)
    r0 = query_metrics("maze", one_hot(0, 1), decoded, 0, labels)  # a corner: 2 actual 4-neighbours
    assert r0["density_n4"] == pytest.approx(1 / 2) and r0["density_n4_nominal"] == pytest.approx(1 / 4)
    assert r0["query_class"] == "control"
    assert query_metrics("maze", one_hot(5, 10), decoded, 5, labels)["mass_n8"] == pytest.approx(1)
    with pytest.raises(ValueError, match="outside the grid"):
        query_metrics("maze", one_hot(5, 9), decoded, 16, labels)


def test_query_classes_on_a_grid():
    rules = rules_for("sudoku", C)
    cls = query_classes(rules, violation_set(rules, torch.from_numpy(GRID)))
    v = violation_set(rules, torch.from_numpy(GRID))
    for q in range(C):
        peers = rules.neighbourhood()[q]
        assert bool(cls[q]) == bool((peers & v).any())


def _oracle(model, ds, idx, steps, rules):
    """Per (puzzle, layer, class, metric) head-average means from a full run_with_cache."""
    out = {}
    lu, hu = "L0_0", "H0"
    for batch in puzzle_batches(model, ds, idx, len(idx)):
        names = select(act=steps, update=[lu, hu], site="attn.hook_pattern")
        _, cache = model.run_with_cache(batch.inputs, n_act=max(steps) + 1, names_filter=lambda n: names(n) or n.endswith("hook_zH") or n == "hook_zH_init")
        for b, p in enumerate(batch.indices):
            queries = (batch.inputs[b] == 1) if rules.name == "sudoku" else torch.from_numpy(batch.labels[b] == 5)
            acc = {}
            for a in steps:
                zh = cache[model.state_site("zH", before=f"act.{a}.{lu}")][b : b + 1]
                dec = model.decode(zh)[0]
                for layer in range(model.config.L_layers):
                    for q in torch.nonzero(queries).flatten().tolist():
                        per = {}
                        for u in (lu, hu):
                            pat = cache[f"act.{a}.{u}.blocks.{layer}.attn.hook_pattern"][b]
                            per[u] = [query_metrics(rules.name, pat[h], dec, q, batch.labels[b]) for h in range(pat.shape[0])]
                        cls = per[lu][0]["query_class"]
                        for m in ("nbr_mass", "entropy", "viol_mass", "prefix_mass"):
                            sgn = -1 if m == "entropy" else 1
                            d = np.mean([sgn * (x[m] - y[m]) for x, y in zip(per[lu], per[hu], strict=True)])
                            acc.setdefault((layer, cls, m), []).append(d)
            for k, v in acc.items():
                out[(int(p), *k)] = float(np.mean(v))
    return out


@pytest.mark.parametrize(("task", "variant"), [("sudoku", "Lx_H"), ("maze", "Lx_H"), ("sudoku", "L2x_H2x_input_token_prepend")])
def test_streamed_equals_full_cache(tmp_path, task, variant):
    vocab = 11 if task == "sudoku" else 6
    model = make_model(vocab_size=vocab, variant=variant)
    ds = PuzzleDataset(make_dataset(tmp_path / "d", n_train=2, n_test=5, vocab=vocab), "test")
    idx = np.arange(5)
    steps = [1, 2]
    res = run_attention(model, ds, idx, steps=steps, batch_size=2, seed=0)
    want = _oracle(model, ds, idx, steps, rules_for(task, 16))
    got = res.puzzles.set_index(["puzzle", "layer", "class", "metric"])["delta"]
    assert len(want) > 0
    for key, value in want.items():
        assert got.loc[key] == pytest.approx(value, abs=1e-5), key


def test_cis_deterministic_given_the_seed(tiny_data):
    model = make_model()
    a = run_attention(model, tiny_data, np.arange(10), steps=[1, 2], batch_size=4, seed=5).summary
    b = run_attention(model, tiny_data, np.arange(10), steps=[1, 2], batch_size=10, seed=5).summary
    cols = ["delta_mean", "ci_low", "ci_high"]
    head = (a.method == "head_mean").to_numpy()
    np.testing.assert_allclose(a.loc[head, cols].to_numpy(float), b.loc[head, cols].to_numpy(float), rtol=1e-9, equal_nan=True)
    with pytest.raises(ValueError, match="ACT steps must lie"):
        run_attention(model, tiny_data, np.arange(4), steps=[3])
    assert math.isfinite(a.loc[head, "delta_mean"].dropna().iloc[0])


def test_example_rows_are_the_raw_pattern_and_persistence(tiny_data):
    from airinterp.analysis.attention import attention_example, propose_examples

    model = make_model()
    batch = next(puzzle_batches(model, tiny_data, np.array([3]), 1))
    ex = attention_example(model, batch, 5, layer=1, head=1, steps=[1, 2], top_k=3)
    _, cache = model.run_with_cache(batch.inputs, names_filter=select(act=[1, 2], update=["L0_0", "H0"], layer=1, site="attn.hook_pattern"))
    for a in (1, 2):
        for u in ("L0_0", "H0"):
            want = cache[f"act.{a}.{u}.blocks.1.attn.hook_pattern"][0, 1, 1 + 5, 1:].numpy()  # prefix row/col dropped
            got = ex.rows[(ex.rows["step"] == a) & (ex.rows["update"] == u)].sort_values("cell").attention.to_numpy()
            np.testing.assert_allclose(got, want, rtol=1e-6)
    assert len(ex.persistence) == 2 and ex.persistence.overlap.between(0, 1).all()
    assert set(ex.metrics.columns) >= {"nbr_mass", "entropy", "viol_mass", "prefix_mass", "query_class"}
    a = propose_examples(model, tiny_data, np.arange(10), step=1, layer=1, n=2, seed=4)
    b = propose_examples(model, tiny_data, np.arange(10), step=1, layer=1, n=2, seed=4)
    assert a.equals(b) and len(a) == 2
    with pytest.raises(ValueError, match="^layer 5"):
        attention_example(model, batch, 5, layer=5)
    with pytest.raises(ValueError, match="^head 9"):
        attention_example(model, batch, 5, head=9)
    with pytest.raises(ValueError, match="outside the 4x4 grid"):
        attention_example(model, batch, 16)


def test_query_metrics_refuses_what_is_not_an_attention_pattern():
    """Raw scores or an all-zero map were measured as if they were probabilities (issue 22.7)."""
    scores = np.random.default_rng(0).normal(size=(C, C))
    for bad in (scores, np.zeros((C, C)), np.full((C, C), 2.0 / C)):
        with pytest.raises(InputError, match="expected attention probabilities"):
            query_metrics("sudoku", bad, GRID, 5)


def test_query_metrics_takes_a_map_cropped_to_the_cells():
    """A [C, C] crop of a map with a prefix sums to less than 1 per row: still a pattern (renormalised)."""
    m = np.full((C + 1, C + 1), 1.0 / (C + 1))
    r = query_metrics("sudoku", m[1:, 1:], GRID, 5)
    assert r["entropy"] == pytest.approx(1.0)
