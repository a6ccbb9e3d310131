"""The analyses along training: a checkpoint series, each point reduced to the same scalars.

A **series** is the checkpoints one training run kept along the way: a training run directory
(``airinterp train --checkpoint-at ...``: ``checkpoints/step_N/``) or a shipped series directory
(``step_N/`` subdirectories). Every point is analysed on the same seeded puzzle sample of the
same test split, so the rows of two series (e.g. ``Lx_H`` and its symmetric control ``Lx_Hx``)
pair puzzle by puzzle, step by step. :func:`sweep` returns one tidy table, one row per
(series, step, quantity), each with its puzzle-level uncertainty:

- ``accuracy``: the model's output (z_H decoded): exact (Clopper-Pearson CI), token and
  non-given accuracy (bootstrap CIs);
- ``decode``: per state, the fraction of undecided cells and the content changes per puzzle over
  the whole rollout, z_L minus z_H content changes (paired), and the fraction of cells where z_L's
  and z_H's decodes disagree (AIR_SPEC 4.a-4.b; :func:`~airinterp.analysis.dynamics.changes_table`);
- ``freeze``: the paired effect of freezing z_H (z_L) from ACT step 0 on the other state's content
  changes (4.c);
- ``geometry``: per state, its participation ratio at its last write of the rollout, pooled over
  puzzles and cells and per puzzle (:mod:`~airinterp.analysis.geometry`);
- ``attention``: the head-mean L0_0 minus H0 contrast of every layer, class and metric (4.d).

Points can also be checkpoints of their own (:func:`checkpoint_point`: seeds and variants); then
:func:`variant_summary` gives each variant's mean +- sd over its checkpoints and
:func:`variant_contrast` the first variant minus the others, paired by training seed.

Nothing here is tuned to a series: the definitions are those of the single-checkpoint commands.
"""

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from airinterp.checkpoints import Checkpoint
from airinterp.checkpoints.format import CHECKPOINT_FILES
from airinterp.errors import InputError

COLUMNS = ["series", "variant", "step", "section", "quantity", "state", "layer", "class", "mean", "ci_low", "ci_high", "n"]
_STEP = re.compile(r"step_(\d+)")


@dataclass(frozen=True)
class SeriesPoint:
    """One checkpoint of a series: the series' name, the training step, where the weights are."""

    series: str
    step: int
    checkpoint: Path


def _has_weights(d: Path) -> bool:
    return any((d / f).is_file() for f in CHECKPOINT_FILES)


def _run_config(root: Path) -> dict:
    """The training run's (or the series') ``config.json`` ({} when absent or unreadable)."""
    for name in ("config.json", "series.json"):
        try:
            return json.loads((root / name).read_text())
        except (OSError, ValueError):
            continue
    return {}


def series_points(path: "str | Path", steps: "Sequence[int] | None" = None, name: str | None = None) -> list[SeriesPoint]:
    """The checkpoints of the series at ``path``, by step. ``steps``: these (each must exist);
    default: a training run's ``--checkpoint-at`` steps that exist plus its last checkpoint, or
    every ``step_N`` of a series directory."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"series {root}: not a directory (a training run or a series of step_N checkpoints)")
    base = root / "checkpoints" if (root / "checkpoints").is_dir() else root
    found = {int(m.group(1)): d for d in base.iterdir() if d.is_dir() and (m := _STEP.fullmatch(d.name)) and _has_weights(d)}
    if not found:
        raise InputError(f"series {root}: no step_N directories with weights in {base}")
    if steps is not None:
        missing = sorted(set(steps) - set(found))
        if missing:
            raise InputError(f"steps {','.join(map(str, missing))}: not in series {root} (it has {','.join(map(str, sorted(found)))})")
        chosen = sorted(set(steps))
    else:
        at = _run_config(root).get("checkpoint_at") if base != root else None
        chosen = sorted({s for s in at if s in found} | {max(found)}) if at else sorted(found)
    label = name or root.name
    return [SeriesPoint(label, s, found[s]) for s in chosen]


def series_data(point: SeriesPoint) -> Path | None:
    """The test data of a point: its card's ``eval_data`` (relative to the card), else the
    training run's ``data`` as the trainer was given it (absolute, or relative to the working
    directory, as ``train --resume`` reads it)."""
    ck = Checkpoint(point.checkpoint)
    if ck.card.get("eval_data"):
        found = ck.resolve(str(ck.card["eval_data"]))
        if found is not None:
            return found
    for root in (ck.dir.parent.parent, ck.dir.parent, ck.dir):  # a run's step_N, a series' step_N, a run's final model
        text = _run_config(root).get("data")
        if text and not str(text).startswith("airinterp ") and Path(text).is_dir():
            return Path(text)
    return None


def _row(p: SeriesPoint, variant: str, section: str, quantity: str, mean: float, lo: float, hi: float, n: int,
         state: str = "", layer: int | None = None, cls: str = "") -> dict:  # fmt: skip
    return {"series": p.series, "variant": variant, "step": p.step, "section": section, "quantity": quantity,
            "state": state, "layer": layer, "class": cls, "mean": mean, "ci_low": lo, "ci_high": hi, "n": n}  # fmt: skip


def point_rows(p: SeriesPoint, inp, *, batch_size: int = 64, attention_batch_size: int = 16,
               progress: "Callable[[str, int], Callable[[int], None] | None] | None" = None) -> list[dict]:  # fmt: skip
    """Every quantity of the module docstring for one point (``inp``: its opened inputs)."""
    from airinterp.analysis.attention import default_steps, run_attention
    from airinterp.analysis.freeze import Freeze, run_freeze
    from airinterp.analysis.stats import mean_ci, paired
    from airinterp.analysis.suite import decode_section, sample_accuracy

    bar = progress or (lambda label, total: None)
    model, c, seed, n = inp.model, inp.model.config, inp.seed, len(inp.indices)
    v = c.variant if c.family == "air" else c.family.upper()
    rows: list[dict] = []

    sec = decode_section(inp, batch_size=batch_size, progress=bar(f"{p.series} step {p.step}: decode", n))
    _, acc = sample_accuracy(sec, seed, "sweep")
    rows.append(_row(p, v, "accuracy", "exact", acc["exact"], acc["exact_ci_low"], acc["exact_ci_high"], n))
    for k in ("token_accuracy", "nongiven_accuracy"):
        rows.append(_row(p, v, "accuracy", k, acc[k]["mean"], acc[k]["ci_low"], acc[k]["ci_high"], n))

    ch = sec.changes
    for s in ("zL", "zH"):
        g = ch[ch.state == s]
        for k in ("undecided_fraction", "content_changes"):
            ci = mean_ci(g[k].to_numpy(float), seed, "sweep", s, k)
            rows.append(_row(p, v, "decode", k, ci["mean"], ci["ci_low"], ci["ci_high"], n, state=s))
    ci = mean_ci(ch[ch.state == "zL"]["disagreement"].to_numpy(float), seed, "sweep", "disagreement")
    rows.append(_row(p, v, "decode", "disagreement", ci["mean"], ci["ci_low"], ci["ci_high"], n, state="zL vs zH"))
    wide = ch.pivot(index="puzzle", columns="state", values="content_changes")
    d = paired(wide["zH"].to_numpy(), wide["zL"].to_numpy(), seed, "sweep", "zL minus zH")
    rows.append(_row(p, v, "decode", "content_changes zL minus zH", d["delta_mean"], d["delta_ci_low"], d["delta_ci_high"], n,
                     state="zL - zH"))  # fmt: skip

    for s in ("zH", "zL"):
        fr = Freeze(s)
        res = run_freeze(model, inp.ds, inp.indices, fr, n_act=inp.n_act, batch_size=batch_size, seed=seed,
                         progress=bar(f"{p.series} step {p.step}: {fr.label()}", n))  # fmt: skip
        row = res.summary.set_index("metric").loc["content_changes"]
        rows.append(_row(p, v, "freeze", f"freeze {s}: change in {res.measured_state} content changes", row["delta_mean"],
                         row["delta_ci_low"], row["delta_ci_high"], n, state=res.measured_state))  # fmt: skip

    from airinterp.analysis.geometry import run_geometry

    geo = run_geometry(model, inp.ds, inp.indices, n_act=inp.n_act, batch_size=batch_size,
                       progress=bar(f"{p.series} step {p.step}: geometry", n)).state_pr(seed)  # fmt: skip
    for g in geo.to_dict("records"):
        rows.append(_row(p, v, "geometry", "participation ratio per puzzle, last write", g["pr_per_puzzle_last"], g["ci_low"],
                         g["ci_high"], n, state=g["state"]))  # fmt: skip
        rows.append(_row(p, v, "geometry", "participation ratio pooled, last write", g["pr_last"], math.nan, math.nan, n,
                         state=g["state"]))  # fmt: skip

    if not c.mlp_t:  # TRM's mlp_t blocks have no attention to contrast
        att = run_attention(model, inp.ds, inp.indices, steps=default_steps(min(inp.n_act, c.halt_max_steps)),
                            batch_size=attention_batch_size, seed=seed, per_head=False,
                            progress=bar(f"{p.series} step {p.step}: attention", n))  # fmt: skip
        s = att.summary
        for a in s[s.method == "head_mean"].to_dict("records"):
            rows.append(_row(p, v, "attention", f"{a['metric']} L - H", a["delta_mean"], a["ci_low"], a["ci_high"],
                             int(a["n_puzzles"]), layer=int(a["layer"]), cls=a["class"]))  # fmt: skip
    return rows


def sweep(
    series: "Sequence[Sequence[SeriesPoint]]",
    *,
    data: "str | Path | None" = None,
    n_puzzles: int = 100,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "cpu",
    progress: "Callable[[str, int], Callable[[int], None] | None] | None" = None,
) -> tuple[pd.DataFrame, dict]:
    """Analyse every point of every series on one seeded sample of ``n_puzzles`` test puzzles
    (``data``: the test split for all; default: each point's own, which must be the same data).
    Returns the tidy table (:data:`COLUMNS`) and what produced it (checkpoints, data, puzzles)."""
    from airinterp.analysis.inputs import open_inputs
    from airinterp.analysis.run import sample_distinct

    points = [p for s in series for p in s]
    if not points:
        raise InputError("series: none given")
    names = {p.series for p in points}
    if len(names) != sum(1 for s in series if s):
        raise InputError("series: two series of one name; name them apart (a directory name repeats)")
    first_data = Path(data) if data is not None else series_data(points[0])
    if first_data is None:
        raise InputError(f"data: not given and the series {points[0].series} names no test data that is here; name a dataset directory")
    opened, fingerprint, task, indices = [], None, None, None
    for p in points:  # every check before any rollout
        d = Path(data) if data is not None else series_data(p) or first_data
        try:
            inp = open_inputs(None, p.checkpoint, d, n_puzzles=None, seed=seed, device=device)
        except InputError as err:
            raise InputError(f"series {p.series} step {p.step}: {err}") from None
        fp = inp.ds.fingerprint()
        if task is None:
            task, fingerprint = inp.model.config.task, fp
            if n_puzzles > len(inp.ds.distinct()):
                raise InputError(f"n_puzzles {n_puzzles}: the test split of {d} has {len(inp.ds.distinct())} distinct puzzles")
            indices = sample_distinct(inp.ds, n_puzzles, seed)
        elif inp.model.config.task != task:
            raise InputError(f"series {p.series} step {p.step}: a {inp.model.config.task} model among {task} models")
        elif fp != fingerprint:
            raise InputError(f"series {p.series} step {p.step}: its test data {d} differs from the first point's; "
                             "give one --data for all")  # fmt: skip
        opened.append((p, d))
    rows, provenance = [], []
    for p, d in opened:  # opened again one at a time: one model in memory
        inp = open_inputs(None, p.checkpoint, d, n_puzzles=None, seed=seed, device=device).with_indices(indices)
        rows += point_rows(p, inp, batch_size=batch_size, progress=progress)
        provenance.append({"series": p.series, "step": p.step, "checkpoint": str(p.checkpoint), "n_act": inp.n_act})
    config = {"task": task, "data": str(first_data), "data_fingerprint": fingerprint, "seed": seed, "n_puzzles": n_puzzles,
              "puzzle_indices": [int(i) for i in indices], "points": provenance}  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["layer"] = table["layer"].astype("Int64")
    return table, config


#: the panels of the sweep page: (section, quantity, state, layer, class, title)
HEADLINE = (
    ("accuracy", "exact", "", None, "", "exact accuracy (the output, z_H)"),
    ("accuracy", "token_accuracy", "", None, "", "token accuracy"),
    ("decode", "disagreement", "zL vs zH", None, "", "fraction of cells z_L and z_H decode apart"),
    ("decode", "undecided_fraction", "zL", None, "", "z_L: fraction of undecided cells"),
    ("decode", "undecided_fraction", "zH", None, "", "z_H: fraction of undecided cells"),
    ("decode", "content_changes zL minus zH", "zL - zH", None, "", "z_L minus z_H content changes per puzzle"),
    ("freeze", "freeze zH: change in zL content changes", "zL", None, "", "freeze z_H: change in z_L content changes"),
    ("freeze", "freeze zL: change in zH content changes", "zH", None, "", "freeze z_L: change in z_H content changes"),
    ("geometry", "participation ratio per puzzle, last write", "zL", None, "", "z_L: participation ratio (per puzzle)"),
    ("geometry", "participation ratio per puzzle, last write", "zH", None, "", "z_H: participation ratio (per puzzle)"),
)


def panels(table: pd.DataFrame, task: str) -> list[tuple]:
    """:data:`HEADLINE` plus, per layer, the paper's attention-locality contrast on control cells
    (Sudoku: neighbour mass incl. the query cell; Maze: the nominal 4-neighbour density)."""
    metric = "nbr_mass_incl_self L - H" if task == "sudoku" else "density_n4_nominal L - H"
    layers = sorted(int(x) for x in table.loc[table.section == "attention", "layer"].dropna().unique())
    return [*HEADLINE, *[("attention", metric, "", layer, "control", f"layer {layer}: {metric} (control cells)") for layer in layers]]


# ---- across seeds and variants ---------------------------------------------------------------------

KEYS = ["section", "quantity", "state", "layer", "class"]


def checkpoint_point(path: "str | Path") -> SeriesPoint:
    """One checkpoint as a point of its own: named by its directory (or file stem), at the step its
    card trained to (0 when the card does not say)."""
    ck = Checkpoint(Path(path))
    if not ck.file.is_file():
        raise InputError(f"checkpoint {path}: no airinterp checkpoint there (a .safetensors file, or a directory with "
                         "model.safetensors or a sharded index)")  # fmt: skip
    name = ck.name
    steps = ck.card.get("total_steps", ck.card.get("steps", 0))
    return SeriesPoint(name, int(steps) if isinstance(steps, int) and not isinstance(steps, bool) else 0, ck.path)


def training_seed(path: "str | Path") -> "int | None":
    """The training seed a checkpoint's card records (``run.seed``), None if it does not."""
    run = Checkpoint(Path(path)).card.get("run")
    seed = run.get("seed") if isinstance(run, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def variant_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant and quantity, over its checkpoints (seeds): the mean of their means, the sd
    (ddof 1; NaN for one checkpoint), min, max and how many: the paper's "mean +- sd over 5 seeds"."""
    g = table.groupby(["variant", *KEYS], sort=False, dropna=False)["mean"]
    out = g.agg(mean="mean", sd="std", min="min", max="max", n_checkpoints="count").reset_index()
    out["layer"] = out["layer"].astype("Int64")
    return out


def variant_contrast(table: pd.DataFrame, seeds: dict[str, "int | None"], first: "str | None" = None) -> pd.DataFrame:
    """The first variant minus each other, per quantity: paired by training seed where both
    variants have a checkpoint of that seed (the mean, sd and a t-based 95 % CI of the per-seed
    differences; ``pairs`` how many), else (no common seed) the difference of the variants' means
    with ``pairs`` 0 and no interval."""
    from scipy import stats

    variants = list(dict.fromkeys(table.variant))
    if len(variants) < 2:
        return pd.DataFrame()
    base = first or variants[0]
    t = table.assign(seed=table.series.map(seeds))
    rows = []
    for other in [v for v in variants if v != base]:
        a, b = t[t.variant == base], t[t.variant == other]
        for key, ga in a.groupby(KEYS, sort=False, dropna=False):
            gb = b
            for k, v in zip(KEYS, key, strict=True):
                gb = gb[gb[k].isna()] if pd.isna(v) else gb[gb[k] == v]
            if gb.empty:
                continue
            both = sorted(set(ga.seed.dropna()) & set(gb.seed.dropna()))
            row = dict(zip(KEYS, key, strict=True)) | {"contrast": f"{base} - {other}"}
            if both:
                d = np.array([ga[ga.seed == s]["mean"].mean() - gb[gb.seed == s]["mean"].mean() for s in both], float)
                m, sd = float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else math.nan
                half = float(stats.t.ppf(0.975, len(d) - 1) * sd / math.sqrt(len(d))) if len(d) > 1 else math.nan
                row |= {"delta": m, "sd": sd, "ci_low": m - half, "ci_high": m + half, "pairs": len(d),
                        "paired_by": "training seed " + ",".join(map(str, both))}  # fmt: skip
            else:
                row |= {"delta": float(ga["mean"].mean() - gb["mean"].mean()), "sd": math.nan, "ci_low": math.nan,
                        "ci_high": math.nan, "pairs": 0, "paired_by": "no common training seed: difference of means"}  # fmt: skip
            rows.append(row)
    out = pd.DataFrame(rows)
    if len(out):
        out["layer"] = out["layer"].astype("Int64")
    return out


__all__ = ["COLUMNS", "HEADLINE", "SeriesPoint", "checkpoint_point", "panels", "point_rows", "series_data", "series_points", "sweep",
           "training_seed", "variant_contrast", "variant_summary"]
