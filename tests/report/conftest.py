import pytest

from airinterp.tasks.dataset import PuzzleDataset
from tests.bad_inputs.conftest import make_dataset


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> PuzzleDataset:
    """A 4x4-Sudoku-shaped test split of 10 random puzzles (the tiny model's size)."""
    return PuzzleDataset(make_dataset(tmp_path_factory.mktemp("rdata") / "d", n_train=4, n_test=10), "test")
