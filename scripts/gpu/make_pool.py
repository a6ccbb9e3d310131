"""The puzzle pool a GPU job carries instead of the 8 MB public collections: a seeded sample of
lines from the tdoku lists the data builder reads by default (AIR_SPEC 1.1; SOURCES.md there).

    python scripts/gpu/make_pool.py --data-dir ../shared/data/sudoku --n 4000 --seed 0
"""

import argparse
from pathlib import Path

import numpy as np

from airinterp.tasks.build import DEFAULT_COLLECTIONS

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/sudoku"))
ap.add_argument("--n", type=int, default=4000)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--out", type=Path, default=Path(__file__).with_name("sudoku_pool.txt"))
args = ap.parse_args()
lines = []
for name in DEFAULT_COLLECTIONS:
    text = (args.data_dir / name).read_text().splitlines()
    lines += [line.strip() for line in text if len(line.strip()) == 81]
rng = np.random.default_rng(args.seed)
chosen = sorted(rng.choice(len(lines), size=min(args.n, len(lines)), replace=False))
args.out.write_text("".join(lines[i] + "\n" for i in chosen))
print(f"{args.out}: {len(chosen)} of {len(lines)} puzzles from {', '.join(DEFAULT_COLLECTIONS)} (seed {args.seed})")
