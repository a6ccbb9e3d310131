"""Puzzles counted once (issue 22.5): samples are of distinct puzzles by content, repeated or
out-of-range indices are refused, and patching never pairs a puzzle with a copy of itself."""

import numpy as np
import pytest

from airinterp.analysis.freeze import Freeze, run_freeze
from airinterp.analysis.patching import run_patch, state_targets
from airinterp.analysis.run import check_indices, sample_distinct, sample_puzzles
from airinterp.checkpoints import save as save_model
from airinterp.errors import InputError
from airinterp.tasks.dataset import PuzzleDataset, write_split
from tests.helpers import assert_clean_error, invoke, make_model


def _split(root, inputs):
    labels = np.full_like(inputs, 2)
    write_split(root, "train", inputs, labels, [1] * len(inputs), 11)
    write_split(root, "test", inputs, labels, [1] * len(inputs), 11)
    return PuzzleDataset(root, "test")


@pytest.fixture
def repeated(tmp_path):
    """8 rows: one puzzle 6 times (rows 0-5) and two others."""
    rng = np.random.default_rng(0)
    one = rng.integers(1, 11, 16)
    rows = np.stack([one] * 6 + [rng.integers(1, 11, 16), rng.integers(1, 11, 16)]).astype(np.uint8)
    return _split(tmp_path / "rep", rows)


def test_samples_are_of_distinct_puzzles(repeated):
    assert list(repeated.distinct()) == [0, 6, 7]
    assert sorted(sample_distinct(repeated, None, 0)) == [0, 6, 7]
    assert len(set(sample_distinct(repeated, 2, 0)) & {1, 2, 3, 4, 5}) == 0
    with pytest.raises(InputError, match="only 3 distinct puzzles"):
        sample_distinct(repeated, 4, 0)
    distinct = _split(repeated.root.parent / "ok", np.random.default_rng(1).integers(1, 11, (20, 16)).astype(np.uint8))
    assert (sample_distinct(distinct, 5, 3) == sample_puzzles(20, 5, 3)).all()  # unchanged where all are distinct


@pytest.mark.parametrize("indices, needle", [([6, 6, 7], "puzzle 6 appears 2 times"), ([0, 3, 7], "puzzles 0 and 3 are the same puzzle"),
                                             ([0, -1], "-1 is outside the split"), ([0, 8], "8 is outside"),
                                             ([0.5, 6.0], "whole numbers expected"), ([], "non-empty")])  # fmt: skip
def test_repeated_or_bad_indices_are_refused(repeated, indices, needle):
    with pytest.raises(InputError, match=needle):
        check_indices(repeated, np.array(indices))


def test_analyses_refuse_a_puzzle_counted_twice(repeated):
    model = make_model()
    with pytest.raises(InputError, match="appears 6 times"):  # was: 36 rows, a self-join
        run_freeze(model, repeated, np.array([6] * 6), Freeze("zH"), batch_size=4)
    with pytest.raises(InputError, match="are the same puzzle"):  # was: paired with its own copy, no effect
        run_patch(model, repeated, np.array([0, 1, 6, 7]), state_targets(model, "zL", [1]), source="other", batch_size=4)


def test_the_cli_samples_distinct_puzzles(repeated, tmp_path):
    ck = save_model(make_model(), tmp_path / "m.safetensors")
    res = invoke("decode", "--checkpoint", ck, "--data", repeated.root, "--out", tmp_path / "d")
    assert res.exit_code == 0, res.output
    assert "puzzle_indices\": [\n    0,\n    6,\n    7\n  ]" in (tmp_path / "d" / "config.json").read_text()
    assert_clean_error(invoke("freeze", "--state", "zH", "--checkpoint", ck, "--data", repeated.root, "--n-puzzles", "5",
                              "--out", tmp_path / "f"), "--n-puzzles 5", "3 distinct puzzles")  # fmt: skip
