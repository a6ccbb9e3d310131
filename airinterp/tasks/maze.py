"""Maze vocabulary and text <-> token encoding (the reference layout).

Token ids: 0 = PAD, 1 = ``#`` wall, 2 = open cell (space), 3 = ``S``, 4 = ``G``, 5 = ``o`` (on the
solution path; labels only). Cells row-major.
"""

import torch
from jaxtyping import Int
from torch import Tensor

PAD, WALL, OPEN, START, GOAL, PATH = 0, 1, 2, 3, 4, 5
VOCAB_SIZE = 6
CHARS = {"#": WALL, " ": OPEN, "S": START, "G": GOAL, "o": PATH}
_TO_CHAR = {v: k for k, v in CHARS.items()} | {PAD: "_"}


def encode(text: str, n_cells: int = 900) -> Int[Tensor, " cell"]:
    """One maze string (``n_cells`` characters over ``# SGo``; newlines ignored) -> ids [cell]."""
    chars = [ch for ch in text if ch not in "\r\n"]
    if len(chars) != n_cells:
        raise ValueError(f"maze has {len(chars)} cells, expected {n_cells}")
    bad = [(i, ch) for i, ch in enumerate(chars) if ch not in CHARS]
    if bad:
        i, ch = bad[0]
        raise ValueError(f"maze: character {ch!r} at cell {i} is not one of '#', ' ', 'S', 'G', 'o'")
    return torch.tensor([CHARS[ch] for ch in chars], dtype=torch.long)


def decode(ids: Int[Tensor, " cell"]) -> str:
    return "".join(_TO_CHAR.get(v, "?") for v in ids.tolist())
