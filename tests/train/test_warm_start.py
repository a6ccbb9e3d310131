"""Warm start (--init-from): equal to loading the weights and then training; the card adds up budgets."""

import json
from pathlib import Path

import pytest
import torch

import airinterp
from airinterp.errors import InputError
from airinterp.train.config import PRESETS, TrainRun
from airinterp.train.loop import Trainer
from tests.helpers import invoke


@pytest.fixture(scope="module")
def sudoku4(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "s4"
    res = invoke("data", "sudoku", "--size", "4x4", "--train", "24", "--aug", "30", "--test", "12", "--seed", "1", "--out", out)
    assert res.exit_code == 0, res.output
    return out


def _run(data: Path, out: Path, **kw) -> TrainRun:
    return TrainRun.from_preset("tiny", data=data, out=out, epochs=1000, eval_limit=12, **kw)


def test_warm_start_equals_loading_the_weights_then_training(sudoku4, tmp_path):
    Trainer(_run(sudoku4, tmp_path / "a", max_steps=4), log=lambda s: None).fit()
    init = tmp_path / "a" / "model.safetensors"
    warm = Trainer(_run(sudoku4, tmp_path / "b", max_steps=3, init_from=init), log=lambda s: None)
    warm.fit()
    by_hand = Trainer(_run(sudoku4, tmp_path / "c", max_steps=3), log=lambda s: None)
    by_hand.model.load_state_dict(airinterp.load(init).state_dict())
    by_hand.fit()
    a = airinterp.load(tmp_path / "b").state_dict()
    b = airinterp.load(tmp_path / "c").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], airinterp.load(init).state_dict()[k]) for k in a)  # it trained
    card = json.loads((tmp_path / "b" / "card.json").read_text())
    assert card["init_from"] == str(init) and [b["steps"] for b in card["budgets"]] == [4, 3]
    assert card["cumulative_steps"] == 7 and "restarts the optimizer" in card["optimizer_note"]
    # a third budget from the second: three budgets
    Trainer(_run(sudoku4, tmp_path / "d", max_steps=2, init_from=tmp_path / "b"), log=lambda s: None).fit()
    card = json.loads((tmp_path / "d" / "card.json").read_text())
    assert [b["steps"] for b in card["budgets"]] == [4, 3, 2] and card["cumulative_steps"] == 9


def test_warm_start_refuses_another_architecture_or_a_missing_checkpoint(sudoku4, tmp_path):
    Trainer(_run(sudoku4, tmp_path / "a", max_steps=1), log=lambda s: None).fit()
    with pytest.raises(InputError, match=r"init_from .*differs from this run's in hidden_size \(32 vs 48\)"):
        Trainer(_run(sudoku4, tmp_path / "b", hidden_size=48, init_from=tmp_path / "a"))
    res = invoke("train", "--data", sudoku4, "--out", tmp_path / "c", "--preset", "tiny", "--init-from", tmp_path / "nowhere")
    assert res.exit_code == 2 and "--init-from" in res.output and "no such checkpoint" in res.output
    assert not (tmp_path / "c").exists()


def test_gpu_budget_preset_is_the_paper_architecture_with_a_short_warmup():
    paper, budget = PRESETS["paper"], PRESETS["gpu-budget"]
    assert {k: v for k, v in budget.items() if k not in ("lr_warmup_steps", "eval_interval")} == {
        k: v for k, v in paper.items() if k not in ("lr_warmup_steps", "eval_interval")}
    assert budget["lr_warmup_steps"] == 100 < paper["lr_warmup_steps"]
