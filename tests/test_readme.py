"""Every snippet and command README.md shows, run as written.

Python blocks run from the repository root. Bash commands run in order in a scratch directory
laid out like a checkout (``checkpoints``, ``tests``, ``tools``, ``benchmarks``, ``analyses`` linked in, and
``../shared`` beside it when this machine has it), with the venv's ``airinterp`` and ``python``
first on PATH. ``bash scripts/main.sh`` is run by tests/test_main_job.py (a file of its own, so that
it runs beside these under pytest-xdist).
Commands that need what CI does not have are marked: paper-size work, benchmarks and the example reports
(2-3 minutes each; CI builds reports in the main job and tests/report) ``slow``, CUDA ``gpu``, a
checkout of the reference repository at ``../air`` skipped without one. ``bash scripts/test.sh``
is what CI itself runs.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _commands() -> list[str]:
    out = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line.strip())
    return out


def _marks(cmd: str) -> list:
    if "--device cuda" in cmd or cmd.startswith("torchrun"):
        return [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
    if "../air" in cmd:
        return [pytest.mark.skipif(not (ROOT.parent / "air" / "models").is_dir(), reason="needs a reference checkout at ../air")]
    if cmd.startswith("airinterp data") and "--size" not in cmd:  # the paper's sizes: minutes
        return [pytest.mark.slow]
    if cmd.startswith("python benchmarks/"):  # timing runs (half a minute each): `pytest -m slow`, not CI
        return [pytest.mark.slow]
    if cmd.startswith("airinterp report "):  # 2-3 minutes each; CI builds reports in the main job and tests/report
        return [pytest.mark.slow]
    return []


COMMANDS = _commands()


def test_readme_shows_the_two_commands_and_ci_runs_one():
    assert COMMANDS[:2] == ["bash scripts/main.sh", "bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_snippet(index, monkeypatch):
    monkeypatch.chdir(ROOT)
    exec(compile(_blocks("python")[index], f"README.md python block {index}", "exec"), {"__name__": "readme"})


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("readme")
    root = base / "main"
    root.mkdir()
    for name in ("checkpoints", "tests", "tools", "benchmarks", "analyses"):
        (root / name).symlink_to(ROOT / name)
    for sibling in ("shared", "air"):  # ../shared (public data), ../air (a reference checkout, when there is one)
        if (ROOT.parent / sibling).is_dir():
            (base / sibling).symlink_to(ROOT.parent / sibling)
    return root


@pytest.mark.parametrize(
    "cmd", [pytest.param(c, marks=_marks(c), id=c[:70]) for c in COMMANDS if c not in ("bash scripts/test.sh", "bash scripts/main.sh")]
)
def test_command(cmd, scratch):
    if "../shared/data/sudoku" in cmd or (cmd.startswith("airinterp data sudoku") and "--size" not in cmd):
        if not (scratch.parent / "shared" / "data" / "sudoku").is_dir():
            pytest.skip("needs the public Sudoku collections at ../shared/data/sudoku")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cwd = ROOT if cmd.startswith("bash scripts/") else scratch
    res = subprocess.run(["bash", "-c", f"set -eo pipefail; {cmd}"], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, f"{cmd}\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}"
