"""README's first command, ``bash scripts/main.sh``, run as a user runs it: in the repository,
setting up and running the main job on the shipped default checkpoint, with its outputs pointed
at a temporary directory (``AIRINTERP_OUT``) so that the suite leaves the user's ``out/`` alone."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import COMMANDS, ROOT


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_main_job(tmp_path):
    assert COMMANDS[0] == "bash scripts/main.sh"
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "AIRINTERP_OUT": str(out)}
    res = subprocess.run(["bash", "scripts/main.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, f"--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}"
    report = out / "report" / "sudoku6_Lx_H.html"
    assert report.is_file() and report.stat().st_size > 100_000
    assert "sudoku6_Lx_H.html" in res.stdout, res.stdout[-2000:]  # the report's path, printed at the end
    assert (out / "eval" / "sudoku6_Lx_H.csv").is_file()
    assert res.stdout.count(": PASS") == 3, res.stdout[-2000:]  # the three reference fixtures
