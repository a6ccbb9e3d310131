"""The CLI through typer's CliRunner, against tiny checkpoints in tmp_path."""

import pytest
from typer.testing import CliRunner

from airinterp.checkpoints import save
from airinterp.cli import app
from tests.helpers import make_model

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("import-reference", "verify-reference", "hooks", "info"):
        assert cmd in result.output


def test_hooks_and_info(tmp_path):
    path = save(make_model(variant="Lx_Hx"), tmp_path / "m.safetensors")
    result = runner.invoke(app, ["hooks", str(path), "--n-act", "2", "--filter", "act.1.H1.blocks.1.attn.*"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("act.1.H1.blocks.1.attn.hook_q\t")
    assert len(lines) == 8
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0
    assert "variant: Lx_Hx" in result.output
    assert "H-update: zH <- f((zH + x) + zL)" in result.output


def test_bad_checkpoint_is_a_clean_error(tmp_path):
    (tmp_path / "junk.safetensors").write_text("junk")
    result = runner.invoke(app, ["info", str(tmp_path / "junk.safetensors")])
    assert result.exit_code == 2
    assert "not a safetensors file" in result.output
    result = runner.invoke(app, ["import-reference", str(tmp_path / "junk.safetensors"), "-o", str(tmp_path / "o.safetensors")])
    assert result.exit_code == 2
    assert "error:" in result.output


def test_help_is_whole_plain_and_versioned():
    """Every command's description fits the list (no '...'), metavars are plain (N, PATH, TEXT,
    not <int range> or {checkpoint}), --version prints the version, --threads is documented."""
    from airinterp import __version__

    top = runner.invoke(app, ["--help"]).output
    listed = top.split("Commands:")[1]
    assert "..." not in listed and "--threads N" in top
    assert runner.invoke(app, ["--version"]).output.strip() == f"airinterp {__version__}"
    for cmd in (["freeze"], ["report"], ["eval"], ["info"], ["hooks"], ["train"], ["data", "sudoku"]):
        out = runner.invoke(app, [*cmd, "--help"]).output
        assert "<int" not in out and "<path>" not in out.split("Options:")[-1] and "<list" not in out, (cmd, out)
        assert "{checkpoint}" not in out and "``" not in out and "z_H" not in out, (cmd, out)


def test_global_threads_option_reaches_torch():
    import torch

    before = torch.get_num_threads()
    try:
        res = runner.invoke(app, ["--threads", "1", "hooks", "--n-act", "1", "--filter", "act.0.hook_zH"])
        assert res.exit_code == 0, res.output
        assert torch.get_num_threads() == 1
        assert runner.invoke(app, ["--threads", "0", "hooks"]).exit_code == 2
    finally:
        torch.set_num_threads(before)


def test_checkpoints_are_found_from_any_working_directory(tmp_path, monkeypatch):
    """A relative checkpoint path missing from the working directory is looked up in the source
    checkout (notebooks start their kernel elsewhere); one that exists here is used as given."""
    import airinterp
    from airinterp.checkpoints import Checkpoint
    from airinterp.checkpoints.paths import REPO

    monkeypatch.chdir(tmp_path)
    assert airinterp.load("checkpoints/sudoku6_Lx_H").config.task == "sudoku"
    assert runner.invoke(app, ["info", "checkpoints/sudoku6_Lx_H"]).exit_code == 0  # every command: format.load locates too
    assert Checkpoint("checkpoints/sudoku6_Lx_H").path == REPO / "checkpoints/sudoku6_Lx_H"
    (tmp_path / "checkpoints" / "sudoku6_Lx_H").mkdir(parents=True)
    assert Checkpoint("checkpoints/sudoku6_Lx_H").path.resolve() == (tmp_path / "checkpoints/sudoku6_Lx_H").resolve()
    assert Checkpoint("checkpoints/nowhere").path == __import__("pathlib").Path("checkpoints/nowhere")


def test_under_torchrun_only_rank_0_prints_the_error(monkeypatch):
    """A CPU-only `torchrun ... --device cuda` fails alike on every rank: one line, from rank 0."""
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    monkeypatch.setenv("RANK", "1")
    res = runner.invoke(app, ["eval", "checkpoints/sudoku6_Lx_H", "--device", "gpu"])
    assert res.exit_code == 2 and "error:" not in res.output
    monkeypatch.setenv("RANK", "0")
    res = runner.invoke(app, ["eval", "checkpoints/sudoku6_Lx_H", "--device", "gpu"])
    assert res.exit_code == 2 and res.output.count("error:") == 1


@pytest.mark.parametrize(
    ("env", "code", "policy"),
    [({}, "import airinterp", "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "import airinterp", "ACTIVE"),
     ({"GOMP_SPINCOUNT": "300000"}, "import airinterp", None), ({}, "import torch, airinterp", None)],
)
def test_import_asks_openmp_to_wait_passively_unless_told_otherwise(env, code, policy):
    """Before torch, `import airinterp` sets OMP_WAIT_POLICY=PASSIVE; a policy or spin count of the
    user's own, or torch already loaded (too late to matter), leaves the environment alone."""
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", f"{code}; import os; print(os.environ.get('OMP_WAIT_POLICY'))"],
                         env={**base, **env}, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert out == str(policy)


def test_a_rank_specific_failure_under_torchrun_is_said_by_that_rank(monkeypatch, capsys):
    """Outside torchrun RANK means nothing to the error; under torchrun a failure that is not
    every rank's own says which rank it came from."""
    from airinterp.cli._common import fail

    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.setenv("RANK", "3")
    res = runner.invoke(app, ["eval", "checkpoints/sudoku6_Lx_H", "--device", "gpu"])
    assert res.output.count("error:") == 1
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    capsys.readouterr()
    assert fail("cuda:3 is not a device here").exit_code == 2
    assert "[rank 3] error: cuda:3" in capsys.readouterr().err
    fail("--device cuda: CUDA is not available", every_rank_alike=True)
    assert capsys.readouterr().err == ""
