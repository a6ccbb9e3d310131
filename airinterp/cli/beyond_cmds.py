"""Analyses beyond the paper's (issue 25): convergence, write locality.

Same contract as :mod:`.analysis_cmds`: options checked first (one ``error:`` line, nothing
written), batched rollouts under a progress bar, ``config.json``, tidy tables and one HTML page
in ``--out`` (default ``out/<command>/<checkpoint>``), renamed into place whole.
"""

from typing import Annotated

import typer

from airinterp.cli._common import app, fail, input_errors, progress
from airinterp.cli.analysis_cmds import _config
from airinterp.cli.options import BatchSize, Checkpoint, Data, Device, NPuzzles, Seed, Task
from airinterp.cli.options import OutDir as Out
from airinterp.cli.output import out_dir, shown, staging, write_config, write_html, write_table
from airinterp.cli.runs import InputsRun, WriteLocalityRun, parse


@app.command("convergence", short_help="Layer lens, commit points, fixed-point residuals (beyond the paper)")
def convergence_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: NPuzzles = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
    n_act: Annotated[int | None, typer.Option(min=1, help="ACT steps per rollout (default: twice the model's halt_max_steps, to see past the trained length)")] = None,
) -> None:
    """Decode every layer of every update, find where each cell commits to the answer, measure ||f(z) - z|| / ||z||, also past the trained length: lens.csv, lens_summary.csv, residual_summary.csv, commit_summary.csv, commit_cells.csv, outcome.csv, escape.csv, convergence.html."""
    values = locals()
    run = parse(InputsRun, **{k: v for k, v in values.items() if k != "n_act"})
    from airinterp.analysis.convergence import check_length, run_convergence
    from airinterp.report import figures

    inp = run.open(default_n=100, n_act=False)
    model, c = inp.model, inp.model.config
    try:
        length = check_length(model, n_act)
    except input_errors() as err:
        raise fail(err) from None
    out = out_dir(run.out, "convergence", inp.checkpoint)
    display, factory = progress()
    with display:
        res = run_convergence(model, inp.ds, inp.indices, inp.rules, n_act=length, batch_size=run.batch_size,
                              progress=factory("convergence", len(inp.indices)))  # fmt: skip
    lens, residual, commit = res.lens_summary(inp.seed), res.residual_summary(inp.seed), res.commit_summary(inp.seed)
    escape = res.escape_summary()
    n = len(inp.indices)
    figs = [
        figures.lens_heatmap(lens, "accuracy", f"{c.label}: layer lens, non-given accuracy, mean over {n} puzzles", res.trained_substeps),
        figures.lens_heatmap(lens, "entropy", f"{c.label}: layer lens, entropy of the non-given cells", res.trained_substeps),
        figures.commit_curves(commit, f"{c.label}: cells committed to the answer at the trained length ({res.trained_act} ACT steps)"),
        figures.residual_lines(residual, f"{c.label}: fixed-point residuals over {res.n_act} ACT steps", res.trained_act),
    ]  # fmt: skip
    with staging(out) as d:
        write_config(d, {**_config("convergence", run, inp), "n_act": length, "trained_act": res.trained_act})
        write_table(res.frame(), d / "lens.csv")
        write_table(lens, d / "lens_summary.csv")
        write_table(residual, d / "residual_summary.csv")
        write_table(commit, d / "commit_summary.csv")
        write_table(res.commit_frame(), d / "commit_cells.csv")
        write_table(res.outcome_frame(), d / "outcome.csv")
        write_table(escape, d / "escape.csv")
        write_html(d / "convergence.html", f"Convergence: {shown(inp.checkpoint)}", figs, [
            f"{n} test puzzles (seed {inp.seed}), {res.n_act} ACT steps ({res.trained_act} trained). Layer lens: the residual "
            "stream after every block decoded through the LM head (argmax over all tokens), accuracy and entropy over the "
            "non-given cells. Commit point: the first (sub-step, block) of a state's own updates from which a cell decodes "
            "the answer (the output at the trained length) until then. Residuals over the whole state; 95 % puzzle-level "
            "bootstrap CIs."])  # fmt: skip
    s = commit[commit.substep == -1].set_index(["state", "metric"])
    for st in c.states:
        never, sub = s.loc[(st, "never")], s.loc[(st, "commit_substep")]
        when = (f"commits at sub-step {sub['mean']:.2f} [{sub['ci_low']:.2f}, {sub['ci_high']:.2f}] on average (a cell that commits)"
                if sub["n"] else "no cell commits to the answer")  # fmt: skip
        typer.echo(f"{st}: {when}; never commits: {never['mean']:.4f} of non-given cells")
    upd = residual[residual.kind == "update"]
    for group in ("right", "wrong"):
        for st in c.states:
            g = upd[(upd.state == st) & (upd.puzzles == group)]
            if g.empty:
                continue
            inside, past = g[~g.past_trained], g[g.past_trained]
            line = f"{st} residual, {int(g.n.iloc[0])} puzzles {group} at the trained length: {inside.residual.iloc[-1]:.3g} there"
            if len(past):
                line += f", {past.residual.iloc[-1]:.3g} at the end (median past the trained length {past.residual.median():.3g})"
            typer.echo(line)
    if res.n_act > res.trained_act:
        for _, r in escape.iterrows():
            if r["n"] == 0:
                typer.echo(f"{r['group']}: no puzzle")
                continue
            typer.echo(f"{r['group']}: {r['n']} puzzles, {r['moved_is']} {r['moved']} ({r['share']:.3f} [{r['ci_low']:.3f}, "
                       f"{r['ci_high']:.3f}]), answer changed {r['answer_changed']}")  # fmt: skip
    typer.echo(f"wrote {out}")


@app.command("write-locality", short_help="Where updates carry a one-cell perturbation (beyond the paper)")
def write_locality_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    act: Annotated[int, typer.Option(min=0, help="perturb after each update of this ACT step")] = 1,
    source: Annotated[str, typer.Option(help="noise: seeded Gaussian noise of --noise x the cell's norm; other: another puzzle's value at the cell")] = "noise",
    noise: Annotated[float, typer.Option(help="noise size relative to the perturbed cell's norm")] = 0.1,
    window: Annotated[int | None, typer.Option(min=1, help="updates followed after the perturbation (default: one ACT step's worth)")] = None,
    n_puzzles: NPuzzles = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
) -> None:
    """Perturb one cell of the state each update writes and follow the change by task geometry (self, neighbours, elsewhere): locality_puzzles.csv, locality_summary.csv, locality.csv, locality_contrast.csv, locality.html."""
    run = parse(WriteLocalityRun, **locals())
    from airinterp.analysis.write_locality import check_write_locality, run_write_locality
    from airinterp.report import figures

    inp = run.open(default_n=100, n_act=False)
    model, c = inp.model, inp.model.config
    try:
        check_write_locality(model, len(inp.indices), act=run.act, source=run.source, noise=run.noise, window=run.window)
    except input_errors() as err:
        raise fail(err) from None
    out = out_dir(run.out, "write-locality", inp.checkpoint, f"-{run.source}")
    display, factory = progress()
    with display:
        res = run_write_locality(model, inp.ds, inp.indices, inp.rules, act=run.act, source=run.source, noise=run.noise,
                                 window=run.window, batch_size=run.batch_size, seed=inp.seed,
                                 progress=factory("write locality", len(inp.indices)))  # fmt: skip
    what = f"noise {run.noise:g} x the cell's norm" if run.source == "noise" else "another puzzle's value"
    figs = [figures.write_locality_lines(res.summary, f"{c.label}: one cell perturbed ({what}) after each update of ACT step {run.act}"),
            figures.locality_bars(res.locality, f"{c.label}: locality of the update that reads the perturbation")]  # fmt: skip
    with staging(out) as d:
        write_config(d, {**_config("write-locality", run, inp)})
        write_table(res.puzzles, d / "locality_puzzles.csv")
        write_table(res.summary, d / "locality_summary.csv")
        write_table(res.locality, d / "locality.csv")
        write_table(res.contrast, d / "locality_contrast.csv")
        write_html(d / "locality.html", f"Write locality: {shown(inp.checkpoint)}", figs, [
            f"{len(inp.indices)} test puzzles (seed {inp.seed}); one seeded non-given cell per puzzle, perturbed ({what}) in the "
            "state each update writes; change = ||out' - out|| / ||out|| per cell at the next updates, mean over each class "
            "of cells around the perturbed one; locality = log(neighbour change / elsewhere change) at the first update "
            "after the perturbation; 95 % puzzle-level bootstrap CIs."])  # fmt: skip
    typer.echo(f"locality = log(change on {res.locality.neighbours.iloc[0]} / change elsewhere) at the update that reads the "
               "perturbation, mean over puzzles [95 % CI]")  # fmt: skip
    for _, r in res.locality.iterrows():
        typer.echo(f"{r['target']} ({r['state']}) read by {r['reader']} ({r['reader_stage']}-update): {r['locality']:+.3f} "
                   f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]")  # fmt: skip
    for _, r in res.contrast.iterrows():
        typer.echo(f"{r['quantity']}: {r['delta_mean']:+.3f} [{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}] "
                   f"p={r['p_sign_flip']:.3g}")  # fmt: skip
    typer.echo(f"wrote {out}")
