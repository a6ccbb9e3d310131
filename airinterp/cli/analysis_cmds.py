"""State-dynamics commands: decode, freeze, patch (AIR_SPEC 4.a-4.c).

Each checks every option first (one ``error:`` line, nothing written), runs batched rollouts
under a progress bar, and writes ``config.json``, tidy tables and one self-contained HTML figure
page into ``--out`` (default ``out/<command>/<checkpoint>``), files renamed into place whole.
"""

import json
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from airinterp.cli._common import (
    INPUT_ERRORS,
    app,
    check_device,
    check_parents_writable,
    fail,
    progress,
    write_table,
)

# ---- shared options ------------------------------------------------------------------------------
Task = Annotated[str | None, typer.Option(help="sudoku or maze (default: the checkpoint's; sudoku without --checkpoint)")]
Checkpoint = Annotated[Path | None, typer.Option(help="airinterp checkpoint (default: the shipped default for --task)")]
Data = Annotated[Path | None, typer.Option(help="dataset directory whose test split to use (default: the one the checkpoint's card names)")]
Seed = Annotated[int, typer.Option(min=0, help="seed of the puzzle sample and of every bootstrap")]
BatchSize = Annotated[int, typer.Option(min=1, help="puzzles per forward")]
Device = Annotated[str, typer.Option(help="cpu, cuda or cuda:N")]
Out = Annotated[Path | None, typer.Option("-o", "--out", help="output directory (default: out/<command>/<checkpoint name>)")]
NAct = Annotated[int | None, typer.Option(min=1, help="ACT steps per rollout (default: the model's halt_max_steps)")]


def _open(task, checkpoint, data, n_puzzles, seed, device, n_act, default_n: int | None = None):
    """The checked inputs; without --n-puzzles, a seeded sample of ``default_n`` puzzles (or
    the whole split if smaller; None: the whole split)."""
    from airinterp.analysis.inputs import open_inputs
    from airinterp.analysis.run import sample_puzzles

    check_device(device)
    try:
        inp = open_inputs(task, checkpoint, data, n_puzzles=n_puzzles, seed=seed, device=device, n_act=n_act)
    except INPUT_ERRORS as err:
        raise fail(err) from None
    if n_puzzles is None and default_n is not None:
        inp.indices = sample_puzzles(inp.ds.n_examples, min(default_n, inp.ds.n_examples), seed)
    return inp


def _out_dir(out: Path | None, command: str, checkpoint: Path, suffix: str = "") -> Path:
    if out is None:
        from airinterp.analysis.suite import _name

        name = _name(checkpoint)
        out = Path("out") / command / (name + suffix)
    if out.exists() and not out.is_dir():
        raise fail(f"--out {out}: is a file; expected a directory")
    check_parents_writable(out, "--out")
    return out


class _Staging:
    """Write into a hidden sibling directory; move each file into ``out`` when all are written."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"

    def __enter__(self) -> Path:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.out.mkdir(parents=True, exist_ok=True)
                for f in sorted(self.tmp.iterdir()):
                    os.replace(f, self.out / f.name)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _write_config(d: Path, config: dict) -> None:
    (d / "config.json").write_text(json.dumps(config, indent=2) + "\n")


@app.command("decode")
def decode_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: Annotated[int | None, typer.Option(min=1, help="puzzles (a seeded sample; default: 100, or the whole split if smaller)")] = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
    n_act: NAct = None,
    probs: Annotated[bool, typer.Option(help="also keep the probability of each decoded token")] = False,
    grids: Annotated[int, typer.Option(min=0, help="puzzles drawn as grids in the HTML page")] = 3,
) -> None:
    """Decode zL and zH after every update of the rollout: tokens.parquet, changes.csv, substeps.csv, decode.html."""
    from airinterp.analysis.decode import decode_rollouts
    from airinterp.analysis.dynamics import changes_summary, changes_table, substep_names, substep_table
    from airinterp.report import figures
    from airinterp.tasks.rules import rules_for

    inp = _open(task, checkpoint, data, n_puzzles, seed, device, n_act, default_n=100)
    out = _out_dir(out, "decode", inp.checkpoint)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise fail("decode writes tokens.parquet, which needs pyarrow (pip install pyarrow)") from None
    model, c = inp.model, inp.model.config
    rules = rules_for(c.task, c.seq_len)
    display, factory = progress()
    with display:
        r = decode_rollouts(model, inp.ds, inp.indices, n_act=inp.n_act, batch_size=batch_size, probs=probs,
                            progress=factory("decode", len(inp.indices)))  # fmt: skip
    changes = changes_table(r, rules, model.schedule)
    substeps = substep_table(r, rules, model.schedule)
    summary = changes_summary(changes, inp.seed)
    tokens = r.frame()
    updates = substep_names(model.schedule, r.n_substeps)
    figs = [figures.decode_grids(tokens, c.task, rules.side, rules.token_names, int(p), updates) for p in r.indices[:grids]]
    cols = ["undecided_fraction", "content_changes"] + (["blank_fraction"] if rules.blank is not None else [])
    if "cell_accuracy" in substeps:
        cols.append("cell_accuracy")
    figs.append(figures.substep_lines(substeps, cols, f"{c.variant}: per sub-step means over {len(r.indices)} puzzles"))
    with _Staging(out) as d:
        _write_config(d, {"command": "decode", **inp.config(), "probs": probs})
        write_table(tokens, d / "tokens.parquet")
        write_table(changes, d / "changes.csv")
        write_table(summary, d / "changes_summary.csv")
        write_table(substeps, d / "substeps.csv")
        figures.write_html(d / "decode.html", f"Decoded rollouts: {inp.checkpoint}", figs,
                           [f"{len(r.indices)} test puzzles (seed {inp.seed}), {inp.n_act} ACT steps = {r.n_substeps} sub-steps; "
                            "grids decode each state through the LM head (argmax over all tokens); grey = undecided."])  # fmt: skip
    for s in ("zL", "zH"):
        row = summary[(summary.state == s) & (summary.metric == "content_changes")].iloc[0]
        typer.echo(f"{s}: content changes per puzzle {row['mean']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}] (reference mode)")
    typer.echo(f"wrote {out}")


def _parse_acts(text: str | None, n_act: int, option: str) -> list[int]:
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


@app.command("freeze")
def freeze_cmd(
    state: Annotated[str, typer.Option(help="the state to freeze: zH or zL")],
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    from_act: Annotated[int, typer.Option(min=0, help="freeze from this ACT step on (0: the whole rollout, the reference's)")] = 0,
    substep: Annotated[int | None, typer.Option(min=0, help="freeze this one flat sub-step only (an update of --state)")] = None,
    n_puzzles: Annotated[int | None, typer.Option(min=1, help="puzzles (a seeded sample; default: the whole test split)")] = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
    n_act: NAct = None,
) -> None:
    """Paired freeze experiment: freeze_puzzles.csv, freeze_summary.csv, freeze.html (Figs 6-7)."""
    from airinterp.analysis.freeze import Freeze, run_freeze
    from airinterp.report import figures

    if state not in ("zH", "zL"):
        raise fail(f"--state {state!r}: expected zH or zL")
    if substep is not None and from_act:
        raise fail("--from-act and --substep: give one (a freeze from a step on, or of one sub-step)")
    inp = _open(task, checkpoint, data, n_puzzles, seed, device, n_act)
    fr = Freeze(state, from_act=from_act, substep=substep)
    try:
        fr.check(inp.model, inp.n_act)
    except ValueError as err:
        raise fail(err) from None
    tag = f"-{state}" + (f"-from{from_act}" if from_act else "") + (f"-sub{substep}" if substep is not None else "")
    out = _out_dir(out, "freeze", inp.checkpoint, tag)
    display, factory = progress()
    with display:
        res = run_freeze(inp.model, inp.ds, inp.indices, fr, n_act=inp.n_act, batch_size=batch_size, seed=inp.seed,
                         progress=factory(fr.label(), len(inp.indices)))  # fmt: skip
    m = res.flags["measured_state"]
    figs = [
        figures.freeze_comparison(res.summary, ["content_changes", "content_changes_harmonized", "output_exact"],
                                  f"{inp.model.config.variant}: {fr.label()}; measured {m} over {len(inp.indices)} puzzles"),
        figures.paired_points(res.puzzles, "content_changes", f"{m} content changes per puzzle, normal vs frozen"),
    ]  # fmt: skip
    notes = [res.flags["measured_exact_reference_note"]]
    if res.flags["input_independent"]:
        notes.insert(0, "INPUT-INDEPENDENT: " + res.flags["input_independent_note"])
    with _Staging(out) as d:
        _write_config(d, {"command": "freeze", **inp.config(), "freeze": {"state": state, "from_act": from_act, "substep": substep},
                          "flags": res.flags})  # fmt: skip
        write_table(res.puzzles, d / "freeze_puzzles.csv")
        write_table(res.summary, d / "freeze_summary.csv")
        figures.write_html(d / "freeze.html", f"{fr.label()}: {inp.checkpoint}", figs, notes)
    s = res.summary.set_index("metric")
    for metric in ("content_changes", "output_exact"):
        r = s.loc[metric]
        typer.echo(f"{metric if metric != 'content_changes' else m + ' content changes'}: normal {r['base_mean']:.3f} -> "
                   f"frozen {r['treated_mean']:.3f}, delta {r['delta_mean']:+.3f} [{r['delta_ci_low']:+.3f}, {r['delta_ci_high']:+.3f}] "
                   f"p={r['p_sign_flip']:.3g}")  # fmt: skip
    if res.flags["input_independent"]:
        typer.echo(f"note: the frozen rollout is input-independent ({m} identical for every puzzle)")
    typer.echo(f"wrote {out}")


@app.command("patch")
def patch_cmd(
    state: Annotated[str | None, typer.Option(help="patch zL, zH or both (zL,zH) as carried into each ACT step (default: both)")] = None,
    site: Annotated[str | None, typer.Option(help="patch this update/block site at each ACT step instead, e.g. H0.hook_out or L0_1.blocks.2.hook_resid_post")] = None,
    update: Annotated[str | None, typer.Option(help="with --state: the state as this update reads it (default: the first update, L0_0)")] = None,
    acts: Annotated[str | None, typer.Option(help="ACT steps to patch, comma-separated (default: every step)")] = None,
    source: Annotated[str, typer.Option(help="'other': another puzzle's value (a seeded derangement); or an ACT step T: the same puzzle's value at step T")] = "other",
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: Annotated[int | None, typer.Option(min=2, help="puzzles (a seeded sample; default: the whole test split)")] = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    device: Device = "cpu",
    out: Out = None,
    n_act: NAct = None,
) -> None:
    """Patching across sub-steps: patch_puzzles.csv, patch_summary.csv, patch.html (when does each state start to matter?)."""
    from airinterp.analysis.patching import run_patch, site_targets, state_targets
    from airinterp.report import figures

    if state is not None and site is not None:
        raise fail("--state and --site: give one")
    states = ["zL", "zH"] if state is None else [s.strip() for s in state.split(",")]
    bad = [s for s in states if s not in ("zL", "zH")]
    if bad:
        raise fail(f"--state {state!r}: expected zL, zH or zL,zH")
    if source != "other" and not source.isdigit():
        raise fail(f"--source {source!r}: expected 'other' or an ACT step number")
    src: int | str = "other" if source == "other" else int(source)
    inp = _open(task, checkpoint, data, n_puzzles, seed, device, n_act)
    model = inp.model
    if src != "other" and not 0 <= src < inp.n_act:  # type: ignore[operator]
        raise fail(f"--source {src}: ACT step outside the rollout's 0..{inp.n_act - 1}")
    steps = _parse_acts(acts, inp.n_act, "--acts")
    try:
        if site is not None:
            targets = site_targets(model, site, steps)
        else:
            targets = [t for s in states for t in state_targets(model, s, steps, update)]
    except ValueError as err:
        raise fail(f"{'--site' if site else '--update'}: {err}") from None
    if src == "other" and batch_size == 1:
        raise fail("--batch-size 1: --source other takes each puzzle's value from another puzzle of its batch; use a batch size >= 2")
    if src == "other" and len(inp.indices) % batch_size == 1:
        raise fail(f"--batch-size {batch_size}: {len(inp.indices)} puzzles leave a last batch of 1, which has no other puzzle to take a value from")
    out = _out_dir(out, "patch", inp.checkpoint, f"-{source}")
    display, factory = progress()
    try:
        with display:
            res = run_patch(model, inp.ds, inp.indices, targets, source=src, n_act=inp.n_act, batch_size=batch_size,
                            seed=inp.seed, progress=factory(f"patch ({len(targets)} targets)", len(inp.indices)))  # fmt: skip
    except INPUT_ERRORS as err:
        raise fail(err) from None
    figs = [figures.patch_curve(res.summary, "exact", f"{model.config.variant}: exact accuracy after patching (source: {source})"),
            figures.patch_curve(res.summary, "token_accuracy", "token accuracy after patching")]  # fmt: skip
    with _Staging(out) as d:
        _write_config(d, {"command": "patch", **inp.config(), "patch": {"targets": [t.site for t in targets], "source": source}})
        write_table(res.puzzles, d / "patch_puzzles.csv")
        write_table(res.summary, d / "patch_summary.csv")
        figures.write_html(d / "patch.html", f"Patching across sub-steps: {inp.checkpoint}", figs,
                           ["Each point replaces one state (or site) with another puzzle's value (or the same puzzle's at another "
                            "ACT step) and reruns the rest of the rollout; error bars: puzzle-level bootstrap CI of the paired delta."])  # fmt: skip
    for _, r in res.summary.iterrows():
        typer.echo(f"{r['target']}: exact {r['exact_clean']:.3f} -> {r['exact_patched']:.3f} "
                   f"({r['exact_delta']:+.3f} [{r['exact_delta_ci_low']:+.3f}, {r['exact_delta_ci_high']:+.3f}]), "
                   f"token accuracy {r['token_accuracy_clean']:.3f} -> {r['token_accuracy_patched']:.3f}, "
                   f"{r['output_cells_changed']:.2f} output cells changed")  # fmt: skip
    typer.echo(f"wrote {out}")


@app.command("attention")
def attention_cmd(
    task: Task = None,
    checkpoint: Checkpoint = None,
    data: Data = None,
    n_puzzles: Annotated[int | None, typer.Option(min=1, help="puzzles (a seeded sample; default: 100, or the whole split if smaller)")] = None,
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
    from airinterp.analysis.attention import default_steps, run_attention
    from airinterp.report import figures

    if head_reduce not in ("mean", "best"):
        raise fail(f"--head-reduce {head_reduce!r}: expected mean or best")
    if violations not in ("pre", "post_h0"):
        raise fail(f"--violations {violations!r}: expected pre or post_h0")
    inp = _open(task, checkpoint, data, n_puzzles, seed, device, None, default_n=100)
    if first_n:
        import numpy as np

        inp.indices = np.arange(len(inp.indices))
    n_act = inp.model.config.halt_max_steps
    chosen = default_steps(n_act) if steps is None else _parse_acts(steps, n_act, "--steps")
    out = _out_dir(out, "attention", inp.checkpoint, "" if violations == "pre" else "-post_h0")
    display, factory = progress()
    try:
        with display:
            res = run_attention(inp.model, inp.ds, inp.indices, steps=chosen, violations=violations, batch_size=batch_size,
                                seed=inp.seed, per_head=per_head, progress=factory("attention", len(inp.indices)))  # fmt: skip
    except INPUT_ERRORS as err:
        raise fail(err) from None
    method = "head_mean" if head_reduce == "mean" else "best_head (reference option)"
    c = inp.model.config
    metrics = ["nbr_mass", "entropy", "viol_mass"]
    figs = [figures.attention_contrasts(res.summary, metrics, method, f"{c.variant} ({c.task}): L0_0 - H0 contrasts per layer, "
                                        f"{method}, ACT steps {chosen}, {len(inp.indices)} puzzles")]  # fmt: skip
    if c.task == "maze":
        figs.append(figures.attention_contrasts(res.summary, ["density_n4", "density_n8", "density_5x5"], method, "Maze densities (actual neighbour counts)"))
    if per_head:
        for cls in res.summary["class"].unique():
            figs.append(figures.head_heatmap(res.heads, "nbr_mass", cls))
    with _Staging(out) as d:
        _write_config(d, {"command": "attention", **inp.config(), "attention": {"steps": chosen, "head_reduce": head_reduce,
                          "violations": violations, "first_n": first_n, "updates": ["L0_0", "H0"]}})  # fmt: skip
        write_table(res.puzzles, d / "attention_puzzles.csv")
        write_table(res.summary, d / "attention_summary.csv")
        if per_head:
            write_table(res.heads, d / "attention_heads.csv")
        figures.write_html(d / "attention.html", f"Attention locality: {inp.checkpoint}", figs,
                           ["Contrasts: delta_nbr = L - H neighbourhood mass (query excluded), delta_ent = H - L normalised entropy, "
                            "delta_viol = L - H mass on violated peers (Maze: erroneous 4-neighbours). Head average per row, "
                            "mean per puzzle and class, error bars: seeded puzzle-level bootstrap 95% CI."])  # fmt: skip
    s = res.summary[res.summary.method == method]
    for (layer, cls), g in s[s.metric.isin(metrics)].groupby(["layer", "class"], sort=False):
        parts = [f"{m} {r.delta_mean:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}]" for m, r in g.set_index("metric").loc[metrics].iterrows()]
        typer.echo(f"layer {layer} {cls}: " + ", ".join(parts))
    typer.echo(f"wrote {out}")


@app.command("attention-example")
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
    import numpy as np

    from airinterp.analysis.attention import attention_example, check_example, default_steps, propose_examples
    from airinterp.analysis.run import puzzle_batches
    from airinterp.report import figures
    from airinterp.tasks.rules import rules_for

    inp = _open(task, checkpoint, data, None, seed, device, None)
    model, c = inp.model, inp.model.config
    n_act = c.halt_max_steps
    chosen = default_steps(n_act) if steps is None else _parse_acts(steps, n_act, "--steps")
    side = int(round(c.seq_len**0.5))
    query = None
    if cell is not None:
        try:
            r, col = (int(v) for v in cell.split(","))
        except ValueError:
            raise fail(f"--cell {cell!r}: expected ROW,COL like 2,5") from None
        if not (0 <= r < side and 0 <= col < side):
            raise fail(f"--cell {cell}: outside the {side}x{side} grid (rows and columns 0..{side - 1})")
        query = r * side + col
    if puzzle is not None and puzzle >= inp.ds.n_examples:
        raise fail(f"--puzzle {puzzle}: the test split has puzzles 0..{inp.ds.n_examples - 1}")
    try:
        check_example(model, query or 0, layer, head, chosen)
    except ValueError as err:
        raise fail(err) from None
    out = _out_dir(out, "attention-example", inp.checkpoint)
    pool = inp.indices if puzzle is None else np.array([puzzle])
    candidates = propose_examples(model, inp.ds, pool if puzzle is not None else inp.indices[: min(200, len(inp.indices))],
                                  step=chosen[0], layer=layer, n=max(propose, 1), seed=seed)  # fmt: skip
    if puzzle is None or query is None:
        if candidates.empty:
            raise fail("no query cell to show: the chosen puzzles have no query cells (Sudoku blanks / Maze path cells)")
        best = candidates.sort_values("score", ascending=False).iloc[0]
        puzzle = int(best["puzzle"]) if puzzle is None else puzzle
        query = int(best["query"]) if query is None else query
    batch = next(puzzle_batches(model, inp.ds, np.array([puzzle]), 1))
    ex = attention_example(model, batch, query, layer=layer, head=head, steps=chosen, top_k=top_k)
    box = rules_for(c.task, c.seq_len).box
    lu, hu = ex.metrics["update"].iloc[0], ex.metrics["update"].iloc[1]
    marks = {a: g["violations"] for a, g in ex.grids.items()}
    title = f"{c.variant}: puzzle {puzzle}, query (row {query // side}, col {query % side}), layer {layer}, head {ex.head}"
    figs = [figures.attention_maps(ex.rows, c.task, side, query, [chosen[0]], [lu, hu], marks, ex.inputs, box, title=title + f", ACT step {chosen[0]}")]
    if len(chosen) > 1:
        figs.append(figures.attention_maps(ex.rows, c.task, side, query, chosen, [lu, hu], marks, ex.inputs, box,
                                           title="the same query across the analysed ACT steps (one colour scale)"))  # fmt: skip
    with _Staging(out) as d:
        _write_config(d, {"command": "attention-example", **{k: v for k, v in inp.config().items() if k != "puzzle_indices"},
                          "example": {"puzzle": puzzle, "query": query, "row": query // side, "col": query % side,
                                      "layer": layer, "head": ex.head, "steps": chosen, "top_k": top_k}})  # fmt: skip
        write_table(ex.rows, d / "example_rows.csv")
        write_table(ex.metrics, d / "example_metrics.csv")
        write_table(ex.persistence, d / "persistence.csv")
        if propose:
            write_table(candidates.head(propose), d / "candidates.csv")
        figures.write_html(d / "example.html", f"Attention example: {inp.checkpoint}", figs,
                           ["Raw (not renormalised) attention of the query row over the cells. Red x: violated cells (Sudoku) / "
                            "errors (Maze) of the decoded zH both updates read. Persistence (top-k overlap between consecutive "
                            "shown steps) is an airinterp extension, not in the paper."])  # fmt: skip
    for _, r in ex.metrics.iterrows():
        typer.echo(f"step {r['step']} {r['update']}: nbr_mass {r['nbr_mass']:.3f} entropy {r['entropy']:.3f} "
                   f"viol_mass {r['viol_mass']:.3f} ({r['query_class']})")  # fmt: skip
    typer.echo(f"wrote {out}")
