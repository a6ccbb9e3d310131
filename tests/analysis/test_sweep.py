"""The analyses along training (``airinterp sweep``): which checkpoints a series holds, that each
point's numbers are the single-checkpoint commands' numbers, and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airinterp.analysis.sweep import series_points
from airinterp.errors import InputError
from tests.helpers import assert_clean_error, invoke


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A tiny 4x4 Sudoku dataset and two short runs (Lx_H and its Lx_Hx control), each keeping steps 2 and 4."""
    root = tmp_path_factory.mktemp("sweep")
    data = root / "s4"
    res = invoke("data", "sudoku", "--size", "4x4", "--train", "24", "--aug", "10", "--test", "12", "--seed", "1", "--out", data)
    assert res.exit_code == 0, res.output
    out = []
    for variant in ("Lx_H", "Lx_Hx"):
        run = root / f"s4_{variant}"
        res = invoke("train", "--data", data, "--out", run, "--preset", "tiny", "--variant", variant, "--max-steps", "6",
                     "--epochs", "100", "--eval-limit", "12", "--act-steps", "2", "--checkpoint-at", "2,4", "--threads", "1")  # fmt: skip
        assert res.exit_code == 0, res.output
        out.append(run)
    return data, out[0], out[1]


def test_a_run_offers_its_kept_series_and_its_last_checkpoint(runs):
    data, run, _ = runs
    assert [p.step for p in series_points(run)] == [2, 4, 6]  # --checkpoint-at 2,4 and the last (6)
    assert [p.step for p in series_points(run, [4])] == [4]
    with pytest.raises(InputError, match=r"steps 3: not in series .* \(it has 2,4,6\)"):
        series_points(run, [3])
    shipped = run.parent / "shipped"  # a series directory: step_N/ directly, every one of them
    shutil.copytree(run / "checkpoints", shipped)
    assert [p.step for p in series_points(shipped)] == [2, 4, 6]


def test_each_point_is_the_single_checkpoint_commands_numbers(runs, tmp_path):
    data, run, control = runs
    res = invoke("sweep", "--series", run, "--series", control, "--steps", "2,6", "--n-puzzles", "8", "--out", tmp_path / "sw")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "sw" / "sweep.csv")
    config = json.loads((tmp_path / "sw" / "config.json").read_text())
    assert sorted(set(zip(table.series, table.step, strict=True))) == [(run.name, 2), (run.name, 6), (control.name, 2), (control.name, 6)]
    assert set(table.section) == {"accuracy", "decode", "freeze", "geometry", "attention"}
    assert (tmp_path / "sw" / "sweep.html").read_text().count("<script") == 1 + 1  # plotly inlined once, one figure

    # the last point of the Lx_H run, against `airinterp decode` and `airinterp freeze` on the same puzzles
    ck = run / "checkpoints" / "step_6"
    res = invoke("decode", "--checkpoint", ck, "--data", data, "--n-puzzles", "8", "--out", tmp_path / "dec")
    assert res.exit_code == 0, res.output
    dec = json.loads((tmp_path / "dec" / "config.json").read_text())
    assert dec["puzzle_indices"] == config["puzzle_indices"]
    mine = table[(table.series == run.name) & (table.step == 6)].set_index(["quantity", "state"])
    summary = pd.read_csv(tmp_path / "dec" / "changes_summary.csv").set_index(["state", "metric"])
    for s in ("zL", "zH"):
        assert mine.loc[("content_changes", s), "mean"] == pytest.approx(summary.loc[(s, "content_changes"), "mean"])
        assert mine.loc[("undecided_fraction", s), "mean"] == pytest.approx(summary.loc[(s, "undecided_fraction"), "mean"])
    tokens = pd.read_parquet(tmp_path / "dec" / "tokens.parquet")  # disagreement, recounted from the decoded tokens
    wide = tokens.pivot_table(index=["puzzle", "substep", "cell"], columns="state", values="token")
    per_puzzle = (wide["zL"] != wide["zH"]).groupby(level="puzzle").mean()
    assert mine.loc[("disagreement", "zL vs zH"), "mean"] == pytest.approx(per_puzzle.mean())
    assert 0 < per_puzzle.mean() < 1
    res = invoke("freeze", "--state", "zH", "--checkpoint", ck, "--data", data, "--n-puzzles", "8", "--out", tmp_path / "fr")
    assert res.exit_code == 0, res.output
    fr = pd.read_csv(tmp_path / "fr" / "freeze_summary.csv").set_index("metric").loc["content_changes"]
    assert mine.loc[("freeze zH: change in zL content changes", "zL"), "mean"] == pytest.approx(fr["delta_mean"])
    card = json.loads((run / "card.json").read_text())  # the run's final evaluation saw all 12 test puzzles
    exact = table[(table.series == run.name) & (table.step == 6) & (table.quantity == "exact")]["mean"].item()
    assert 0 <= exact <= 1 and np.isfinite(card["final_eval"]["exact_accuracy"])


def test_bad_series_and_steps_are_refused_before_any_work(runs, tmp_path):
    data, run, _ = runs
    out = tmp_path / "sw"
    assert_clean_error(invoke("sweep", "--series", tmp_path / "nope", "--out", out), "--series", "not a directory")
    assert_clean_error(invoke("sweep", "--series", run, "--series", run, "--out", out), "two series named")
    assert_clean_error(invoke("sweep", "--series", run, "--steps", "2,x", "--out", out), "--steps '2,x'")
    assert_clean_error(invoke("sweep", "--series", run, "--steps", "3", "--out", out), "steps 3: not in series")
    assert_clean_error(invoke("sweep", "--series", run, "--n-puzzles", "99", "--out", out), "--n-puzzles 99", "has 12 distinct puzzles")
    assert not out.exists()


def test_across_seeds_and_variants(runs, tmp_path):
    """Two seeds of each variant as checkpoints: per-checkpoint rows, mean +- sd per variant, and
    the Lx_H - Lx_Hx contrast paired by training seed, recounted from the per-checkpoint rows."""
    data, run, control = runs
    seeds = {}
    for variant, first in (("Lx_H", run), ("Lx_Hx", control)):
        other = tmp_path / f"{variant}_seed1"
        res = invoke("train", "--data", data, "--out", other, "--preset", "tiny", "--variant", variant, "--max-steps", "6",
                     "--epochs", "100", "--eval-limit", "12", "--act-steps", "2", "--threads", "1", "--seed", "1")  # fmt: skip
        assert res.exit_code == 0, res.output
        seeds[variant] = (first, other)
    cks = [seeds["Lx_H"][0], seeds["Lx_H"][1], seeds["Lx_Hx"][0], seeds["Lx_Hx"][1]]
    args = [a for ck in cks for a in ("--checkpoint", ck)]
    res = invoke("sweep", *args, "--n-puzzles", "6", "--out", tmp_path / "sw")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "sw" / "sweep.csv")
    variants = pd.read_csv(tmp_path / "sw" / "variants.csv")
    contrast = pd.read_csv(tmp_path / "sw" / "contrast.csv")
    assert table.series.nunique() == 4 and set(table.variant) == {"Lx_H", "Lx_Hx"} and set(table.step) == {6}
    for variant in ("Lx_H", "Lx_Hx"):
        rows = table[(table.variant == variant) & (table.quantity == "token_accuracy")]["mean"]
        v = variants[(variants.variant == variant) & (variants.quantity == "token_accuracy")].iloc[0]
        assert v.n_checkpoints == 2 and v["mean"] == pytest.approx(rows.mean()) and v.sd == pytest.approx(rows.std(ddof=1))
    # the contrast, paired by the training seed (0 for the fixture's runs, 1 for these)
    tok = table[table.quantity == "token_accuracy"].set_index("series")["mean"]
    d = np.array([tok[run.name] - tok[control.name], tok["Lx_H_seed1"] - tok["Lx_Hx_seed1"]])
    c = contrast[contrast.quantity == "token_accuracy"].iloc[0]
    assert c.contrast == "Lx_H - Lx_Hx" and c.pairs == 2 and c.paired_by == "training seed 0,1"
    assert c.delta == pytest.approx(d.mean()) and c.sd == pytest.approx(d.std(ddof=1))
    from scipy import stats

    half = stats.t.ppf(0.975, 1) * d.std(ddof=1) / np.sqrt(2)
    assert c.ci_low == pytest.approx(d.mean() - half) and c.ci_high == pytest.approx(d.mean() + half)
    assert "Across checkpoints" in (tmp_path / "sw" / "sweep.html").read_text()
    cfg = json.loads((tmp_path / "sw" / "config.json").read_text())
    assert len(cfg["checkpoints"]) == 4 and cfg["series"] == []
    # one kind at a time; --steps belongs to series
    for bad, needles in ((["--checkpoint", run, "--series", control], ["--series or --checkpoint", "one kind"]),
                         (["--checkpoint", run, "--steps", "2"], ["--steps", "only with --series"]),
                         (["--checkpoint", tmp_path / "nothing"], ["--checkpoint", "no airinterp checkpoint"]),
                         (["--checkpoint", run, "--checkpoint", run], ["--checkpoint", "two checkpoints named"])):  # fmt: skip
        assert_clean_error(invoke("sweep", *bad, "--out", tmp_path / "bad"), *needles)
        assert not (tmp_path / "bad").exists()
