"""On-disk format, loader batching and the `airinterp data` commands."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from airinterp.cli import app
from airinterp.tasks import maze as M
from airinterp.tasks import sudoku as S
from airinterp.tasks.dataset import IGNORE_LABEL_ID, PuzzleDataset, write_split
from tests.helpers import DATA

runner = CliRunner()


def test_write_and_batch(tmp_path):
    inputs = np.arange(1, 7 * 4 + 1, dtype=np.uint8).reshape(7, 4)  # distinct rows
    labels = inputs.copy()
    labels[0, 0] = 0  # unlabelled -> IGNORE
    write_split(tmp_path, "train", inputs, labels, [3, 1, 3], vocab_size=29)
    ds = PuzzleDataset(tmp_path, "train")
    assert ds.n_groups == 3 and ds.n_examples == 7
    assert json.loads((tmp_path / "identifiers.json").read_text()) == ["<blank>"]
    assert list(ds.data["group_indices"]) == [0, 3, 4, 7]
    batches = list(ds.train_batches(2, seed=1, iteration=1, epochs_per_iter=4))
    assert len(batches) == 6  # 12 draws in batches of 2, none dropped
    again = list(ds.train_batches(2, seed=1, iteration=1, epochs_per_iter=4))
    assert all(np.array_equal(x.inputs, y.inputs) for x, y in zip(batches, again, strict=True))
    # every draw comes from its own group in the permuted order: 4 draws per group
    groups = np.searchsorted([0, 3, 4, 7], [np.flatnonzero((inputs == row).all(1))[0] for b in batches for row in b.inputs], side="right") - 1
    assert np.bincount(groups).tolist() == [4, 4, 4]
    halves = [list(ds.train_batches(2, seed=1, iteration=1, epochs_per_iter=4, rank=r, world_size=2)) for r in (0, 1)]
    for full, r0, r1 in zip(batches, *halves, strict=True):
        assert np.array_equal(np.concatenate([r0.inputs, r1.inputs]), full.inputs)
    test = list(ds.test_batches(3))
    assert [b.n_real for b in test] == [3, 3, 1]
    assert (test[-1].inputs[1:] == 0).all() and (test[-1].labels[1:] == IGNORE_LABEL_ID).all()
    assert test[0].labels[0, 0] == IGNORE_LABEL_ID
    with pytest.raises(ValueError, match="group sizes add up to 6"):
        write_split(tmp_path, "test", inputs, labels, [3, 3], 29)
    with pytest.raises(FileNotFoundError, match="not a puzzle dataset split"):
        PuzzleDataset(tmp_path, "nope")


def test_data_sudoku_cli_same_seed_same_bytes(tmp_path):
    src = str(DATA / "sudoku" / "puzzles6_forum_hardest_1106.txt")
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        res = runner.invoke(app, ["data", "sudoku", "--train", "12", "--aug", "3", "--test", "5", "--seed", "4",
                                  "--source", src, "--out", str(out)])  # fmt: skip
        assert res.exit_code == 0, res.output
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert len(files) == 2 * 6 + 2
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    train, test = PuzzleDataset(outs[0], "train"), PuzzleDataset(outs[0], "test")
    assert train.n_examples == 12 * 4 and train.n_groups == 12 and test.n_examples == 5
    assert train.metadata["seq_len"] == 81 and train.metadata["vocab_size"] == 11
    for q, a in zip(train.data["inputs"], train.data["labels"], strict=True):
        g, s = S.tokens_to_grid(q), S.tokens_to_grid(a)
        assert S.is_solution(s) and ((g == 0) | (g == s)).all()
    train_keys = {S.invariant(S.tokens_to_grid(q)) for q in train.data["inputs"]}
    assert not train_keys & {S.invariant(S.tokens_to_grid(q)) for q in test.data["inputs"]}
    record = json.loads((outs[0] / "airinterp_build.json").read_text())
    assert record["config"]["seed"] == 4 and record["stats"]["train_examples"] == 48


def test_data_sudoku_small_grid(tmp_path):
    res = runner.invoke(app, ["data", "sudoku", "--size", "4x4", "--train", "6", "--aug", "2", "--test", "3", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    ds = PuzzleDataset(tmp_path, "train")
    assert ds.metadata["seq_len"] == 16 and ds.n_examples == 18


def test_data_maze_cli(tmp_path):
    res = runner.invoke(app, ["data", "maze", "--size", "8", "--train", "4", "--test", "3", "--min-path", "20", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    train, test = PuzzleDataset(tmp_path, "train"), PuzzleDataset(tmp_path, "test")
    assert train.metadata["seq_len"] == 64 and train.metadata["vocab_size"] == 6 and test.n_examples == 3
    layouts = set()
    for split in (train, test):
        for q, a in zip(split.data["inputs"], split.data["labels"], strict=True):
            qg, ag = q.reshape(8, 8), a.reshape(8, 8)
            assert M.is_shortest(ag, qg)
            layouts.add((qg == M.WALL).tobytes())
    assert len(layouts) == 7  # distinct wall layouts across splits


def test_data_cli_bad_input(tmp_path):
    res = runner.invoke(app, ["data", "sudoku", "--out", str(tmp_path), "--data-dir", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "puzzle collections not found" in res.output
    res = runner.invoke(app, ["data", "sudoku", "--out", str(tmp_path), "--size", "5x5"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["data", "maze", "--out", str(tmp_path), "--size", "6", "--train", "1", "--test", "1", "--min-path", "40"])
    assert res.exit_code == 2 and "lower --min-path" in res.output


def test_data_maze_same_seed_same_bytes(tmp_path):
    args = ["data", "maze", "--size", "8", "--train", "2", "--test", "2", "--min-path", "18", "--seed", "9"]
    for name in ("a", "b"):
        assert runner.invoke(app, [*args, "--out", str(tmp_path / name)]).exit_code == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 14
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
