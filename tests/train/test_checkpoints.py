"""The shipped checkpoints load and reproduce the accuracy their cards state."""

import json
from pathlib import Path

import pytest

import airinterp
from airinterp.train.evaluate import evaluate

ROOT = Path(__file__).parents[2]
CARDS = sorted((ROOT / "checkpoints").glob("*/card.json"))


def test_the_four_required_checkpoints_are_shipped():
    names = {p.parent.name for p in CARDS}
    assert {"sudoku6_Lx_H", "sudoku6_Lx_Hx", "maze10_Lx_H", "maze10_Lx_Hx"} <= names


@pytest.mark.parametrize("card_path", CARDS, ids=[p.parent.name for p in CARDS])
def test_card_accuracy_is_reproduced(card_path):
    card = json.loads(card_path.read_text())
    model = airinterp.load(card_path.parent / "model.safetensors")
    assert model.config.variant == card["variant"]
    data = ROOT / card["eval_data"]
    _, summary = evaluate(model, data, "test", card["final_eval"]["n"])
    for key in ("exact_accuracy", "token_accuracy", "nongiven_accuracy", "n"):
        assert summary[key] == pytest.approx(card["final_eval"][key], abs=1e-9), key
