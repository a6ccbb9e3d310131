"""Model commands: import-reference, verify-reference, hooks, info, shard."""

from pathlib import Path
from typing import Annotated

import typer

from airinterp.cli._common import app, check_device, fail, input_errors
from airinterp.cli.output import check_dir_out, check_file_out


@app.command("import-reference", short_help="Convert a reference checkpoint into an airinterp one")
def import_reference_cmd(
    weights: Annotated[Path, typer.Argument(help="reference checkpoint: a step_<N> file or .safetensors")],
    out: Annotated[Path, typer.Option("-o", "--out", help="airinterp checkpoint to write (.safetensors)")],
    config: Annotated[
        Path | None, typer.Option(help="reference all_config.yaml (default: beside WEIGHTS)")
    ] = None,
    seq_len: Annotated[
        int | None, typer.Option(min=1, help="cells per puzzle (81: 9x9 Sudoku, 900: 30x30 maze), if the dataset all_config.yaml names is not here")
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help="forward dtype to record: float32, bfloat16 or float16 (default: the config's; reference default bfloat16)")
    ] = None,
    store_bf16: Annotated[bool, typer.Option(help="store weights as bfloat16 (half the size)")] = False,
) -> None:
    """Convert a reference AIR checkpoint into an airinterp checkpoint."""
    import torch

    from airinterp.checkpoints import import_reference, save

    check_file_out(out, (".safetensors",), "--out")
    try:
        model = import_reference(weights, config, seq_len=seq_len, forward_dtype=dtype)
    except input_errors() as err:
        raise fail(err) from None
    from airinterp.checkpoints.reference import describe_source

    save(model, out, dtype=torch.bfloat16 if store_bf16 else None, source=describe_source(weights, config))
    c = model.config
    typer.echo(
        f"wrote {out}: {c.label if c.family != 'air' else 'AIR'} (update rule {c.variant}), task {c.task}, d={c.hidden_size}, heads={c.num_heads}, "
        f"layers={c.L_layers}, seq_len={c.seq_len}, vocab={c.vocab_size}, dtype={c.forward_dtype}"
    )


@app.command("verify-reference", short_help="Compare airinterp with a reference dump, tensor by tensor")
def verify_reference_cmd(
    fixture: Annotated[Path, typer.Argument(help="reference dump manifest (.json beside its .safetensors)")],
    tol: Annotated[
        float | None,
        typer.Option(min=0.0, help="a fixed max |difference| per tensor on the free rollout instead of the "
                                   "CPU-independent check (teacher-forced + the model's own sensitivity)"),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N")] = "cpu",
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="run this airinterp checkpoint instead of the dump's own weights"),
    ] = None,
) -> None:
    """Run airinterp on a reference dump and compare every tensor in it.

    By default (airinterp.checkpoints.verify.check_parity): teacher-forced, x~, the initial states and
    every update's injection and stack input bitwise, every other tensor within 1e-5 (one update's
    error); on the free rollout, every tensor within 100x the model's own spread under one-ulp
    weight noise, so the verdict does not depend on the CPU's kernels. ``--tol``: a fixed bound
    on the free rollout only.
    """
    from rich.console import Console
    from rich.table import Table

    from airinterp.checkpoints import CheckpointError, load
    from airinterp.checkpoints.verify import Fixture, check_parity, load_fixture, verify

    check_device(device)
    try:
        fx = load_fixture(fixture)
        if checkpoint is not None:
            model = load(checkpoint, dtype=fx.config.forward_dtype)
            if model.config.model_dump(exclude={"task"}) != fx.config.model_dump(exclude={"task"}):
                raise CheckpointError(f"{checkpoint}: config differs from the dump's: {model.config} vs {fx.config}")
            fx = Fixture(fx.case, fx.config, model, fx.tensors, fx.n_act)
        if tol is None:
            rows = check_parity(fx, device=device)
            forced = {r.tensor: r for r in rows if r.mode == "teacher-forced"}
            free = [r for r in rows if r.mode == "free"]
        else:
            forced = {}
            free = verify(fx, device=device)
    except input_errors() as err:
        raise fail(err) from None
    how = "teacher-forced + 100x the model's own sensitivity" if tol is None else f"free rollout, tol {tol:g}"
    table = Table(title=f"{fx.case}: {fx.config.label}, {fx.n_act} ACT steps, {how}")
    cols = ["tensor", "airinterp hook", "max |diff|", "bound", "bitwise"]
    cols += ["forced |diff|", "forced bound"] if forced else []
    for col in [*cols, "ok"]:
        table.add_column(col)
    failed = 0
    for r in free:
        bound = r.bound if tol is None else tol
        ok = r.ok if tol is None else r.max_abs_diff <= tol
        f = forced.get(r.tensor)
        if f is not None:
            ok = ok and f.ok
        failed += not ok
        cells = [r.tensor, r.hook, f"{r.max_abs_diff:.3g}", "bitwise" if bound == 0 else f"{bound:.3g}",
                 "yes" if r.bitwise else "no"]  # fmt: skip
        if forced:
            cells += [f"{f.max_abs_diff:.3g}", "bitwise" if f.bound == 0 else f"{f.bound:.3g}"] if f else ["", ""]
        table.add_row(*cells, "[green]ok[/]" if ok else "[red]FAIL[/]")
    Console(width=180).print(table)
    worst = max(free, key=lambda r: r.max_abs_diff)
    typer.echo(
        f"{len(free)} tensors, {sum(r.bitwise for r in free)} bitwise, worst {worst.tensor} "
        f"{worst.max_abs_diff:.3g}: {'FAIL' if failed else 'PASS'}"
    )
    if failed:
        raise typer.Exit(code=1)


def concrete_shape(shape: str, cfg, site: str) -> str:
    """``batch pos d_model`` -> ``batch, 37, 64`` for this config (``batch`` stays symbolic)."""
    block = ".blocks." in site
    sizes = {
        "pos": cfg.n_stack_pos if block else cfg.n_pos, "pos_q": cfg.n_stack_pos, "pos_k": cfg.n_stack_pos,
        "cell": cfg.seq_len, "d_model": cfg.hidden_size, "head": cfg.num_heads, "d_head": cfg.head_dim,
        "d_mlp": cfg.d_mlp, "vocab": cfg.vocab_size,
    }  # fmt: skip
    return ", ".join(str(sizes.get(dim, dim)) for dim in shape.split())


@app.command("hooks", short_help="List hook names with their shapes")
def hooks_cmd(
    checkpoint: Annotated[Path | None, typer.Argument(help="airinterp checkpoint (default: paper config)")] = None,
    n_act: Annotated[int, typer.Option(min=1, help="ACT steps of the rollout")] = 1,
    pattern: Annotated[str | None, typer.Option("--filter", help="glob on names, e.g. 'act.*.H*.blocks.3.*'")] = None,
    markdown: Annotated[bool, typer.Option(help="print the markdown catalogue (docs/hooks.md)")] = False,
    symbolic: Annotated[bool, typer.Option(help="shapes as dimension names instead of this model's sizes")] = False,
) -> None:
    """List hook names with their shapes (the checkpoint's sizes; 'batch' stands for the batch size)."""
    from airinterp.model.hooks import glob, hook_catalogue

    if markdown:
        from airinterp.model.catalogue import markdown_catalogue

        typer.echo(markdown_catalogue(), nl=False)
        return
    if checkpoint is not None:
        from airinterp.checkpoints import load

        try:
            cfg = load(checkpoint).config
        except input_errors() as err:
            raise fail(err) from None
    else:
        from airinterp.model.catalogue import paper_config

        cfg = paper_config()
    keep = glob(pattern) if pattern else (lambda _: True)
    shown = 0
    for name, shape in hook_catalogue(cfg, n_act):
        if keep(name):
            shown += 1
            typer.echo(f"{name}\t[{shape if symbolic else concrete_shape(shape, cfg, name)}]")
    if not shown:
        raise fail(f"--filter {pattern!r}: matches none of the {n_act}-step rollout's hook names (e.g. 'act.0.H0.*')")


@app.command("info", short_help="Print a checkpoint's config, update rules and size")
def info_cmd(checkpoint: Annotated[Path, typer.Argument(help="airinterp checkpoint")]) -> None:
    """Print a checkpoint's config, update rules and parameter count."""
    from airinterp.checkpoints import load
    from airinterp.model.air import update_rule_text

    try:
        model = load(checkpoint)
    except input_errors() as err:
        raise fail(err) from None
    for k, v in model.config.model_dump().items():
        typer.echo(f"{k}: {v}")
    if model.config.single_z:  # one state: TRM single-z's own rule
        typer.echo("L-update: zL <- f(zL + x)")
        typer.echo("H-update: zL <- f(zL)")
    else:
        typer.echo("L-update: " + update_rule_text(model.config.variant, "L"))
        typer.echo("H-update: " + update_rule_text(model.config.variant, "H"))
    typer.echo(f"parameters: {sum(p.numel() for p in model.parameters()):,}")
    from airinterp.checkpoints import Checkpoint, read_safetensors

    f = Checkpoint(checkpoint).file
    if f.suffix == ".safetensors":
        source = read_safetensors(f)[1].get("source")
        if source:
            typer.echo(f"source: {source}")


@app.command("shard", short_help="Write a checkpoint as safetensors shards plus an index")
def shard_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="airinterp checkpoint (file, directory or sharded index)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="directory for the shards and model.safetensors.index.json")],
    max_shard_mb: Annotated[float, typer.Option(min=0.001, max=1e6, help="largest shard, MiB of tensor data (16 MiB: what a GPU run may bring back per file)")] = 15.0,
    dtype: Annotated[str | None, typer.Option(help="store floating-point tensors as bfloat16 or float32 (default: as they are)")] = None,
) -> None:
    """Write a checkpoint as Hugging-Face-style safetensors shards plus an index; airinterp.load reads the directory."""
    import torch

    from airinterp.checkpoints import load, save_sharded

    dtypes = {"bfloat16": torch.bfloat16, "float32": torch.float32}
    if dtype is not None and dtype not in dtypes:
        raise fail(f"--dtype {dtype!r}: expected bfloat16 or float32")
    check_dir_out(out)
    try:
        model = load(checkpoint)
    except input_errors() as err:
        raise fail(err) from None
    try:
        index = save_sharded(model, out, max_shard_bytes=int(max_shard_mb * 2**20), dtype=dtypes.get(dtype or ""),
                             source=f"airinterp shard {checkpoint}")  # fmt: skip
    except input_errors() as err:
        raise fail(f"--out {err}") from None
    from airinterp.checkpoints import Checkpoint

    card = Checkpoint(checkpoint).dir / "card.json"
    if card.is_file() and card.resolve() != (out / "card.json").resolve():
        import shutil

        shutil.copyfile(card, out / "card.json")
    shards = sorted(out.glob("model-*-of-*.safetensors"))
    typer.echo(f"wrote {index} and {len(shards)} shards (largest {max(p.stat().st_size for p in shards) / 2**20:.1f} MiB)")
