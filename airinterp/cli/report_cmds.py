"""``airinterp report``: every analysis of a checkpoint (and ``--compare`` ones) as one offline HTML page."""

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from airinterp.cli._common import app, fail, input_errors, progress
from airinterp.cli.options import BatchSize, Checkpoint, Data, Device, Seed, Task
from airinterp.cli.output import check_dir_out, check_file_out, check_not_inside_inputs, staging, write_table
from airinterp.cli.runs import ReportRun, parse


def _default_out(names: list[str]) -> Path:
    return Path("out") / "report" / ("_vs_".join(names) + ".html")


@app.command("report", short_help="Every analysis and the reproduction table, one HTML")
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
    tables: Annotated[Path | None, typer.Option(help="also write the report's tables as CSV into this directory (reproduction, summary, changes, roles)")] = None,
) -> None:
    """Decoded rollouts, content changes, freeze, patching, attention contrasts and examples, and the reproduction table, in one offline HTML file."""
    from airinterp.analysis.inputs import open_inputs
    from airinterp.analysis.reproduce import reproduction_table
    from airinterp.analysis.run import sample_distinct
    from airinterp.analysis.suite import analyse
    from airinterp.checkpoints import Checkpoint as Ck
    from airinterp.report.build import build_report

    values = {k: v for k, v in locals().items() if k in ReportRun.model_fields and k != "compare"}
    run = parse(ReportRun, **values, compare=tuple(compare or ()))
    out = check_file_out(run.out, (".html",)) if run.out is not None else None
    if out is not None:
        check_not_inside_inputs(out)
    if run.tables is not None:
        check_not_inside_inputs(run.tables, "--tables")
        check_dir_out(run.tables, "--tables")
    seen = {Ck(run.checkpoint).key} if run.checkpoint is not None else set()
    for ck in run.compare:  # path checks first: no model is loaded for a typo
        if not ck.exists():
            raise fail(f"--compare {ck}: no such checkpoint")
        if Ck(ck).key in seen:
            raise fail(f"--compare {ck}: given twice (or it is the primary --checkpoint)")
        seen.add(Ck(ck).key)
    primary = run.open(sample=False)  # the whole split: the sample is drawn below, the same for every checkpoint
    task = primary.model.config.task
    if run.checkpoint is None and primary.source.key in seen:
        raise fail(f"--compare {primary.checkpoint}: given twice (it is the primary checkpoint, the default for --task {task})")
    inputs = [primary]
    for ck in run.compare:
        try:
            inp = open_inputs(None, ck, run.data, n_puzzles=None, seed=run.seed, device=run.device)
        except input_errors() as err:
            raise fail(f"--compare {ck}: {err}") from None
        if inp.model.config.task != task:
            raise fail(f"--compare {ck}: a {inp.model.config.task} model, but the report is about {task}")
        inputs.append(inp)
    for k, inp in enumerate(inputs):
        if run.n_puzzles > len(inp.ds.distinct()):
            raise fail(f"--n-puzzles {run.n_puzzles}: the test split of {inp.data} has {len(inp.ds.distinct())} distinct puzzles")
        inputs[k] = inp.with_indices(sample_distinct(inp.ds, run.n_puzzles, run.seed))
    names = [i.source.name for i in inputs]
    if len(set(names)) != len(names):  # e.g. two runs' model.safetensors in directories of one name: number them
        names = [f"{n}-{k}" for k, n in enumerate(names)]
    if out is None:
        out = check_file_out(_default_out(names), (".html",))
    display, factory = progress()
    analyses = []
    with display:
        for inp, name in zip(inputs, names, strict=True):
            try:
                analyses.append(analyse(inp, batch_size=run.batch_size, progress=factory, name=name))
            except input_errors() as err:
                raise fail(err) from None
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    repro = reproduction_table(analyses[0], analyses[1:])
    path = build_report(analyses, out, title=run.title, built=stamp, repro=repro)
    size = path.stat().st_size / 2**20
    if run.tables is not None:
        import pandas as pd

        from airinterp.analysis.reproduce import summary_table

        with staging(run.tables) as d:
            write_table(repro, d / "reproduction.csv")
            write_table(summary_table(analyses), d / "summary.csv")
            write_table(pd.concat([a.changes_summary.assign(checkpoint=a.name) for a in analyses], ignore_index=True),
                        d / "changes_summary.csv")  # fmt: skip
            roles = [a.state_roles.summary.assign(checkpoint=a.name) for a in analyses if a.state_roles is not None]
            if roles:
                write_table(pd.concat(roles, ignore_index=True), d / "roles_summary.csv")
        typer.echo(f"wrote {run.tables} (the tables as CSV)")
    verdicts = repro.verdict.value_counts()
    typer.echo("reproduction table: " + ", ".join(f"{k} {verdicts[k]}" for k in verdicts.index))
    typer.echo(f"wrote {path} ({size:.1f} MiB)")


def _steps(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise fail(f"--steps {text!r}: expected comma-separated training steps like 50,200,800") from None
    if not steps or min(steps) < 0:
        raise fail(f"--steps {text!r}: expected comma-separated training steps like 50,200,800")
    return steps


@app.command("sweep", short_help="The analyses along training (series) or across seeds and variants (checkpoints)")
def sweep_cmd(
    series: Annotated[list[Path] | None, typer.Option(help="a training run (its checkpoints/step_N) or a series directory (step_N/); repeat to compare, e.g. Lx_H and its Lx_Hx control")] = None,
    checkpoint: Annotated[list[Path] | None, typer.Option(help="instead of --series: checkpoints (seeds, variants), each a point of its own; repeat; adds variants.csv (mean +- sd per variant) and contrast.csv (the first variant minus the others, paired by training seed)")] = None,
    steps: Annotated[str | None, typer.Option(help="these training steps of every series (comma-separated; default: a run's --checkpoint-at steps and its last, or every step_N of a series)")] = None,
    data: Data = None,
    n_puzzles: Annotated[int, typer.Option(min=2, help="test puzzles (a seeded sample, the same for every checkpoint)")] = 100,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Annotated[Path | None, typer.Option("-o", "--out", help="output directory (default: out/sweep/<series names>)")] = None,
) -> None:
    """The analyses along training (--series) or across seeds and variants (--checkpoint): accuracy, decoded undecided cells and zL/zH disagreement, freeze effects, attention contrasts per checkpoint: sweep.csv, sweep.html (with --checkpoint also variants.csv, contrast.csv)."""
    from airinterp.analysis.sweep import (
        checkpoint_point,
        panels,
        series_points,
        sweep,
        training_seed,
        variant_contrast,
        variant_summary,
    )
    from airinterp.cli._common import check_device
    from airinterp.cli.output import check_dir_out, staging, write_config, write_table
    from airinterp.report import figures
    from airinterp.report.html import Document

    check_device(device)
    if bool(series) == bool(checkpoint):
        raise fail("--series or --checkpoint: give one kind (series along training, or checkpoints across seeds and variants)")
    if checkpoint and steps is not None:
        raise fail("--steps: only with --series (a checkpoint is one point)")
    chosen = _steps(steps)
    paths = list(series or checkpoint or [])
    try:
        points = [series_points(p, chosen) for p in paths] if series else [[checkpoint_point(p)] for p in paths]
    except input_errors() as err:
        raise fail(f"--{'series' if series else 'checkpoint'}: {err}") from None
    names = [s[0].series for s in points]
    if len(set(names)) != len(names):
        what, kind = ("series", "series") if series else ("checkpoint", "checkpoints")
        raise fail(f"--{what}: two {kind} named {next(n for n in names if names.count(n) > 1)!r}; each {what} is named by its directory")
    out = out if out is not None else Path("out") / "sweep" / "_vs_".join(names)
    check_not_inside_inputs(out)
    out = check_dir_out(out)
    display, factory = progress()
    with display:
        try:
            table, config = sweep(points, data=data, n_puzzles=n_puzzles, seed=seed, batch_size=batch_size, device=device,
                                  progress=factory)  # fmt: skip
        except input_errors() as err:
            raise fail(err) from None
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    variants = contrast = None
    if checkpoint:
        seeds = {p[0].series: training_seed(p[0].checkpoint) for p in points}
        variants, contrast = variant_summary(table), variant_contrast(table, seeds)
    doc = Document(f"Along training: {', '.join(names)}" if series else f"Across checkpoints: {', '.join(names)}")
    doc.para(f"{n_puzzles} test puzzles of {config['data']} (seed {seed}), the same for every checkpoint; each point is one "
             "checkpoint with its puzzle-level 95% CI (exact accuracy: Clopper-Pearson; the rest: bootstrap over puzzles). "
             "Definitions as the single-checkpoint commands: decode (undecided fraction and content changes over the whole "
             "rollout; disagreement: cells whose zL and zH decodes differ, over all sub-steps), freeze (zH or zL frozen "
             "from ACT step 0, paired on the same puzzles), attention (head-mean L0_0 minus H0 contrast).")  # fmt: skip
    if series:
        doc.figure(figures.sweep_panels(table, panels(table, config["task"]), title=f"{config['task']}: quantities along training"))
    else:
        doc.para("Across checkpoints: each dot one checkpoint (a seed of a variant) with its puzzle-level CI; bars: the mean +- sd "
                 "over a variant's checkpoints (sd needs two). contrast.csv: the first variant minus each other, paired by the "
                 "training seed the cards record (mean, sd and a t-based 95 % CI over the seeds both have; with no common seed, "
                 "the difference of the means, no interval).")  # fmt: skip
        doc.figure(figures.variant_panels(table, variants, panels(table, config["task"]), title=f"{config['task']}: across seeds and variants"))
        if contrast is not None and len(contrast):
            doc.heading("Contrast between variants")
            doc.table(contrast[contrast.section != "attention"].drop(columns=["layer", "class"]))
    head = table[table.section != "attention"].copy()
    doc.heading("All non-attention rows")
    doc.table(head.drop(columns=["layer", "class"]))
    with staging(out) as d:
        write_config(d, {"command": "sweep", "series": [str(p) for p in series or []], "checkpoints": [str(p) for p in checkpoint or []],
                         "steps": chosen, **config, "built": stamp})  # fmt: skip
        write_table(table, d / "sweep.csv")
        if variants is not None:
            write_table(variants, d / "variants.csv")
            write_table(contrast, d / "contrast.csv")
        doc.write(d / "sweep.html", built=stamp)
    typer.echo(f"wrote {out} ({len(config['points'])} checkpoints, {len(table)} rows)")
