"""Helpers for the bad-input suites: a clean one-line error, and nothing on disk changed."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from airinterp.cli import app
from airinterp.tasks.dataset import write_split

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def snapshot(*roots: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``roots`` with its size and sha256 (and every directory)."""
    out: dict[str, tuple[int, str]] = {}
    for root in roots:
        root = Path(root)
        if root.is_file():
            out[str(root)] = (root.stat().st_size, hashlib.sha256(root.read_bytes()).hexdigest())
            continue
        for p in sorted(root.rglob("*")) if root.exists() else ():
            out[str(p)] = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) if p.is_file() else (-1, "dir")
    return out


def assert_clean_error(result, *needles: str, code: int = 2) -> str:
    """A handled error: exit ``code``, no traceback, exactly one ``error:`` line (or click's
    ``Error:`` for a usage error) holding every needle. Returns that line."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), f"unhandled {result.exception!r}\n{result.output}"
    assert "Traceback" not in result.output, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith(("error:", "Error:"))]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def make_dataset(root: Path, n_train: int = 40, n_test: int = 8, seed: int = 0, seq: int = 16, vocab: int = 11) -> Path:
    """A small dataset in the reference format with random in-vocabulary tokens."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        inputs = rng.integers(1, vocab, (n, seq)).astype(np.uint8)
        labels = rng.integers(2, vocab, (n, seq)).astype(np.uint8)
        write_split(root, split, inputs, labels, [1] * n, vocab)
    return root


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "d")


@pytest.fixture
def fresh_dataset(tmp_path, dataset) -> Path:
    """A private copy to break."""
    out = tmp_path / "data"
    shutil.copytree(dataset, out)
    return out


TRAIN = ("--preset", "tiny", "--eval-limit", "4", "--epochs", "100", "--eval-interval", "50")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, dataset) -> Path:
    """A finished tiny run: 6 steps, checkpoints every 3."""
    out = tmp_path_factory.mktemp("runs") / "run"
    res = invoke("train", "--data", dataset, "--out", out, *TRAIN, "--max-steps", "6", "--checkpoint-every", "3")
    assert res.exit_code == 0, res.output
    return out
