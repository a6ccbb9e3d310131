#!/usr/bin/env python
"""Task kernels: Sudoku solver throughput and maze generation rate, with the distributions.

- solver: puzzles/s on the hardest shared collection (``puzzles6_forum_hardest_1106``: 375
  puzzles), counting solutions up to 2 (so uniqueness is proven), compile time excluded;
  also on the 17-clue and the top-1465 lists for comparison;
- maze generation: mazes/s for the 30x30 Maze-Hard recipe (and 10x10 / 15x15), plus the wall
  fraction, path-length and shortest-path multiplicity distributions (spec 1.4).

    python benchmarks/bench_tasks.py --data-dir ../shared/data/sudoku
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from airinterp.tasks.maze import MazeSpec
from airinterp.tasks.maze_data import describe, generate_mazes
from airinterp.tasks.sudoku import solve_many
from airinterp.tasks.sudoku_data import read_collection


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="../shared/data/sudoku")
    p.add_argument("--sample", type=int, default=1000, help="puzzles per other collection")
    p.add_argument("--mazes", type=int, default=100, help="30x30 mazes to generate")
    args = p.parse_args()
    d = Path(args.data_dir)
    names = ("puzzles6_forum_hardest_1106.txt", "puzzles3_magictour_top1465.txt", "puzzles2_17_clue.txt")
    present = [n for n in names if (d / n).is_file()]
    if not present:
        p.error(f"--data-dir {d}: none of {', '.join(names)} is there")
    for name in sorted(set(names) - set(present)):
        print(f"solver {name}: not in {d}, skipped")
    solve_many(np.stack(read_collection(d / present[0])[0][:2]))  # compile
    for name in present:
        grids, _ = read_collection(d / name)
        grids = np.stack(grids[: args.sample] if "1106" not in name else grids)
        t = time.perf_counter()
        n, _, ratings = solve_many(grids)
        dt = time.perf_counter() - t
        print(f"solver {name}: {len(grids)} puzzles, {len(grids) / dt:.0f} puzzles/s (uniqueness proven), "
              f"unique {int((n == 1).sum())}, rating median {np.median(ratings):.0f}, p90 {np.percentile(ratings, 90):.0f}")  # fmt: skip
    for side, count in ((10, 200), (15, 200), (30, args.mazes)):
        spec = MazeSpec(side)
        generate_mazes(1, 0, spec)  # compile
        t = time.perf_counter()
        mazes, stats = generate_mazes(count, 1, spec)
        dt = time.perf_counter() - t
        print(f"\nmaze {side}x{side}: {count / dt:.1f} mazes/s on one core ({stats['layouts_tried']} layouts, "
              f"min path {stats['min_path_cells']} cells)")  # fmt: skip
        print(json.dumps(describe(mazes, spec), indent=1))


if __name__ == "__main__":
    main()
