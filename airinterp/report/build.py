"""The report: every analysis of one or several checkpoints as one self-contained HTML page.

:func:`build_report` takes the tables :func:`airinterp.analysis.suite.analyse` returns (one per
checkpoint; the first is the primary one, the others ``--compare``) and lays them out section by
section, checkpoints side by side; the reproduction table sets the paper's numbers beside the
primary checkpoint's. Figures are drawn from DataFrames by :mod:`airinterp.report.figures`.
"""

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from airinterp.analysis.reproduce import reproduction_table, setting_text, summary_table
from airinterp.analysis.suite import CheckpointAnalyses
from airinterp.checkpoints.paths import shown
from airinterp.report import figures
from airinterp.report.html import Document

#: paper figure / table -> the report section holding its counterpart
FIGURE_MAP = [
    ("Fig 2 / Fig 3", "decoded zH and zL of the default Lx_H model", "Decoded rollouts (primary checkpoint)"),
    ("Fig 4 / Fig 5", "the same for the symmetric Lx_Hx control", "Decoded rollouts (the Lx_Hx --compare column)"),
    ("Fig 6", "paired freeze, content changes", "Content changes and freeze"),
    ("Fig 7", "symmetric-variant freeze", "Content changes and freeze (the Lx_Hx column; the paper's used L2x_Hx, A3)"),
    ("Table: content changes", "normal vs frozen totals (AIR_SPEC 4.b)", "Reproduction table, rows 'freeze'"),
    ("Fig 8 / README table", "Sudoku L-H contrasts per layer and class", "Attention locality; reproduction table rows 'attention'"),
    ("Fig 9", "Maze densities, delta_ent, delta_viol", "Attention locality (Maze densities figure)"),
    ("Fig 10 / Fig 12", "L vs H attention examples", "Attention example and persistence (first figure)"),
    ("Fig 11 / Fig 13", "temporal persistence of one query", "Attention example and persistence (across steps, overlap)"),
    ("Table: accuracy ablation", "exact accuracy per variant (AIR_SPEC 3.3)", "Reproduction table, rows 'accuracy'"),
    ("(not in the paper)", "patching each state across ACT steps", "Patching across sub-steps"),
    ("(not in the paper)", "layer lens, commit points, fixed-point residuals", "Convergence: layer lens, commit points, fixed points"),
    ("(not in the paper)", "where a one-cell perturbation spreads", "Causal locality of writes"),
    ("(not in the paper)", "participation ratios, shared PCA basis, perturbation basins", "Trajectories and dimensionality"),
    ("(not in the paper)", "linear probes on zL and zH, their directions ablated", "Probes and their causal test"),
]


def _card_table(analyses: Sequence[CheckpointAnalyses]) -> pd.DataFrame:
    rows: dict[str, list] = {}

    def put(key, values):
        rows[key] = values

    mc = [a.config["model_config"] for a in analyses]
    cards = [a.card for a in analyses]
    put("checkpoint", [shown(a.config["checkpoint"]) for a in analyses])
    put("variant", [a.variant for a in analyses])
    put("task / setting", [setting_text(a) for a in analyses])
    put("architecture", [f"d={m['hidden_size']}, {m['num_heads']} heads, {m['L_layers']} shared blocks, H_cycles={m['H_cycles']}, "
                         f"L_cycles={m['L_cycles']}, halt_max_steps={m['halt_max_steps']}, {m['pos_encodings']}" for m in mc])  # fmt: skip
    put("data (training)", [c.get("data", "") for c in cards])
    put("preset / steps", [f"{c.get('preset', '?')} / {c.get('steps', '?')} steps" for c in cards])
    put("training time / device", [f"{c.get('wall_time_s', '?')} s / {c.get('device', '?')}" for c in cards])
    fe = [c.get("final_eval", {}) for c in cards]
    put("card accuracy (full test split)", [f"exact {e.get('exact_accuracy', float('nan')):.3f}, token {e.get('token_accuracy', float('nan')):.3f}, "
                                             f"non-given {e.get('nongiven_accuracy', float('nan')):.3f}, n={e.get('n', '?')}" if e else "" for e in fe])  # fmt: skip
    put("test data", [f"{shown(a.config['data'])} ({a.config['n_split']} puzzles, fingerprint {a.config['data_fingerprint'][:12]})" for a in analyses])
    put("this run", [f"{a.config['n_puzzles']} puzzles (seed {a.config['seed']}), {a.config['n_act']} ACT steps, {a.config['device']}" for a in analyses])
    df = pd.DataFrame(rows, index=[a.name for a in analyses]).T.reset_index(names="field")
    return df


def build_report(analyses: Sequence[CheckpointAnalyses], path: "str | Path", *, title: str | None = None,
                 built: str | None = None, repro: pd.DataFrame | None = None) -> Path:  # fmt: skip
    """Write the report of ``analyses`` (primary first) to ``path``; ``built``: a timestamp line;
    ``repro``: the reproduction table if already made (:func:`reproduction_table`)."""
    a0 = analyses[0]
    names = [a.name for a in analyses]
    others = list(analyses[1:])
    title = title or f"airinterp report: {a0.name}" + (f" vs {', '.join(a.name for a in others)}" if others else "")
    doc = Document(title)
    v = a0.config["versions"]
    doc.para(
        f"{a0.task.capitalize()}: {len(a0.indices)} test puzzles sampled with seed {a0.config['seed']} (indices in each "
        f"checkpoint's run config below), {a0.config['n_act']} ACT steps; airinterp {v['airinterp']}, torch {v['torch']}, "
        f"transformer_lens {v['transformer_lens']}. Every interval is a 95% puzzle-level bootstrap CI (seeded) unless "
        "stated; exact-accuracy intervals are Clopper-Pearson."
    )  # fmt: skip

    # -- cards, summary, reproduction ----------------------------------------------------------
    doc.heading("Checkpoints")
    doc.table(_card_table(analyses))
    doc.heading("Summary")
    doc.table(summary_table(list(analyses)))
    doc.heading("Reproduction table")
    doc.para(
        "The paper's headline numbers beside ours. Verdicts: 'same direction' (our CI excludes 0 on the paper's side), "
        "'differs' (it excludes 0 on the other side, or a qualitative observation does not hold), 'inconclusive' (our CI "
        "contains 0), 'matches' (a level or observation that agrees), 'not comparable' (a level measured in another "
        "setting, or a quantity this run cannot form; the reason is given), 'paper inconclusive' (the paper's own "
        "direction is not established: Welch's t on its two means +- sd over 5 seeds gives p >= 0.05, or its CI "
        "contains 0), 'by construction' (a value that is guaranteed, not measured). The paper's numbers are means over "
        "5 seeds of 9x9 / 30x30 d=512 models; ours are one checkpoint and its CI over puzzles. Direction rows also show "
        "ratio = ours / paper with its size band, our sign-flip p and the Holm-adjusted p across the table's direction "
        "rows with the verdict it supports at a family-wise 5 % (verdict_holm); 'definition' says what each row "
        "measures, 'aggregation' whether an attention verdict holds with the best head, 'sensitivity' the other "
        "query-cell convention."
    )  # fmt: skip
    repro = reproduction_table(a0, others) if repro is None else repro
    counts = repro.verdict.value_counts()
    doc.para("Verdicts: " + ", ".join(f"{k} {counts[k]}" for k in counts.index) + ".")
    holm_counts = repro.verdict_holm[repro.verdict_holm != ""].value_counts()
    if len(holm_counts):
        doc.para("At a family-wise 5 % (Holm, direction rows): " + ", ".join(f"{k} {holm_counts[k]}" for k in holm_counts.index)
                 + "; size of the rows in the paper's direction: " + ", ".join(
                     f"{k} {v}" for k, v in repro[repro.verdict == "same direction"]["size"].value_counts().items()) + ".")
    doc.table(repro, verdict_column="verdict")

    # -- decoded rollouts ------------------------------------------------------------------------
    doc.heading("Decoded rollouts (Figs 2-5)")
    doc.para("Both states decoded through the LM head after every update (argmax over all tokens). Sudoku: digits, grey = "
             "undecided (PAD or BLANK), the puzzle's givens bold, digits that differ from the solution red; Maze: black wall, white open, blue path, grey undecided (PAD), green start, red goal. "
             "Per puzzle: zH above zL after each update of ACT step 1 (small multiples), then both with a slider over "
             "all flat sub-steps; the state an update does not write repeats its grid.")  # fmt: skip
    n_grid = max(a.tokens.puzzle.nunique() for a in analyses)
    width = 820 if len(analyses) == 1 else 640
    for i in range(n_grid):
        strips, sliders = [], []
        for a in analyses:
            puzzles = list(dict.fromkeys(a.tokens.puzzle))
            if i >= len(puzzles):
                strips.append(None), sliders.append(None)
                continue
            # small multiples of ACT step 1 (step 0 starts from the untrained initial states)
            step_of = [int(u.split(".")[1]) for u in a.updates]
            shown = [k for k, s_ in enumerate(step_of) if s_ == (1 if 1 in step_of else 0)]
            p = int(puzzles[i])
            io = a.grid_io.get(p)
            strips.append(figures.decode_strip(a.tokens, a.roles, a.side, a.token_names, p, a.updates, shown, io=io))
            sliders.append(figures.decode_grids(a.tokens, a.roles, a.side, a.token_names, p, a.updates, start=shown[0], width=width,
                                                io=io))  # fmt: skip
        doc.figures(strips, names)
        doc.figures(sliders, names)
    cols = ["undecided_fraction", "content_changes"] + (["blank_fraction"] if a0.roles.blank is not None else []) + ["cell_accuracy"]
    doc.figures([figures.substep_lines(a.substeps, [c for c in cols if c in a.substeps], f"{a.label}: per sub-step means, "
                                       f"{len(a.indices)} puzzles") for a in analyses], names)  # fmt: skip

    # -- content changes and freeze --------------------------------------------------------------
    doc.heading("Content changes and freeze (Figs 6-7)")
    doc.para("Content changes: a cell's decoded token changes from one non-mask token to another between consecutive "
             "sub-steps (reference mode: mask = Sudoku BLANK / Maze path; harmonized: the undecided tokens). Totals per "
             "puzzle over the rollout. Freeze: every update of the frozen state returns its input, from ACT step 0 (the "
             "reference's); the other state is measured, paired with the normal rollout of the same puzzle. The bars "
             "are means; the CI below them belongs to the paired difference frozen - normal.")  # fmt: skip
    tab = pd.concat([a.changes_summary.assign(checkpoint=a.name) for a in analyses], ignore_index=True)
    tab = tab[tab.metric.isin(["content_changes", "content_changes_harmonized", "mask_flips", "content_per_updated"])]
    doc.table(tab[["checkpoint", "state", "metric", "mean", "sd", "ci_low", "ci_high", "n"]])
    for frozen in ("zH", "zL"):
        frozen_in = [a for a in analyses if frozen in a.freeze]  # TRM single-z has no freeze (one state)
        if not frozen_in:
            continue
        doc.heading(f"freeze {frozen}", 3)
        doc.figures([figures.freeze_comparison(a.freeze[frozen].summary, ["content_changes", "content_changes_harmonized", "output_exact"],
                                               f"{a.label}: freeze {frozen}, measured {a.freeze[frozen].measured_state}")
                     if frozen in a.freeze else None for a in analyses], names, empty="does not apply (one state)")  # fmt: skip
        doc.figures([figures.paired_points(a.freeze[frozen].puzzles, "content_changes", f"{a.freeze[frozen].measured_state} "
                                           "content changes per puzzle") if frozen in a.freeze else None for a in analyses],
                    names, empty="does not apply (one state)")  # fmt: skip
        for a in frozen_in:
            if a.freeze[frozen].input_independent:
                doc.para(f"{a.name}: INPUT-INDEPENDENT: {a.freeze[frozen].input_independent_note()}")
        doc.para(frozen_in[0].freeze[frozen].measured_exact_reference_note())

    # -- the roles of the two states ------------------------------------------------------------------
    doc.heading("Roles of the two states")
    doc.para("Not a figure of the paper: what each state holds, measured on the decoded rollout (airinterp roles). "
             "disagreement: cells where zL's and zH's decodes differ; undecided: cells decoded to an undecided token; "
             "low_confidence: non-given cells whose decoded token has softmax probability < 0.5; accuracy_nongiven: "
             "non-given cells decoded to the label; Maze also path recall / precision against the label's path and the "
             "cells one state marks path where the other says open. Means over the grids of ACT steps 1.. per puzzle "
             "(and after the last update), puzzle-level bootstrap CIs; 'zL - zH' paired per puzzle.")  # fmt: skip
    with_roles = [a for a in analyses if a.state_roles is not None]
    if with_roles:
        tab = pd.concat([a.state_roles.summary.assign(checkpoint=a.name) for a in with_roles], ignore_index=True)
        doc.table(tab[["checkpoint", "when", "metric", "state", "mean", "ci_low", "ci_high", "n", "p"]])

    def roles_lines(a: "CheckpointAnalyses"):
        sub, cols = a.state_roles.substep_columns(("disagreement", "low_confidence", "undecided", "path_recall", "path_precision"))
        return figures.substep_lines(sub, cols, f"{a.label}: per sub-step means over {len(a.indices)} puzzles (ACT steps 1..)")

    doc.figures([roles_lines(a) if a.state_roles is not None else None for a in analyses], names,
                empty="does not apply (one state)")  # fmt: skip

    # -- convergence --------------------------------------------------------------------------------
    doc.heading("Convergence: layer lens, commit points, fixed points")
    doc.para("Not in the paper (airinterp convergence): the rollout runs twice its length. Layer lens: the residual stream "
             "after every block of every update decoded through the LM head (argmax over all tokens); the share of "
             "non-given cells decoded to the label, per sub-step (x) and block (y), for the updates that write zL (top) "
             "and zH (bottom); at the last block it is the update's decoded output. Commit point: the first (sub-step, "
             "block) of a state's own updates from which a cell decodes the model's answer (its output at the trained "
             "length) and keeps it until then. Residuals: ||f(z) - z|| / ||z|| of each update over the whole state, and each "
             "carried state's change per ACT step, for the puzzles right and wrong at the trained length; dashed: the end "
             "of the trained length. Means over puzzles, 95 % bootstrap CIs (escape shares: Clopper-Pearson).")  # fmt: skip
    conv = [a.convergence for a in analyses]
    doc.figures([figures.lens_heatmap(cv.lens, "accuracy", f"{a.label}: layer lens, non-given accuracy", cv.trained_substeps)
                 if cv is not None else None for a, cv in zip(analyses, conv, strict=True)], names, empty="not run")  # fmt: skip
    doc.figures([figures.commit_curves(cv.commit, f"{a.label}: cells committed to the answer ({cv.trained_act} ACT steps)")
                 if cv is not None else None for a, cv in zip(analyses, conv, strict=True)], names, empty="not run")  # fmt: skip
    doc.figures([figures.residual_lines(cv.residual, f"{a.label}: fixed-point residuals over {cv.n_act} ACT steps", cv.trained_act)
                 if cv is not None else None for a, cv in zip(analyses, conv, strict=True)], names, empty="not run")  # fmt: skip
    with_conv = [(a, cv) for a, cv in zip(analyses, conv, strict=True) if cv is not None]
    if with_conv:
        commit = pd.concat([cv.commit[cv.commit.substep == -1].assign(checkpoint=a.name) for a, cv in with_conv], ignore_index=True)
        commit = commit[commit.metric.isin(["never", "commit_substep"])]
        doc.table(commit[["checkpoint", "state", "metric", "mean", "ci_low", "ci_high", "n"]])
        esc = pd.concat([cv.escape.assign(checkpoint=a.name) for a, cv in with_conv], ignore_index=True)
        doc.table(esc[["checkpoint", "group", "n", "moved_is", "moved", "share", "ci_low", "ci_high", "answer_changed", "trained_act", "n_act"]])

    # -- write locality -------------------------------------------------------------------------------
    doc.heading("Causal locality of writes")
    doc.para("Not in the paper (airinterp write-locality): after each update of ACT step 1 one seeded non-given cell of the "
             "state it wrote gets seeded noise of 0.1 x its norm; the rest of the rollout runs. Top: the mean relative "
             "change ||out' - out|| / ||out|| per cell at the next updates, by class around the perturbed cell (self, "
             "Sudoku peers / Maze N4 and the diagonal rest of N8, elsewhere). Bottom: the locality of the update that "
             "reads the perturbation, log(neighbour change / elsewhere change), 0 = no preference; the causal "
             "counterpart of the attention contrasts. The table pairs the two zL perturbations of the first H-cycle, "
             "read next by an L-update and by an H-update (L - H > 0: the L-update carries the change more locally).")  # fmt: skip
    wl = [a.write_locality for a in analyses]
    doc.figures([figures.write_locality_lines(w.summary, f"{a.label}: one cell perturbed after each update of ACT step {w.act}")
                 if w is not None else None for a, w in zip(analyses, wl, strict=True)], names, empty="not run")  # fmt: skip
    doc.figures([figures.locality_bars(w.locality, f"{a.label}: locality of the reading update") if w is not None else None
                 for a, w in zip(analyses, wl, strict=True)], names, empty="not run")  # fmt: skip
    with_wl = [(a, w) for a, w in zip(analyses, wl, strict=True) if w is not None and len(w.contrast)]
    if with_wl:
        doc.table(pd.concat([w.contrast.assign(checkpoint=a.name) for a, w in with_wl], ignore_index=True)[
            ["checkpoint", "quantity", "L_mean", "H_mean", "delta_mean", "delta_ci_low", "delta_ci_high", "p_sign_flip", "n"]])

    # -- geometry -------------------------------------------------------------------------------
    doc.heading("Trajectories and dimensionality")
    doc.para("Not in the paper (airinterp geometry). Participation ratio PR = tr(S)^2 / ||S||_F^2 of the covariance S of "
             "one state's cell vectors (its d_model vector at each cell) at one sub-step: 1 = one direction, d_model = "
             "isotropic; lines pooled over every puzzle and cell, points the mean per puzzle (over its cells) with 95 % "
             "bootstrap CIs; grey: a freshly initialised model of the same config (the HRM paper reports PR(zH) 89.95 vs "
             "PR(zL) 30.22 at d_model 512, untrained 42.09 / 40.75). Middle: zL and zH on one shared PCA basis (both "
             "states, every sub-step), each puzzle's cell-mean state; thick: the mean over puzzles, the large marker its "
             "first sub-step. Bottom: perturbation basins, seeded Gaussian noise of the given size x each cell's norm on a "
             "state as carried into ACT step 1; the share of puzzles whose answer at the trained length is unchanged "
             "(Clopper-Pearson CIs).")  # fmt: skip
    geo = [a.geometry for a in analyses]
    doc.figures([figures.participation_lines(g.pr, f"{a.label}: participation ratio per sub-step") if g is not None else None
                 for a, g in zip(analyses, geo, strict=True)], names, empty="not run")  # fmt: skip
    doc.figures([figures.trajectory_plot(g.trajectories, f"{a.label}: zL and zH on one shared PCA basis") if g is not None else None
                 for a, g in zip(analyses, geo, strict=True)], names, empty="not run")  # fmt: skip
    doc.figures([figures.basin_curves(g.basins, f"{a.label}: noise on the states carried into ACT step {g.act}")
                 if g is not None and g.basins is not None else None for a, g in zip(analyses, geo, strict=True)], names,
                empty="not run (one ACT step)")  # fmt: skip
    with_geo = [(a, g) for a, g in zip(analyses, geo, strict=True) if g is not None]
    if with_geo:
        doc.table(pd.concat([g.state_pr.assign(checkpoint=a.name) for a, g in with_geo], ignore_index=True)[
            ["checkpoint", "model", "state", "pr_all_substeps", "pr_last", "last_update", "pr_per_puzzle_last", "ci_low", "ci_high", "n"]])

    # -- probes -------------------------------------------------------------------------------
    doc.heading("Probes and their causal test")
    doc.para("Not in the paper (airinterp probes; the report probes ACT steps 0, 1, the middle and the last for two targets, "
             "the command also Sudoku's candidate sets and more steps). Samples: (puzzle, non-given cell); features: the state "
             "an update writes there. Targets: the solution; 'still undecided' (the answer state's proposal for the cell "
             "changes at a later update of the trained length). Probe: logistic regression (scikit-learn) on standardised "
             "features, 5 folds grouped by puzzle; crosses: the same probe on permuted labels; dashes: the majority label. "
             "Causal test (bottom): the solution probe's weight directions mean-ablated at the non-given cells of one update's "
             "output in the last ACT step, the rollout run to the end; the change of the output's non-given accuracy beside a "
             "random subspace of the same rank (grey). The table adds the same probe's accuracy on the ablated states and a "
             "re-fitted probe's: a probe that decodes but whose ablation changes nothing is reported so.")  # fmt: skip
    pr = [a.probes for a in analyses]
    doc.figures([figures.probe_lines(p.accuracy, f"{a.label}: probe accuracy per sub-step") if p is not None and len(p.accuracy) else None
                 for a, p in zip(analyses, pr, strict=True)], names, empty="not run (fewer than 2 puzzles with non-given cells)")  # fmt: skip
    doc.figures([figures.ablation_bars(p.causal, f"{a.label}: output non-given accuracy, solution directions ablated")
                 if p is not None and len(p.causal) else None for a, p in zip(analyses, pr, strict=True)], names, empty="not run")  # fmt: skip
    with_pr = [(a, p) for a, p in zip(analyses, pr, strict=True) if p is not None and len(p.causal)]
    if with_pr:
        cols = ["checkpoint", "act", "update", "state", "target", "arm", "rank", "probe_acc_clean", "probe_acc_ablated", "refit_acc_ablated",
                "decode_nongiven_delta", "output_nongiven_delta", "output_nongiven_delta_ci_low", "output_nongiven_delta_ci_high",
                "output_exact_delta", "n"]  # fmt: skip
        tab = pd.concat([p.causal.assign(checkpoint=a.name) for a, p in with_pr], ignore_index=True)
        doc.table(tab[[c for c in cols if c in tab]])

    # -- patching -------------------------------------------------------------------------------
    doc.heading("Patching across sub-steps")
    doc.para("Not in the paper: zL or zH as carried into one ACT step is replaced by another puzzle's (a seeded "
             "derangement within the batch) and the rest of the rollout runs; top: exact accuracy of the output, "
             "patched (points) and clean (dashed); bottom: patched - clean per puzzle, its mean with a 95 % bootstrap "
             "CI. Patched steps: all of a rollout of up to 8 ACT steps, "
             "else 0, 1, 2, 4, 8, ... and the last (airinterp patch --acts patches any).")  # fmt: skip
    doc.figures([figures.patch_curve(a.patch.summary, "exact", f"{a.label}: exact accuracy after patching") if a.patch else None
                 for a in analyses], names, empty="not run")  # fmt: skip

    # -- attention --------------------------------------------------------------------------------
    doc.heading("Attention locality (Figs 8-9)")
    doc.para("First L-update (L0_0) vs first H-update (H0) of each analysed ACT step, rows renormalised over the cells. "
             "delta_nbr = L - H neighbourhood mass (query excluded), delta_ent = H - L normalised entropy, delta_viol = "
             "L - H mass on violated peers (Maze: erroneous 4-neighbours), V/E from the zH both updates read. Head "
             "average per row, mean per puzzle and class, bootstrap CI over puzzles. Steps: "
             + ", ".join(f"{a.name} {a.attention.steps}" for a in analyses) + ".")  # fmt: skip
    doc.figures([figures.attention_contrasts(a.attention.summary, ["nbr_mass", "entropy", "viol_mass"], "head_mean",
                                             f"{a.label}: L0_0 - H0 per layer") for a in analyses], names)  # fmt: skip
    if a0.task == "maze":
        doc.figures([figures.attention_contrasts(a.attention.summary, ["density_n4", "density_n8", "density_5x5"], "head_mean",
                                                 f"{a.label}: densities (actual neighbour counts)") for a in analyses], names)  # fmt: skip
    classes = list(dict.fromkeys(a0.attention.heads["class"]))
    for cls in classes:
        heads = [a.attention.heads[a.attention.heads.n_puzzles > 0] for a in analyses]
        doc.figures([figures.head_heatmap(h, "nbr_mass", cls, f"{a.label}: delta_nbr per head, {cls}")
                     if (h["class"] == cls).any() else None for a, h in zip(analyses, heads, strict=True)], names,
                    empty=f"no {cls} queries")  # fmt: skip

    # -- attention examples -------------------------------------------------------------------------
    doc.heading("Attention example and persistence (Figs 10-13)")
    doc.para("One query chosen by the seeded selector of spec 4.e (violated peers, ambiguity, head score) among the first "
             "sampled puzzles: raw attention of its row at layer 0, L above H, one colour scale; red x: violated cells / "
             "errors of the decoded zH both updates read. Top-k overlap between consecutive steps is an airinterp "
             "extension.")  # fmt: skip
    first, across, pers, mets = [], [], [], []
    for a in analyses:
        ex = a.example
        if ex is None:
            first.append(None), across.append(None), pers.append(None)
            continue
        lu, hu = ex.metrics["update"].iloc[0], ex.metrics["update"].iloc[1]
        marks = {s: g["violations"] for s, g in ex.grids.items()}
        steps = a.attention.steps
        t = f"{a.label}: puzzle {ex.puzzle}, query (row {ex.query // ex.side}, col {ex.query % ex.side}), layer {ex.layer}, head {ex.head}"
        first.append(figures.attention_maps(ex.rows, a.roles, a.side, ex.query, [steps[0]], [lu, hu], marks, ex.inputs, a.box,
                                            title=t + f", ACT step {steps[0]}"))  # fmt: skip
        across.append(figures.attention_maps(ex.rows, a.roles, a.side, ex.query, steps, [lu, hu], marks, ex.inputs, a.box,
                                             title="the same query across the analysed ACT steps") if len(steps) > 1 else None)  # fmt: skip
        two = len(ex.persistence) and ex.persistence.groupby("update").size().min() >= 2  # a line needs two points
        pers.append(figures.persistence_lines(ex.persistence) if two else None)
        mets.append(ex.metrics.assign(checkpoint=a.name, puzzle=ex.puzzle, query=ex.query, head=ex.head))
    doc.figures(first, names, empty="no example")
    doc.figures(across, names, empty="one analysed step only")
    doc.figures(pers, names, empty="top-k overlap: fewer than three analysed steps (see the table)")
    if mets:
        m = pd.concat(mets, ignore_index=True)
        keep = [c for c in ["checkpoint", "puzzle", "query", "head", "step", "update", "query_class", "nbr_mass", "entropy", "viol_mass"] if c in m]
        doc.table(m[keep])

    # -- figure map, notes -------------------------------------------------------------------------
    doc.heading("Where the paper's figures are")
    symmetric = any(a.variant == "Lx_Hx" for a in analyses[1:])
    fmap = [(p, c, r if symmetric or "Lx_Hx" not in r else "not in this report: add --compare with an Lx_Hx checkpoint")
            for p, c, r in FIGURE_MAP]  # fmt: skip
    doc.table(pd.DataFrame(fmap, columns=["paper", "content", "in this report"]))
    notes = [f"{a.name}: {n}" for a in analyses for n in a.notes]
    for n in notes:
        doc.para(n)
    return doc.write(path, built)
