"""``airinterp report``: every analysis of a checkpoint (and ``--compare`` ones) as one offline HTML page."""

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from airinterp.cli._common import INPUT_ERRORS, app, check_device, check_file_out, fail, progress
from airinterp.cli.analysis_cmds import BatchSize, Checkpoint, Data, Device, Seed, Task


def _default_out(names: list[str]) -> Path:
    return Path("out") / "report" / ("_vs_".join(names) + ".html")


@app.command("report")
def report_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    compare: Annotated[list[Path] | None, typer.Option(help="another checkpoint shown side by side (repeat for several: variants, seeds)")] = None,
    data: Data = None,
    n_puzzles: Annotated[int, typer.Option(min=2, help="test puzzles per checkpoint (a seeded sample, the same indices for all)")] = 100,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Annotated[Path | None, typer.Option("-o", "--out", help="the report .html (default: out/report/<checkpoints>.html)")] = None,
    title: Annotated[str | None, typer.Option(help="the report's title")] = None,
) -> None:
    """Decoded rollouts, content changes, freeze, patching, attention contrasts and examples, and the reproduction table, in one offline HTML file."""
    from airinterp.analysis.inputs import open_inputs
    from airinterp.analysis.reproduce import reproduction_table
    from airinterp.analysis.suite import _name, analyse
    from airinterp.model.checkpoint import CHECKPOINT_FILES
    from airinterp.report.build import build_report

    check_device(device)
    if out is not None:
        out = check_file_out(out, (".html",))

    def key(path: Path) -> Path:  # a checkpoint directory and its model.safetensors are one checkpoint
        path = path.resolve()
        return path.parent if path.name in CHECKPOINT_FILES else path

    seen = {key(checkpoint)} if checkpoint is not None else set()
    for ck in compare or []:  # path checks first: no model is loaded for a typo
        if not ck.exists():
            raise fail(f"--compare {ck}: no such checkpoint")
        if key(ck) in seen:
            raise fail(f"--compare {ck}: given twice (or it is the primary --checkpoint)")
        seen.add(key(ck))
    inputs = []
    try:
        inputs.append(open_inputs(task, checkpoint, data, n_puzzles=None, seed=seed, device=device))
    except INPUT_ERRORS as err:
        raise fail(err) from None
    primary = inputs[0]
    task = primary.model.config.task
    if checkpoint is None and key(primary.checkpoint) in seen:
        raise fail(f"--compare {primary.checkpoint}: given twice (it is the primary checkpoint, the default for --task {task})")
    for ck in compare or []:
        try:
            inp = open_inputs(None, ck, data, n_puzzles=None, seed=seed, device=device)
        except INPUT_ERRORS as err:
            raise fail(f"--compare {ck}: {err}") from None
        if inp.model.config.task != task:
            raise fail(f"--compare {ck}: a {inp.model.config.task} model, but the report is about {task}")
        inputs.append(inp)
    from airinterp.analysis.run import sample_puzzles

    for inp in inputs:
        if n_puzzles > inp.ds.n_examples:
            raise fail(f"--n-puzzles {n_puzzles}: the test split of {inp.data} has {inp.ds.n_examples} puzzles")
        inp.indices = sample_puzzles(inp.ds.n_examples, n_puzzles, seed)
    names = [_name(i.checkpoint) for i in inputs]
    if len(set(names)) != len(names):  # e.g. two runs' model.safetensors in directories of one name: number them
        names = [f"{n}-{k}" for k, n in enumerate(names)]
    if out is None:
        out = check_file_out(_default_out(names), (".html",))
    display, factory = progress()
    analyses = []
    with display:
        for inp, name in zip(inputs, names, strict=True):
            try:
                analyses.append(analyse(inp, batch_size=batch_size, progress=factory, name=name))
            except INPUT_ERRORS as err:
                raise fail(err) from None
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    repro = reproduction_table(analyses[0], analyses[1:])
    path = build_report(analyses, out, title=title, built=stamp, repro=repro)
    size = path.stat().st_size / 2**20
    verdicts = repro.verdict.value_counts()
    typer.echo("reproduction table: " + ", ".join(f"{k} {verdicts[k]}" for k in verdicts.index))
    typer.echo(f"wrote {path} ({size:.1f} MiB)")
