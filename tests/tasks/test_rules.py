"""Task rules: the batched torch versions agree with the numpy oracles of tasks/."""

import numpy as np
import pytest
import torch

from airinterp.tasks import maze, sudoku
from airinterp.tasks.rules import rules_for


def test_sudoku_violations_and_peers_match_the_numpy_oracle():
    rules = rules_for("sudoku", 36)
    spec = sudoku.SudokuSpec.for_cells(36)
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 7, (20, 6, 6))
    tokens = np.where(digits > 0, digits + 1, 1)
    tokens[0, 0, 0] = 0  # a PAD never violates
    got = rules.violations(torch.from_numpy(tokens.reshape(20, 36))).numpy()
    want = sudoku.violations(np.where(tokens >= 2, tokens - 1, 0), spec).reshape(20, 36)
    assert (got == want).all()
    peers = rules.neighbourhood()
    for q in (0, 17, 35):
        assert sorted(torch.nonzero(peers[q]).flatten().tolist()) == sudoku.neighbourhood(q, spec).tolist()
    assert rules.neighbourhood(include_self=True)[5, 5]


@pytest.mark.parametrize(("kind", "diagonal", "n"), [("N4", False, 4), ("N8", True, 8)])
def test_maze_neighbourhoods(kind, diagonal, n):
    rules = rules_for("maze", 100)
    m = rules.neighbourhood(kind)
    assert m.sum(1)[55] == n and m.sum(1)[0] == (2 if kind == "N4" else 3)  # border cells have fewer
    one = np.zeros((10, 10), bool)
    one[5, 5] = True
    assert (m[55].reshape(10, 10).numpy() == maze.adjacent(one, diagonal=diagonal)).all()
    assert rules.neighbourhood("5x5").sum(1)[55] == 24


def test_mask_tokens_and_givens():
    s, m = rules_for("sudoku", 81), rules_for("maze", 900)
    assert s.mask_tokens("reference") == (1,) and s.mask_tokens("harmonized") == (0, 1)
    assert m.mask_tokens("reference") == (5,) and m.mask_tokens("harmonized") == (0,)
    assert s.given_mask(np.array([1, 2, 10])).tolist() == [False, True, True]
    assert m.given_mask(np.array([1, 2, 3, 4])).tolist() == [True, False, True, True]
    with pytest.raises(ValueError, match="unknown task"):
        rules_for("chess", 64)
