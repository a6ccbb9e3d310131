"""Mazes: vocabulary, text/grid/token conversion and rules (BFS, shortest paths, errors).

Token ids (the reference's): 0 = PAD, 1 = ``#`` wall, 2 = open cell (space), 3 = ``S``, 4 = ``G``,
5 = ``o`` (on the solution path; labels only). Cells row-major; grids are numpy int8 arrays of
token ids [side, side]. Moves are 4-connected.
"""

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

from airinterp.errors import InputError
from airinterp.tasks import _kernels

PAD, WALL, OPEN, START, GOAL, PATH = 0, 1, 2, 3, 4, 5
VOCAB_SIZE = 6
CHARS = {"#": WALL, " ": OPEN, "S": START, "G": GOAL, "o": PATH}
_TO_CHAR = {v: k for k, v in CHARS.items()} | {PAD: "_"}
DIRECTIONS = {"down": 0, "left": 1, "right": 2, "up": 3}  # (row+1, col-1, col+1, row-1)
DEFAULT_TIE_BREAK = "down,left,right,up"  # reproduces the real Maze-Hard label (spec 1.4)


@dataclass(frozen=True)
class MazeSpec:
    side: int = 30

    @property
    def n_cells(self) -> int:
        return self.side * self.side

    @property
    def default_min_path_cells(self) -> int:
        """110 cells (S and G included) at 30x30, scaled with the side."""
        return round(110 * self.side / 30)


MAZE_30 = MazeSpec(30)


def parse(text: str, spec: MazeSpec = MAZE_30) -> np.ndarray:
    """Maze text (``n_cells`` characters over ``# SGo``; newlines ignored) -> token grid."""
    chars = [ch for ch in text if ch not in "\r\n"]
    if len(chars) != spec.n_cells:
        raise InputError(f"maze has {len(chars)} cells, expected {spec.n_cells} ({spec.side}x{spec.side})")
    bad = [(i, ch) for i, ch in enumerate(chars) if ch not in CHARS]
    if bad:
        i, ch = bad[0]
        raise InputError(f"maze: character {ch!r} at cell {i} is not one of '#', ' ', 'S', 'G', 'o'")
    return np.array([CHARS[ch] for ch in chars], np.int8).reshape(spec.side, spec.side)


def to_text(grid: np.ndarray) -> str:
    return "".join(_TO_CHAR.get(int(v), "?") for v in np.asarray(grid).reshape(-1))


def render(grid: np.ndarray) -> str:
    g = np.asarray(grid)
    return "\n".join("".join(_TO_CHAR.get(int(v), "?") for v in row) for row in g)


def encode(text: str, n_cells: int = 900) -> Int[Tensor, " cell"]:
    side = int(round(n_cells**0.5))
    if side * side != n_cells:
        raise InputError(f"{n_cells} cells do not form a square maze")
    return torch.from_numpy(parse(text, MazeSpec(side)).reshape(-1).astype(np.int64))


def decode(ids: Int[Tensor, " cell"]) -> str:
    return "".join(_TO_CHAR.get(v, "?") for v in ids.tolist())


def endpoints(grid: np.ndarray) -> tuple[int, int]:
    """Flat indices of S and G; a clear error if either is missing or repeated."""
    flat = np.asarray(grid).reshape(-1)
    s, g = np.flatnonzero(flat == START), np.flatnonzero(flat == GOAL)
    if len(s) != 1 or len(g) != 1:
        raise InputError(f"a maze needs exactly one S and one G, found {len(s)} S and {len(g)} G")
    return int(s[0]), int(g[0])


def direction_order(tie_break: str) -> np.ndarray:
    names = [d.strip() for d in tie_break.split(",")]
    if sorted(names) != sorted(DIRECTIONS):
        raise InputError(f"tie_break {tie_break!r} must order all of {sorted(DIRECTIONS)}")
    return np.array([DIRECTIONS[d] for d in names], np.int64)


def distances(grid: np.ndarray, start: int) -> np.ndarray:
    """BFS move counts from ``start`` over non-wall cells [side, side] (-1 unreachable)."""
    g = np.asarray(grid)
    side = g.shape[0]
    dist = np.empty(g.size, np.int32)
    parent = np.empty(g.size, np.int32)
    _kernels.bfs(np.ascontiguousarray(g.reshape(-1) != WALL), side, side, start, np.arange(4), dist, parent)
    return dist.reshape(g.shape)


def shortest_path(grid: np.ndarray, tie_break: str = DEFAULT_TIE_BREAK) -> np.ndarray | None:
    """One shortest S->G path as flat cell indices (S and G included), or None if G is unreachable.

    Tie-breaking: BFS from S trying neighbours in ``tie_break`` order; every cell keeps its
    first discoverer as parent; the path is read back from G.
    """
    g = np.asarray(grid)
    side = g.shape[0]
    s, goal = endpoints(g)
    dist = np.empty(g.size, np.int32)
    parent = np.empty(g.size, np.int32)
    _kernels.bfs(np.ascontiguousarray(g.reshape(-1) != WALL), side, side, s, direction_order(tie_break), dist, parent)
    if dist[goal] < 0:
        return None
    path = [goal]
    while path[-1] != s:
        path.append(int(parent[path[-1]]))
    return np.array(path[::-1])


def n_shortest_paths(grid: np.ndarray) -> float:
    """Number of distinct shortest S->G paths (0 if unreachable)."""
    g = np.asarray(grid)
    s, goal = endpoints(g)
    return float(_kernels.count_shortest_paths(np.ascontiguousarray(g.reshape(-1) != WALL), g.shape[0], g.shape[1], s, goal))


def solve(grid: np.ndarray, tie_break: str = DEFAULT_TIE_BREAK) -> np.ndarray:
    """The label: the question with one shortest path's cells (S, G excluded) set to ``o``."""
    g = np.asarray(grid)
    if (g == PATH).any():
        raise InputError("the question already contains path cells 'o'")
    path = shortest_path(g, tie_break)
    if path is None:
        raise InputError("the goal cannot be reached from the start")
    out = g.copy().reshape(-1)
    out[path[1:-1]] = PATH
    return out.reshape(g.shape)


def path_is_valid(answer: np.ndarray, question: np.ndarray | None = None) -> bool:
    """The ``o`` cells with S and G contain a 4-connected S->G path, every ``o`` cell is open in the
    question (when given), and walls/S/G match the question."""
    a = np.asarray(answer)
    if question is not None:
        q = np.asarray(question)
        if (q == PATH).any() or ((a == PATH) & (q != OPEN)).any():
            return False
        keep = a != PATH
        if not (a[keep] == q[keep]).all():
            return False
    s, g = endpoints(a)
    walk = np.where(np.isin(a, (PATH, START, GOAL)), OPEN, WALL).astype(np.int8)
    return bool(distances(walk, s).reshape(-1)[g] >= 0)


def is_shortest(answer: np.ndarray, question: np.ndarray) -> bool:
    """A valid path whose ``o`` count equals the shortest path length minus one."""
    if not path_is_valid(answer, question):
        return False
    s, g = endpoints(question)
    return int((np.asarray(answer) == PATH).sum()) == int(distances(question, s).reshape(-1)[g]) - 1


def errors(pred: np.ndarray, label: np.ndarray, path_only: bool = False) -> np.ndarray:
    """Cells where the decoded grid differs from the label (any token; ``path_only``: only cells
    where one of the two is ``o``)."""
    p, l = np.asarray(pred), np.asarray(label)  # noqa: E741
    wrong = p != l
    if path_only:
        wrong &= (p == PATH) | (l == PATH)
    return wrong


def adjacent(mask: np.ndarray, diagonal: bool = False, include_self: bool = False) -> np.ndarray:
    """Cells with at least one 4-neighbour (8 with ``diagonal``) in ``mask``."""
    m = np.asarray(mask, bool)
    H, W = m.shape
    padded = np.pad(m, 1)
    out = np.zeros_like(m)
    shifts = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    if diagonal:
        shifts += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    for dr, dc in shifts:
        out |= padded[1 + dr : 1 + dr + H, 1 + dc : 1 + dc + W]
    if include_self:
        out |= m
    return out
