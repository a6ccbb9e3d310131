"""Content changes (spec 4.b) on hand-built decoded grids: exactly the right cells, both modes."""

import numpy as np
import pytest

from airinterp.analysis.decode import DecodedRollout
from airinterp.analysis.dynamics import changes_table, count_changes, written
from airinterp.model.schedule import act_schedule
from airinterp.tasks.rules import rules_for

SUDOKU = rules_for("sudoku", 16)  # 4x4
MAZE = rules_for("maze", 16)  # 4x4 maze
SCHED = act_schedule(2, 2)  # L0_0 L0_1 H0 L1_0 L1_1 H1


def test_sudoku_counts_in_both_modes():
    # one puzzle, 3 sub-steps, 4 cells shown (the other 12 stay 5)
    g = np.full((1, 3, 16), 5)
    g[0, :, 0] = [2, 3, 3]  # digit -> digit: a content change at transition 1
    g[0, :, 1] = [1, 4, 4]  # blank -> digit: a mask flip in both modes
    g[0, :, 2] = [0, 6, 0]  # PAD -> digit -> PAD: content in reference mode, mask flips in harmonized
    g[0, :, 3] = [0, 1, 0]  # PAD <-> BLANK: flips in reference (one side BLANK); no change of state in harmonized
    ref = count_changes(g, SUDOKU, "reference")
    har = count_changes(g, SUDOKU, "harmonized")
    assert ref.token_changes.tolist() == [[4, 2]]
    assert ref.mask_flips.tolist() == [[2, 1]]  # cells 1, 3 | cell 3
    assert ref.content_changes.tolist() == [[2, 1]]  # cells 0, 2 | cell 2
    assert har.mask_flips.tolist() == [[2, 1]]  # cells 1, 2 | cell 2
    assert har.content_changes.tolist() == [[1, 0]]  # cell 0 | none: PAD <-> BLANK is a change between two masks
    # restricted to non-given cells: cells 0 and 2 are givens here
    given = np.zeros((1, 16), bool)
    given[0, [0, 2]] = True
    ng = count_changes(g, SUDOKU, "reference", given)
    assert ng.content_changes_nongiven.tolist() == [[0, 0]]
    assert ng.mask_flips_nongiven.tolist() == [[2, 1]]


def test_maze_reference_masks_the_path_and_counts_pad_as_content():
    g = np.full((1, 3, 16), 2)
    g[0, :, 0] = [2, 5, 2]  # open -> path -> open: mask flips (reference), content (harmonized)
    g[0, :, 1] = [0, 2, 2]  # PAD -> open: content (reference, A5), a mask flip (harmonized)
    g[0, :, 2] = [1, 1, 1]  # never changes
    ref = count_changes(g, MAZE, "reference")
    har = count_changes(g, MAZE, "harmonized")
    assert ref.mask_flips.tolist() == [[1, 1]] and ref.content_changes.tolist() == [[1, 0]]
    assert har.mask_flips.tolist() == [[1, 0]] and har.content_changes.tolist() == [[1, 1]]


def test_changes_table_totals_and_divisors():
    K = 2 * 6  # two ACT steps
    rng = np.random.default_rng(0)
    zL = rng.integers(1, 11, (3, K, 16))
    zH = rng.integers(2, 11, (3, K, 16))
    for k in range(K):  # a state keeps its grid where it is not written, as in a real rollout
        for s, g in (("zL", zL), ("zH", zH)):
            if k and not written(SCHED, s, K)[k]:
                g[:, k] = g[:, k - 1]
    inputs = rng.integers(1, 11, (3, 16))
    r = DecodedRollout(indices=np.array([7, 8, 9]), zL=zL, zH=zH, inputs=inputs)
    t = changes_table(r, SUDOKU, SCHED)
    assert set(t.columns) >= {"puzzle", "state", "content_changes", "mask_flips", "token_changes",
                              "content_changes_harmonized", "content_changes_nongiven", "content_per_step",
                              "content_per_updated"}  # fmt: skip
    zl = t[t.state == "zL"].set_index("puzzle")
    expect = count_changes(zL, SUDOKU).content_changes.sum(1)
    assert zl.content_changes.tolist() == expect.tolist()
    assert (zl.n_transitions == K - 1).all()
    # z_L is written at 8 of 12 sub-steps, the first (k=0) has no transition: 7; z_H at 4
    assert (zl.n_updated_transitions == 7).all()
    assert (t[t.state == "zH"].n_updated_transitions == 4).all()
    np.testing.assert_allclose(zl.content_per_step, expect / (K - 1))
    np.testing.assert_allclose(zl.content_per_updated, expect / 7)
    # the paper's divisors at 16 ACT steps: 95 transitions, 63 for z_L, 32 for z_H
    assert (written(SCHED, "zL", 96)[1:]).sum() == 63 and (written(SCHED, "zH", 96)[1:]).sum() == 32
    # non-given counts never exceed the totals
    assert (t.content_changes_nongiven <= t.content_changes).all()


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="counting mode"):
        SUDOKU.mask_tokens("paper")


def test_presence_counts_cells_shares_and_movement():
    """The observation rows' rule on a hand-made rollout: zL holds one BLANK cell in every grid of ACT
    step 1, in a new place each sub-step; zH never; step 0 does not count."""
    from airinterp.analysis.decode import DecodedRollout
    from airinterp.analysis.dynamics import presence_table
    from airinterp.model.schedule import act_schedule
    from airinterp.tasks.rules import rules_for

    rules = rules_for("sudoku", 16)
    schedule = act_schedule(2, 2)  # 6 updates per ACT step
    zL = np.full((2, 12, 16), 2, np.uint8)
    zH = zL.copy()
    for k in range(6, 12):
        zL[:, k, k - 6] = rules.blank  # one BLANK, moving (even where an H-update runs: only L-writes count)
    zL[:, 0, :3] = rules.blank  # ACT step 0: not counted
    t = presence_table(DecodedRollout(indices=np.arange(2), zL=zL, zH=zH), rules, schedule).set_index(["state", "tokens"])
    assert t.loc[("zL", "blank"), "share_grids"] == 1.0 and t.loc[("zL", "blank"), "share_moving"] == 1.0
    # movement counts the transitions into sub-steps that write zL (7 L0_1, 9 L1_0, 10 L1_1), not those into
    # the H-updates' (8, 11): here one of the three moves (into 10); all transitions would count 3 of 5
    zL2 = np.full_like(zL, 2)
    for k, cell in zip(range(6, 12), (0, 0, 2, 2, 4, 5), strict=True):
        zL2[:, k, cell] = rules.blank
    t2 = presence_table(DecodedRollout(indices=np.arange(2), zL=zL2, zH=zH), rules, schedule).set_index(["state", "tokens"])
    assert t2.loc[("zL", "blank"), "share_moving"] == pytest.approx(1 / 3)
    assert t.loc[("zL", "blank"), "max_cells"] == 1 and t.loc[("zL", "blank"), "present"] and t.loc[("zL", "blank"), "moving"]
    assert t.loc[("zH", "blank"), "share_grids"] == 0.0 and not t.loc[("zH", "blank"), "present"]
    zL[1, 6:] = 2  # the second puzzle's zL holds none: half the grids
    zL[0, 7:] = zL[0, 6]  # the first's stops moving
    t = presence_table(DecodedRollout(indices=np.arange(2), zL=zL, zH=zH), rules, schedule).set_index(["state", "tokens"])
    assert t.loc[("zL", "blank"), "share_grids"] == 0.5 and t.loc[("zL", "blank"), "share_puzzles"] == 0.5
    assert t.loc[("zL", "blank"), "share_moving"] == 0.0 and not t.loc[("zL", "blank"), "moving"]
