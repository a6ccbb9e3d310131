"""What an analysis asks of a task: mask tokens, given cells, grid shape, neighbourhoods, errors.

One object per task (:data:`RULES`), found from a model config with :func:`rules_for`, so analysis
code never hard-codes token ids. Batched torch functions on decoded grids ``[..., cell]``; the
numpy functions of :mod:`airinterp.tasks.sudoku` / :mod:`airinterp.tasks.maze` are their oracles
in the tests.

Counting modes of the content-change metric (AIR_SPEC 4.b):

- ``reference``: the paper's numbers. Sudoku masks BLANK (1); Maze masks the path token ``o`` (5);
  PAD (0) is an ordinary content token in both.
- ``harmonized``: the tokens the renderers draw as undecided are the mask: {PAD, BLANK} for
  Sudoku, {PAD} for Maze (path commitments count as content). Use it for cross-task statements.
"""

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import torch
from jaxtyping import Bool, Int
from torch import Tensor

from airinterp.model.config import TASK_BY_VOCAB  # noqa: F401  (the one vocab -> task table)
from airinterp.tasks import maze, sudoku

Mode = Literal["reference", "harmonized"]
MODES: tuple[Mode, ...] = ("reference", "harmonized")


@dataclass(frozen=True)
class TaskRules:
    """The rules of one puzzle family at one size (``n_cells``)."""

    name: str  # "sudoku" | "maze"
    n_cells: int

    # ---- vocabulary --------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return sudoku.VOCAB_SIZE if self.name == "sudoku" else maze.VOCAB_SIZE

    @property
    def side(self) -> int:
        return math.isqrt(self.n_cells)

    @property
    def token_names(self) -> dict[int, str]:
        """Display name of every token id."""
        if self.name == "sudoku":
            return {0: "PAD", 1: "blank"} | {d + 1: str(d) for d in range(1, 10)}
        return {0: "PAD", 1: "wall", 2: "open", 3: "S", 4: "G", 5: "path"}

    @property
    def undecided(self) -> tuple[int, ...]:
        """Tokens the grid renderers draw as undecided (grey): Sudoku PAD/BLANK, Maze PAD."""
        return (sudoku.PAD, sudoku.BLANK) if self.name == "sudoku" else (maze.PAD,)

    @property
    def blank(self) -> int | None:
        """The input's blank token (Sudoku BLANK); Maze inputs have none."""
        return sudoku.BLANK if self.name == "sudoku" else None

    def mask_tokens(self, mode: str = "reference") -> tuple[int, ...]:
        """The mask tokens of the content-change metric in ``mode`` (module docstring)."""
        if mode == "reference":
            return (sudoku.BLANK,) if self.name == "sudoku" else (maze.PATH,)
        if mode == "harmonized":
            return self.undecided
        raise ValueError(f"unknown counting mode {mode!r}; choose from {', '.join(MODES)}")

    def is_mask(self, grid: Int[Tensor, "..."], mode: str = "reference") -> Bool[Tensor, "..."]:
        return torch.isin(grid, torch.tensor(self.mask_tokens(mode), device=grid.device))

    # ---- givens and correctness --------------------------------------------------------------
    def given_mask(self, inputs: "Tensor | np.ndarray") -> "Tensor | np.ndarray":
        """Cells fixed by the input: Sudoku clues; Maze walls, S and G (everything but open)."""
        if self.name == "maze":
            return inputs != maze.OPEN
        return inputs >= 2

    # ---- neighbourhoods ----------------------------------------------------------------------
    @cached_property
    def _sudoku_spec(self) -> "sudoku.SudokuSpec":
        return sudoku.SudokuSpec.for_cells(self.n_cells)

    @property
    def box(self) -> tuple[int, int] | None:
        """Sudoku: (rows, columns) of a box; Maze: None."""
        return (self._sudoku_spec.box_rows, self._sudoku_spec.box_cols) if self.name == "sudoku" else None

    def neighbourhood(self, kind: str | None = None, include_self: bool = False) -> Bool[Tensor, "cell cell"]:
        """[cell, cell] bool: row q marks the neighbours of query q.

        Sudoku: ``peers`` (row, column and box). Maze: ``N4``, ``N8`` or ``5x5`` (Chebyshev
        radius 2), cut at the border. ``include_self`` adds the query itself."""
        if self.name == "sudoku":
            if kind not in (None, "peers"):
                raise ValueError(f"Sudoku neighbourhood {kind!r}: the only one is 'peers'")
            m = torch.from_numpy(self._sudoku_spec.peers.copy())
        else:
            kind = kind or "N4"
            r, c = np.divmod(np.arange(self.n_cells), self.side)
            dr, dc = np.abs(r[:, None] - r[None]), np.abs(c[:, None] - c[None])
            if kind == "N4":
                m = dr + dc == 1
            elif kind == "N8":
                m = np.maximum(dr, dc) == 1
            elif kind == "5x5":
                m = (np.maximum(dr, dc) <= 2) & (np.maximum(dr, dc) > 0)
            else:
                raise ValueError(f"Maze neighbourhood {kind!r}: choose N4, N8 or 5x5")
            m = torch.from_numpy(m)
        if include_self:
            m = m | torch.eye(self.n_cells, dtype=torch.bool)
        return m

    # ---- violation / error sets --------------------------------------------------------------
    def violations(self, grid: Int[Tensor, "... cell"]) -> Bool[Tensor, "... cell"]:
        """Sudoku: cells whose digit repeats among their peers (blanks and PAD never violate)."""
        if self.name != "sudoku":
            raise ValueError("violations are a Sudoku notion; for mazes use errors(decoded, labels)")
        peers = self.neighbourhood().to(grid.device)
        digit = grid >= 2
        same = (grid[..., :, None] == grid[..., None, :]) & peers & digit[..., :, None]
        return same.any(-1)

    def errors(self, grid: Int[Tensor, "... cell"], labels: Int[Tensor, "... cell"], path_only: bool = False) -> Bool[Tensor, "... cell"]:
        """Cells decoded differently from the label (``path_only``: where either is the path)."""
        wrong = grid != labels
        if path_only:
            wrong &= (grid == maze.PATH) | (labels == maze.PATH)
        return wrong


def rules_for(task: str | None, n_cells: int) -> TaskRules:
    """The rules of ``task`` at ``n_cells`` cells; a ValueError for an unknown task."""
    if task not in ("sudoku", "maze"):
        raise ValueError(f"unknown task {task!r}; known tasks: sudoku, maze")
    if task == "sudoku":
        sudoku.SudokuSpec.for_cells(n_cells)  # raises for a size that is not a Sudoku
    elif math.isqrt(n_cells) ** 2 != n_cells:
        raise ValueError(f"{n_cells} cells do not form a square maze")
    return TaskRules(task, n_cells)

