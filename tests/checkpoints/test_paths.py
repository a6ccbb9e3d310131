"""Checkpoint: one value for a checkpoint's file, directory, card and name."""

import json

import pytest

from airinterp.checkpoints import DEFAULT_CHECKPOINTS, REPO, Checkpoint, save
from tests.helpers import make_model


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "runs" / "my_run"
    d.mkdir(parents=True)
    save(make_model(), d / "model.safetensors")
    (d / "card.json").write_text(json.dumps({"steps": 7, "eval_data": "data/x"}))
    (tmp_path / "data" / "x").mkdir(parents=True)
    return d


def test_a_directory_and_its_file_are_one_checkpoint(run_dir):
    by_dir, by_file = Checkpoint(run_dir), Checkpoint(run_dir / "model.safetensors")
    assert by_dir.key == by_file.key == run_dir.resolve()
    assert by_dir.name == by_file.name == "my_run" and by_dir.dir == by_file.dir == run_dir
    assert by_dir.file == run_dir / "model.safetensors" and by_dir.card["steps"] == 7
    other = run_dir.parent / "renamed.safetensors"
    other.write_bytes((run_dir / "model.safetensors").read_bytes())
    assert Checkpoint(other).name == "renamed" and Checkpoint(other).key != by_dir.key


def test_card_paths_resolve_beside_the_run_and_a_missing_card_is_empty(run_dir, tmp_path):
    assert Checkpoint(run_dir).resolve("data/x") == run_dir.parent.parent / "data" / "x"  # the checkpoint's grandparent
    assert Checkpoint(run_dir).resolve("data/nowhere") is None
    (run_dir / "card.json").write_text("not json")
    assert Checkpoint(run_dir).card == {}
    assert Checkpoint(run_dir).load().config.hidden_size == 32


def test_the_shipped_defaults():
    for task, rel in DEFAULT_CHECKPOINTS.items():
        ck = Checkpoint.default(task)
        assert ck.path == REPO / rel and ck.file.name == "model.safetensors" and ck.card.get("eval_data")
    with pytest.raises(ValueError, match="task 'chess'"):
        Checkpoint.default("chess")
