"""State-dynamics commands: decode, roles, freeze, patch (AIR_SPEC 4.a-4.c; roles is ours).

Each checks every option first (one ``error:`` line, nothing written), runs batched rollouts
under a progress bar, and writes ``config.json``, tidy tables and one self-contained HTML figure
page into ``--out`` (default ``out/<command>/<checkpoint>``), files renamed into place whole.
"""

from typing import Annotated

import typer

from airinterp.cli._common import app, fail, input_errors, progress
from airinterp.cli.options import BatchSize, Checkpoint, Data, Device, NAct, NPuzzles, Seed, Task
from airinterp.cli.options import OutDir as Out
from airinterp.cli.output import out_dir, shown, staging, write_config, write_html, write_table
from airinterp.cli.runs import AttentionRun, DecodeRun, ExampleRun, FreezeRun, PatchRun, parse


def _config(command: str, run, inp, **resolved) -> dict:
    """``config.json``: the command, its Run as given, the inputs' provenance, what was resolved."""
    return {"command": command, "run": run.model_dump(mode="json"), **inp.config(), **resolved}


@app.command("decode", short_help="Decode zL and zH after every update (Figs 2-5)")
def decode_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: NPuzzles = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
    n_act: NAct = None,
    probs: Annotated[bool, typer.Option(help="also keep the probability of each decoded token")] = False,
    grids: Annotated[int, typer.Option(min=0, help="puzzles drawn as grids in the HTML page")] = 3,
) -> None:
    """Decode zL and zH after every update of the rollout: tokens.parquet, changes.csv, substeps.csv, decode.html."""
    run = parse(DecodeRun, **locals())
    from airinterp.analysis.suite import decode_section
    from airinterp.report import figures

    inp = run.open(default_n=100)
    out = out_dir(run.out, "decode", inp.checkpoint)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise fail("decode writes tokens.parquet, which needs pyarrow (pip install pyarrow)") from None
    c = inp.model.config
    display, factory = progress()
    with display:
        sec = decode_section(inp, batch_size=run.batch_size, probs=run.probs, progress=factory("decode", len(inp.indices)))
    rules, r, substeps, summary = sec.rules, sec.rollout, sec.substeps, sec.summary
    tokens = r.frame()
    step_of = [int(u.split(".")[1]) for u in sec.updates]
    start = step_of.index(1) if 1 in step_of else len(step_of) - 1  # step 0 starts from the untrained initial states
    io = r.grid_io(run.grids)
    figs = [figures.decode_grids(tokens, rules.roles(), rules.side, rules.token_names, int(p), sec.updates, start=start, io=io.get(int(p)))
            for p in r.indices[: run.grids]]  # fmt: skip
    cols = ["undecided_fraction", "content_changes"] + (["blank_fraction"] if rules.blank is not None else [])
    if "cell_accuracy" in substeps:
        cols.append("cell_accuracy")
    figs.append(figures.substep_lines(substeps, cols, f"{c.label}: per sub-step means over {len(r.indices)} puzzles"))
    with staging(out) as d:
        write_config(d, _config("decode", run, inp, probs=run.probs))
        write_table(tokens, d / "tokens.parquet")
        write_table(sec.changes, d / "changes.csv")
        write_table(summary, d / "changes_summary.csv")
        write_table(substeps, d / "substeps.csv")
        write_html(d / "decode.html", f"Decoded rollouts: {shown(inp.checkpoint)}", figs,
                   [f"{len(r.indices)} test puzzles (seed {inp.seed}), {inp.n_act} ACT steps = {r.n_substeps} sub-steps; "
                    "grids decode each state through the LM head (argmax over all tokens); grey = undecided; Sudoku: givens bold, "
                    "digits that differ from the solution red."])  # fmt: skip
    for st in c.states:
        row = summary[(summary.state == st) & (summary.metric == "content_changes")].iloc[0]
        typer.echo(f"{st}: content changes per puzzle {row['mean']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}] (reference mode)")
    typer.echo(f"wrote {out}")


def _parse_acts(text: str | None, n_act: int, option: str) -> list[int]:
    """A comma-separated list of ACT steps from the command line, each inside the rollout, sorted, once."""
    if text is None:
        return list(range(n_act))
    try:
        acts = [int(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise fail(f"{option} {text!r}: expected comma-separated ACT steps like 0,2,4") from None
    bad = [a for a in acts if not 0 <= a < n_act]
    if not acts or bad:
        raise fail(f"{option} {text!r}: ACT steps must lie in 0..{n_act - 1} (the rollout's {n_act} steps)")
    return sorted(set(acts))  # each step once (a repeat would count its puzzles twice)


@app.command("roles", short_help="What each state holds: zL/zH disagreement, confidence")
def roles_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: NPuzzles = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
    n_act: NAct = None,
) -> None:
    """What each state holds (not in the paper): zL/zH disagreement, undecided and low-confidence shares, accuracy, Maze path recall/precision; roles_summary.csv, roles_puzzles.csv, roles_substeps.csv, roles.html."""
    run = parse(DecodeRun, **locals())
    from airinterp.analysis.roles import roles_analysis
    from airinterp.analysis.suite import decode_section
    from airinterp.report import figures

    inp = run.open(default_n=100)
    c = inp.model.config
    if c.single_z:
        raise fail("roles: this model is TRM single-z, with one state (zL); the roles analysis compares zL with zH")
    out = out_dir(run.out, "roles", inp.checkpoint)
    display, factory = progress()
    with display:
        sec = decode_section(inp, batch_size=run.batch_size, probs=True, progress=factory("decode", len(inp.indices)))
    res = roles_analysis(sec.rollout, sec.rules, inp.model.schedule, inp.seed)
    sub, cols = res.substep_columns(("disagreement", "low_confidence", "undecided", "accuracy_nongiven", "path_recall", "path_precision"))
    with staging(out) as d:
        write_config(d, _config("roles", run, inp))
        write_table(res.summary, d / "roles_summary.csv")
        write_table(res.puzzles, d / "roles_puzzles.csv")
        write_table(res.substeps, d / "roles_substeps.csv")
        write_html(d / "roles.html", f"Roles of the two states: {shown(inp.checkpoint)}",
                   [figures.substep_lines(sub, cols, f"{c.label}: per sub-step means over {len(inp.indices)} puzzles (ACT steps 1..)")],
                   [f"{len(inp.indices)} test puzzles (seed {inp.seed}), {inp.n_act} ACT steps; low_confidence: non-given cells "
                    "decoded with softmax probability < 0.5; means over the grids of ACT steps 1.."])  # fmt: skip
    s = res.summary[(res.summary.when == "mean")].set_index(["metric", "state"])
    for metric in ("disagreement", "undecided", "low_confidence"):
        for state in ("both", "zL", "zH", "zL - zH"):
            if (metric, state) in s.index:
                r = s.loc[(metric, state)]
                typer.echo(f"{metric} {state}: {r['mean']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]")
    typer.echo(f"wrote {out}")


@app.command("freeze", short_help="Freeze zH or zL: paired effects (Figs 6-7)")
def freeze_cmd(
    state: Annotated[str, typer.Option(help="the state to freeze: zH or zL")],
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    from_act: Annotated[int, typer.Option(min=0, help="freeze from this ACT step on (0: the whole rollout, the reference's)")] = 0,
    substep: Annotated[int | None, typer.Option(min=0, help="freeze this one flat sub-step only (an update of --state)")] = None,
    n_puzzles: Annotated[int | None, typer.Option(min=1, help="puzzles (a seeded sample; default: 100, or the whole split if smaller; give the split's size for all of it)")] = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
    n_act: NAct = None,
) -> None:
    """Paired freeze experiment: freeze_puzzles.csv, freeze_summary.csv, freeze.html (Figs 6-7)."""
    run = parse(FreezeRun, **locals())
    from airinterp.analysis.freeze import Freeze, run_freeze
    from airinterp.report import figures

    inp = run.open(default_n=100)
    fr = Freeze(run.state.value, from_act=run.from_act, substep=run.substep)
    try:
        fr.check(inp.model, inp.n_act)
    except input_errors() as err:
        raise fail(err) from None
    tag = f"-{fr.state}" + (f"-from{fr.from_act}" if fr.from_act else "") + (f"-sub{fr.substep}" if fr.substep is not None else "")
    out = out_dir(run.out, "freeze", inp.checkpoint, tag)
    display, factory = progress()
    with display:
        res = run_freeze(inp.model, inp.ds, inp.indices, fr, n_act=inp.n_act, batch_size=run.batch_size, seed=inp.seed,
                         progress=factory(fr.label(), len(inp.indices)))  # fmt: skip
    m = res.measured_state
    figs = [
        figures.freeze_comparison(res.summary, ["content_changes", "content_changes_harmonized", "output_exact"],
                                  f"{inp.model.config.label}: {fr.label()}; measured {m} over {len(inp.indices)} puzzles"),
        figures.paired_points(res.puzzles, "content_changes", f"{m} content changes per puzzle, normal vs frozen"),
    ]  # fmt: skip
    with staging(out) as d:
        write_config(d, _config("freeze", run, inp, freeze={"state": fr.state, "from_act": fr.from_act, "substep": fr.substep},
                                flags=res.flags))  # fmt: skip
        write_table(res.puzzles, d / "freeze_puzzles.csv")
        write_table(res.summary, d / "freeze_summary.csv")
        write_html(d / "freeze.html", f"{fr.label()}: {shown(inp.checkpoint)}", figs, res.notes())
    s = res.summary.set_index("metric")
    typer.echo(f"{fr.label()} over {len(inp.indices)} puzzles: mean normal -> frozen, paired delta [95 % bootstrap CI], "
               "sign-flip p")  # fmt: skip
    for metric in ("content_changes", "output_exact", "output_token_accuracy"):
        r = s.loc[metric]
        typer.echo(f"{metric if metric != 'content_changes' else m + ' content changes'}: normal {r['base_mean']:.3f} -> "
                   f"frozen {r['treated_mean']:.3f}, delta {r['delta_mean']:+.3f} [{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}] "
                   f"p={r['p_sign_flip']:.3g}")  # fmt: skip
    if res.input_independent:
        typer.echo(f"note: the frozen rollout is input-independent ({m} identical for every puzzle)")
    typer.echo(f"wrote {out}")


@app.command("patch", short_help="Patch states across sub-steps: when each one matters")
def patch_cmd(
    state: Annotated[str | None, typer.Option(help="patch zL, zH or both (zL,zH) as carried into each ACT step (default: both)")] = None,
    site: Annotated[str | None, typer.Option(help="patch this update/block site at each ACT step instead, e.g. H0.hook_out or L0_1.blocks.2.hook_resid_post")] = None,
    update: Annotated[str | None, typer.Option(help="with --state: the state as this update reads it (default: the first update, L0_0)")] = None,
    acts: Annotated[str | None, typer.Option(help="ACT steps to patch, comma-separated (default: every step)")] = None,
    source: Annotated[str, typer.Option(help="'other': another puzzle's value (a seeded derangement); or an ACT step T: the same puzzle's value at step T")] = "other",
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: Annotated[int | None, typer.Option(min=2, help="puzzles (a seeded sample; default: 100, or the whole split if smaller; give the split's size for all of it)")] = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
    n_act: NAct = None,
) -> None:
    """Patching across sub-steps: patch_puzzles.csv, patch_summary.csv, patch.html (when does each state start to matter?)."""
    values = locals()
    run = parse(PatchRun, **{k: v for k, v in values.items() if k != "state"}, states=state)
    from airinterp.analysis.patching import check_patch, run_patch, site_targets, state_targets
    from airinterp.report import figures

    inp = run.open(default_n=100)
    model = inp.model
    steps = _parse_acts(run.acts, inp.n_act, "--acts")
    try:
        if run.site is not None:
            targets = site_targets(model, run.site, steps)
        else:
            chosen = [s.value for s in run.states] if run.states is not None else list(model.config.states)
            targets = [t for st in chosen for t in state_targets(model, st, steps, run.update)]
        check_patch(model, targets, len(inp.indices), source=run.source, n_act=inp.n_act, batch_size=run.batch_size)
    except input_errors() as err:
        raise fail(err) from None
    out = out_dir(run.out, "patch", inp.checkpoint, f"-{run.source}")
    display, factory = progress()
    with display:
        res = run_patch(model, inp.ds, inp.indices, targets, source=run.source, n_act=inp.n_act, batch_size=run.batch_size,
                        seed=inp.seed, progress=factory(f"patch ({len(targets)} targets)", len(inp.indices)))  # fmt: skip
    figs = [figures.patch_curve(res.summary, "exact", f"{model.config.label}: exact accuracy after patching (source: {run.source})"),
            figures.patch_curve(res.summary, "token_accuracy", "token accuracy after patching")]  # fmt: skip
    with staging(out) as d:
        write_config(d, _config("patch", run, inp, patch={"targets": [t.site for t in targets], "source": str(run.source)}))
        write_table(res.puzzles, d / "patch_puzzles.csv")
        write_table(res.summary, d / "patch_summary.csv")
        write_html(d / "patch.html", f"Patching across sub-steps: {shown(inp.checkpoint)}", figs,
                   ["Each point replaces one state (or site) with another puzzle's value (or the same puzzle's at another "
                    "ACT step) and reruns the rest of the rollout; error bars: puzzle-level bootstrap CI of the paired delta."])  # fmt: skip
    for _, r in res.summary.iterrows():
        typer.echo(f"{r['target']}: exact {r['exact_clean']:.3f} -> {r['exact_patched']:.3f} "
                   f"({r['exact_delta']:+.3f} [{r['exact_delta_ci_low']:+.3f}, {r['exact_delta_ci_high']:+.3f}]), "
                   f"token accuracy {r['token_accuracy_clean']:.3f} -> {r['token_accuracy_patched']:.3f}, "
                   f"{r['output_cells_changed']:.2f} output cells changed")  # fmt: skip
    typer.echo(f"wrote {out}")


@app.command("attention", short_help="L vs H attention locality per layer (Figs 8-9)")
def attention_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: NPuzzles = None,
    steps: Annotated[str | None, typer.Option(help="ACT steps to analyse, comma-separated (default: the paper's 2,4,...,14,15 inside the rollout, plus its last step)")] = None,
    per_head: Annotated[bool, typer.Option(help="also write per-head contrasts (attention_heads.csv, heat maps)")] = False,
    head_reduce: Annotated[str, typer.Option(help="mean: head average per row (ours); best: the best head per row (the reference pipeline's, biased upward)")] = "mean",
    violations: Annotated[str, typer.Option(help="pre: V/E from the zH both compared updates read (default); post_h0: from zH after H0 (the reference's)")] = "pre",
    first_n: Annotated[bool, typer.Option(help="the first --n-puzzles puzzles of the split in file order (the reference's choice, A7) instead of a seeded sample")] = False,
    seed: Seed = 0,
    batch_size: BatchSize = 16,
    device: Device = "cpu",
    out: Out = None,
) -> None:
    """L0_0 vs H0 attention locality (spec 4.d): attention_puzzles.csv, attention_summary.csv, attention.html (Figs 8-9)."""
    run = parse(AttentionRun, **locals())
    import numpy as np

    from airinterp.analysis.attention import default_steps, run_attention
    from airinterp.report import figures

    inp = run.open(default_n=100, n_act=False)
    if run.first_n:
        inp = inp.with_indices(np.arange(len(inp.indices)))
    n_act = inp.n_act
    chosen = default_steps(n_act) if run.steps is None else _parse_acts(run.steps, n_act, "--steps")
    out = out_dir(run.out, "attention", inp.checkpoint, "" if run.violations.value == "pre" else "-post_h0")
    display, factory = progress()
    try:
        with display:
            res = run_attention(inp.model, inp.ds, inp.indices, steps=chosen, violations=run.violations.value,
                                batch_size=run.batch_size, seed=inp.seed, per_head=run.per_head,
                                progress=factory("attention", len(inp.indices)))  # fmt: skip
    except input_errors() as err:
        raise fail(err) from None
    method = "head_mean" if run.head_reduce.value == "mean" else "best_head (reference option)"
    c = inp.model.config
    metrics = ["nbr_mass", "entropy", "viol_mass"]
    figs = [figures.attention_contrasts(res.summary, metrics, method, f"{c.label} ({c.task}): L0_0 - H0 contrasts per layer, "
                                        f"{method}, ACT steps {chosen}, {len(inp.indices)} puzzles")]  # fmt: skip
    if c.task == "maze":
        figs.append(figures.attention_contrasts(res.summary, ["density_n4", "density_n8", "density_5x5"], method, "Maze densities (actual neighbour counts)"))
    if run.per_head:
        for cls in res.summary["class"].unique():
            figs.append(figures.head_heatmap(res.heads, "nbr_mass", cls))
    with staging(out) as d:
        write_config(d, _config("attention", run, inp, attention={
            "steps": chosen, "head_reduce": run.head_reduce.value, "violations": run.violations.value, "first_n": run.first_n,
            "updates": list(res.updates)}))  # fmt: skip
        write_table(res.puzzles, d / "attention_puzzles.csv")
        write_table(res.summary, d / "attention_summary.csv")
        if run.per_head:
            write_table(res.heads, d / "attention_heads.csv")
        write_html(d / "attention.html", f"Attention locality: {shown(inp.checkpoint)}", figs,
                   ["Contrasts: delta_nbr = L - H neighbourhood mass (query excluded), delta_ent = H - L normalised entropy, "
                    "delta_viol = L - H mass on violated peers (Maze: erroneous 4-neighbours). Head average per row, "
                    "mean per puzzle and class, error bars: seeded puzzle-level bootstrap 95% CI."])  # fmt: skip
    s = res.summary[res.summary.method == method]
    typer.echo(f"L0_0 - H0 per layer and query class (entropy: H - L; positive: L more local), {method}, ACT steps "
               f"{','.join(map(str, chosen))}, mean over {len(inp.indices)} puzzles [95 % puzzle-level bootstrap CI]")  # fmt: skip
    for (layer, cls), g in s[s.metric.isin(metrics)].groupby(["layer", "class"], sort=False):
        listed = [m for m in metrics if not (m == "viol_mass" and cls == "control")]  # no violated peer: 0 by definition
        parts = [f"{m} {r.delta_mean:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}]" for m, r in g.set_index("metric").loc[listed].iterrows()]
        typer.echo(f"layer {layer} {cls}: " + ", ".join(parts))
    typer.echo(f"wrote {out}")


@app.command("attention-example", short_help="One query's L and H attention over ACT steps (Figs 10-13)")
def attention_example_cmd(
    puzzle: Annotated[int | None, typer.Option(min=0, help="test-split index of the puzzle (default: the selector's best candidate)")] = None,
    cell: Annotated[str | None, typer.Option(help="query cell as ROW,COL (0-based; default: the selector's best query of the puzzle)")] = None,
    layer: Annotated[int, typer.Option(min=0, help="layer of the shared stack")] = 0,
    head: Annotated[int | None, typer.Option(min=0, help="head (default: the largest delta_nbr + delta_viol + 0.5 delta_ent at the first step)")] = None,
    steps: Annotated[str | None, typer.Option(help="ACT steps shown, comma-separated (default: the analysed ones)")] = None,
    top_k: Annotated[int, typer.Option(min=1, help="cells in the top-k persistence overlap")] = 5,
    propose: Annotated[int, typer.Option(min=0, help="also list this many candidate examples (seeded selector, spec 4.e)")] = 5,
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    seed: Seed = 0,
    device: Device = "cpu",
    out: Out = None,
) -> None:
    """L vs H raw attention of one query across ACT steps, with V/E marked (Figs 10-13): example.html and tables."""
    run = parse(ExampleRun, **locals())
    import numpy as np

    from airinterp.analysis.attention import attention_example, check_example, default_steps, propose_examples
    from airinterp.analysis.run import puzzle_batches
    from airinterp.report import figures

    inp = run.open(n_act=False)
    model = inp.model
    c = model.config
    rules = inp.rules
    side = rules.side
    chosen = default_steps(inp.n_act) if run.steps is None else _parse_acts(run.steps, inp.n_act, "--steps")
    query = None
    if run.cell is not None:
        r, col = run.cell
        if not (0 <= r < side and 0 <= col < side):
            raise fail(f"--cell {cell}: outside the {side}x{side} grid (rows and columns 0..{side - 1})")
        query = r * side + col
    puzzle = run.puzzle
    if puzzle is not None and puzzle >= inp.ds.n_examples:
        raise fail(f"--puzzle {puzzle}: the test split has puzzles 0..{inp.ds.n_examples - 1}")
    try:
        check_example(model, query or 0, run.layer, run.head, chosen, run.top_k)
    except input_errors() as err:
        raise fail(err) from None
    out = out_dir(run.out, "attention-example", inp.checkpoint)
    pool = inp.indices if puzzle is None else np.array([puzzle])
    candidates = propose_examples(model, inp.ds, pool if puzzle is not None else inp.indices[: min(200, len(inp.indices))],
                                  step=chosen[0], layer=run.layer, n=max(run.propose, 1), seed=run.seed)  # fmt: skip
    if puzzle is None or query is None:
        if candidates.empty:
            raise fail("no query cell to show: the chosen puzzles have no query cells (Sudoku blanks / Maze path cells)")
        best = candidates.sort_values("score", ascending=False).iloc[0]
        puzzle = int(best["puzzle"]) if puzzle is None else puzzle
        query = int(best["query"]) if query is None else query
    batch = next(puzzle_batches(model, inp.ds, np.array([puzzle]), 1))
    ex = attention_example(model, batch, query, layer=run.layer, head=run.head, steps=chosen, top_k=run.top_k)
    if (ex.metrics["query_class"] == "not a query cell").any():
        typer.echo(f"note: cell (row {query // side}, col {query % side}) is not a query cell of puzzle {puzzle} (e.g. a given "
                   "Sudoku digit, or a Maze cell off the path): its metrics are shown, but it belongs to neither query class of the attention analysis")  # fmt: skip
    lu, hu = ex.metrics["update"].iloc[0], ex.metrics["update"].iloc[1]
    marks = {a: g["violations"] for a, g in ex.grids.items()}
    title = f"{c.label}: puzzle {puzzle}, query (row {query // side}, col {query % side}), layer {run.layer}, head {ex.head}"
    roles = rules.roles()
    figs = [figures.attention_maps(ex.rows, roles, side, query, [chosen[0]], [lu, hu], marks, ex.inputs, rules.box, title=title + f", ACT step {chosen[0]}")]
    if len(chosen) > 1:
        figs.append(figures.attention_maps(ex.rows, roles, side, query, chosen, [lu, hu], marks, ex.inputs, rules.box,
                                           title="the same query across the analysed ACT steps (one colour scale)"))  # fmt: skip
    with staging(out) as d:
        write_config(d, {**{k: v for k, v in _config("attention-example", run, inp).items() if k != "puzzle_indices"},
                         "example": {"puzzle": puzzle, "query": query, "row": query // side, "col": query % side,
                                     "layer": run.layer, "head": ex.head, "steps": chosen, "top_k": run.top_k}})  # fmt: skip
        write_table(ex.rows, d / "example_rows.csv")
        write_table(ex.metrics, d / "example_metrics.csv")
        write_table(ex.persistence, d / "persistence.csv")
        if run.propose:
            write_table(candidates.head(run.propose), d / "candidates.csv")
        write_html(d / "example.html", f"Attention example: {shown(inp.checkpoint)}", figs,
                   ["Raw (not renormalised) attention of the query row over the cells. Red x: violated cells (Sudoku) / "
                    "errors (Maze) of the decoded zH both updates read. Persistence (top-k overlap between consecutive "
                    "shown steps) is an airinterp extension, not in the paper."])  # fmt: skip
    how = "given" if run.puzzle is not None and run.cell is not None else "chosen by the selector (highest score, spec 4.e)"
    head_how = "given" if run.head is not None else "the largest delta_nbr + delta_viol + 0.5 delta_ent at the first step"
    typer.echo(f"puzzle {puzzle} (test-split index), query cell row {query // side} col {query % side}: {how}; layer "
               f"{run.layer}, head {ex.head} ({head_how})")  # fmt: skip
    for _, r in ex.metrics.iterrows():
        typer.echo(f"step {r['step']} {r['update']}: nbr_mass {r['nbr_mass']:.3f} entropy {r['entropy']:.3f} "
                   f"viol_mass {r['viol_mass']:.3f} ({r['query_class']})")  # fmt: skip
    typer.echo(f"wrote {out}")
