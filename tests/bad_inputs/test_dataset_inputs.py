"""Malformed datasets and puzzle sources: a one-line error naming the file and field, before any
work (training, evaluation, a build), and nothing on disk changed."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from airinterp.tasks.dataset import DatasetError, PuzzleDataset
from tests.helpers import TRAIN, assert_clean_error, invoke, make_dataset, snapshot

ROOT = Path(__file__).parents[2]
CKPT = ROOT / "checkpoints" / "sudoku6_Lx_H"


def _npy(root: Path, field: str, split: str = "train") -> Path:
    return root / split / f"all__{field}.npy"


def _edit(root: Path, field: str, fn) -> None:
    a = np.load(_npy(root, field))
    np.save(_npy(root, field), fn(a))


def _meta(root: Path, **update) -> None:
    path = root / "train" / "dataset.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **update}))


BREAKAGES = {
    "float inputs": (lambda r: _edit(r, "inputs", lambda a: a.astype(np.float32) + 0.5), "all__inputs.npy: dtype float32; expected integers"),
    "labels outside the vocabulary": (lambda r: _edit(r, "labels", lambda a: np.where(a == a.max(), 11, a)), "all__labels.npy: values [11] lie outside the vocabulary [0, 11)"),
    "inputs outside the vocabulary": (lambda r: _edit(r, "inputs", lambda a: (a.astype(np.int64) - 3)), "all__inputs.npy: values [-2, -1] lie outside"),
    "puzzle ids out of range": (lambda r: _edit(r, "puzzle_identifiers", lambda a: a + 3), "puzzle ids [3] lie outside [0, 1)"),
    "truncated npy": (lambda r: _npy(r, "inputs").write_bytes(_npy(r, "inputs").read_bytes()[:300]), "all__inputs.npy: truncated"),
    "npy that is text": (lambda r: _npy(r, "labels").write_text("hello"), "all__labels.npy: not a .npy array file"),
    "missing npy": (lambda r: _npy(r, "group_indices").unlink(), "all__group_indices.npy: missing"),
    "object array": (lambda r: np.save(_npy(r, "inputs"), np.array([[1, None]], dtype=object), allow_pickle=True), "holds Python objects"),
    "wrong seq_len": (lambda r: _edit(r, "inputs", lambda a: a[:, :10]), "all__inputs.npy: shape (40, 10); expected (40, 16)"),
    "labels of another length": (lambda r: _edit(r, "labels", lambda a: a[:5]), "all__labels.npy: shape (5, 16); expected (40, 16)"),
    "group indices not rising": (lambda r: _edit(r, "group_indices", lambda a: a[::-1].copy()), "all__group_indices.npy: must rise strictly from 0 to 40"),
    "empty split": (lambda r: [np.save(_npy(r, f), np.zeros((0, 16) if f in ("inputs", "labels") else (1 if f.endswith("indices") else 0,), np.int32))
                               for f in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")], "the split holds no examples"),
    "bad dataset.json": (lambda r: (r / "train" / "dataset.json").write_text("{not json"), "dataset.json: not valid JSON"),
    "dataset.json without seq_len": (lambda r: (r / "train" / "dataset.json").write_text(json.dumps({"vocab_size": 11, "sets": ["all"], "pad_id": 0, "ignore_label_id": 0})), "missing metadata key 'seq_len'"),
    "total_groups that is not the arrays'": (lambda r: _meta(r, total_groups=999), "dataset.json: total_groups 999, but the arrays hold 40"),
    "ignore_label_id a real token": (lambda r: _meta(r, ignore_label_id=5), "ignore_label_id 5 is a token the inputs use"),
    "dataset.json with a float vocab": (lambda r: (r / "train" / "dataset.json").write_text((r / "train" / "dataset.json").read_text().replace('"vocab_size": 11', '"vocab_size": 11.5')), "vocab_size must be an integer >= 2, got 11.5"),
}


@pytest.mark.parametrize("kind", sorted(BREAKAGES))
def test_broken_dataset_is_refused_everywhere(kind, fresh_dataset, tmp_path):
    breakage, message = BREAKAGES[kind]
    breakage(fresh_dataset)
    before = snapshot(fresh_dataset)
    with pytest.raises(DatasetError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        PuzzleDataset(fresh_dataset, "train")
    assert_clean_error(invoke("train", "--data", fresh_dataset, "--out", tmp_path / "run", *TRAIN), message)
    assert not (tmp_path / "run").exists()
    assert snapshot(fresh_dataset) == before


def test_broken_test_split_is_refused_before_training(fresh_dataset, tmp_path):
    np.save(_npy(fresh_dataset, "labels", "test"), np.load(_npy(fresh_dataset, "labels", "test")).astype(np.float64))
    assert_clean_error(invoke("train", "--data", fresh_dataset, "--out", tmp_path / "run", *TRAIN), "test/all__labels.npy: dtype float64")
    assert not (tmp_path / "run").exists()


def test_eval_refuses_a_broken_or_mismatched_dataset(fresh_dataset, tmp_path):
    _edit(fresh_dataset, "inputs", lambda a: a.astype(np.float32))  # the train split only
    assert_clean_error(invoke("eval", CKPT, "--data", fresh_dataset, "--split", "train"), "dtype float32")
    assert_clean_error(invoke("eval", CKPT, "--data", fresh_dataset), "seq_len 16 / vocab 11 do not match the model's 36 / 11")
    assert_clean_error(invoke("eval", CKPT, "--data", tmp_path / "nowhere"), "nowhere: no such dataset directory")


# ---- puzzle sources and data builds ---------------------------------------------------------------


def test_binary_or_missing_puzzle_sources(tmp_path):
    (tmp_path / "bin.txt").write_bytes(bytes(range(256)) * 10)
    for src, message in ((tmp_path / "bin.txt", "not a text file"), (tmp_path / "none.txt", "no such file"), (tmp_path, "is a directory")):
        res = invoke("data", "sudoku", "--source", src, "--train", "2", "--test", "1", "--aug", "1", "--out", tmp_path / "out")
        assert_clean_error(res, str(src), message)
        assert "select puzzles" not in res.output  # refused before the progress bar
    assert not (tmp_path / "out").exists()


def test_hub_csv_with_bad_ratings_reports_rows(tmp_path):
    src = (ROOT / "tests" / "data" / "sudoku" / "puzzles6_forum_hardest_1106.txt").read_text().split()
    from airinterp.tasks.sudoku import parse, solve, to_text

    rows = ["source,question,answer,rating"]
    for i, q in enumerate(src[:7]):
        sol = to_text(solve(parse(q)).grid)
        rows.append(f"s,{q},{sol},{['inf', 'nan', '-inf', '2.5', '3', '4', '4'][i]}")
    (tmp_path / "train.csv").write_text("\n".join(rows[:7]) + "\n")
    (tmp_path / "test.csv").write_text("\n".join(rows[:1] + rows[7:]) + "\n")
    res = invoke("data", "sudoku", "--hub-train-csv", tmp_path / "train.csv", "--hub-test-csv", tmp_path / "train.csv",
                 "--train", "2", "--test", "1", "--aug", "1", "--out", tmp_path / "out")  # fmt: skip
    assert_clean_error(res, "train.csv: 1 of the 1 test puzzles are also train puzzles")  # the same file twice (issue 22.9)
    res = invoke("data", "sudoku", "--hub-train-csv", tmp_path / "train.csv", "--hub-test-csv", tmp_path / "test.csv",
                 "--train", "3", "--test", "1", "--aug", "1", "--out", tmp_path / "out")  # fmt: skip
    assert_clean_error(res, "train.csv: only 2 usable rows, asked for 3")
    assert not (tmp_path / "out").exists()
    res = invoke("data", "sudoku", "--hub-train-csv", tmp_path / "train.csv", "--hub-test-csv", tmp_path / "test.csv",
                 "--train", "2", "--test", "1", "--aug", "1", "--out", tmp_path / "out")  # fmt: skip
    assert res.exit_code == 0, res.output
    stats = json.loads((tmp_path / "out" / "airinterp_build.json").read_text())["stats"]
    assert [r["reason"] for r in stats["train_bad_rows"]] == [
        "rating 'inf' is not a whole finite number", "rating 'nan' is not a whole finite number",
        "rating '-inf' is not a whole finite number", "rating '2.5' is not a whole finite number",
    ]  # fmt: skip


def test_data_out_that_exists(tmp_path):
    args = ("data", "maze", "--size", "8", "--train", "2", "--test", "1", "--min-path", "14")
    (tmp_path / "file").write_text("x")
    assert_clean_error(invoke(*args, "--out", tmp_path / "file"), "is a file")
    shutil.copytree(ROOT / "checkpoints" / "sudoku6_Lx_H", tmp_path / "ckpt")
    before = snapshot(tmp_path)
    assert_clean_error(invoke(*args, "--out", tmp_path / "ckpt"), "is not empty", "--force")
    assert snapshot(tmp_path) == before
    assert invoke(*args, "--out", tmp_path / "ckpt", "--force").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["airinterp_build.json", "identifiers.json", "test", "train"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "file"]  # no temporary left


def test_failed_build_leaves_nothing(tmp_path):
    # 4x4 has 9 symmetry classes: the 100 test puzzles claim all of them and no train puzzle is left
    res = invoke("data", "sudoku", "--size", "4x4", "--train", "10", "--test", "100", "--aug", "1", "--out", tmp_path / "s4")
    assert_clean_error(res, "could not fill 10 train + 100 test 4x4 puzzles", "use --size 6x6")
    assert list(tmp_path.iterdir()) == []


def test_small_dataset_helper_is_valid(tmp_path):
    ds = PuzzleDataset(make_dataset(tmp_path / "d"), "train")
    assert ds.n_examples == 40 and len(ds.fingerprint()) == 64


def test_a_dataset_built_for_the_other_task_is_refused(tmp_path):
    """A 6x6 maze build whose dataset.json claims Sudoku's vocabulary was decoded as Sudoku (issue 22.7)."""
    out = tmp_path / "m6"
    res = invoke("data", "maze", "--size", "6", "--train", "4", "--test", "4", "--seed", "0", "--out", out)
    assert res.exit_code == 0, res.output
    for split in ("train", "test"):
        meta = out / split / "dataset.json"
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "vocab_size": 11}))
    assert_clean_error(invoke("decode", "--checkpoint", CKPT, "--data", out, "--out", tmp_path / "d"),
                       "--data", "built for maze (airinterp_build.json), but the checkpoint is a sudoku model")  # fmt: skip
