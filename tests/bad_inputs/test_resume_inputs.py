"""Resuming: a run continues with its own settings, from a complete checkpoint, on its own data;
anything else is a one-line error and nothing in the directory changes."""

import os
import shutil
from pathlib import Path

import pytest
import torch

import airinterp
from airinterp.train.config import TrainRun
from airinterp.train.loop import Trainer
from tests.helpers import TRAIN, assert_clean_error, invoke, make_dataset, snapshot

ROOT = Path(__file__).parents[2]


@pytest.fixture
def run_copy(tmp_path, trained_run) -> Path:
    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    return out


def test_resume_reads_the_runs_own_settings(run_copy):
    """README's resume example: no flag repeated; only limits may change."""
    res = invoke("train", "--out", run_copy, "--resume", "--max-steps", "8")
    assert res.exit_code == 0, res.output
    assert "resumed from" in res.output and airinterp.load(run_copy).config.variant == "Lx_H"
    state = torch.load(run_copy / "checkpoints" / "step_8" / "state.pt", weights_only=True)
    assert state["position"][0] == 8


def test_resume_with_other_settings_is_refused(run_copy):
    before = snapshot(run_copy)
    res = invoke("train", "--out", run_copy, "--resume", "--variant", "Lx_Hx", "--seed", "3")
    assert_clean_error(res, "cannot resume", "--variant Lx_Hx (the run has Lx_H)", "--seed 3 (the run has 0)")
    assert snapshot(run_copy) == before


def test_fresh_run_into_an_existing_run_is_refused(run_copy, dataset):
    before = snapshot(run_copy)
    assert_clean_error(invoke("train", "--data", dataset, "--out", run_copy, *TRAIN), "already holds a run; pass --resume")
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("what", ["checkpoint directory", "dataset"])
def test_resume_into_a_directory_without_a_run_is_refused(tmp_path, dataset, what):
    target = tmp_path / "target"
    shutil.copytree(ROOT / "checkpoints" / "sudoku6_Lx_H" if what == "checkpoint directory" else dataset, target)
    before = snapshot(target)
    for resume in (["--resume"], []):
        res = invoke("train", "--data", dataset, "--out", target, *TRAIN, *resume)
        assert_clean_error(res, f"--out {target}: holds files but no airinterp run")
    assert snapshot(target) == before


def test_resume_on_other_data_is_refused(run_copy, tmp_path):
    before = snapshot(run_copy)
    same_shapes = make_dataset(tmp_path / "other", seed=1)  # another dataset, same shapes and task
    assert_clean_error(invoke("train", "--out", run_copy, "--resume", "--data", same_shapes), "is not the dataset this run trained on")
    maze = make_dataset(tmp_path / "maze", seq=16, vocab=6)  # another task
    assert_clean_error(invoke("train", "--out", run_copy, "--resume", "--data", maze), "is not the dataset this run trained on")
    assert snapshot(run_copy) == before


def test_resume_follows_the_data_when_it_moves(run_copy, dataset, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(dataset, moved)
    res = invoke("train", "--out", run_copy, "--resume", "--data", moved, "--max-steps", "7")
    assert res.exit_code == 0, res.output


STATE_BREAKAGES = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:200]), "state.pt: corrupt or truncated"),
    "empty": (lambda p: p.write_bytes(b""), "state.pt: corrupt or truncated"),
    "foreign": (lambda p: torch.save({"weights": torch.zeros(2)}, p), "state.pt: not an airinterp training state"),
    "code": (lambda p: p.write_bytes(__import__("pickle").dumps(_Evil())), "state.pt: refused to load"),
    "text": (lambda p: p.write_text("not a checkpoint"), "state.pt: refused to load"),
}


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo this ran",))


@pytest.mark.parametrize("kind", sorted(STATE_BREAKAGES))
def test_broken_state_is_refused(run_copy, kind):
    breakage, message = STATE_BREAKAGES[kind]
    breakage(run_copy / "checkpoints" / "step_6" / "state.pt")
    before = snapshot(run_copy)
    assert_clean_error(invoke("train", "--out", run_copy, "--resume", "--max-steps", "8"), message)
    assert snapshot(run_copy) == before


def test_broken_checkpoint_weights_are_refused(run_copy):
    path = run_copy / "checkpoints" / "step_6" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    assert_clean_error(invoke("train", "--out", run_copy, "--resume", "--max-steps", "8"), "integrity check failed")


def test_latest_naming_nothing_is_explained(run_copy):
    (run_copy / "latest").write_text("step_99\n")
    assert_clean_error(invoke("train", "--out", run_copy, "--resume"), "names step_99", "no complete checkpoint")


def _trainer(dataset: Path, out: Path, **kw) -> Trainer:
    run = TrainRun.from_preset("tiny", data=dataset, out=out, epochs=100, eval_interval=50, eval_limit=4, **kw)
    return Trainer(run, log=lambda _: None)


def test_a_kill_while_resaving_a_tag_keeps_a_checkpoint(tmp_path, dataset, monkeypatch):
    """Re-saving an existing tag used to delete it before renaming the new copy in: a kill in
    between left `latest` naming nothing."""
    t = _trainer(dataset, tmp_path / "run", max_steps=2)
    t.fit()  # ends with the save of step_2
    weights = {k: v.clone() for k, v in t.model.state_dict().items()}
    real_replace = os.replace

    def killed(src, dst):
        if ".tmp-" in Path(src).name and Path(dst).name == "step_2":
            raise KeyboardInterrupt("killed between the renames")
        return real_replace(src, dst)

    monkeypatch.setattr("airinterp.io.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        t.save()  # the same tag again
    monkeypatch.setattr("airinterp.io.os.replace", real_replace)
    again = _trainer(dataset, tmp_path / "run", max_steps=2)
    assert again.resume() and again.pos.step == 2
    assert all(torch.equal(weights[k], v) for k, v in again.model.state_dict().items())
    again.save()  # resaving from the aside copy puts step_2 back in place
    assert (tmp_path / "run" / "checkpoints" / "step_2" / "state.pt").is_file()
    assert not (tmp_path / "run" / "checkpoints" / "step_2.old").exists()


def test_a_batch_larger_than_an_iteration_is_refused(tmp_path, dataset):
    """It used to loop forever on empty iterations, re-evaluating and rewriting step_0."""
    with pytest.raises(ValueError, match="global_batch_size 4000 is larger than one iteration"):
        _trainer(dataset, tmp_path / "run", global_batch_size=4000)
    assert not (tmp_path / "run").exists()
