"""Analyses beyond the paper's (issue 25): convergence, write locality, state geometry, probes.

Same contract as :mod:`.analysis_cmds`: options checked first (one ``error:`` line, nothing
written), batched rollouts under a progress bar, ``config.json``, tidy tables and one HTML page
in ``--out`` (default ``out/<command>/<checkpoint>``), renamed into place whole.
"""

from typing import Annotated

import typer

from airinterp.cli._common import app, fail, input_errors, progress
from airinterp.cli.analysis_cmds import _config
from airinterp.cli.options import BatchSize, Checkpoint, Data, Device, NAct, NPuzzles, Seed, Task
from airinterp.cli.options import OutDir as Out
from airinterp.cli.output import out_dir, shown, staging, write_config, write_html, write_table
from airinterp.cli.runs import GeometryRun, InputsRun, ProbesRun, WriteLocalityRun, parse


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


@app.command("geometry", short_help="State trajectories, participation ratios, perturbation basins (beyond the paper)")
def geometry_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: NPuzzles = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
    n_act: NAct = None,
    untrained: Annotated[bool, typer.Option(help="also measure a freshly initialised model of the same config (the control)")] = True,
    basins: Annotated[bool, typer.Option(help="run the perturbation basins (one rollout per state and scale)")] = True,
    act: Annotated[int, typer.Option(min=1, help="basins: perturb the states as carried into this ACT step")] = 1,
    scales: Annotated[str | None, typer.Option(help="basins: noise sizes relative to each cell's norm, comma-separated (default 0.1,0.3,1,3,10,30)")] = None,
) -> None:
    """PCA of zL and zH on one shared basis, participation ratios per sub-step (pooled and per puzzle, with an untrained control), and perturbation basins: pr.csv, state_pr.csv, components.csv, trajectories.csv, capture.csv, basins_puzzles.csv, basins.csv, geometry.html."""
    run = parse(GeometryRun, **locals())
    from airinterp.analysis.geometry import (
        DEFAULT_SCALES,
        check_basins,
        run_basins,
        run_geometry,
        untrained_like,
    )
    from airinterp.report import figures

    inp = run.open(default_n=100)
    model, c = inp.model, inp.model.config
    try:
        chosen = check_basins(model, act=run.act, scales=DEFAULT_SCALES if run.scales is None else run.scales) if run.basins else ()
    except input_errors() as err:
        raise fail(err) from None
    out = out_dir(run.out, "geometry", inp.checkpoint)
    display, factory = progress()
    with display:
        geos = [run_geometry(model, inp.ds, inp.indices, n_act=inp.n_act, batch_size=run.batch_size,
                             progress=factory("geometry", len(inp.indices)))]  # fmt: skip
        if run.untrained:
            geos.append(run_geometry(untrained_like(model, inp.seed), inp.ds, inp.indices, n_act=inp.n_act, batch_size=run.batch_size,
                                     model_kind="untrained", progress=factory("geometry, untrained", len(inp.indices))))  # fmt: skip
        bas = (run_basins(model, inp.ds, inp.indices, inp.rules, act=run.act, scales=chosen, batch_size=run.batch_size, seed=inp.seed,
                          progress=factory(f"basins ({len(c.states) * len(chosen)} rollouts)", len(inp.indices)))
               if run.basins else None)  # fmt: skip
    import pandas as pd

    pr = pd.concat([g.pr_summary(inp.seed) for g in geos], ignore_index=True)
    state_pr = pd.concat([g.state_pr(inp.seed) for g in geos], ignore_index=True)
    traj = pd.concat([g.frame() for g in geos], ignore_index=True)
    n = len(inp.indices)
    figs = [figures.participation_lines(pr, f"{c.label}: participation ratio of each state ({n} puzzles; grey: untrained)"),
            figures.trajectory_plot(traj, f"{c.label}: zL and zH on one shared PCA basis")]  # fmt: skip
    if bas is not None:
        figs.append(figures.basin_curves(bas.summary, f"{c.label}: noise on each state carried into ACT step {run.act}"))
    with staging(out) as d:
        write_config(d, {**_config("geometry", run, inp), "scales": list(chosen)})
        write_table(pr, d / "pr.csv")
        write_table(state_pr, d / "state_pr.csv")
        write_table(pd.concat([g.components() for g in geos], ignore_index=True), d / "components.csv")
        write_table(traj, d / "trajectories.csv")
        write_table(pd.concat([g.capture() for g in geos], ignore_index=True), d / "capture.csv")
        if bas is not None:
            write_table(bas.puzzles, d / "basins_puzzles.csv")
            write_table(bas.summary, d / "basins.csv")
        write_html(d / "geometry.html", f"State geometry: {shown(inp.checkpoint)}", figs, [
            f"{n} test puzzles (seed {inp.seed}), {inp.n_act} ACT steps. Cell vector: a state's d_model vector at one cell. "
            "Participation ratio tr(S)^2 / ||S||_F^2 of the covariance S of one state's cell vectors at one sub-step: pooled "
            "over every puzzle and cell, and per puzzle over its cells (mean, 95 % bootstrap CI); untrained: a freshly "
            "initialised model of the same config. Shared basis: principal components of both states' cell vectors over "
            "every sub-step; a trajectory is a puzzle's cell-mean state on it. Basins: seeded Gaussian noise of the given "
            "size x each cell's norm on a state as carried into the ACT step, the rollout run to the trained length; "
            "unchanged: every cell of the answer as without noise (Clopper-Pearson CIs)."])  # fmt: skip
    for _, r in state_pr.iterrows():
        typer.echo(f"PR {r['state']} ({r['model']}): {r['pr_last']:.2f} pooled at {r['last_update']}, {r['pr_per_puzzle_last']:.2f} "
                   f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}] per puzzle, {r['pr_all_substeps']:.2f} over all its sub-steps "
                   f"(d_model {c.hidden_size})")  # fmt: skip
    if bas is not None:
        for _, r in bas.summary.iterrows():
            typer.echo(f"basin {r['state']} x{r['scale']:g}: answer unchanged {r['unchanged']:.3f} [{r['unchanged_ci_low']:.3f}, "
                       f"{r['unchanged_ci_high']:.3f}], exact {r['exact']:.3f} (clean {r['exact_clean']:.3f})")  # fmt: skip
    typer.echo(f"wrote {out}")


@app.command("probes", short_help="Linear probes on zL and zH with their causal test (beyond the paper)")
def probes_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: NPuzzles = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
    acts: Annotated[str | None, typer.Option(help="probe every update of these ACT steps, comma-separated (default 0,1,2,4,8,... and the last)")] = None,
    targets: Annotated[str | None, typer.Option(help="solution, undecided, candidate_1..candidate_<side> (Sudoku), comma-separated (default all)")] = None,
    ablate_acts: Annotated[str | None, typer.Option(help="ablate the probes of every update of these ACT steps (default 1 and the last; '' for none)")] = None,
    folds: Annotated[int, typer.Option(min=2, help="cross-validation folds, grouped by puzzle")] = 5,
) -> None:
    """Logistic-regression probes (scikit-learn, folds grouped by puzzle, a permuted-label control) for the solution, 'still undecided' and Sudoku's candidate sets from the state each update writes; then each probe's directions ablated in the rollout, beside a random subspace of the same rank: probes.csv, probes_puzzles.csv, causal.csv, causal_puzzles.csv, probes.html."""
    run = parse(ProbesRun, **locals())
    from airinterp.analysis.probes import check_probes, run_probes
    from airinterp.report import figures

    inp = run.open(default_n=100, n_act=False)
    model, c = inp.model, inp.model.config
    try:
        acts_, targets_, ablate_ = check_probes(model, inp.rules, len(inp.indices), acts=run.acts, targets=run.targets,
                                                ablate_acts=run.ablate_acts, folds=run.folds)  # fmt: skip
    except input_errors() as err:
        raise fail(err) from None
    out = out_dir(run.out, "probes", inp.checkpoint)
    display, factory = progress()
    with display:
        res = run_probes(model, inp.ds, inp.indices, inp.rules, acts=acts_, targets=targets_, ablate_acts=ablate_, folds=run.folds,
                         batch_size=run.batch_size, seed=inp.seed, bars=factory)  # fmt: skip
    n = len(inp.indices)
    figs = [figures.probe_lines(res.accuracy, f"{c.label}: linear probes on the state each update writes ({n} puzzles, {run.folds} folds)")]
    if len(res.causal):
        figs.append(figures.ablation_bars(res.causal, f"{c.label}: output non-given accuracy when a probe's directions are ablated"))
    with staging(out) as d:
        write_config(d, {**_config("probes", run, inp), "acts": acts_, "targets": targets_, "ablate_acts": ablate_})
        write_table(res.accuracy, d / "probes.csv")
        write_table(res.puzzles, d / "probes_puzzles.csv")
        write_table(res.causal, d / "causal.csv")
        write_table(res.causal_puzzles, d / "causal_puzzles.csv")
        write_html(d / "probes.html", f"Probes: {shown(inp.checkpoint)}", figs, [
            f"{n} test puzzles (seed {inp.seed}); samples: (puzzle, non-given cell), features: the state the update writes "
            "there. Probe: logistic regression on standardised features, folds grouped by puzzle; control: the same on "
            "labels permuted across samples; accuracy per puzzle, mean with a 95 % bootstrap CI. Causal test: the probe's "
            "weight directions (or a seeded random subspace of the same rank) mean-ablated at the non-given cells of that "
            "update's output, the rollout run to the trained length; paired change against the clean rollout."])  # fmt: skip
    a = res.accuracy
    last = a[a.act == a.act.max()]
    for t in ("solution", "undecided"):
        for st in c.states:
            g = last[(last.target == t) & (last.state == st)]
            if len(g):
                r = g.iloc[-1]
                typer.echo(f"probe {t} from {st} at act.{r['act']}.{r['update']}: {r['accuracy']:.3f} [{r['accuracy_ci_low']:.3f}, "
                           f"{r['accuracy_ci_high']:.3f}], control {r['control']:.3f}, majority {r['majority']:.3f}")  # fmt: skip
    for _, r in res.causal[res.causal["rank"] > 0].iterrows() if len(res.causal) else ():
        if r["arm"] != "probe":
            continue
        typer.echo(f"ablate {r['target']} (rank {r['rank']}) at act.{r['act']}.{r['update']}: probe {r['probe_acc_clean']:.3f} -> "
                   f"{r['probe_acc_ablated']:.3f} (re-fitted {r['refit_acc_ablated']:.3f}); output non-given "
                   f"{r['output_nongiven_delta']:+.4f} [{r['output_nongiven_delta_ci_low']:+.4f}, {r['output_nongiven_delta_ci_high']:+.4f}]")  # fmt: skip
    typer.echo(f"wrote {out}")
