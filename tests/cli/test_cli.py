"""The CLI through typer's CliRunner, against tiny checkpoints in tmp_path."""

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
    assert "H-update: z_H <- f((z_H + x) + z_L)" in result.output


def test_bad_checkpoint_is_a_clean_error(tmp_path):
    (tmp_path / "junk.safetensors").write_text("junk")
    result = runner.invoke(app, ["info", str(tmp_path / "junk.safetensors")])
    assert result.exit_code == 2
    assert "not a safetensors file" in result.output
    result = runner.invoke(app, ["import-reference", str(tmp_path / "junk.safetensors"), "-o", str(tmp_path / "o.safetensors")])
    assert result.exit_code == 2
    assert "error:" in result.output
