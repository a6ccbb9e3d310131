"""README's first command, ``bash scripts/main.sh``, run as a user runs it: in the repository,
setting up and running the main job on the shipped default checkpoint, with its outputs pointed
at a temporary directory (``AIRINTERP_OUT``) so that the suite leaves the user's ``out/`` alone.
CI runs it with the report on 20 puzzles (``AIRINTERP_N_PUZZLES``: every step as the user's, the
report's sections on fewer puzzles); ``pytest -m slow`` runs it at the user's default of 100."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import COMMANDS, ROOT


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("n_puzzles", [pytest.param(None, marks=pytest.mark.slow, id="100"), pytest.param("20", id="20")])
def test_main_job(tmp_path, n_puzzles):
    assert COMMANDS[0] == "bash scripts/main.sh"
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "AIRINTERP_OUT": str(out)}
    if n_puzzles is not None:
        env["AIRINTERP_N_PUZZLES"] = n_puzzles
    res = subprocess.run(["bash", "scripts/main.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, f"--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}"
    report = out / "report" / "sudoku6_Lx_H.html"
    assert report.is_file() and report.stat().st_size > 100_000
    assert "sudoku6_Lx_H.html" in res.stdout, res.stdout[-2000:]  # the report's path, printed at the end
    assert (out / "eval" / "sudoku6_Lx_H.csv").is_file()
    assert res.stdout.count(": PASS") == 3, res.stdout[-2000:]  # the three reference fixtures
    puzzles = f"{n_puzzles or 100} test puzzles"
    assert puzzles in report.read_text(), puzzles
