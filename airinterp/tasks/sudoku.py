"""Sudoku vocabulary and text <-> token encoding (the reference layout).

Token ids: 0 = PAD, 1 = blank cell, 2..10 = digits 1..9 (id = digit + 1). Cells row-major.
Puzzle text: one character per cell, ``.`` or ``0`` for a blank, ``1``-``9`` for digits
(whitespace and ``|``/``-``/``+`` grid decoration are ignored).
"""

import math

import torch
from jaxtyping import Int
from torch import Tensor

PAD, BLANK = 0, 1
VOCAB_SIZE = 11
_DECORATION = set(" \t\r\n|-+")


def side_of(n_cells: int) -> int:
    side = math.isqrt(n_cells)
    if side * side != n_cells:
        raise ValueError(f"{n_cells} cells do not form a square Sudoku grid")
    return side


def encode(text: str, n_cells: int = 81) -> Int[Tensor, " cell"]:
    """One puzzle string -> token ids [cell]."""
    side = side_of(n_cells)
    chars = [ch for ch in text if ch not in _DECORATION]
    if len(chars) != n_cells:
        raise ValueError(f"Sudoku puzzle has {len(chars)} cells, expected {n_cells} ({side}x{side})")
    ids = []
    for i, ch in enumerate(chars):
        if ch in ".0":
            ids.append(BLANK)
        elif ch.isdigit() and 1 <= int(ch) <= min(side, 9):
            ids.append(int(ch) + 1)
        else:
            raise ValueError(f"Sudoku puzzle: character {ch!r} at cell {i} is not '.', '0' or 1-{min(side, 9)}")
    return torch.tensor(ids, dtype=torch.long)


def decode(ids: Int[Tensor, " cell"]) -> str:
    """Token ids -> puzzle string (``.`` for blank, ``_`` for PAD)."""
    out = []
    for v in ids.tolist():
        out.append("_" if v == PAD else "." if v == BLANK else str(v - 1) if 2 <= v <= 10 else "?")
    return "".join(out)
