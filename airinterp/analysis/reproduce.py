"""The paper's headline numbers (AIR_SPEC 3.3, 4.a-4.d) beside ours, with a verdict per row.

Two kinds of row:

- **direction** rows (an effect's sign: freeze z_H lowers z_L's content changes, L attends more
  locally than H, ...): ours is the puzzle-level bootstrap CI of the same paired quantity.
  Verdict ``same direction`` when our CI excludes 0 on the paper's side, ``differs`` when it
  excludes 0 on the other side, ``inconclusive`` when it contains 0.
- **level** rows (an accuracy, a count): comparable only for a model of the paper's setting (the
  task's full size: 9x9 Sudoku / 30x30 Maze, d = 512, 16 ACT steps); otherwise
  ``not comparable``, saying why. When comparable: ``matches`` if the paper's value lies in our CI
  or within its own reported spread of our mean, else ``differs``.

- **observation** rows (what the paper's decoded figures show: zL keeps BLANK / undecided cells,
  zH never does, the symmetric control's zL neither): ``matches`` or ``differs``, with the rule.

The paper's numbers are means over 5 seeds (or, for attention, over puzzles of one run); ours come
from one checkpoint and a puzzle sample, so ``ours`` carries puzzle-level uncertainty only.
"""

import math

import numpy as np
import pandas as pd

from airinterp.analysis.stats import mean_ci, paired
from airinterp.analysis.suite import CheckpointAnalyses

#: the paper's setting, per task: cells, hidden size, ACT steps, shared layers
PAPER_SETTING = {"sudoku": (81, 512, 16, 4), "maze": (900, 512, 16, 4)}
SYMMETRIC = ("Lx_Hx", "L2x_H2x")

#: exact accuracy (%), mean +- std over 5 seeds (AIR_SPEC 3.3)
ACCURACY = {"sudoku": {"Lx_H": (60.0, 2.0), "Lx_Hx": (52.1, 1.6)}, "maze": {"Lx_H": (71.0, 6.3), "Lx_Hx": (69.4, 2.5)}}
#: total content changes per puzzle (reference mode), mean +- std over 5 seeds (AIR_SPEC 4.b)
CHANGES = {
    "sudoku": {"normal_zL": (1234.95, 270.70), "freeze_zH_zL": (322.54, 177.51), "normal_zH": (275.07, 28.50), "freeze_zL_zH": (550.8, 615.3)},
    "maze": {"normal_zL": (1289.49, 529.00), "freeze_zH_zL": (2304.87, 733.81), "normal_zH": (824.93, 145.50), "freeze_zL_zH": (2880.0, 1951.0)},
}  # fmt: skip
#: Sudoku L - H attention contrasts (mean +- CI95 across puzzles; best head per candidate, A12)
SUDOKU_ATTENTION = {
    # layer: (nbr control, ent control, viol viol-adj, nbr viol-adj, ent viol-adj)
    0: ((0.0497, 0.0007), (0.0531, 0.0004), (-0.0178, 0.0019), (0.0169, 0.0015), (0.0285, 0.0014)),
    1: ((0.0149, 0.0005), (0.0233, 0.0003), (0.0058, 0.0012), (0.0017, 0.0007), (0.0115, 0.0007)),
    2: ((0.1375, 0.0007), (0.1248, 0.0007), (0.0284, 0.0011), (0.0403, 0.0009), (0.0555, 0.0010)),
    3: ((0.2441, 0.0015), (0.1817, 0.0015), (0.0368, 0.0015), (0.0370, 0.0024), (0.0394, 0.0017)),
}
SUDOKU_ATTENTION_COLUMNS = (("nbr_mass_incl_self", "control"), ("entropy", "control"), ("viol_mass", "violation-adjacent"),
                            ("nbr_mass_incl_self", "violation-adjacent"), ("entropy", "violation-adjacent"))  # fmt: skip
#: Maze layer-3 contrasts of the paper's data (nominal densities, A14): metric -> {class: (mean, CI95)}
MAZE_ATTENTION_L3 = {
    "density_n4_nominal": {"error-adjacent": (0.0412, 0.0014), "control": (0.0367, 0.0007)},
    "density_n8_nominal": {"error-adjacent": (0.0286, math.nan), "control": (0.0270, math.nan)},
    "density_5x5_nominal": {"error-adjacent": (0.0126, math.nan), "control": (0.0131, math.nan)},
    "entropy": {"error-adjacent": (0.314, 0.010), "control": (0.401, 0.003)},
    "viol_mass": {"error-adjacent": (0.081, 0.005)},
}
SYMBOL = {"nbr_mass": "delta_nbr", "nbr_mass_incl_self": "delta_nbr", "entropy": "delta_ent", "viol_mass": "delta_viol",
          "density_n4_nominal": "delta_rho(4)", "density_n8_nominal": "delta_rho(8)", "density_5x5_nominal": "delta_rho(5x5)"}  # fmt: skip


def setting(a: CheckpointAnalyses) -> tuple[int, int, int, int]:
    mc = a.config["model_config"]
    return (mc["seq_len"], mc["hidden_size"], a.config["n_act"], mc["L_layers"])


def setting_text(a: CheckpointAnalyses) -> str:
    cells, d, steps, layers = setting(a)
    return f"{a.side}x{a.side} {a.task}, d={d}, {steps} ACT steps, {layers} layers"


def paper_setting_text(task: str) -> str:
    cells, d, steps, layers = PAPER_SETTING[task]
    name = "9x9 Sudoku-Extreme" if task == "sudoku" else "30x30 Maze-Hard"
    return f"{name}, d={d}, {steps} ACT steps, {layers} layers"


def comparable(a: CheckpointAnalyses) -> bool:
    return setting(a) == PAPER_SETTING[a.task]


def _fmt(x: float, digits: int = 4) -> str:
    return "nan" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def _ours(mean: float, lo: float, hi: float) -> str:
    return f"{_fmt(mean)} [{_fmt(lo)}, {_fmt(hi)}]"


def direction_verdict(paper_sign: int, lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive"
    ours = 1 if lo > 0 else -1 if hi < 0 else 0
    if ours == 0:
        return "inconclusive"
    return "same direction" if ours == paper_sign else "differs"


def level_verdict(a: CheckpointAnalyses, paper: tuple[float, float], mean: float, lo: float, hi: float) -> tuple[str, str]:
    if not comparable(a):
        return "not comparable", f"ours: {setting_text(a)}; paper: {paper_setting_text(a.task)}"
    p, spread = paper
    inside = (np.isfinite(lo) and lo <= p <= hi) or (np.isfinite(spread) and abs(mean - p) <= spread)
    return ("matches" if inside else "differs"), "the paper's mean +- its reported spread against our CI"


def _row(section, quantity, paper, ours, verdict, why, checkpoint) -> dict:
    return {"section": section, "quantity": quantity, "paper": paper, "ours": ours, "verdict": verdict, "why": why,
            "checkpoint": checkpoint}  # fmt: skip


def reproduction_table(primary: CheckpointAnalyses, others: "list[CheckpointAnalyses]" = ()) -> pd.DataFrame:
    """One row per headline number of the paper for ``primary``'s task; the asymmetric-vs-
    symmetric rows use the first of ``others`` whose variant is symmetric (Lx_Hx, L2x_H2x)."""
    a, task, seed = primary, primary.task, primary.config["seed"]
    rows = []
    note_scale = f"ours: {setting_text(a)}, one checkpoint, {a.accuracy['n']} puzzles; paper: {paper_setting_text(task)}, 5 seeds"

    # -- accuracy ---------------------------------------------------------------------------------
    for v, (p, sd) in ACCURACY[task].items():
        for b in [a, *others]:
            if b.variant != v:
                continue
            bacc = b.accuracy
            verdict, why = level_verdict(b, (p, sd), 100 * bacc["exact"], 100 * bacc["exact_ci_low"], 100 * bacc["exact_ci_high"])
            rows.append(_row("accuracy", f"exact accuracy, {v} (%)", f"{p} +- {sd}",
                             _ours(100 * bacc["exact"], 100 * bacc["exact_ci_low"], 100 * bacc["exact_ci_high"]), verdict,
                             why + " (ours: exact CI on the sampled test puzzles)", b.name))  # fmt: skip
    sym = next((b for b in others if b.variant in SYMMETRIC), None)
    quantity = "asymmetric minus symmetric exact accuracy (Lx_H - Lx_Hx, points)"
    paper_gap = ACCURACY[task]["Lx_H"][0] - ACCURACY[task]["Lx_Hx"][0]
    if a.variant in SYMMETRIC or sym is None:
        rows.append(_row("accuracy", quantity, f"{paper_gap:+.1f}", "", "not comparable",
                         "needs an asymmetric primary checkpoint and a symmetric --compare checkpoint", a.name))  # fmt: skip
    elif sym.config["data_fingerprint"] != a.config["data_fingerprint"] or list(sym.indices) != list(a.indices):
        rows.append(_row("accuracy", quantity, f"{paper_gap:+.1f}", "", "not comparable",
                         f"{sym.name} was evaluated on other test puzzles (data or sample differ)", a.name))  # fmt: skip
    else:
        d = paired(sym.outcome.exact.to_numpy(), a.outcome.exact.to_numpy(), seed, "accuracy gap", sym.name)
        rows.append(_row("accuracy", quantity, f"{paper_gap:+.1f}", _ours(100 * d["delta_mean"], 100 * d["delta_ci_low"], 100 * d["delta_ci_high"]),
                         direction_verdict(1, d["delta_ci_low"], d["delta_ci_high"]),
                         f"{a.variant} vs {sym.variant} paired on the same puzzles; " + note_scale, f"{a.name} vs {sym.name}"))  # fmt: skip

    # -- decoded rollouts (Figs 2-5) ------------------------------------------------------------------
    # Sudoku: BLANK cells; Maze: undecided (PAD) cells, what the paper's figures shade grey
    col, token = ("blank_fraction", "BLANK") if task == "sudoku" else ("undecided_fraction", "undecided (PAD)")
    for b in [a, *others]:
        later = b.substeps[b.substeps.act >= 1]
        for state in ("zL", "zH"):
            frac = later[later.state == state][col]
            expected = state == "zL" and b.variant not in SYMMETRIC
            paper_text = ("zL keeps " + ("0-14 BLANK cells that move between sub-steps" if task == "sudoku" else "grey undecided cells")
                          if expected else f"{state} never {token}" + (" (symmetric control)" if b.variant in SYMMETRIC else ""))  # fmt: skip
            present = bool(len(frac) and frac.mean() > 0)
            ours_text = f"mean {token} fraction {frac.mean():.4f} over the sub-steps of ACT steps 1.."
            if task == "sudoku":
                ours_text += f" (at most {int(later[later.state == state].blank_cells_max.max())} cells)"
            rows.append(_row("decoded rollouts", f"{state} decodes {token} cells ({b.variant})", paper_text, ours_text,
                             "matches" if present == expected else "differs",
                             "present = any such cell after ACT step 0; the paper shows later sub-steps of 10 puzzles", b.name))  # fmt: skip
    # -- content changes and freeze (Figs 6-7) ------------------------------------------------------
    ch = a.changes.pivot(index="puzzle", columns="state", values="content_changes")
    d = paired(ch["zH"].to_numpy(), ch["zL"].to_numpy(), seed, "zL minus zH")
    pz = CHANGES[task]
    rows.append(_row("content changes", "zL minus zH content changes, normal rollout",
                     f"{pz['normal_zL'][0] - pz['normal_zH'][0]:+.1f} ({pz['normal_zL'][0]} vs {pz['normal_zH'][0]})",
                     _ours(d["delta_mean"], d["delta_ci_low"], d["delta_ci_high"]),
                     direction_verdict(1, d["delta_ci_low"], d["delta_ci_high"]), "paired per puzzle; " + note_scale, a.name))  # fmt: skip
    for frozen, key_n, key_f in (("zH", "normal_zL", "freeze_zH_zL"), ("zL", "normal_zH", "freeze_zL_zH")):
        res = a.freeze[frozen]
        m = res.flags["measured_state"]
        r = res.summary.set_index("metric").loc["content_changes"]
        pn, pf = pz[key_n][0], pz[key_f][0]
        why = "paired normal vs frozen on the same puzzles, reference-mode totals; " + note_scale
        if frozen == "zL":
            why += "; paper: input-independent under this freeze in Lx_H, per-seed totals 81..1620 (A2)"
            if res.flags["input_independent"]:
                why += "; ours: input-independent too"
        rows.append(_row("freeze", f"freeze {frozen}: change in {m} content changes", f"{pf - pn:+.1f} ({pn} -> {pf})",
                         _ours(r["delta_mean"], r["delta_ci_low"], r["delta_ci_high"]),
                         direction_verdict(1 if pf > pn else -1, r["delta_ci_low"], r["delta_ci_high"]), why, a.name))  # fmt: skip
        for key, label, col in ((key_n, "normal", "content_changes_normal"), (key_f, f"freeze {frozen}", "content_changes_frozen")):
            ci = mean_ci(res.puzzles[col].to_numpy(float), seed, "reproduce", frozen, col)
            verdict, why_l = level_verdict(a, pz[key], ci["mean"], ci["ci_low"], ci["ci_high"])
            rows.append(_row("freeze", f"{m} content changes per puzzle, {label}", f"{pz[key][0]} +- {pz[key][1]}",
                             _ours(ci["mean"], ci["ci_low"], ci["ci_high"]), verdict, why_l, a.name))  # fmt: skip
    out = a.freeze["zH"].summary.set_index("metric").loc["output_exact"]
    rows.append(_row("freeze", "output exact accuracy with zH frozen", "0 % (by construction, A2)",
                     _ours(out["treated_mean"], out["treated_ci_low"], out["treated_ci_high"]),
                     "matches" if out["treated_mean"] == 0 else "differs",
                     "the output decodes the frozen zH, the untrained initial state: 0 is guaranteed, not evidence of coupling", a.name))  # fmt: skip

    # -- attention (Figs 8-9) -----------------------------------------------------------------------
    s = a.attention.summary
    s = s[s.method == "head_mean"].set_index(["layer", "class", "metric"])
    layers = setting(a)[3]
    definitions = "ours: head mean per row, puzzle-level bootstrap CI; paper: best head per candidate (biased upward, A12)"
    if task == "sudoku":
        for layer, vals in SUDOKU_ATTENTION.items():
            for (metric, cls), (p, ci) in zip(SUDOKU_ATTENTION_COLUMNS, vals, strict=True):
                q = f"layer {layer}, {cls}: {SYMBOL[metric]}"
                if layer >= layers or (layer, cls, metric) not in s.index:
                    rows.append(_row("attention", q, f"{p:+.4f} +- {ci}", "", "not comparable",
                                     f"no layer {layer} or no {cls} queries in ours", a.name))  # fmt: skip
                    continue
                r = s.loc[(layer, cls, metric)]
                rows.append(_row("attention", q, f"{p:+.4f} +- {ci}", _ours(r["delta_mean"], r["ci_low"], r["ci_high"]),
                                 direction_verdict(1 if p > 0 else -1, r["ci_low"], r["ci_high"]),
                                 definitions + ("; delta_nbr includes the query cell, as the paper's" if "nbr" in metric else ""), a.name))  # fmt: skip
    else:
        layer = layers - 1
        for metric, by_class in MAZE_ATTENTION_L3.items():
            for cls, (p, ci) in by_class.items():
                q = f"layer {layer} (the paper's last, 3), {cls}: {SYMBOL[metric]}"
                if (layer, cls, metric) not in s.index:
                    rows.append(_row("attention", q, f"{p:+.4f}", "", "not comparable", f"no {cls} queries in ours", a.name))
                    continue
                r = s.loc[(layer, cls, metric)]
                rows.append(_row("attention", q, f"{p:+.4f}" + (f" +- {ci}" if np.isfinite(ci) else ""),
                                 _ours(r["delta_mean"], r["ci_low"], r["ci_high"]),
                                 direction_verdict(1 if p > 0 else -1, r["ci_low"], r["ci_high"]),
                                 definitions + "; densities over the nominal 4/8/24 cells, as the paper's", a.name))  # fmt: skip
    return pd.DataFrame(rows, columns=["section", "quantity", "paper", "ours", "verdict", "why", "checkpoint"])


def summary_table(analyses: "list[CheckpointAnalyses]") -> pd.DataFrame:
    """One row per checkpoint: setting, accuracy, content changes, freeze effects, role split,
    deepest-layer attention contrast (the --compare summary)."""
    rows = []
    for a in analyses:
        acc, card = a.accuracy, a.card.get("final_eval", {})
        ch = a.changes_summary.set_index(["state", "metric"])
        row = {
            "checkpoint": a.name, "variant": a.variant, "setting": setting_text(a), "train_steps": a.card.get("steps"),
            "card_exact (full test split)": card.get("exact_accuracy"),
            "exact (sample)": _ours(acc["exact"], acc["exact_ci_low"], acc["exact_ci_high"]),
            "token_accuracy": acc["token_accuracy"]["mean"], "nongiven_accuracy": acc["nongiven_accuracy"]["mean"],
            "zL content changes": ch.loc[("zL", "content_changes"), "mean"],
            "zH content changes": ch.loc[("zH", "content_changes"), "mean"],
        }  # fmt: skip
        for frozen in ("zH", "zL"):
            r = a.freeze[frozen].summary.set_index("metric").loc["content_changes"]
            m = a.freeze[frozen].flags["measured_state"]
            row[f"freeze {frozen}: delta {m} changes"] = _ours(r["delta_mean"], r["delta_ci_low"], r["delta_ci_high"])
        row["freeze zL: input-independent"] = a.freeze["zL"].flags["input_independent"]
        if a.task == "sudoku":
            later = a.substeps[a.substeps.act >= 1]
            row["zL BLANK fraction (ACT >= 1)"] = later[later.state == "zL"].blank_fraction.mean()
        s = a.attention.summary
        last = s.layer.max()
        r = s[(s.method == "head_mean") & (s.layer == last) & (s["class"] == "control") & (s.metric == "nbr_mass")]
        if len(r):
            r = r.iloc[0]
            row[f"delta_nbr control, layer {last}"] = _ours(r["delta_mean"], r["ci_low"], r["ci_high"])
        rows.append(row)
    return pd.DataFrame(rows)
