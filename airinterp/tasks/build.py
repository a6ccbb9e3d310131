"""Build datasets on disk (the reference's format, :mod:`airinterp.tasks.dataset`).

Every random choice comes from the run's ``seed``; the same run config gives the same bytes.
``airinterp_build.json`` beside the splits records the config, the package version and statistics
(sources, rating and path-length distributions).
"""

import codecs
import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from airinterp._version import __version__
from airinterp.errors import InputError
from airinterp.io import staging_dir
from airinterp.tasks import maze as maze_rules
from airinterp.tasks.dataset import write_split
from airinterp.tasks.maze_data import describe, generate_mazes
from airinterp.tasks.sudoku import VOCAB_SIZE as SUDOKU_VOCAB
from airinterp.tasks.sudoku import SudokuSpec
from airinterp.tasks.sudoku_data import augment, read_collection, read_hub_csv, select_puzzles, to_arrays
from airinterp.types import ProgressFactory

DEFAULT_COLLECTIONS = (
    "puzzles2_17_clue.txt",
    "puzzles3_magictour_top1465.txt",
    "puzzles5_forum_hardest_1905_11+.txt",
    "puzzles6_forum_hardest_1106.txt",
)  # puzzles7_serg_benchmark: every puzzle has several solutions by design



class SudokuDataRun(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    out: Path
    train: int = Field(1000, ge=1)
    aug: int = Field(1000, ge=0)
    test: int = Field(1000, ge=1)
    seed: int = Field(0, ge=0)
    size: Literal["4x4", "6x6", "9x9"] = "9x9"
    sources: tuple[Path, ...] = ()  # puzzle-per-line collections (9x9); empty + size<9: generated
    hub_train_csv: Path | None = None  # the hub's train.csv / test.csv, used instead of sources
    hub_test_csv: Path | None = None
    # None: 0 for the hub CSVs (the reference filters nothing) and generated grids; 1 for the 9x9
    # collections (drop puzzles that singles alone solve: "keep the hard ones")
    min_rating: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> "SudokuDataRun":
        if (self.hub_train_csv is None) != (self.hub_test_csv is None):
            raise InputError("give both hub_train_csv and hub_test_csv")
        if self.hub_train_csv is not None and self.sources:
            raise InputError("give puzzle sources or the hub CSVs, not both")
        if self.size == "9x9" and not self.sources and self.hub_train_csv is None:
            raise InputError("9x9 needs puzzle sources (--source FILE ...) or the hub CSVs")
        return self

    @property
    def effective_min_rating(self) -> int:
        if self.min_rating is not None:
            return self.min_rating
        return 1 if self.size == "9x9" and self.hub_train_csv is None else 0


class MazeDataRun(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    out: Path
    train: int = Field(1000, ge=1)
    test: int = Field(1000, ge=1)
    seed: int = Field(0, ge=0)
    size: int = Field(30, ge=4, le=64)
    min_path_cells: int | None = None  # default: 110 scaled by size / 30
    tie_break: str = maze_rules.DEFAULT_TIE_BREAK
    max_draws: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "MazeDataRun":
        maze_rules.direction_order(self.tie_break)  # raises for a bad order
        n = self.size * self.size
        if self.min_path_cells is not None and not 2 <= self.min_path_cells <= n:
            raise InputError(f"min_path_cells must lie in [2, {n}] for a {self.size}x{self.size} maze, got {self.min_path_cells}: lower --min-path")
        return self


def check_sources(run: SudokuDataRun) -> None:
    """Every puzzle file exists and is text, before any work is done."""
    for path in (*run.sources, run.hub_train_csv, run.hub_test_csv):
        if path is None:
            continue
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: {'is a directory' if p.is_dir() else 'no such file'}; expected a text file of puzzles")
        with open(p, "rb") as f:
            head = f.read(1 << 16)
        try:
            if b"\0" in head:
                raise UnicodeDecodeError("utf-8", head, 0, 1, "NUL byte")
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            raise InputError(f"{p}: not a text file (binary data); expected one puzzle per line or the hub's CSV") from None


def prepare_out(out: Path, force: bool, what: str = "dataset") -> None:
    """``out`` may be new, an empty directory, or (``force``) a directory to replace."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; expected a {what} directory to create")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"--out {out}: is not empty; pick a new directory or pass --force to replace it")


def write_atomically(run: BaseModel, build: Callable, progress: "ProgressFactory | None", force: bool = False) -> dict:
    """Build into a hidden sibling of ``run.out`` and move it into place when complete: an error
    or a kill never leaves half a dataset, and a replaced one (``force``) stays until then."""
    out = Path(run.out)  # type: ignore[attr-defined]
    prepare_out(out, force)
    with staging_dir(out) as tmp:
        stats = build(run.model_copy(update={"out": tmp}), progress)
    return stats


def _ratings(puzzles) -> dict:
    r = np.array([p.rating for p in puzzles]) if puzzles else np.zeros(1)
    return {k: float(v) for k, v in zip(("min", "p10", "median", "p90", "max"), np.percentile(r, [0, 10, 50, 90, 100]), strict=True)}


def _write_record(run: BaseModel, out: Path, stats: dict) -> None:
    config = json.loads(run.model_dump_json(exclude={"out"}))  # where it lies is not part of what it is
    record = {"airinterp_version": __version__, "config": config, "stats": stats}
    (out / "airinterp_build.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def build_sudoku(run: SudokuDataRun, progress: ProgressFactory | None = None) -> dict:
    spec = SudokuSpec.parse(run.size)
    bar = (lambda name, total: progress(name, total)) if progress else (lambda name, total: None)
    stats: dict = {"size": spec.name, "min_rating": run.effective_min_rating}
    if run.hub_train_csv or run.hub_test_csv:
        assert run.hub_train_csv and run.hub_test_csv  # SudokuDataRun checks
        rng = np.random.default_rng(run.seed)
        picked = {}
        for split, path, n in (("train", run.hub_train_csv, run.train), ("test", run.hub_test_csv, run.test)):
            rows, bad = read_hub_csv(path, spec)
            stats[f"{split}_bad_rows"] = [{"row": b.row, "reason": b.reason} for b in bad[:100]]
            stats[f"{split}_bad_row_count"] = len(bad)
            rows = [p for p in rows if p.rating >= run.effective_min_rating]
            if len(rows) < n:
                raise InputError(f"{path}: only {len(rows)} usable rows, asked for {n}")
            picked[split] = [rows[i] for i in np.sort(rng.choice(len(rows), n, replace=False))]
        train, test = picked["train"], picked["test"]
        seen = {p.puzzle.tobytes() for p in train}
        shared = sum(p.puzzle.tobytes() in seen for p in test)
        if shared:  # e.g. the same CSV given twice: test accuracy would measure memorised puzzles
            raise InputError(f"{run.hub_test_csv}: {shared} of the {len(test)} test puzzles are also train puzzles "
                             f"(from {run.hub_train_csv}); train and test must not share puzzles")  # fmt: skip
    else:
        candidates = None
        if run.sources:
            candidates = []
            for src in run.sources:
                grids, bad = read_collection(src, spec)
                stats.setdefault("source_bad_lines", {})[Path(src).name] = len(bad)
                candidates += [(g, Path(src).stem) for g in grids]
            stats["candidates"] = len(candidates)
        elif spec.side == 9:
            raise InputError("9x9 needs puzzle sources (--source FILE ...) or the hub CSVs")
        sel = select_puzzles(candidates, run.train, run.test, run.seed, spec, run.effective_min_rating, bar("select puzzles", run.train + run.test))
        train, test = sel.train, sel.test
        stats["selection"] = sel.stats
    stats["train_rating"], stats["test_rating"] = _ratings(train), _ratings(test)
    stats["train_sources"] = {s: sum(p.source == s for p in train) for s in sorted({p.source for p in train})}
    stats["test_sources"] = {s: sum(p.source == s for p in test) for s in sorted({p.source for p in test})}
    inputs, labels, groups = augment(train, run.aug, run.seed + 1, spec, bar("augment train", len(train)))
    write_split(run.out, "train", inputs, labels, groups, SUDOKU_VOCAB)
    t_in, t_lab = to_arrays(test) if test else (np.zeros((0, spec.n_cells), np.uint8),) * 2
    write_split(run.out, "test", t_in, t_lab, [1] * len(test), SUDOKU_VOCAB)
    stats["train_examples"], stats["test_examples"] = int(inputs.shape[0]), len(test)
    _write_record(run, Path(run.out), stats)
    return stats


def build_maze(run: MazeDataRun, progress: ProgressFactory | None = None) -> dict:
    spec = maze_rules.MazeSpec(run.size)
    seen: set[bytes] = set()
    stats: dict = {"size": spec.side}
    for split, n, seed in (("train", run.train, run.seed), ("test", run.test, run.seed + 1)):
        bar = progress(f"generate {split} mazes", n) if progress else None
        mazes, gen = generate_mazes(n, seed, spec, run.min_path_cells, run.tie_break, run.max_draws, seen, bar)
        q = np.stack([m.question.reshape(-1) for m in mazes]) if mazes else np.zeros((0, spec.n_cells), np.uint8)
        a = np.stack([m.answer.reshape(-1) for m in mazes]) if mazes else np.zeros((0, spec.n_cells), np.uint8)
        write_split(run.out, split, q, a, [1] * len(mazes), maze_rules.VOCAB_SIZE)
        stats[split] = gen | (describe(mazes, spec) if mazes else {})
    _write_record(run, Path(run.out), stats)
    return stats
