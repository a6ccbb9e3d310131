"""Dataset commands: ``airinterp data sudoku`` and ``airinterp data maze``."""

from pathlib import Path
from typing import Annotated

import typer

from airinterp.cli._common import TidyGroup, app, fail, input_errors, progress

data_app = typer.Typer(help="Build Sudoku-Extreme-like and Maze-Hard-like datasets (reference on-disk format).",
                       no_args_is_help=True, rich_markup_mode=None, cls=TidyGroup)  # fmt: skip
app.add_typer(data_app, name="data", short_help="Build Sudoku-Extreme-like and Maze-Hard-like datasets")

Force = Annotated[bool, typer.Option("--force", help="replace --out if it already holds files")]


def _build(make_run, build, out: Path, force: bool, check=None) -> None:
    """Validate the run config and its inputs, build it with progress bars into a hidden sibling
    of ``out``, move it into place, print its statistics."""
    import json

    from airinterp.tasks.build import prepare_out, write_atomically

    try:
        run = make_run()
        if check is not None:
            check(run)
        prepare_out(out, force)
    except input_errors() as err:
        raise fail(err) from None
    try:
        display, factory = progress()
        with display:
            stats = write_atomically(run, build, factory, force)
    except (*input_errors(), RuntimeError) as err:
        raise fail(err) from None
    typer.echo(json.dumps(stats, indent=1, sort_keys=True, default=str)[:4000])
    typer.echo(f"wrote {out} (airinterp_build.json has the config and these statistics)")


@data_app.command("sudoku", short_help="Build a Sudoku-Extreme-like dataset")
def data_sudoku_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset directory to write")],
    train: Annotated[int, typer.Option(min=1, help="train puzzles (groups)")] = 1000,
    aug: Annotated[int, typer.Option(min=0, help="random symmetry transforms per train puzzle")] = 1000,
    test: Annotated[int, typer.Option(min=1, help="test puzzles")] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="seed of every random choice")] = 0,
    size: Annotated[str, typer.Option(help="9x9, 6x6 (2x3 boxes) or 4x4; 4x4/6x6 are generated")] = "9x9",
    source: Annotated[
        list[Path] | None, typer.Option(help="puzzle collection (one per line); repeat; default: the tdoku lists in --data-dir")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="folder with the public collections")] = Path("../shared/data/sudoku"),
    hub_train_csv: Annotated[Path | None, typer.Option(help="the hub's train.csv (source,question,answer,rating)")] = None,
    hub_test_csv: Annotated[Path | None, typer.Option(help="the hub's test.csv")] = None,
    min_rating: Annotated[
        int | None, typer.Option(min=0, help="keep puzzles rated at least this (default: 1 for the 9x9 collections, 0 for hub CSVs and 4x4/6x6)")
    ] = None,
    force: Force = False,
) -> None:
    """Sudoku dataset: solve, rate, split (no symmetry-equivalent puzzles across splits), augment."""
    from airinterp.tasks.build import DEFAULT_COLLECTIONS, SudokuDataRun, build_sudoku, check_sources

    sources = tuple(source or ())
    if not sources and size == "9x9" and hub_train_csv is None and hub_test_csv is None:
        sources = tuple(data_dir / name for name in DEFAULT_COLLECTIONS)
        missing = [str(p) for p in sources if not p.is_file()]
        if missing:
            raise fail(f"--data-dir {data_dir}: puzzle collections not found: {missing} (the public tdoku benchmark lists, "
                       "one 81-character puzzle per line; the project keeps them in ../shared/data/sudoku, see its SOURCES.md); "
                       "pass --data-dir DIR, --source FILE, or --hub-train-csv/--hub-test-csv")  # fmt: skip
    _build(lambda: SudokuDataRun(out=out, train=train, aug=aug, test=test, seed=seed, size=size, sources=sources,  # type: ignore[arg-type]
                                 hub_train_csv=hub_train_csv, hub_test_csv=hub_test_csv, min_rating=min_rating),
           build_sudoku, out, force, check_sources)  # fmt: skip


@data_app.command("maze", short_help="Build a Maze-Hard-like dataset")
def data_maze_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset directory to write")],
    train: Annotated[int, typer.Option(min=1, help="train mazes")] = 1000,
    test: Annotated[int, typer.Option(min=1, help="test mazes")] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="seed of every random choice")] = 0,
    size: Annotated[int, typer.Option(min=4, max=64, help="grid side")] = 30,
    min_path: Annotated[int | None, typer.Option(min=2, help="minimum shortest-path cells incl. S and G (default 110 x size/30)")] = None,
    tie_break: Annotated[str, typer.Option(help="BFS neighbour order that picks the labelled shortest path")] = "down,left,right,up",
    max_draws: Annotated[int, typer.Option(min=1, help="S/G draws per wall layout (Searchformer: 100)")] = 100,
    force: Force = False,
) -> None:
    """Maze dataset: random walls (30-50 %), random S/G, long shortest paths; distinct layouts."""
    from airinterp.tasks.build import MazeDataRun, build_maze

    _build(lambda: MazeDataRun(out=out, train=train, test=test, seed=seed, size=size, min_path_cells=min_path,
                               tie_break=tie_break, max_draws=max_draws), build_maze, out, force)  # fmt: skip
