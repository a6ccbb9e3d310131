"""Sudoku rules, solver, augmentation, importer and builder."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airinterp.tasks import sudoku as S
from airinterp.tasks.sudoku_data import (
    augment,
    generate_puzzle,
    read_collection,
    read_hub_csv,
    select_puzzles,
)
from tests.helpers import DATA, FIXTURES

SPECS = [S.SudokuSpec.parse(n) for n in ("4x4", "6x6", "9x9")]
HARD = DATA / "sudoku" / "puzzles6_forum_hardest_1106.txt"
SERG = DATA / "sudoku" / "puzzles7_serg_benchmark_first200.txt"


@given(st.sampled_from(SPECS), st.data())
def test_text_grid_token_round_trip(spec, data):
    cells = data.draw(st.lists(st.integers(0, spec.side), min_size=spec.n_cells, max_size=spec.n_cells))
    grid = np.array(cells, np.int8).reshape(spec.side, spec.side)
    assert np.array_equal(S.parse(S.to_text(grid), spec), grid)
    assert np.array_equal(S.parse(S.render(grid, spec), spec), grid)
    tokens = S.grid_to_tokens(grid)
    assert tokens.min() >= 1 and tokens.max() <= spec.side + 1
    assert np.array_equal(S.tokens_to_grid(tokens, spec), grid)
    if spec.side == 9:
        assert S.decode(S.encode(S.to_text(grid))) == S.to_text(grid)


def test_bad_puzzle_text():
    with pytest.raises(ValueError, match="has 80 cells, expected 81"):
        S.parse("." * 80)
    with pytest.raises(ValueError, match="character 'x' at cell 3"):
        S.parse("123x" + "." * 77)
    with pytest.raises(ValueError, match="is not '.', '0' or 1-4"):
        S.parse("5" + "." * 15, S.SudokuSpec.parse("4x4"))
    with pytest.raises(ValueError, match="unknown Sudoku size"):
        S.SudokuSpec.parse("5x5")


def test_solver_on_shared_collections():
    grids, bad = read_collection(HARD)
    assert not bad and len(grids) == 375
    n, sols, ratings = S.solve_many(np.stack(grids[:40]))
    assert (n == 1).all()
    for g, s in zip(grids[:40], sols, strict=True):
        assert S.is_solution(s) and ((g == 0) | (g == s)).all()
    assert (ratings > 0).all()
    serg, _ = read_collection(SERG)
    n, _, _ = S.solve_many(np.stack(serg[:40]))
    assert (n == 2).all()  # "several solutions" by design


def test_solver_agrees_with_reference_labels():
    """The fixture puzzles came with answers (labels): the solver finds them."""
    from safetensors.torch import load_file

    t = load_file(str(FIXTURES / "sudoku_default.safetensors"))
    for inputs, labels in zip(t["ref.inputs"].numpy(), t["ref.labels"].numpy(), strict=True):
        q, a = S.tokens_to_grid(inputs), S.tokens_to_grid(labels)
        r = S.solve(q)
        assert r.n_solutions >= 1 and S.is_solution(r.grid) and ((q == 0) | (q == r.grid)).all()
        if r.n_solutions == 1:
            assert np.array_equal(r.grid, a)


def test_solver_edge_cases():
    with pytest.raises(ValueError, match="contradictory givens"):
        S.solve(S.parse("11" + "." * 79))
    # no solution although no given conflicts: cell 0 sees 1-8 in its row and 9 in its column
    no_sol = S.parse(".12345678" + "." * 9 + "9" + "." * 62)
    assert S.solve(no_sol).n_solutions == 0
    assert S.solve(np.zeros((9, 9), np.int8)).n_solutions == 2
    solved = S.solve(S.parse(HARD.read_text().split()[0])).grid
    assert S.solve(solved).n_solutions == 1 and S.solve(solved).guesses == 0


def test_violations_hand_made():
    spec = S.SudokuSpec.parse("4x4")
    g = S.parse("1 2 3 4  3 4 1 2  2 1 4 3  4 3 2 1", spec)
    assert not S.violations(g, spec).any() and S.is_solution(g, spec)
    g = S.parse("1 2 . 1  . . . .  . 1 . .  . . . 2", spec)
    # row 0 has two 1s (cells 0, 3); column 1 has 2 (cell 1) and 1 (cell 9): 1 at 9 clashes with box of
    # cell 0? no (box rows 2-3). Column 3: 1 at 3, 2 at 15. Box 0: 1 at 0 and 2 at 1.
    want = np.zeros(16, bool)
    want[[0, 3]] = True
    assert np.array_equal(S.violations(g, spec).reshape(-1), want)
    g = S.parse("1 . . .  . 1 . .  . . 2 .  . . . 2", spec)  # box 0 has 1 twice, box 3 has 2 twice
    want = np.zeros(16, bool)
    want[[0, 5, 10, 15]] = True
    assert np.array_equal(S.violations(g, spec).reshape(-1), want)
    assert len(S.neighbourhood(0)) == 20 and len(S.neighbourhood(40, include_self=True)) == 21


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(SPECS))
def test_augmented_sudoku_is_valid_and_answer_transforms(seed, spec):
    rng = np.random.default_rng(seed)
    p = generate_puzzle(rng, spec) if spec.side < 9 else None
    if p is None:
        grid = S.parse(HARD.read_text().split()[seed % 375])
        sol = S.solve(grid).grid
    else:
        grid, sol = p.puzzle, p.solution
    t = S.random_transform(rng, spec)
    q, a = t(grid), t(sol)
    assert S.is_solution(a, spec)
    assert ((q == 0) | (q == a)).all() and (q > 0).sum() == (grid > 0).sum()
    r = S.solve(q, spec)
    assert r.n_solutions == 1 and np.array_equal(r.grid, a)
    assert S.invariant(q, spec) == S.invariant(grid, spec)


def test_small_grid_generation_is_unique_and_minimal():
    rng = np.random.default_rng(1)
    for spec in SPECS[:2]:
        p = generate_puzzle(rng, spec)
        assert S.solve(p.puzzle, spec).n_solutions == 1 and S.is_solution(p.solution, spec)
        for cell in np.flatnonzero(p.puzzle.reshape(-1)):  # removing any clue breaks uniqueness
            q = p.puzzle.copy().reshape(-1)
            q[cell] = 0
            assert S.solve(q, spec).n_solutions == 2


def test_hub_csv_import_reports_bad_rows(tmp_path):
    grids, _ = read_collection(HARD)
    q = grids[0]
    a = S.solve(q).grid
    wrong = a.copy()
    wrong[0, 0], wrong[0, 1] = wrong[0, 1], wrong[0, 0]
    rows = [
        "source,question,answer,rating",
        f"hard,{S.to_text(q)},{S.to_text(a)},12",  # good
        f"hard,{S.to_text(q)[:-1]},{S.to_text(a)},3",  # short question
        f"hard,{S.to_text(q)},{S.to_text(wrong)},3",  # answer not valid
        f"hard,{S.to_text(q)},{S.to_text(a)},lots",  # rating
        f"easy,{'.' * 81},{S.to_text(a)},0",  # several solutions
        f"hard,{S.to_text(grids[1])},{S.to_text(S.solve(grids[1]).grid)},7",  # good
    ]
    path = tmp_path / "train.csv"
    path.write_text("\n".join(rows) + "\n")
    good, bad = read_hub_csv(path)
    assert [p.rating for p in good] == [12, 7]
    assert [(b.row, b.reason.split(":")[0]) for b in bad] == [
        (3, "Sudoku puzzle has 80 cells, expected 81 (9x9)"),
        (4, "answer is not a complete valid grid"),
        (5, "rating 'lots' is not a number"),
        (6, "several solutions"),
    ]
    (tmp_path / "bad.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="expected the header"):
        read_hub_csv(tmp_path / "bad.csv")


def test_split_has_no_symmetry_overlap_and_augmentation_counts():
    grids, _ = read_collection(HARD)
    rng = np.random.default_rng(5)
    # add transformed copies: they must land on the same side as their original
    cands = [(g, "hard") for g in grids[:150]] + [(S.random_transform(rng)(g), "copy") for g in grids[:60]]
    sel = select_puzzles(cands, n_train=50, n_test=40, seed=3)
    assert len(sel.train) == 50 and len(sel.test) == 40
    assert any(p.source == "copy" for p in sel.train + sel.test)
    train_keys = {S.invariant(p.puzzle) for p in sel.train}
    assert not train_keys & {S.invariant(p.puzzle) for p in sel.test}
    inputs, labels, groups = augment(sel.train[:5], 7, seed=0)
    assert inputs.shape == (40, 81) and groups == [8] * 5
    assert np.array_equal(inputs[0], S.grid_to_tokens(sel.train[0].puzzle))
    for q, a in zip(inputs, labels, strict=True):
        qa, aa = S.tokens_to_grid(q), S.tokens_to_grid(a)
        assert S.is_solution(aa) and ((qa == 0) | (qa == aa)).all()


def test_show_draws_a_grid_of_token_ids():
    from airinterp.tasks import sudoku

    text = sudoku.show(sudoku.encode("1..... ..4..2 .2.... ....5. 3..1.. .....6", 36))
    lines = text.splitlines()
    assert len(lines) == 8 and lines[0] == " 1 . . | . . ." and set(lines[2]) == {"-", "+"}
