"""Puzzle tasks: vocabularies and encodings (``sudoku``, ``maze``)."""

from collections.abc import Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from airinterp.errors import InputError
from airinterp.tasks import maze, sudoku

TASKS = {"sudoku": sudoku, "maze": maze}


def encode_puzzles(task: str, puzzles: "str | Sequence[str]", n_cells: int) -> Int[Tensor, "batch cell"]:
    """Puzzle strings -> token ids [batch, cell]; errors name the puzzle index and the problem."""
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; known: {sorted(TASKS)}")
    if isinstance(puzzles, str):
        puzzles = [puzzles]
    rows = []
    for i, text in enumerate(puzzles):
        try:
            rows.append(TASKS[task].encode(text, n_cells))
        except ValueError as err:
            raise InputError(f"puzzle {i}: {err}") from None
    if not rows:
        raise InputError("no puzzles given")
    return torch.stack(rows)
