"""Paths a card names are resolved against the card, never the working directory (issue 22.3)."""

import json
import shutil

from airinterp.checkpoints import REPO, Checkpoint
from tests.helpers import invoke, make_dataset


def test_a_cards_test_data_is_the_cards_not_the_working_directorys(tmp_path, monkeypatch):
    decoy = tmp_path / "checkpoints" / "data" / "sudoku6"  # the same relative path, another dataset
    make_dataset(decoy, n_train=4, n_test=4, seq=36, vocab=11)
    monkeypatch.chdir(tmp_path)
    ck = Checkpoint(REPO / "checkpoints" / "sudoku6_Lx_H")
    assert ck.resolve(ck.card["eval_data"]) == REPO / "checkpoints" / "data" / "sudoku6"
    res = invoke("decode", "--task", "sudoku", "--n-puzzles", "2", "--n-act", "1", "--out", tmp_path / "dec")
    assert res.exit_code == 0, res.output
    assert f"data: {REPO / 'checkpoints' / 'data' / 'sudoku6'}" in res.output  # what was used is said
    config = json.loads((tmp_path / "dec" / "config.json").read_text())
    assert config["data"] == str(REPO / "checkpoints" / "data" / "sudoku6") and config["n_split"] == 500


def test_a_copied_checkpoint_finds_data_beside_it_first(tmp_path):
    """A card's relative path is relative to the card's own directory, then the layout it sits in."""
    dest = tmp_path / "mine" / "checkpoints" / "s6"
    shutil.copytree(REPO / "checkpoints" / "sudoku6_Lx_H", dest)
    ck = Checkpoint(dest)
    assert ck.resolve("checkpoints/data/sudoku6") == REPO / "checkpoints" / "data" / "sudoku6"  # not beside it: the checkout's
    make_dataset(tmp_path / "mine" / "checkpoints" / "data" / "sudoku6", n_train=4, n_test=4, seq=36, vocab=11)
    assert ck.resolve("checkpoints/data/sudoku6") == tmp_path / "mine" / "checkpoints" / "data" / "sudoku6"
    assert ck.resolve("nowhere/at/all") is None
