"""Sudoku: vocabulary, text/grid/token conversion, rules (solver, violations) and symmetries.

Token ids (the reference's): 0 = PAD, 1 = blank cell, 2..10 = digits 1..9 (id = digit + 1);
cells row-major. Grids are numpy int8 arrays [side, side] of digits, 0 = blank. Grid size is a
:class:`SudokuSpec` (boxes of ``box_rows`` x ``box_cols``): ``4x4`` (2x2 boxes), ``6x6`` (2x3) and
the paper's ``9x9`` (3x3). The vocabulary stays the reference's for every size.

Puzzle text: one character per cell, ``.`` or ``0`` for a blank, ``1``-``9`` for digits; spaces,
newlines and ``|``/``-``/``+`` decoration are ignored.
"""

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

from airinterp.errors import InputError
from airinterp.tasks import _kernels

PAD, BLANK = 0, 1
VOCAB_SIZE = 11
_DECORATION = set(" \t\r\n|-+")


@dataclass(frozen=True)
class SudokuSpec:
    box_rows: int = 3
    box_cols: int = 3

    def __post_init__(self) -> None:
        if not (1 <= self.box_rows and 1 <= self.box_cols and self.side <= 9):
            raise InputError(f"unsupported Sudoku boxes {self.box_rows}x{self.box_cols} (side must be <= 9)")

    @property
    def side(self) -> int:
        return self.box_rows * self.box_cols

    @property
    def n_cells(self) -> int:
        return self.side * self.side

    @property
    def name(self) -> str:
        return f"{self.side}x{self.side}"

    @classmethod
    def parse(cls, name: str) -> "SudokuSpec":
        """``9x9``, ``6x6`` (2x3 boxes), ``4x4``, or explicit boxes ``2x3-boxes``."""
        if name.endswith("-boxes"):
            r, c = name[: -len("-boxes")].split("x")
            return cls(int(r), int(c))
        sizes = {"4x4": cls(2, 2), "6x6": cls(2, 3), "9x9": cls(3, 3)}
        if name not in sizes:
            raise InputError(f"unknown Sudoku size {name!r}; choose 4x4, 6x6, 9x9 or e.g. 2x3-boxes")
        return sizes[name]

    @classmethod
    def for_cells(cls, n_cells: int) -> "SudokuSpec":
        side = math.isqrt(n_cells)
        if side * side != n_cells or side not in (4, 6, 9):
            raise InputError(f"{n_cells} cells do not form a 4x4, 6x6 or 9x9 Sudoku")
        return cls.parse(f"{side}x{side}")

    @cached_property
    def box_of(self) -> np.ndarray:
        """[n_cells] box index of each cell."""
        r, c = np.divmod(np.arange(self.n_cells), self.side)
        return (r // self.box_rows) * self.box_rows + c // self.box_cols

    @cached_property
    def peers(self) -> np.ndarray:
        """[n_cells, n_cells] bool: same row, column or box, the cell itself excluded."""
        r, c = np.divmod(np.arange(self.n_cells), self.side)
        b = self.box_of
        same = (r[:, None] == r[None]) | (c[:, None] == c[None]) | (b[:, None] == b[None])
        np.fill_diagonal(same, False)
        return same


SUDOKU_9 = SudokuSpec(3, 3)


# ---- text, grids, tokens -----------------------------------------------------------------------


def parse(text: str, spec: SudokuSpec = SUDOKU_9) -> np.ndarray:
    """Puzzle text -> digit grid [side, side] (0 = blank)."""
    chars = [ch for ch in text if ch not in _DECORATION]
    if len(chars) != spec.n_cells:
        raise InputError(f"Sudoku puzzle has {len(chars)} cells, expected {spec.n_cells} ({spec.name})")
    out = np.zeros(spec.n_cells, np.int8)
    for i, ch in enumerate(chars):
        if ch in ".0":
            continue
        if ch.isascii() and ch.isdigit() and 1 <= int(ch) <= spec.side:  # not "٣" (int() reads any script)
            out[i] = int(ch)
        else:
            raise InputError(f"Sudoku puzzle: character {ch!r} at cell {i} is not '.', '0' or 1-{spec.side}")
    return out.reshape(spec.side, spec.side)


def to_text(grid: np.ndarray) -> str:
    """Digit grid -> one-line text with ``.`` for blanks."""
    return "".join("." if v == 0 else str(int(v)) for v in np.asarray(grid).reshape(-1))


def render(grid: np.ndarray, spec: SudokuSpec = SUDOKU_9) -> str:
    """A terminal/notebook rendering with box separators."""
    g = np.asarray(grid).reshape(spec.side, spec.side)
    lines = []
    sep = "+".join("-" * (2 * spec.box_cols + 1) for _ in range(spec.side // spec.box_cols))
    for r in range(spec.side):
        if r and r % spec.box_rows == 0:
            lines.append(sep)
        cells = ["." if v == 0 else str(int(v)) for v in g[r]]
        groups = [" ".join(cells[i : i + spec.box_cols]) for i in range(0, spec.side, spec.box_cols)]
        lines.append(" " + " | ".join(groups))
    return "\n".join(lines)


def grid_to_tokens(grid: np.ndarray) -> np.ndarray:
    """Digits (0 = blank) -> token ids (blank -> 1, digit d -> d + 1), flat uint8."""
    return (np.asarray(grid).reshape(-1).astype(np.uint8) + 1).astype(np.uint8)


def tokens_to_grid(ids: np.ndarray, spec: SudokuSpec = SUDOKU_9) -> np.ndarray:
    """Token ids -> digits; PAD and BLANK both become 0."""
    ids = np.asarray(ids).reshape(spec.side, spec.side).astype(np.int16)
    return np.where(ids >= 2, ids - 1, 0).astype(np.int8)


def encode(text: str, n_cells: int = 81) -> Int[Tensor, " cell"]:
    """One puzzle string -> token ids [cell]."""
    return torch.from_numpy(grid_to_tokens(parse(text, SudokuSpec.for_cells(n_cells)))).long()


def show(ids: Int[Tensor, " cell"]) -> str:
    """Token ids of one grid -> :func:`render`'s box drawing (the size from the number of cells;
    ``.`` for blank and PAD)."""
    spec = SudokuSpec.for_cells(len(ids))
    return render(tokens_to_grid(np.asarray(ids.tolist()), spec), spec)


def decode(ids: Int[Tensor, " cell"]) -> str:
    """Token ids -> puzzle string (``.`` for blank, ``_`` for PAD)."""
    out = []
    for v in ids.tolist():
        out.append("_" if v == PAD else "." if v == BLANK else str(v - 1) if 2 <= v <= 10 else "?")
    return "".join(out)


# ---- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Solution:
    n_solutions: int  # 0, 1, or 2 (= "two or more" with limit 2)
    grid: np.ndarray | None  # the first solution found
    guesses: int  # guesses before the first solution: the difficulty rating


def solve(grid: np.ndarray, spec: SudokuSpec = SUDOKU_9, limit: int = 2) -> Solution:
    """Exact backtracking search counting solutions up to ``limit`` (uniqueness check at 2).

    Raises ValueError if the givens already conflict. The rating is the number of guesses
    (placements at cells with two or more candidates) made before the first solution by a
    minimum-remaining-values search with naked singles only; it orders puzzles like tdoku's
    backtrack count (the hub's ``rating``) but is larger, tdoku propagating more per step.
    """
    flat = np.ascontiguousarray(np.asarray(grid, np.int8).reshape(-1))
    if flat.size != spec.n_cells:
        raise InputError(f"grid has {flat.size} cells, expected {spec.n_cells}")
    sol = np.zeros(spec.n_cells, np.int32)
    n, first, _ = _kernels.sudoku_search(flat, spec.box_rows, spec.box_cols, limit, sol, np.arange(spec.side))
    if n < 0:
        raise InputError("contradictory givens: a digit repeats in a row, column or box")
    return Solution(int(n), sol.reshape(spec.side, spec.side).astype(np.int8) if n else None, int(first))


def solve_many(grids: np.ndarray, spec: SudokuSpec = SUDOKU_9, limit: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch :func:`solve`: (n_solutions [m] (-1: conflicting givens), solutions [m, side, side], ratings [m])."""
    grids = np.ascontiguousarray(np.asarray(grids, np.int8).reshape(-1, spec.n_cells))
    sols = np.zeros(grids.shape, np.int32)
    out = np.zeros((grids.shape[0], 3), np.int64)
    _kernels.sudoku_search_many(grids, spec.box_rows, spec.box_cols, limit, sols, out)
    return out[:, 0], sols.reshape(-1, spec.side, spec.side).astype(np.int8), out[:, 1]


def violations(grid: np.ndarray, spec: SudokuSpec = SUDOKU_9) -> np.ndarray:
    """[side, side] bool: the cell's digit also appears in another cell of its row, column or box.

    Blanks never violate; every member of a duplicate group is marked, givens included.
    Works on batches [..., side, side] too.
    """
    g = np.asarray(grid)
    flat = g.reshape(*g.shape[:-2], spec.n_cells)
    same = (flat[..., :, None] == flat[..., None, :]) & spec.peers & (flat[..., :, None] > 0)
    return same.any(-1).reshape(g.shape)


def is_solution(grid: np.ndarray, spec: SudokuSpec = SUDOKU_9) -> bool:
    """A complete grid (no blanks) with no violations."""
    g = np.asarray(grid)
    return bool((g > 0).all() and (g <= spec.side).all() and not violations(g, spec).any())


def neighbourhood(cell: int, spec: SudokuSpec = SUDOKU_9, include_self: bool = False) -> np.ndarray:
    """Indices of the cells in ``cell``'s row, column and box (21 with itself at 9x9)."""
    mask = spec.peers[cell].copy()
    mask[cell] = include_self
    return np.flatnonzero(mask)


# ---- symmetries (augmentation) -----------------------------------------------------------------


@dataclass(frozen=True)
class Transform:
    """A validity-preserving relabelling: optional transpose, then row/column permutations
    (bands/stacks and lines within them), then a digit permutation. New cell (i, j) takes the
    value of old cell (rows[i], cols[j]) of the (transposed) grid."""

    digits: np.ndarray  # [side + 1], digits[0] = 0
    transpose: bool
    rows: np.ndarray  # [side]
    cols: np.ndarray  # [side]

    def __call__(self, grid: np.ndarray) -> np.ndarray:
        g = np.asarray(grid)
        if self.transpose:
            g = g.swapaxes(-1, -2)
        g = g[..., self.rows, :][..., :, self.cols]
        return self.digits[g].astype(np.int8)


def _line_perm(rng: np.random.Generator, n_groups: int, size: int) -> np.ndarray:
    groups = rng.permutation(n_groups)
    return np.concatenate([g * size + rng.permutation(size) for g in groups])


def random_transform(rng: np.random.Generator, spec: SudokuSpec = SUDOKU_9) -> Transform:
    """Uniform digit relabelling, transpose with probability 1/2 (square boxes only), band and
    row-within-band permutations, stack and column-within-stack permutations (the reference's)."""
    side = spec.side
    digits = np.concatenate([[0], rng.permutation(side) + 1])
    transpose = bool(spec.box_rows == spec.box_cols and rng.random() < 0.5)
    rows = _line_perm(rng, side // spec.box_rows, spec.box_rows)
    cols = _line_perm(rng, side // spec.box_cols, spec.box_cols)
    return Transform(digits, transpose, rows, cols)


def invariant(grid: np.ndarray, spec: SudokuSpec = SUDOKU_9) -> tuple:
    """A key equal for puzzles related by any :class:`Transform` (not a complete canonical form:
    inequivalent puzzles can share it, which only keeps them on the same side of a split).

    It combines the sorted clue counts per band/stack (with each band's sorted row counts), the
    sorted multiset of digit frequencies, and is symmetrised over transposition.
    """
    g = np.asarray(grid).reshape(spec.side, spec.side)
    clue = g > 0

    def bands(m: np.ndarray, size: int) -> tuple:
        counts = m.sum(1)
        return tuple(sorted(tuple(sorted(counts[i : i + size].tolist())) for i in range(0, len(counts), size)))

    row_key = (bands(clue, spec.box_rows), bands(clue.T, spec.box_cols))
    if spec.box_rows == spec.box_cols:
        row_key = tuple(sorted(row_key))
    digit_counts = tuple(sorted(np.bincount(g[clue].astype(np.int64), minlength=spec.side + 1)[1:].tolist()))
    return (spec.name, row_key, digit_counts)
