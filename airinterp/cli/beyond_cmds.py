"""Analyses beyond the paper's (issue 25): convergence.

Same contract as :mod:`.analysis_cmds`: options checked first (one ``error:`` line, nothing
written), batched rollouts under a progress bar, ``config.json``, tidy tables and one HTML page
in ``--out`` (default ``out/<command>/<checkpoint>``), renamed into place whole.
"""

from typing import Annotated

import typer

from airinterp.cli._common import app, fail, input_errors, progress
from airinterp.cli.analysis_cmds import _config
from airinterp.cli.options import BatchSize, Checkpoint, Data, Device, Seed, Task
from airinterp.cli.options import OutDir as Out
from airinterp.cli.output import out_dir, shown, staging, write_config, write_html, write_table
from airinterp.cli.runs import InputsRun, parse


@app.command("convergence", short_help="Layer lens, commit points, fixed-point residuals (beyond the paper)")
def convergence_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: Annotated[int | None, typer.Option(min=1, help="puzzles (a seeded sample; default: 100, or the whole split if smaller)")] = None,
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
