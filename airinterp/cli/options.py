"""The options several commands share, declared once (help text, bounds), and the str Enums of choices.

Choices are plain ``str`` options on the command line, validated by the command's Run
(:mod:`airinterp.cli.runs`), so a bad value gets airinterp's one line (``--state 'zX': expected zH
or zL``) rather than click's usage box.
"""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class State(str, Enum):
    zH = "zH"
    zL = "zL"


class HeadReduce(str, Enum):
    mean = "mean"  # head average per row (ours)
    best = "best"  # the best head per row (the reference pipeline's)


class Violations(str, Enum):
    pre = "pre"  # V/E from the zH both compared updates read
    post_h0 = "post_h0"  # from zH after H0 (the reference's)


class TaskName(str, Enum):
    sudoku = "sudoku"
    maze = "maze"


Task = Annotated[str | None, typer.Option(help="sudoku or maze (default: the checkpoint's; sudoku without --checkpoint)")]
Checkpoint = Annotated[Path | None, typer.Option(help="airinterp checkpoint (default: the shipped default for --task)")]
Data = Annotated[Path | None, typer.Option(help="dataset directory whose test split to use (default: the one the checkpoint's card names)")]
NPuzzles = Annotated[int | None, typer.Option(min=1, help="puzzles (a seeded sample; default: 100, or the whole split if smaller)")]
Seed = Annotated[int, typer.Option(min=0, help="seed of the puzzle sample and of every bootstrap")]
BatchSize = Annotated[int, typer.Option(min=1, help="puzzles per forward")]
Device = Annotated[str, typer.Option(help="cpu, cuda or cuda:N")]
OutDir = Annotated[Path | None, typer.Option("-o", "--out", help="output directory (default: out/<command>/<checkpoint name>)")]
NAct = Annotated[int | None, typer.Option(min=1, help="ACT steps per rollout (default: the model's halt_max_steps)")]
