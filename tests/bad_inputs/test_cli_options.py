"""Bad command-line options: one line naming the option and what was expected, before any work,
nothing written."""

import pytest

from tests.helpers import TRAIN, assert_clean_error, invoke, snapshot

CKPT = "checkpoints/sudoku6_Lx_H/model.safetensors"
DATA = "checkpoints/data/sudoku6"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--first", "0"], ["'--first'", "greater than or equal to 1"]),
        (["--n-puzzles", "-5"], ["'--n-puzzles'"]),
        (["--n-puzzles", "5", "--first", "5"], ["--n-puzzles and --first", "give one"]),
        (["--n-puzzles", "501"], ["--n-puzzles 501", "only 500 puzzles"]),
        (["--batch-size", "-1"], ["'--batch-size'"]),
        (["--batch-size", "0"], ["'--batch-size'"]),
        (["--split", "val"], ["--split 'val'", "train or test"]),
        (["--device", "gpu"], ["--device 'gpu'", "cpu, cuda or cuda:N"]),
        (["--device", "cuda"], ["--device 'cuda'", "CUDA is not available"]),
        (["--device", "cuda:7"], ["--device 'cuda:7'"]),
        (["--out", "table.txt"], ["--out table.txt", ".csv or .parquet"]),
    ],
)
def test_eval_options(tmp_path, monkeypatch, args, needles):
    import torch

    if "cuda" in " ".join(args) and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    root = __import__("pathlib").Path(__file__).parents[2]
    res = invoke("eval", root / CKPT, "--data", root / DATA, *args)
    assert_clean_error(res, *needles)
    assert snapshot(tmp_path) == {}


def test_eval_out_that_is_a_directory_fails_before_evaluating(tmp_path):
    (tmp_path / "t.csv").mkdir()
    res = invoke("eval", CKPT, "--data", DATA, "--out", tmp_path / "t.csv")
    assert_clean_error(res, "is a directory")
    assert "eval test" not in res.output  # no progress bar: nothing was evaluated
    (tmp_path / "f").write_text("x")
    assert_clean_error(invoke("eval", CKPT, "--data", DATA, "--out", tmp_path / "f" / "t.csv"), "is a file, not a directory")


def test_eval_writes_its_table_whole(tmp_path):
    res = invoke("eval", CKPT, "--data", DATA, "--first", "3", "--out", tmp_path / "sub" / "t.csv")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["t.csv"]  # no temporary left


def test_eval_defaults_to_the_cards_split_and_samples_with_a_seed(tmp_path):
    """Without --data: the card's test split (said on stderr); --n-puzzles: a seeded sample whose
    rows are the split's indices, the same for the same seed; -o writes the table."""
    import pandas as pd

    a = invoke("eval", CKPT, "--n-puzzles", "5", "--seed", "3", "-o", tmp_path / "a.csv")
    assert a.exit_code == 0, a.output
    assert "the test data the card of" in a.output and "n=5" in a.output
    b = invoke("eval", CKPT, "--data", DATA, "--n-puzzles", "5", "--seed", "3", "-o", tmp_path / "b.csv")
    assert b.exit_code == 0 and "the test data the card" not in b.output, b.output
    ta, tb = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert ta.equals(tb) and list(ta["index"]) != list(range(5)) and ta["index"].is_unique


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--seed", "-1"], ["'--seed'"]),
        (["--batch-size", "0"], ["'--batch-size'"]),
        (["--device", "gpu"], ["--device 'gpu'"]),
        (["--preset", "huge"], ["unknown preset 'huge'"]),
        (["--variant", "Lx_Q"], ["unknown AIR variant 'Lx_Q'"]),
        (["--dtype", "int8"], ["forward_dtype"]),
        (["--task", "maze"], ["--task maze", "holds sudoku data"]),
        (["--batch-size", "100000"], ["--batch-size 100000 is larger than one iteration"]),
        (["--epochs", "1", "--batch-size", "64"], ["make no optimizer step"]),
    ],
)
def test_train_options(tmp_path, dataset, args, needles):
    before = snapshot(dataset)
    res = invoke("train", "--data", dataset, "--out", tmp_path / "run", *TRAIN, *args)
    assert_clean_error(res, *needles)
    assert not (tmp_path / "run").exists()
    assert snapshot(dataset) == before


def test_train_needs_data_and_a_usable_out(tmp_path, dataset):
    assert_clean_error(invoke("train", "--out", tmp_path / "run", *TRAIN), "--data: missing")
    (tmp_path / "file").write_text("x")
    assert_clean_error(invoke("train", "--data", dataset, "--out", tmp_path / "file", *TRAIN), "is a file")
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["hooks", CKPT, "--n-act", "0"], ["'--n-act'"]),
        (["hooks", CKPT, "--filter", "act.*.Q*"], ["--filter 'act.*.Q*'", "matches none"]),
        (["hooks", "nowhere.safetensors"], ["nowhere.safetensors: no such file"]),
        (["verify-reference", "tests/data/air_reference/sudoku_default.json", "--device", "gpu"], ["--device 'gpu'"]),
        (["verify-reference", "tests/data/air_reference/sudoku_default.json", "--tol", "-1"], ["'--tol'"]),
        (["import-reference", "tests/data/air_reference/checkpoint_format/Sudoku/air_Lx_H_fixture_sudoku_default/step_0",
          "-o", "x.pt", "--seq-len", "81"], ["--out x.pt", ".safetensors"]),
        (["import-reference", "tests/data/air_reference/checkpoint_format/Sudoku/air_Lx_H_fixture_sudoku_default/step_0",
          "-o", "x.safetensors", "--seq-len", "0"], ["'--seq-len'"]),
        (["import-reference", "tests/data/air_reference/checkpoint_format/Sudoku/air_Lx_H_fixture_sudoku_default/step_0",
          "-o", "x.safetensors", "--seq-len", "81", "--dtype", "int4"], ["forward_dtype"]),
    ],
)
def test_model_command_options(tmp_path, monkeypatch, args, needles):
    root = __import__("pathlib").Path(__file__).parents[2]
    monkeypatch.chdir(tmp_path)
    args = [str(root / a) if a.startswith(("checkpoints/", "tests/")) else a for a in args]
    assert_clean_error(invoke(*args), *needles)
    assert snapshot(tmp_path) == {}


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["sudoku", "--size", "6x6", "--train", "0"], ["'--train'"]),
        (["sudoku", "--size", "6x6", "--test", "0"], ["'--test'"]),
        (["sudoku", "--size", "6x6", "--seed", "-1"], ["'--seed'"]),
        (["sudoku", "--size", "5x5"], ["size"]),
        (["sudoku", "--size", "6x6", "--hub-train-csv", "a.csv"], ["give both hub_train_csv and hub_test_csv"]),
        (["maze", "--size", "8", "--train", "0"], ["'--train'"]),
        (["maze", "--size", "8", "--tie-break", "down,left"], ["tie_break 'down,left' must order all of"]),
        (["maze", "--size", "8", "--min-path", "100"], ["min_path_cells must lie in [2, 64]", "lower --min-path"]),
        (["maze", "--size", "3"], ["'--size'"]),
    ],
)
def test_data_options(tmp_path, args, needles):
    res = invoke("data", *args, "--out", tmp_path / "d")
    assert_clean_error(res, *needles)
    assert snapshot(tmp_path) == {}
