"""Training and evaluation: ``airinterp train`` and ``airinterp eval``."""

from pathlib import Path
from typing import Annotated

import typer

from airinterp.cli._common import app, check_device, fail, input_errors, progress, progress_columns
from airinterp.cli.output import check_file_out, check_not_inside_inputs, said, write_table

# CLI option -> TrainRun field, for the options that override a preset
_FIELDS = {
    "variant": "variant", "seed": "seed", "device": "device", "epochs": "epochs", "eval_interval": "eval_interval",
    "batch_size": "global_batch_size", "lr": "lr", "hidden": "hidden_size", "max_steps": "max_steps",
    "max_minutes": "max_minutes", "checkpoint_every": "checkpoint_every", "eval_limit": "eval_limit",
    "dtype": "forward_dtype", "compile": "compile", "preset": "preset", "init_from": "init_from",
    "act_steps": "halt_max_steps", "h_cycles": "H_cycles", "l_cycles": "L_cycles", "layers": "L_layers", "heads": "num_heads",
    "expansion": "expansion", "warmup": "lr_warmup_steps", "threads": "threads", "checkpoint_at": "checkpoint_at",
    "ema_rate": "ema_rate", "family": "family", "h_layers": "H_layers", "mlp_t": "mlp_t", "prefix_len": "puzzle_emb_len", "pos_encodings": "pos_encodings",
}  # fmt: skip


def _option(field: str) -> str:
    cli = {v: k for k, v in _FIELDS.items()}.get(field, field)
    return "--" + cli.replace("_", "-")


def _resumed_run(saved, out: Path, data: Path | None, given: dict):
    """The saved run's settings with the options given now: free ones (limits, the data's path)
    override, others must agree."""
    from airinterp.errors import InputError
    from airinterp.train.loop import FREE_SETTINGS

    fields = {_FIELDS[k]: v for k, v in given.items()}
    differs = [f"{_option(f)} {v} (the run has {getattr(saved, f)})" for f, v in fields.items()
               if f not in FREE_SETTINGS and v != getattr(saved, f)]  # fmt: skip
    if differs:
        raise InputError(f"cannot resume {out} with other settings: {'; '.join(differs)}; a resumed run keeps its own, "
                         "drop these options or start a new --out")  # fmt: skip
    data = data if data is not None else saved.data
    if not (Path(data) / "train" / "dataset.json").is_file():
        raise InputError(f"the run's data {data} is not found from here; pass --data")
    free = {f: v for f, v in fields.items() if f in FREE_SETTINGS}
    return saved.model_copy(update={**free, "out": out, "data": Path(data)})


@app.command("train", short_help="Train AIR, HRM or TRM with the reference recipe")
def train_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="run directory (checkpoints, metrics, card)")],
    data: Annotated[Path | None, typer.Option("--data", help="dataset directory (airinterp data ... or the reference's); on --resume default: the run's")] = None,
    task: Annotated[str | None, typer.Option(help="sudoku or maze (checked against the data)")] = None,
    variant: Annotated[str | None, typer.Option(help="AIR variant [default: Lx_H]")] = None,
    preset: Annotated[str | None, typer.Option(help="paper, gpu-budget, gpu-short, cpu-small or tiny [default: paper on CUDA, cpu-small on the CPU]")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="[default: 0]")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N [default: cpu]")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="override the preset's epochs")] = None,
    eval_interval: Annotated[int | None, typer.Option(min=1, help="epochs per iteration (evaluate + checkpoint)")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="override the global batch size")] = None,
    lr: Annotated[float | None, typer.Option(min=1e-12, help="override the learning rate")] = None,
    hidden: Annotated[int | None, typer.Option(min=2, help="override the width")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="stop after this many optimizer steps")] = None,
    max_minutes: Annotated[float | None, typer.Option(min=1e-12, help="stop after this many minutes of training")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(min=0, help="also checkpoint every N steps [default: 0]")] = None,
    eval_limit: Annotated[int | None, typer.Option(min=1, help="test puzzles per evaluation [default: 1000]")] = None,
    dtype: Annotated[str | None, typer.Option(help="forward dtype: float32 or bfloat16")] = None,
    compile: Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile the whole ACT step (static shapes) [default: no]")] = None,
    resume: Annotated[bool, typer.Option(help="continue the run in OUT with its own settings (OUT empty or missing: start it)")] = False,
    init_from: Annotated[Path | None, typer.Option(help="warm start: a checkpoint's weights (same architecture); optimizer and warmup restart, the card adds up every budget")] = None,
    act_steps: Annotated[int | None, typer.Option(min=1, help="ACT steps (halt_max_steps) [default: the preset's]")] = None,
    h_cycles: Annotated[int | None, typer.Option("--h-cycles", min=1, help="H-cycles per ACT step [default: the preset's]")] = None,
    l_cycles: Annotated[int | None, typer.Option("--l-cycles", min=1, help="L-updates per H-cycle [default: the preset's]")] = None,
    layers: Annotated[int | None, typer.Option(min=1, help="blocks of the shared stack [default: the preset's]")] = None,
    heads: Annotated[int | None, typer.Option(min=1, help="attention heads [default: the preset's]")] = None,
    expansion: Annotated[float | None, typer.Option(min=1e-3, help="SwiGLU width factor [default: 4]")] = None,
    warmup: Annotated[int | None, typer.Option(min=0, help="learning-rate warmup steps [default: the preset's]")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads (two 1-thread trainings beat one 2-thread one on 2 cores); OpenMP waits passively unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set")] = None,
    checkpoint_at: Annotated[str | None, typer.Option(help="also checkpoint, and keep, at these steps (comma-separated): a series along training")] = None,
    family: Annotated[str | None, typer.Option(help="air, trm (halts on q_halt > 0, no target pass, its last H-cycle trains), trm_singlez (TRM with one state) or hrm (an H stack of --h-layers blocks) [default: air]")] = None,
    h_layers: Annotated[int | None, typer.Option("--h-layers", min=1, help="HRM: blocks of the H stack")] = None,
    mlp_t: Annotated[bool | None, typer.Option("--mlp-t/--no-mlp-t", help="TRM: a SwiGLU across positions instead of attention")] = None,
    prefix_len: Annotated[int | None, typer.Option(min=0, help="puzzle-prefix positions (TRM's puzzle_emb_len, 16 in its runs)")] = None,
    pos_encodings: Annotated[str | None, typer.Option(help="rope, learned or none (none: mlp_t only)")] = None,
    ema_rate: Annotated[float | None, typer.Option(min=1e-9, max=0.999999999, help="keep an EMA of the parameters (TRM: 0.999); checkpoints and evaluations use it")] = None,
) -> None:
    """Train AIR with the reference recipe (ACT, deep supervision, AdamATan2); resumable."""

    if checkpoint_at is not None:
        try:
            checkpoint_at = tuple(sorted({int(v) for v in checkpoint_at.split(",") if v.strip()}))  # type: ignore[assignment]
        except ValueError:
            raise fail(f"--checkpoint-at {checkpoint_at!r}: expected comma-separated step numbers like 100,300,1000") from None
    from rich.progress import Progress

    from airinterp.errors import InputError
    from airinterp.train.config import TrainRun
    from airinterp.train.loop import Trainer, read_run

    given = {k: v for k, v in dict(variant=variant, seed=seed, device=device, epochs=epochs, eval_interval=eval_interval,
             batch_size=batch_size, lr=lr, hidden=hidden, max_steps=max_steps, max_minutes=max_minutes,
             checkpoint_every=checkpoint_every, eval_limit=eval_limit, dtype=dtype, compile=compile,
             preset=preset, init_from=init_from, act_steps=act_steps, h_cycles=h_cycles, l_cycles=l_cycles, layers=layers,
             heads=heads, expansion=expansion, warmup=warmup, threads=threads, checkpoint_at=checkpoint_at, family=family,
             h_layers=h_layers, mlp_t=mlp_t, prefix_len=prefix_len, pos_encodings=pos_encodings, ema_rate=ema_rate).items()
             if v is not None}  # fmt: skip
    if device is not None:
        check_device(device)
    try:
        saved = read_run(out)
        if saved is not None and not resume:
            raise InputError(f"--out {out}: already holds a run; pass --resume to continue it, or pick another --out")
        if saved is not None:
            run = _resumed_run(saved, out, data, given)
        else:
            if data is None:
                raise InputError("--data: missing; a new run needs a dataset directory")
            if resume:
                typer.echo(f"no run in {out}; starting one")
            options = {_FIELDS[k]: v for k, v in given.items() if k != "preset"}
            if preset is None:
                preset = "paper" if (device or "cpu").startswith("cuda") else "cpu-small"
                typer.echo(f"preset: {preset} (chosen for --device {device or 'cpu'}; --preset names another)", err=True)
            run = TrainRun.from_preset(preset, data=data, out=out, **options)
        trainer = Trainer(run, log=typer.echo)
        if task is not None and trainer.config.task != task:
            raise InputError(f"--task {task}, but {run.data} holds {trainer.config.task} data")
        if saved is not None and not trainer.resume():
            typer.echo(f"{out} holds no checkpoint yet; starting the run from step 0")
    except input_errors() as err:
        raise fail(err) from None
    with Progress(*progress_columns(info=True)) as bar:
        task_id = bar.add_task("train", total=trainer.stop_at, completed=trainer.pos.step, info="")

        def show(step: int, v: dict) -> None:
            halted = f"acc {v['accuracy']:.3f} exact {v['exact_accuracy']:.3f}" if v["halted_rows"] else "no row halted"
            info = f"loss {v['lm_loss']:.3f} {halted} {v['steps_per_s']:.2f} it/s"
            bar.update(task_id, completed=step, info=info)

        summary = trainer.fit(show)
    if trainer.rank != 0:
        return
    typer.echo(f"wrote {out}/model.safetensors and card.json after {trainer.pos.step} steps")
    if summary:
        typer.echo(f"exact_accuracy={summary['exact_accuracy']:.6f} token_accuracy={summary['token_accuracy']:.6f} n={summary['n']}")


@app.command("eval", short_help="Exact and token accuracy on a test split")
def eval_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="airinterp checkpoint (a .safetensors file or a directory holding model.safetensors)")],
    data: Annotated[Path | None, typer.Option("--data", help="dataset directory (default: the test data the checkpoint's card names)")] = None,
    split: Annotated[str, typer.Option(help="train or test")] = "test",
    n_puzzles: Annotated[int | None, typer.Option(min=1, help="a seeded sample of this many rows with distinct inputs (default: the whole split; on an augmented train split, copies of one puzzle count apart)")] = None,
    first: Annotated[int | None, typer.Option(min=1, help="the first N rows of the split instead of a sample (the reference's eval limit)")] = None,
    seed: Annotated[int, typer.Option(min=0, help="seed of the --n-puzzles sample (unused without it)")] = 0,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="puzzles per forward (default: about 6k tokens per batch, at most 256)")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N")] = "cpu",
    out: Annotated[Path | None, typer.Option("-o", "--out", help="per-puzzle table (.csv or .parquet)")] = None,
) -> None:
    """Evaluate as the reference (all ACT steps, decoded from zH); last line: exact_accuracy=... token_accuracy=... n=..."""
    check_device(device)
    if split not in ("train", "test"):
        raise fail(f"--split {split!r}: expected train or test")
    if n_puzzles is not None and first is not None:
        raise fail("--n-puzzles and --first: give one (a seeded sample, or the first N rows)")
    if out is not None:
        check_file_out(out, (".csv", ".parquet"))
        check_not_inside_inputs(out)
    from airinterp.analysis.run import sample_distinct
    from airinterp.checkpoints import Checkpoint
    from airinterp.tasks.dataset import PuzzleDataset
    from airinterp.train.evaluate import evaluate

    try:
        ck = Checkpoint(checkpoint)
        model = ck.load(device=device)
        if data is None:
            data = ck.test_data()
            typer.echo(f"data: {said(data)} (the test data the card of {said(ck.path)} names)", err=True)
        ds = PuzzleDataset(data, split)
        ds.check_fits(model.config.seq_len, model.config.vocab_size)  # before the progress bar
        indices = sample_distinct(ds, n_puzzles, seed) if n_puzzles is not None else None
        total = len(indices) if indices is not None else min(first or ds.n_examples, ds.n_examples)
        display, factory = progress()
        with display:
            df, summary = evaluate(model, ds, split, first, batch_size, factory(f"eval {split}", total), indices=indices)
    except input_errors() as err:
        raise fail(err) from None
    if out is not None:
        write_table(df, out)
        typer.echo(f"wrote {out}")
    typer.echo(f"nongiven_accuracy={summary['nongiven_accuracy']:.6f} q_halt_accuracy={summary['q_halt_accuracy']:.6f}")
    typer.echo(f"exact_accuracy={summary['exact_accuracy']:.6f} token_accuracy={summary['token_accuracy']:.6f} n={summary['n']}")
