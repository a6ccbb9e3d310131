"""Fixtures of the bad-input suites: a dataset, a fresh copy of it, a trained run."""

import shutil
from pathlib import Path

import pytest

from tests.helpers import TRAIN, invoke, make_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "d")


@pytest.fixture
def fresh_dataset(tmp_path, dataset) -> Path:
    """A private copy to break."""
    out = tmp_path / "data"
    shutil.copytree(dataset, out)
    return out


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, dataset) -> Path:
    """A finished tiny run: 6 steps, checkpoints every 3."""
    out = tmp_path_factory.mktemp("runs") / "run"
    res = invoke("train", "--data", dataset, "--out", out, *TRAIN, "--max-steps", "6", "--checkpoint-every", "3")
    assert res.exit_code == 0, res.output
    return out
