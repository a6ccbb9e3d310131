"""What an analysis asks of a task: token roles, mask tokens, given cells, queries, neighbourhoods, errors.

One class per task (:class:`SudokuRules`, :class:`MazeRules`) behind the :class:`TaskRules` base,
found by name in the registry :data:`RULES` with :func:`rules_for`, so analysis and report code
never hard-code a token id: they ask for a role (``blank``, ``wall``, ``start``, ``goal``,
``path``, ``undecided``) or a set (``given_mask``, ``query_mask``, ``violation_set``). Batched
torch functions on decoded grids ``[..., cell]``; the numpy functions of
:mod:`airinterp.tasks.sudoku` / :mod:`airinterp.tasks.maze` are their oracles in the tests.

Counting modes of the content-change metric (AIR_SPEC 4.b):

- ``reference``: the paper's numbers. Sudoku masks BLANK (1); Maze masks the path token ``o`` (5);
  PAD (0) is an ordinary content token in both.
- ``harmonized``: the tokens the renderers draw as undecided are the mask: {PAD, BLANK} for
  Sudoku, {PAD} for Maze (path commitments count as content). Use it for cross-task statements.
"""

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Literal

import numpy as np
import torch
from jaxtyping import Bool, Int
from torch import Tensor

from airinterp.errors import InputError
from airinterp.tasks import maze, sudoku

Mode = Literal["reference", "harmonized"]
MODES: tuple[Mode, ...] = ("reference", "harmonized")


@dataclass(frozen=True)
class TokenRoles:
    """A task's token ids by role, as plain data (what the report draws with; no torch).

    Roles a task does not have are None. ``first_digit``: Sudoku's first digit token (digits are
    shown as ``token - first_digit + 1``); ``colours``: role colours of the Maze renderer by id."""

    task: str
    names: dict[int, str]
    undecided: tuple[int, ...]
    pad: int
    blank: int | None = None
    first_digit: int | None = None
    wall: int | None = None
    open: int | None = None
    start: int | None = None
    goal: int | None = None
    path: int | None = None
    box: tuple[int, int] | None = None
    colours: dict[int, str] = field(default_factory=dict)


class TaskRules:
    """The rules of one puzzle family at one size (``n_cells``); subclasses fill the roles."""

    name: ClassVar[str]
    vocab_size: ClassVar[int]
    pad: ClassVar[int]
    #: the input's blank token (Sudoku BLANK); None where inputs have none
    blank: ClassVar[int | None] = None
    wall: ClassVar[int | None] = None
    start: ClassVar[int | None] = None
    goal: ClassVar[int | None] = None
    path: ClassVar[int | None] = None
    #: tokens the grid renderers draw as undecided (grey)
    undecided: ClassVar[tuple[int, ...]]
    #: the classes of query rows in the attention analysis: (adjacent to V/E, control)
    classes: ClassVar[tuple[str, str]]

    def __init__(self, n_cells: int) -> None:
        self.n_cells = n_cells

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.n_cells == self.n_cells  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.name, self.n_cells))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_cells={self.n_cells})"

    # ---- vocabulary --------------------------------------------------------------------------
    @property
    def side(self) -> int:
        return math.isqrt(self.n_cells)

    @property
    def token_names(self) -> dict[int, str]:
        """Display name of every token id."""
        raise NotImplementedError

    @property
    def box(self) -> tuple[int, int] | None:
        """Sudoku: (rows, columns) of a box; None for other tasks."""
        return None

    def roles(self) -> TokenRoles:
        raise NotImplementedError

    def mask_tokens(self, mode: str = "reference") -> tuple[int, ...]:
        """The mask tokens of the content-change metric in ``mode`` (module docstring)."""
        if mode == "reference":
            return self._reference_mask
        if mode == "harmonized":
            return self.undecided
        raise InputError(f"unknown counting mode {mode!r}; choose from {', '.join(MODES)}")

    _reference_mask: ClassVar[tuple[int, ...]]

    def is_mask(self, grid: Int[Tensor, "..."], mode: str = "reference") -> Bool[Tensor, "..."]:
        return torch.isin(grid, torch.tensor(self.mask_tokens(mode), device=grid.device))

    # ---- givens, queries and correctness -----------------------------------------------------
    def given_mask(self, inputs: "Tensor | np.ndarray") -> "Tensor | np.ndarray":
        """Cells fixed by the input."""
        raise NotImplementedError

    def query_mask(self, inputs: Tensor, labels: Tensor) -> Bool[Tensor, "... cell"]:
        """The query cells of the attention analysis."""
        raise NotImplementedError

    def neighbourhood(self, kind: str | None = None, include_self: bool = False) -> Bool[Tensor, "cell cell"]:
        """[cell, cell] bool: row q marks the neighbours of query q (``kind`` None: the task's own)."""
        raise NotImplementedError

    def violation_set(self, decoded: Tensor, labels: Tensor | None = None) -> Bool[Tensor, "... cell"]:
        """V (Sudoku: digits repeated among peers) or E (Maze: decoded != label), [..., cell] bool."""
        raise NotImplementedError

    def errors(self, grid: Int[Tensor, "... cell"], labels: Int[Tensor, "... cell"], path_only: bool = False) -> Bool[Tensor, "... cell"]:
        """Cells decoded differently from the label (``path_only``: where either is the path)."""
        wrong = grid != labels
        if path_only:
            if self.path is None:
                raise InputError(f"path_only: {self.name} has no path token")
            wrong &= (grid == self.path) | (labels == self.path)
        return wrong


class SudokuRules(TaskRules):
    name = "sudoku"
    vocab_size = sudoku.VOCAB_SIZE
    pad = sudoku.PAD
    blank = sudoku.BLANK
    first_digit = sudoku.BLANK + 1  # ids 2..10 are the digits 1..9
    undecided = (sudoku.PAD, sudoku.BLANK)
    _reference_mask = (sudoku.BLANK,)
    classes = ("violation-adjacent", "control")

    def __init__(self, n_cells: int) -> None:
        sudoku.SudokuSpec.for_cells(n_cells)  # raises for a size that is not a Sudoku
        super().__init__(n_cells)

    @cached_property
    def spec(self) -> "sudoku.SudokuSpec":
        return sudoku.SudokuSpec.for_cells(self.n_cells)

    @property
    def token_names(self) -> dict[int, str]:
        return {self.pad: "PAD", self.blank: "blank"} | {d + 1: str(d) for d in range(1, 10)}  # type: ignore[dict-item]

    @property
    def box(self) -> tuple[int, int]:
        return (self.spec.box_rows, self.spec.box_cols)

    def roles(self) -> TokenRoles:
        return TokenRoles(task=self.name, names=self.token_names, undecided=self.undecided, pad=self.pad, blank=self.blank,
                          first_digit=self.first_digit, box=self.box)  # fmt: skip

    def is_digit(self, grid: "Tensor | np.ndarray") -> "Tensor | np.ndarray":
        return grid >= self.first_digit

    def given_mask(self, inputs: "Tensor | np.ndarray") -> "Tensor | np.ndarray":
        """The clues (digits of the input)."""
        return self.is_digit(inputs)

    def query_mask(self, inputs: Tensor, labels: Tensor) -> Bool[Tensor, "... cell"]:
        """The input's blank cells."""
        return inputs == self.blank

    def neighbourhood(self, kind: str | None = None, include_self: bool = False) -> Bool[Tensor, "cell cell"]:
        """``peers`` (row, column and box), the only Sudoku neighbourhood."""
        if kind not in (None, "peers"):
            raise InputError(f"Sudoku neighbourhood {kind!r}: the only one is 'peers'")
        m = torch.from_numpy(self.spec.peers.copy())
        return m | torch.eye(self.n_cells, dtype=torch.bool) if include_self else m

    def violations(self, grid: Int[Tensor, "... cell"]) -> Bool[Tensor, "... cell"]:
        """Cells whose digit repeats among their peers (blanks and PAD never violate)."""
        peers = self.neighbourhood().to(grid.device)
        digit = self.is_digit(grid)
        same = (grid[..., :, None] == grid[..., None, :]) & peers & digit[..., :, None]
        return same.any(-1)

    def violation_set(self, decoded: Tensor, labels: Tensor | None = None) -> Bool[Tensor, "... cell"]:
        return self.violations(decoded)

    def digit_one_hot(self, grid: Tensor) -> Tensor:
        """[..., cell, digit] one-hot of the digits (PAD and BLANK all zero)."""
        return torch.nn.functional.one_hot(grid, self.vocab_size)[..., self.first_digit :]


class MazeRules(TaskRules):
    name = "maze"
    vocab_size = maze.VOCAB_SIZE
    pad = maze.PAD
    wall = maze.WALL
    open = maze.OPEN
    start = maze.START
    goal = maze.GOAL
    path = maze.PATH
    undecided = (maze.PAD,)
    _reference_mask = (maze.PATH,)
    classes = ("error-adjacent", "control")
    #: the renderer's colours by role (AIR_SPEC 4.a)
    COLOURS = {"pad": "#c8c8c8", "wall": "#000000", "open": "#ffffff", "start": "#2ca02c", "goal": "#d62728", "path": "#1f77b4"}

    def __init__(self, n_cells: int) -> None:
        if math.isqrt(n_cells) ** 2 != n_cells:
            raise InputError(f"{n_cells} cells do not form a square maze")
        super().__init__(n_cells)

    @property
    def token_names(self) -> dict[int, str]:
        return {self.pad: "PAD", self.wall: "wall", self.open: "open", self.start: "S", self.goal: "G", self.path: "path"}

    def roles(self) -> TokenRoles:
        return TokenRoles(task=self.name, names=self.token_names, undecided=self.undecided, pad=self.pad, wall=self.wall,
                          open=self.open, start=self.start, goal=self.goal, path=self.path,
                          colours={getattr(self, role): colour for role, colour in self.COLOURS.items()})  # fmt: skip

    def given_mask(self, inputs: "Tensor | np.ndarray") -> "Tensor | np.ndarray":
        """Walls, S and G: everything but the open cells."""
        return inputs != self.open

    def query_mask(self, inputs: Tensor, labels: Tensor) -> Bool[Tensor, "... cell"]:
        """The label's path cells (S and G are tokens of their own)."""
        return labels == self.path

    def neighbourhood(self, kind: str | None = None, include_self: bool = False) -> Bool[Tensor, "cell cell"]:
        """``N4`` (the default), ``N8`` or ``5x5`` (Chebyshev radius 2), cut at the border."""
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
            raise InputError(f"Maze neighbourhood {kind!r}: choose N4, N8 or 5x5")
        t = torch.from_numpy(m)
        return t | torch.eye(self.n_cells, dtype=torch.bool) if include_self else t

    def violations(self, grid: Int[Tensor, "... cell"]) -> Bool[Tensor, "... cell"]:
        raise InputError("violations are a Sudoku notion; for mazes use errors(decoded, labels)")

    def violation_set(self, decoded: Tensor, labels: Tensor | None = None) -> Bool[Tensor, "... cell"]:
        if labels is None:
            raise InputError("Maze errors need the labels (decoded != label)")
        return self.errors(decoded, labels)


#: the one task registry: name -> rules class (refuses a second class of the same name)
RULES: dict[str, type[TaskRules]] = {}


def register(cls: type[TaskRules]) -> type[TaskRules]:
    if cls.name in RULES and RULES[cls.name] is not cls:
        raise InputError(f"task {cls.name!r} is registered twice ({RULES[cls.name].__name__}, {cls.__name__})")
    RULES[cls.name] = cls
    return cls


register(SudokuRules)
register(MazeRules)


def rules_for(task: str | None, n_cells: int) -> TaskRules:
    """The rules of ``task`` at ``n_cells`` cells; an InputError for an unknown task or size."""
    if task not in RULES:
        raise InputError(f"unknown task {task!r}; known tasks: {', '.join(RULES)}")
    return RULES[task](n_cells)  # type: ignore[index]
