"""decode / freeze / patch from the command line, and their bad inputs (one line, nothing written)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import assert_clean_error, invoke, snapshot

ROOT = Path(__file__).parents[2]


def test_decode_writes_the_token_table_and_changes(tmp_path):
    out = tmp_path / "dec"
    res = invoke("decode", "--task", "sudoku", "--n-puzzles", "5", "--seed", "2", "--out", out)
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["seed"] == 2 and len(cfg["puzzle_indices"]) == 5 and cfg["checkpoint"].endswith("sudoku6_Lx_H")
    tokens = pd.read_parquet(out / "tokens.parquet")
    assert list(tokens.columns[:5]) == ["puzzle", "substep", "state", "cell", "token"]
    assert len(tokens) == 5 * 96 * 2 * 36 and set(tokens.state) == {"zL", "zH"}  # 16 ACT steps x 6 updates
    assert set(tokens.puzzle) == set(cfg["puzzle_indices"])
    changes = pd.read_csv(out / "changes.csv")
    assert {"puzzle", "state", "content_changes", "mask_flips", "token_changes", "content_changes_harmonized"} <= set(changes.columns)
    assert len(changes) == 10
    substeps = pd.read_csv(out / "substeps.csv")
    assert {"blank_fraction", "cell_accuracy", "undecided_fraction"} <= set(substeps.columns)
    page = (out / "decode.html").read_text()
    assert "<script src=" not in page.replace("<script src=\"data:", "") and page.count("Plotly.newPlot") == 4  # 3 grids + lines; JS inlined
    assert not list(tmp_path.glob(".*tmp*"))


def test_freeze_and_patch_on_the_maze_checkpoint(tmp_path):
    res = invoke("freeze", "--state", "zL", "--task", "maze", "--n-puzzles", "6", "--out", tmp_path / "f")
    assert res.exit_code == 0, res.output
    s = pd.read_csv(tmp_path / "f" / "freeze_summary.csv")
    assert {"content_changes", "output_exact", "measured_exact_reference"} <= set(s.metric)
    assert "input-independent" in res.output  # Lx_H with z_L frozen
    p = pd.read_csv(tmp_path / "f" / "freeze_puzzles.csv")
    assert len(p) == 6 and {"content_changes_normal", "content_changes_frozen"} <= set(p.columns)
    assert "output_token_accuracy: normal" in res.output and "paired delta [95 % bootstrap CI]" in res.output
    res = invoke("patch", "--task", "maze", "--state", "zH", "--acts", "1,3", "--n-puzzles", "6", "--out", tmp_path / "p")
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "p" / "patch_summary.csv")) == 2


def test_freeze_and_patch_default_to_100_puzzles_like_every_analysis(tmp_path):
    res = invoke("freeze", "--state", "zH", "--n-act", "1", "--batch-size", "100", "--out", tmp_path / "f")
    assert res.exit_code == 0, res.output
    assert len(json.loads((tmp_path / "f" / "config.json").read_text())["puzzle_indices"]) == 100


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["freeze", "--state", "zX"], ["--state 'zX'", "zH or zL"]),
        (["freeze", "--state", "zH", "--task", "chess"], ["--task 'chess'", "sudoku, maze"]),
        (["freeze", "--state", "zH", "--task", "maze", "--checkpoint", ROOT / "checkpoints/sudoku6_Lx_H"], ["sudoku model", "--task is maze"]),
        (["freeze", "--state", "zH", "--n-puzzles", "501"], ["--n-puzzles 501", "only 500"]),
        (["freeze", "--state", "zH", "--from-act", "16"], ["--from-act 16", "0..15"]),
        (["freeze", "--state", "zH", "--substep", "96"], ["--substep 96", "0..95"]),
        (["freeze", "--state", "zH", "--substep", "0"], ["--substep 0", "writes zL"]),
        (["decode", "--n-puzzles", "0"], ["'--n-puzzles'"]),
        (["decode", "--device", "gpu"], ["--device 'gpu'"]),
        (["decode", "--checkpoint", "nowhere.safetensors"], ["nowhere.safetensors"]),
        (["decode", "--data", ROOT / "checkpoints/data/maze10"], ["seq_len"]),
        (["patch", "--acts", "16"], ["--acts '16'", "0..15"]),
        (["patch", "--state", "zQ"], ["--state 'zQ'"]),
        (["patch", "--source", "16"], ["--source 16", "0..15"]),
        (["patch", "--site", "H0.hook_out", "--update", "L0_1"], ["--update and --site", "give one"]),  # --update was ignored
        (["patch", "--source", "mine"], ["--source 'mine'"]),
        (["patch", "--site", "hook_zH"], ["--site", "update site"]),
        (["patch", "--update", "L3_0"], ["--update", "L3_0"]),
        (["patch", "--n-puzzles", "5", "--batch-size", "2"], ["--batch-size 2", "last batch of 1"]),
        (["attention", "--steps", "2,16"], ["--steps '2,16'", "0..15"]),
        (["patch", "--n-puzzles", "4", "--batch-size", "1"], ["--batch-size 1", ">= 2"]),
        (["attention", "--head-reduce", "max"], ["--head-reduce 'max'", "mean or best"]),
        (["attention", "--violations", "after"], ["--violations 'after'", "pre or post_h0"]),
        (["attention", "--task", "maze", "--n-puzzles", "501"], ["--n-puzzles 501", "only 500"]),
        (["attention-example", "--cell", "6,0"], ["--cell 6,0", "6x6 grid"]),
        (["attention-example", "--cell", "a"], ["--cell 'a'", "ROW,COL"]),
        (["attention-example", "--layer", "4"], ["--layer 4", "0..3"]),
        (["attention-example", "--head", "4"], ["--head 4", "0..3"]),
        (["attention-example", "--puzzle", "500"], ["--puzzle 500", "0..499"]),
        (["attention-example", "--top-k", "36"], ["--top-k 36", "expected 1..35"]),  # was: persistence 36/k, not 1
        (["attention-example", "--steps", "16"], ["--steps '16'", "0..15"]),
        (["convergence", "--n-act", "0"], ["'--n-act'"]),
        (["convergence", "--task", "maze", "--n-puzzles", "501"], ["--n-puzzles 501", "only 500"]),
        (["write-locality", "--source", "mine"], ["--source 'mine'", "noise or other"]),
        (["write-locality", "--act", "16"], ["--act 16", "0..15"]),
        (["write-locality", "--noise", "0"], ["--noise 0", "greater than 0"]),
        (["write-locality", "--source", "other", "--n-puzzles", "1"], ["--source other", "--n-puzzles >= 2"]),
        (["geometry", "--act", "16"], ["--act 16", "1..15"]),
        (["geometry", "--scales", "0.1,x"], ["--scales '0.1,x'", "numbers > 0"]),
        (["geometry", "--scales", "0"], ["--scales '0'", "> 0"]),
        (["probes", "--acts", "16"], ["--acts '16'", "0..15"]),
        (["probes", "--targets", "digit"], ["--targets 'digit'", "solution, undecided, candidate_1"]),
        (["probes", "--task", "maze", "--targets", "candidate_1"], ["--targets 'candidate_1'", "solution, undecided"]),
        (["probes", "--ablate-acts", "x"], ["--ablate-acts 'x'"]),
        (["probes", "--n-puzzles", "3"], ["--folds 5", "--n-puzzles >= 5"]),
    ],
)
def test_bad_inputs(tmp_path, monkeypatch, args, needles):
    import torch

    if "gpu" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    res = invoke(*args)
    assert_clean_error(res, *needles)
    assert snapshot(tmp_path) == {}


def test_decode_beyond_halt_max_steps(tmp_path):
    out = tmp_path / "d6"
    res = invoke("decode", "--task", "maze", "--n-puzzles", "2", "--n-act", "6", "--grids", "0", "--out", out)
    assert res.exit_code == 0, res.output
    tokens = pd.read_parquet(out / "tokens.parquet")
    assert tokens.substep.max() == 6 * 6 - 1
    # the rollout's last z_H grid is the model's output at 6 steps
    import torch

    import airinterp
    from airinterp.tasks.dataset import PuzzleDataset

    cfg = json.loads((out / "config.json").read_text())
    model = airinterp.load(ROOT / "checkpoints/maze10_Lx_H")
    ds = PuzzleDataset(ROOT / "checkpoints/data/maze10", "test")
    x = torch.from_numpy(ds.data["inputs"][cfg["puzzle_indices"]].astype("int64"))
    with torch.inference_mode():
        pred = model(x, n_act=6).argmax(-1).numpy()
    last = tokens[(tokens.state == "zH") & (tokens.substep == 35)].sort_values(["puzzle", "cell"]).token.to_numpy()
    assert (last == pred.reshape(-1)).all()


def test_attention_command(tmp_path):
    out = tmp_path / "att"
    res = invoke("attention", "--task", "maze", "--n-puzzles", "3", "--steps", "1,3", "--per-head", "--out", out)
    assert res.exit_code == 0, res.output
    s = pd.read_csv(out / "attention_summary.csv")
    assert {"head_mean", "best_head (reference option)", "pooled_rows (reference's released script)"} <= set(s.method)
    assert set(s["class"]) == {"error-adjacent", "control"} and s.layer.nunique() == 4
    assert json.loads((out / "config.json").read_text())["attention"]["steps"] == [1, 3]
    assert (out / "attention_heads.csv").exists() and "Plotly.newPlot" in (out / "attention.html").read_text()


def test_attention_example_command(tmp_path):
    out = tmp_path / "ex"
    res = invoke("attention-example", "--task", "maze", "--puzzle", "4", "--cell", "3,4", "--layer", "2", "--out", out)
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())["example"]
    assert (cfg["puzzle"], cfg["query"], cfg["layer"]) == (4, 34, 2)
    rows = pd.read_csv(out / "example_rows.csv")
    steps = [2, 4, 6, 8, 10, 12, 14, 15]  # the paper's steps inside the default's 16-step rollout
    assert sorted(set(rows.step)) == steps and len(rows) == len(steps) * 2 * 100
    assert "Plotly.newPlot" in (out / "example.html").read_text()


def test_repeated_steps_count_once(tmp_path):
    res = invoke("attention", "--task", "sudoku", "--n-puzzles", "3", "--steps", "2,2", "--out", tmp_path / "a")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "a" / "config.json").read_text())["attention"]["steps"] == [2]
    res = invoke("patch", "--task", "sudoku", "--state", "zH", "--acts", "1,1", "--n-puzzles", "4", "--out", tmp_path / "p")
    assert res.exit_code == 0, res.output
    s = pd.read_csv(tmp_path / "p" / "patch_summary.csv")
    assert len(s) == 1 and s.n.iloc[0] == 4


def test_roles_command_on_the_maze_checkpoint(tmp_path):
    """What each state holds: the tables and the page; zL marks candidate path cells zH does not."""
    out = tmp_path / "roles"
    res = invoke("roles", "--task", "maze", "--n-puzzles", "6", "--out", out)
    assert res.exit_code == 0, res.output
    s = pd.read_csv(out / "roles_summary.csv")
    assert {"disagreement", "undecided", "low_confidence", "path_recall", "path_precision", "zL_path_zH_open"} <= set(s.metric)
    assert set(s.state) == {"zL", "zH", "zL - zH", "both"} and set(s.when) == {"mean", "final"}
    p = pd.read_csv(out / "roles_puzzles.csv")
    assert p.puzzle.nunique() == 6 and "Plotly.newPlot" in (out / "roles.html").read_text()
    assert "disagreement both:" in res.output and json.loads((out / "config.json").read_text())["command"] == "roles"
    res = invoke("roles", "--task", "maze", "--n-puzzles", "0", "--out", tmp_path / "bad")
    assert res.exit_code != 0 and not (tmp_path / "bad").exists()


def test_convergence_and_write_locality_commands(tmp_path):
    res = invoke("convergence", "--n-puzzles", "4", "--n-act", "20", "--out", tmp_path / "c")
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    assert cfg["n_act"] == 20 and cfg["trained_act"] == 16
    lens = pd.read_csv(tmp_path / "c" / "lens.csv")
    assert len(lens) == 4 * 20 * 6 * 4 and lens.past_trained.sum() == 4 * 4 * 6 * 4
    assert "zH: commits at sub-step" in res.output and "wrong at the trained length" in res.output
    for name in ("lens_summary.csv", "residual_summary.csv", "commit_summary.csv", "commit_cells.csv", "outcome.csv", "escape.csv"):
        assert (tmp_path / "c" / name).is_file(), name
    assert (tmp_path / "c" / "convergence.html").read_text().count("Plotly.newPlot") == 4
    res = invoke("write-locality", "--task", "maze", "--n-puzzles", "4", "--source", "other", "--out", tmp_path / "w")
    assert res.exit_code == 0, res.output
    loc = pd.read_csv(tmp_path / "w" / "locality.csv")
    assert list(loc.target) == ["L0_0", "L0_1", "H0", "L1_0", "L1_1", "H1"] and (loc.neighbours == "N4").all()
    assert "locality L - H" in res.output and len(pd.read_csv(tmp_path / "w" / "locality_contrast.csv")) == 1


def test_geometry_command(tmp_path):
    res = invoke("geometry", "--n-puzzles", "4", "--scales", "1,30", "--out", tmp_path / "g")
    assert res.exit_code == 0, res.output
    d = tmp_path / "g"
    pr = pd.read_csv(d / "pr.csv")
    assert set(pr.model) == {"trained", "untrained"} and len(pr) == 2 * 16 * 6
    b = pd.read_csv(d / "basins.csv")
    assert list(b.scale) == [1.0, 30.0, 1.0, 30.0] and list(b.state) == ["zL", "zL", "zH", "zH"] and (b.n == 4).all()
    assert json.loads((d / "config.json").read_text())["scales"] == [1.0, 30.0]
    for name in ("state_pr.csv", "components.csv", "trajectories.csv", "capture.csv", "basins_puzzles.csv"):
        assert (d / name).is_file(), name
    assert (d / "geometry.html").read_text().count("Plotly.newPlot") == 3
    assert "PR zH (untrained)" in res.output and "basin zL x30" in res.output
    res = invoke("geometry", "--n-puzzles", "3", "--no-basins", "--no-untrained", "--out", tmp_path / "g2")
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "g2" / "basins.csv").exists() and set(pd.read_csv(tmp_path / "g2" / "pr.csv").model) == {"trained"}


def test_probes_command(tmp_path):
    res = invoke("probes", "--n-puzzles", "6", "--acts", "15", "--targets", "solution,candidate_1", "--ablate-acts", "15", "--folds", "2",
                 "--out", tmp_path / "p")
    assert res.exit_code == 0, res.output
    d = tmp_path / "p"
    acc = pd.read_csv(d / "probes.csv")
    assert len(acc) == 6 * 2 and set(acc.act) == {15} and set(acc.target) == {"solution", "candidate_1"}
    causal = pd.read_csv(d / "causal.csv")
    assert set(causal.arm) == {"probe", "random"} and set(causal.target) <= {"solution", "candidates"} and set(causal.act) == {15}
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["acts"] == [15] and cfg["ablate_acts"] == [15] and cfg["targets"] == ["solution", "candidate_1"]
    assert (d / "probes.html").read_text().count("Plotly.newPlot") == 2 and (d / "causal_puzzles.csv").is_file()
    assert "probe solution from zH at act.15.H1" in res.output and "ablate solution" in res.output
