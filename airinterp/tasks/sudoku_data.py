"""Sudoku-Extreme-like datasets: puzzle sources, the hub CSV importer, small-grid generation,
the train/test split and the reference's augmentation.

Spec 1.1-1.2: the hub's Sudoku-Extreme is a relabelled mix of tdoku's collections; the reference
subsamples 1000 train puzzles and adds 1000 random symmetry transforms of each. Here puzzles come
from the collections in ``shared/data/sudoku`` (9x9; solved and rated by our solver, multi-solution
puzzles dropped) or, for 4x4/6x6, from a seeded generator. Train and test are split by
:func:`sudoku.invariant`, so no test puzzle is a symmetry transform of a train puzzle.
"""

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from airinterp.errors import InputError
from airinterp.tasks import _kernels
from airinterp.tasks.sudoku import (
    SUDOKU_9,
    SudokuSpec,
    grid_to_tokens,
    invariant,
    is_solution,
    parse,
    random_transform,
    solve,
    solve_many,
    violations,
)
from airinterp.types import Advance as Progress


@dataclass(frozen=True)
class BadRow:
    row: int  # 1-based line number in the file (header = 1 for CSVs)
    reason: str


@dataclass
class Puzzle:
    puzzle: np.ndarray  # [side, side] digits, 0 = blank
    solution: np.ndarray
    rating: int
    source: str


def read_collection(path: "str | Path", spec: SudokuSpec = SUDOKU_9) -> tuple[list[np.ndarray], list[BadRow]]:
    """One puzzle per line (tdoku list format); bad lines are reported, not fatal."""
    good, bad = [], []
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (not UTF-8); expected one puzzle per line") from None
    for i, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            good.append(parse(line, spec))
        except ValueError as err:
            bad.append(BadRow(i, str(err)))
    return good, bad


def read_hub_csv(path: "str | Path", spec: SudokuSpec = SUDOKU_9, check_unique: bool = True) -> tuple[list[Puzzle], list[BadRow]]:
    """The hub's ``source,question,answer,rating`` CSV. Bad rows (wrong length or characters,
    contradictory givens, an answer that is not a solution or does not extend the question, a
    non-integer rating, no or several solutions) are reported with their row number and skipped."""
    try:
        return _read_hub_csv(path, spec, check_unique)
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{path}: not a readable CSV text file ({err})") from None


def _read_hub_csv(path: "str | Path", spec: SudokuSpec, check_unique: bool) -> tuple[list[Puzzle], list[BadRow]]:
    good: list[Puzzle] = []
    bad: list[BadRow] = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:4]] != ["source", "question", "answer", "rating"]:
            raise InputError(f"{path}: expected the header source,question,answer,rating, got {header}")
        for row_no, row in enumerate(reader, start=2):
            try:
                if len(row) != 4:
                    raise InputError(f"{len(row)} fields, expected 4")
                source, question, answer, rating = row
                q, a = parse(question, spec), parse(answer, spec)
                if (a == 0).any() or not is_solution(a, spec):
                    raise InputError("answer is not a complete valid grid")
                if ((q != 0) & (q != a)).any():
                    raise InputError("answer contradicts a given of the question")
                if violations(q, spec).any():
                    raise InputError("contradictory givens")
                try:
                    value = float(rating)
                except ValueError:
                    raise InputError(f"rating {rating!r} is not a number") from None
                if not math.isfinite(value) or value != int(value):
                    raise InputError(f"rating {rating!r} is not a whole finite number")
                r = int(value)
                if check_unique:
                    n = solve(q, spec).n_solutions
                    if n != 1:
                        raise InputError("no solution" if n == 0 else "several solutions")
                good.append(Puzzle(q, a, r, source))
            except ValueError as err:
                bad.append(BadRow(row_no, str(err)))
    return good, bad


def random_solution(rng: np.random.Generator, spec: SudokuSpec) -> np.ndarray:
    """A random complete grid: the search on an empty grid with a random digit order, then a random
    symmetry transform."""
    sol = np.zeros(spec.n_cells, np.int32)
    n, _, _ = _kernels.sudoku_search(np.zeros(spec.n_cells, np.int8), spec.box_rows, spec.box_cols, 1, sol, rng.permutation(spec.side))
    assert n == 1
    return random_transform(rng, spec)(sol.reshape(spec.side, spec.side).astype(np.int8))


def generate_puzzle(rng: np.random.Generator, spec: SudokuSpec) -> Puzzle:
    """A minimal uniquely solvable puzzle: remove clues in random order while the solution stays unique."""
    sol = random_solution(rng, spec)
    puzzle = sol.copy().reshape(-1)
    for cell in rng.permutation(spec.n_cells):
        keep = puzzle[cell]
        puzzle[cell] = 0
        if solve(puzzle, spec).n_solutions != 1:
            puzzle[cell] = keep
    grid = puzzle.reshape(spec.side, spec.side)
    return Puzzle(grid, sol, solve(grid, spec).guesses, f"generated-{spec.name}")


@dataclass
class SudokuBuild:
    train: list[Puzzle]
    test: list[Puzzle]
    stats: dict = field(default_factory=dict)


def select_puzzles(
    candidates: "Iterable[tuple[np.ndarray, str]] | None",
    n_train: int,
    n_test: int,
    seed: int,
    spec: SudokuSpec = SUDOKU_9,
    min_rating: int = 0,
    progress: Progress | None = None,
    chunk: int = 256,
) -> SudokuBuild:
    """Solve and rate candidates in a seeded order, keep uniquely solvable ones rated >= min_rating,
    and split them by symmetry invariant into ``n_test`` test and ``n_train`` train puzzles.
    ``candidates=None`` generates puzzles (small grids)."""
    rng = np.random.default_rng(seed)
    stats = {"solved": 0, "not_unique": 0, "no_solution": 0, "contradictory": 0, "below_min_rating": 0}
    train: list[Puzzle] = []
    test: list[Puzzle] = []
    side_of: dict[tuple, str] = {}

    def place(p: Puzzle) -> bool:
        key = invariant(p.puzzle, spec)
        side = side_of.get(key)
        if side is None:
            side = "test" if len(test) < n_test else "train" if len(train) < n_train else None
            if side is None:
                return False
            side_of[key] = side
        target = test if side == "test" else train
        wanted = n_test if side == "test" else n_train
        if len(target) < wanted:
            target.append(p)
            if progress:
                progress(1)
        return len(test) >= n_test and len(train) >= n_train

    if candidates is None:
        attempts = 0
        while len(test) < n_test or len(train) < n_train:
            attempts += 1
            if attempts > 50 * (n_train + n_test) + 1000:
                sides = list(side_of.values())
                raise InputError(
                    f"could not fill {n_train} train + {n_test} test {spec.name} puzzles with no symmetry class on "
                    f"both sides: after {attempts - 1} puzzles, {len(side_of)} classes were seen ({sides.count('test')} "
                    f"test, {sides.count('train')} train) and got {len(train)} train / {len(test)} test; the "
                    f"{spec.name} space has few classes: ask for fewer or use --size 6x6"
                )
            p = generate_puzzle(rng, spec)
            stats["solved"] += 1
            if p.rating < min_rating:
                stats["below_min_rating"] += 1
                continue
            if place(p):
                break
    else:
        pairs = list(candidates)
        grids, sources = (tuple(x) for x in zip(*pairs, strict=True)) if pairs else ((), ())
        order = rng.permutation(len(grids))
        done = False
        for start in range(0, len(order), chunk):
            idx = order[start : start + chunk]
            batch = np.stack([grids[i] for i in idx])
            n_sol, sols, ratings = solve_many(batch, spec)
            for j, i in enumerate(idx):
                stats["solved"] += 1
                if n_sol[j] != 1:
                    stats[{-1: "contradictory", 0: "no_solution"}.get(int(n_sol[j]), "not_unique")] += 1
                    continue
                if ratings[j] < min_rating:
                    stats["below_min_rating"] += 1
                    continue
                if place(Puzzle(batch[j], sols[j], int(ratings[j]), sources[i])):
                    done = True
                    break
            if done:
                break
        if len(test) < n_test or len(train) < n_train:
            raise InputError(
                f"only {len(train)} train / {len(test)} test puzzles pass (rating >= {min_rating}) "
                f"out of {len(grids)} candidates; asked for {n_train} / {n_test}"
            )
    stats["invariant_classes"] = len(side_of)
    return SudokuBuild(train, test, stats)


def augment(
    puzzles: list[Puzzle], n_aug: int, seed: int, spec: SudokuSpec = SUDOKU_9, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Each puzzle followed by ``n_aug`` random transforms (a group of 1 + n_aug examples), as
    token ids. Every sample is checked: its answer is a valid complete grid and extends its
    puzzle, and the givens count is unchanged."""
    rng = np.random.default_rng(seed)
    n = len(puzzles) * (1 + n_aug)
    inputs = np.empty((n, spec.n_cells), np.uint8)
    labels = np.empty((n, spec.n_cells), np.uint8)
    k = 0
    for p in puzzles:
        qs = [p.puzzle] + [None] * n_aug
        ss = [p.solution] + [None] * n_aug
        for a in range(1, n_aug + 1):
            t = random_transform(rng, spec)
            qs[a], ss[a] = t(p.puzzle), t(p.solution)
        q, s = np.stack(qs), np.stack(ss)
        if violations(s, spec).any() or (s == 0).any():
            raise AssertionError("an augmented answer is not a valid Sudoku (bug)")
        if ((q != 0) & (q != s)).any() or not ((q != 0).sum((1, 2)) == (p.puzzle != 0).sum()).all():
            raise AssertionError("an augmented puzzle does not match its answer (bug)")
        inputs[k : k + 1 + n_aug] = q.reshape(-1, spec.n_cells) + 1
        labels[k : k + 1 + n_aug] = s.reshape(-1, spec.n_cells) + 1
        k += 1 + n_aug
        if progress:
            progress(1)
    return inputs, labels, [1 + n_aug] * len(puzzles)


def to_arrays(puzzles: list[Puzzle]) -> tuple[np.ndarray, np.ndarray]:
    return (np.stack([grid_to_tokens(p.puzzle) for p in puzzles]), np.stack([grid_to_tokens(p.solution) for p in puzzles]))
