"""The roles analysis on hand-made rollouts: every metric against a count by hand."""

import numpy as np
import pytest

from airinterp.analysis.decode import DecodedRollout
from airinterp.analysis.roles import roles_analysis
from airinterp.model.schedule import act_schedule
from airinterp.tasks.rules import rules_for


def test_maze_candidates_recall_precision_and_confidence():
    rules = rules_for("maze", 16)
    o, p = rules.open, rules.path
    labels = np.full((2, 16), o, np.int64)
    labels[:, :4] = p  # the label's path: cells 0..3
    inputs = np.full((2, 16), o, np.int64)  # every cell open in the input: none given
    schedule = act_schedule(1, 1)  # L0_0 H0: 2 updates per ACT step
    zL = np.tile(labels[:, None, :], (1, 4, 1)).astype(np.uint8)
    zH = zL.copy()
    zL[:, :, 4:6] = p  # zL marks two extra candidate cells
    zH[:, :, 3] = o  # zH leaves out one path cell
    probs = np.ones((2, 4, 16), np.float16)
    probs[:, :, :8] = 0.3  # half the cells of zL low-confidence
    r = DecodedRollout(indices=np.arange(2), zL=zL, zH=zH, zL_p=probs, zH_p=np.ones_like(probs), inputs=inputs, labels=labels)
    res = roles_analysis(r, rules, schedule, seed=0)
    s = res.summary[res.summary.when == "final"].set_index(["metric", "state"])["mean"]
    assert s[("zL_path_zH_open", "both")] == 3 and s[("zH_path_zL_open", "both")] == 0  # cells 3, 4, 5
    assert s[("path_recall", "zL")] == 1 and s[("path_precision", "zL")] == pytest.approx(4 / 6)
    assert s[("path_recall", "zH")] == pytest.approx(3 / 4) and s[("path_precision", "zH")] == 1
    assert s[("disagreement", "both")] == pytest.approx(3 / 16)
    assert s[("low_confidence", "zL")] == 0.5 and s[("low_confidence", "zH")] == 0
    assert s[("low_confidence", "zL - zH")] == 0.5
    assert set(res.substeps.act) == {1}  # ACT step 0 (sub-steps 0, 1) is left out


def test_one_state_is_refused_in_one_line():
    rules = rules_for("sudoku", 16)
    r = DecodedRollout(indices=np.arange(1), zL=np.zeros((1, 4, 16), np.uint8), inputs=np.zeros((1, 16)), labels=np.zeros((1, 16)))
    with pytest.raises(ValueError, match="one state"):
        roles_analysis(r, rules, act_schedule(1, 1), seed=0)
