"""Maze-Hard-like generation (spec 1.4): Searchformer's recipe with a long-path filter.

For an N x N grid: the wall count k is uniform in [3 floor(N^2/10), 5 floor(N^2/10)], the walls
are the first k cells of a random permutation, S and G are distinct random open cells drawn up to
100 times per layout, and a draw is kept if its shortest path has at least ``min_path_cells`` cells
(S and G included). The label marks one shortest path chosen by a BFS tie-break rule.

Naive rejection keeps about one maze in 1,100 layouts (one S/G draw in ~10^5). We sample the same
distribution faster: per layout, :func:`_kernels.far_pairs` finds every qualifying ordered pair
(with cheap diameter bounds that discard most layouts after 3 BFS per component); the naive loop
would succeed with probability 1 - (1 - q)^100 (q = qualifying fraction of ordered pairs) and,
given success, return a uniform qualifying pair, so that is what we draw.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from airinterp.errors import InputError
from airinterp.tasks import _kernels
from airinterp.tasks.maze import (
    DEFAULT_TIE_BREAK,
    GOAL,
    MAZE_30,
    OPEN,
    START,
    WALL,
    MazeSpec,
    n_shortest_paths,
    solve,
)


@dataclass
class Maze:
    question: np.ndarray  # [side, side] token ids
    answer: np.ndarray
    n_walls: int
    path_cells: int  # S and G included
    n_shortest: float  # distinct shortest paths


def generate_mazes(
    n: int,
    seed: int,
    spec: MazeSpec = MAZE_30,
    min_path_cells: int | None = None,
    tie_break: str = DEFAULT_TIE_BREAK,
    max_draws: int = 100,
    exclude_layouts: "set[bytes] | None" = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Maze], dict]:
    """``n`` mazes with distinct wall layouts (also distinct from ``exclude_layouts``)."""
    side, N = spec.side, spec.n_cells
    min_cells = spec.default_min_path_cells if min_path_cells is None else min_path_cells
    if not 2 <= min_cells <= N:
        raise InputError(f"min_path_cells must lie in [2, {N}] for a {side}x{side} maze, got {min_cells}: lower --min-path")
    lo, hi = 3 * (N // 10), 5 * (N // 10)
    rng = np.random.default_rng(seed)
    cap = N * N
    buf_s, buf_g = np.empty(cap, np.int32), np.empty(cap, np.int32)
    seen = set() if exclude_layouts is None else exclude_layouts
    out: list[Maze] = []
    layouts = 0
    while len(out) < n:
        layouts += 1
        if layouts > 200_000 and not out:  # ~25x the layouts one 10x10 maze needs
            raise RuntimeError(f"no {side}x{side} maze with a {min_cells}-cell path in {layouts - 1} layouts: lower --min-path")
        k = int(rng.integers(lo, hi + 1))
        open_cells = np.ones(N, np.bool_)
        open_cells[rng.permutation(N)[:k]] = False
        found, total = _kernels.far_pairs(open_cells, side, side, min_cells - 1, cap, buf_s, buf_g)
        if found == 0:
            continue
        if rng.random() >= 1.0 - (1.0 - found / total) ** max_draws:
            continue
        key = np.packbits(open_cells).tobytes()
        if key in seen:
            continue
        seen.add(key)
        j = int(rng.integers(found))
        q = np.where(open_cells, OPEN, WALL).astype(np.int8)
        q[buf_s[j]] = START
        q[buf_g[j]] = GOAL
        q = q.reshape(side, side)
        a = solve(q, tie_break)
        out.append(Maze(q, a, k, int((a == 5).sum()) + 2, n_shortest_paths(q)))
        if progress:
            progress(1)
    stats = {"layouts_tried": layouts, "mazes": len(out), "min_path_cells": min_cells, "tie_break": tie_break}
    return out, stats


def describe(mazes: list[Maze], spec: MazeSpec) -> dict:
    """Wall fraction, path length and shortest-path multiplicity, to compare with spec 1.4."""
    walls = np.array([m.n_walls / spec.n_cells for m in mazes])
    paths = np.array([m.path_cells for m in mazes])
    multi = np.array([m.n_shortest > 1 for m in mazes])

    def q(x: np.ndarray) -> dict:
        return {k: float(v) for k, v in zip(("min", "p10", "median", "p90", "max"), np.percentile(x, [0, 10, 50, 90, 100]), strict=True)}

    return {
        "n": len(mazes),
        "wall_fraction": q(walls) | {"mean": float(walls.mean())},
        "path_cells": q(paths) | {"mean": float(paths.mean())},
        "fraction_several_shortest_paths": float(multi.mean()),
        "median_shortest_paths": float(np.median([m.n_shortest for m in mazes])),
    }
