"""The ``airinterp`` command line. Thin: parse options, call the library, print tables.

Heavy imports (torch, transformer_lens) live inside the commands so ``--help`` stays fast.
"""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Mechanistic interpretability for AIR (Asymmetric Input Recurrence) models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _fail(message: str) -> "typer.Exit":
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


@app.command("import-reference")
def import_reference_cmd(
    weights: Annotated[Path, typer.Argument(help="reference checkpoint: a step_<N> file or .safetensors")],
    out: Annotated[Path, typer.Option("-o", "--out", help="airinterp checkpoint to write (.safetensors)")],
    config: Annotated[
        Path | None, typer.Option(help="reference all_config.yaml (default: beside WEIGHTS)")
    ] = None,
    seq_len: Annotated[int | None, typer.Option(help="cells per puzzle, if not derivable")] = None,
    dtype: Annotated[
        str | None, typer.Option(help="forward dtype to record (default: the config's; reference default bfloat16)")
    ] = None,
    store_bf16: Annotated[bool, typer.Option(help="store weights as bfloat16 (half the size)")] = False,
) -> None:
    """Convert a reference AIR checkpoint into an airinterp checkpoint."""
    import torch

    from airinterp.model.checkpoint import CheckpointError, import_reference, save

    try:
        model = import_reference(weights, config, seq_len=seq_len, forward_dtype=dtype)
    except (CheckpointError, ValueError) as err:
        raise _fail(str(err)) from None
    save(model, out, dtype=torch.bfloat16 if store_bf16 else None, source=str(weights))
    c = model.config
    typer.echo(
        f"wrote {out}: variant {c.variant}, task {c.task}, d={c.hidden_size}, heads={c.num_heads}, "
        f"layers={c.L_layers}, seq_len={c.seq_len}, vocab={c.vocab_size}, dtype={c.forward_dtype}"
    )


@app.command("verify-reference")
def verify_reference_cmd(
    fixture: Annotated[Path, typer.Argument(help="reference dump manifest (.json beside its .safetensors)")],
    tol: Annotated[float, typer.Option(help="max absolute difference allowed per tensor")] = 1e-4,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="run this airinterp checkpoint instead of the dump's own weights"),
    ] = None,
) -> None:
    """Run airinterp on a reference dump and print the max |difference| of every tensor in it."""
    from rich.console import Console
    from rich.table import Table

    import airinterp
    from airinterp.model.checkpoint import CheckpointError
    from airinterp.model.reference import Fixture, load_fixture, verify

    try:
        fx = load_fixture(fixture)
        if checkpoint is not None:
            model = airinterp.load(checkpoint, dtype=fx.config.forward_dtype)
            if model.config.model_dump(exclude={"task"}) != fx.config.model_dump(exclude={"task"}):
                raise CheckpointError(f"{checkpoint}: config differs from the dump's: {model.config} vs {fx.config}")
            fx = Fixture(fx.case, fx.config, model, fx.tensors, fx.n_act)
        results = verify(fx, device=device)
    except (CheckpointError, ValueError) as err:
        raise _fail(str(err)) from None
    table = Table(title=f"{fx.case}: {fx.config.variant}, {fx.n_act} ACT steps, tol {tol:g}")
    for col in ("tensor", "airinterp hook", "shape", "max |diff|", "bitwise", "ok"):
        table.add_column(col)
    failed = 0
    for r in results:
        ok = r.max_abs_diff <= tol
        failed += not ok
        table.add_row(r.tensor, r.hook, str(list(r.shape)), f"{r.max_abs_diff:.3g}", "yes" if r.bitwise else "no",
                      "[green]ok[/]" if ok else "[red]FAIL[/]")  # fmt: skip
    Console(width=160).print(table)
    worst = max(results, key=lambda r: r.max_abs_diff)
    typer.echo(
        f"{len(results)} tensors, {sum(r.bitwise for r in results)} bitwise, worst {worst.tensor} "
        f"{worst.max_abs_diff:.3g}: {'FAIL' if failed else 'PASS'}"
    )
    if failed:
        raise typer.Exit(code=1)


@app.command("hooks")
def hooks_cmd(
    checkpoint: Annotated[Path | None, typer.Argument(help="airinterp checkpoint (default: paper config)")] = None,
    n_act: Annotated[int, typer.Option(help="ACT steps of the rollout")] = 1,
    pattern: Annotated[str | None, typer.Option("--filter", help="glob on names, e.g. 'act.*.H*.blocks.3.*'")] = None,
    markdown: Annotated[bool, typer.Option(help="print the markdown catalogue (docs/hooks.md)")] = False,
) -> None:
    """List hook names with their shapes."""
    from airinterp.model.hooks import glob, hook_catalogue

    if markdown:
        from airinterp.model.catalogue import markdown_catalogue

        typer.echo(markdown_catalogue(), nl=False)
        return
    if checkpoint is not None:
        from airinterp.model.checkpoint import CheckpointError, load

        try:
            cfg = load(checkpoint).config
        except CheckpointError as err:
            raise _fail(str(err)) from None
    else:
        from airinterp.model.catalogue import paper_config

        cfg = paper_config()
    keep = glob(pattern) if pattern else (lambda _: True)
    for name, shape in hook_catalogue(cfg, n_act):
        if keep(name):
            typer.echo(f"{name}\t[{shape}]")


@app.command("info")
def info_cmd(checkpoint: Annotated[Path, typer.Argument(help="airinterp checkpoint")]) -> None:
    """Print a checkpoint's config, update rules and parameter count."""
    from airinterp.model.air import update_rule_text
    from airinterp.model.checkpoint import CheckpointError, load

    try:
        model = load(checkpoint)
    except CheckpointError as err:
        raise _fail(str(err)) from None
    for k, v in model.config.model_dump().items():
        typer.echo(f"{k}: {v}")
    typer.echo("L-update: " + update_rule_text(model.config.variant, "L"))
    typer.echo("H-update: " + update_rule_text(model.config.variant, "H"))
    typer.echo(f"parameters: {sum(p.numel() for p in model.parameters()):,}")


data_app = typer.Typer(help="Build Sudoku-Extreme-like and Maze-Hard-like datasets (reference on-disk format).", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _progress():
    """A rich progress display and a factory of advance callbacks, one task per phase."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    display = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()
    )

    def factory(name: str, total: int):
        task = display.add_task(name, total=total)
        return lambda n=1: display.advance(task, n)

    return display, factory


def _build(make_run, build, out: Path) -> None:
    """Validate a data run config, build it with progress bars, print its statistics."""
    import json

    try:
        run = make_run()
        display, factory = _progress()
        with display:
            stats = build(run, factory)
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        raise _fail(str(err)) from None
    typer.echo(json.dumps(stats, indent=1, sort_keys=True, default=str)[:4000])
    typer.echo(f"wrote {out} (airinterp_build.json has the config and these statistics)")


@data_app.command("sudoku")
def data_sudoku_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset directory to write")],
    train: Annotated[int, typer.Option(help="train puzzles (groups)")] = 1000,
    aug: Annotated[int, typer.Option(help="random symmetry transforms per train puzzle")] = 1000,
    test: Annotated[int, typer.Option(help="test puzzles")] = 1000,
    seed: Annotated[int, typer.Option(help="seed of every random choice")] = 0,
    size: Annotated[str, typer.Option(help="9x9, 6x6 (2x3 boxes) or 4x4; 4x4/6x6 are generated")] = "9x9",
    source: Annotated[
        list[Path] | None, typer.Option(help="puzzle collection (one per line); repeat; default: the tdoku lists in --data-dir")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="folder with the public collections")] = Path("../shared/data/sudoku"),
    hub_train_csv: Annotated[Path | None, typer.Option(help="the hub's train.csv (source,question,answer,rating)")] = None,
    hub_test_csv: Annotated[Path | None, typer.Option(help="the hub's test.csv")] = None,
    min_rating: Annotated[
        int | None, typer.Option(help="keep puzzles rated at least this (default: 1 for the 9x9 collections, 0 for hub CSVs and 4x4/6x6)")
    ] = None,
) -> None:
    """Sudoku dataset: solve, rate, split (no symmetry-equivalent puzzles across splits), augment."""
    from airinterp.tasks.build import DEFAULT_COLLECTIONS, SudokuDataRun, build_sudoku

    sources = tuple(source or ())
    if not sources and size == "9x9" and hub_train_csv is None:
        sources = tuple(data_dir / name for name in DEFAULT_COLLECTIONS)
        missing = [str(p) for p in sources if not p.is_file()]
        if missing:
            raise _fail(f"puzzle collections not found: {missing}; pass --source or --data-dir")
    _build(lambda: SudokuDataRun(out=out, train=train, aug=aug, test=test, seed=seed, size=size, sources=sources,  # type: ignore[arg-type]
                                 hub_train_csv=hub_train_csv, hub_test_csv=hub_test_csv, min_rating=min_rating),
           build_sudoku, out)  # fmt: skip


@data_app.command("maze")
def data_maze_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset directory to write")],
    train: Annotated[int, typer.Option(help="train mazes")] = 1000,
    test: Annotated[int, typer.Option(help="test mazes")] = 1000,
    seed: Annotated[int, typer.Option(help="seed of every random choice")] = 0,
    size: Annotated[int, typer.Option(help="grid side")] = 30,
    min_path: Annotated[int | None, typer.Option(help="minimum shortest-path cells incl. S and G (default 110 x size/30)")] = None,
    tie_break: Annotated[str, typer.Option(help="BFS neighbour order that picks the labelled shortest path")] = "down,left,right,up",
    max_draws: Annotated[int, typer.Option(help="S/G draws per wall layout (Searchformer: 100)")] = 100,
) -> None:
    """Maze dataset: random walls (30-50 %), random S/G, long shortest paths; distinct layouts."""
    from airinterp.tasks.build import MazeDataRun, build_maze

    _build(lambda: MazeDataRun(out=out, train=train, test=test, seed=seed, size=size, min_path_cells=min_path,
                               tie_break=tie_break, max_draws=max_draws), build_maze, out)  # fmt: skip


@app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option("--data", help="dataset directory (airinterp data ... or the reference's)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="run directory (checkpoints, metrics, card)")],
    task: Annotated[str | None, typer.Option(help="sudoku or maze (checked against the data)")] = None,
    variant: Annotated[str, typer.Option(help="AIR variant")] = "Lx_H",
    preset: Annotated[str, typer.Option(help="paper, gpu-short, cpu-small or tiny")] = "paper",
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    epochs: Annotated[int | None, typer.Option(help="override the preset's epochs")] = None,
    eval_interval: Annotated[int | None, typer.Option(help="epochs per iteration (evaluate + checkpoint)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="override the global batch size")] = None,
    lr: Annotated[float | None, typer.Option(help="override the learning rate")] = None,
    hidden: Annotated[int | None, typer.Option(help="override the width")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after this many optimizer steps")] = None,
    max_minutes: Annotated[float | None, typer.Option(help="stop after this many minutes of training")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="also checkpoint every N steps")] = 0,
    eval_limit: Annotated[int | None, typer.Option(help="test puzzles per evaluation")] = 1000,
    dtype: Annotated[str | None, typer.Option(help="forward dtype: float32 or bfloat16")] = None,
    compile: Annotated[bool, typer.Option(help="torch.compile the blocks")] = False,
    resume: Annotated[bool, typer.Option(help="continue from OUT/latest")] = False,
) -> None:
    """Train AIR with the reference recipe (ACT, deep supervision, AdamATan2); resumable."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from airinterp.train.config import TrainRun
    from airinterp.train.loop import Trainer

    try:
        run = TrainRun.from_preset(
            preset, data=data, out=out, variant=variant, seed=seed, device=device, epochs=epochs,
            eval_interval=eval_interval, global_batch_size=batch_size, lr=lr, hidden_size=hidden, max_steps=max_steps,
            max_minutes=max_minutes,
            checkpoint_every=checkpoint_every, eval_limit=eval_limit, forward_dtype=dtype, compile=compile,
        )  # fmt: skip
        trainer = Trainer(run, log=typer.echo)
        if task is not None and trainer.config.task != task:
            raise ValueError(f"--task {task}, but {data} holds {trainer.config.task} data")
        if resume and not trainer.resume():
            typer.echo(f"no checkpoint in {out}; starting fresh")
        elif not resume and (out / "latest").is_file():
            raise ValueError(f"{out} already holds a run; pass --resume or another --out")
    except (ValueError, FileNotFoundError) as err:
        raise _fail(str(err)) from None
    columns = (TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns) as bar:
        task_id = bar.add_task("train", total=trainer.stop_at, completed=trainer.pos.step, info="")

        def show(step: int, v: dict) -> None:
            info = f"loss {v['lm_loss']:.3f} acc {v['accuracy']:.3f} exact {v['exact_accuracy']:.3f} {v['steps_per_s']:.2f} it/s"
            bar.update(task_id, completed=step, info=info)

        summary = trainer.fit(show)
    if trainer.rank != 0:
        return
    typer.echo(f"wrote {out}/model.safetensors and card.json after {trainer.pos.step} steps")
    if summary:
        typer.echo(f"exact_accuracy={summary['exact_accuracy']:.6f} token_accuracy={summary['token_accuracy']:.6f} n={summary['n']}")


@app.command("eval")
def eval_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="airinterp checkpoint")],
    data: Annotated[Path, typer.Option("--data", help="dataset directory")],
    split: Annotated[str, typer.Option(help="train or test")] = "test",
    n: Annotated[int | None, typer.Option("--n", help="first N puzzles of the split (default: all)")] = None,
    batch_size: Annotated[int, typer.Option(help="puzzles per forward")] = 256,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    out: Annotated[Path | None, typer.Option(help="per-puzzle table (.csv or .parquet)")] = None,
) -> None:
    """Evaluate as the reference (all ACT steps, decoded from z_H); last line: exact_accuracy=... token_accuracy=... n=..."""
    from airinterp.model.checkpoint import CheckpointError, load
    from airinterp.train.evaluate import evaluate

    try:
        from airinterp.tasks.dataset import PuzzleDataset

        model = load(checkpoint, device=device)
        available = PuzzleDataset(data, split).n_examples
        display, factory = _progress()
        with display:
            df, summary = evaluate(model, data, split, n, batch_size, factory(f"eval {split}", min(n or available, available)))
    except (CheckpointError, ValueError, FileNotFoundError) as err:
        raise _fail(str(err)) from None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(out) if out.suffix == ".parquet" else df.to_csv(out, index=False)
        typer.echo(f"wrote {out}")
    typer.echo(f"nongiven_accuracy={summary['nongiven_accuracy']:.6f} q_halt_accuracy={summary['q_halt_accuracy']:.6f}")
    typer.echo(f"exact_accuracy={summary['exact_accuracy']:.6f} token_accuracy={summary['token_accuracy']:.6f} n={summary['n']}")


if __name__ == "__main__":  # pragma: no cover
    app()
