import hashlib
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

from airinterp.tasks.dataset import PuzzleDataset
from tests.helpers import ROOT, make_dataset

# the same examples on every run: CI must not depend on luck
# (and no example database: the suite writes nothing into the checkout)
settings.register_profile("airinterp", derandomize=True, deadline=None, database=None)
settings.load_profile("airinterp")



def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="device to run the model tests on (cpu or cuda)")


def checkout_state(root: Path = ROOT) -> dict[str, str]:
    """sha256 of every file of the checkout a user owns: what git tracks, untracked files it does
    not ignore, and everything under out/ (where the README's commands write)."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode().split("\0")
    paths = {root / p for p in listed if p} | {p for p in (root / "out").rglob("*")}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(paths) if p.exists() or p.is_symlink()}  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def _checkout_left_as_found():
    """The suite leaves the user's checkout as it found it (tracked files, untracked ones, out/)."""
    if not (ROOT / ".git").exists():
        yield
        return
    before = checkout_state()
    yield
    after = checkout_state()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the test suite changed the checkout: {changed[:10]}"


@pytest.fixture
def device(request) -> str:
    dev = request.config.getoption("--device")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    return dev


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> PuzzleDataset:
    """A 4x4-Sudoku-shaped test split of 10 random puzzles (the tiny model's size)."""
    return PuzzleDataset(make_dataset(tmp_path_factory.mktemp("tdata") / "d", n_train=4, n_test=10), "test")
