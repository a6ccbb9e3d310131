"""Our model against tensors produced by the reference implementation (see tests/data)."""

import shutil

import pytest
import torch
from typer.testing import CliRunner

import airinterp
from airinterp.cli import app
from airinterp.model.checkpoint import import_reference, save
from airinterp.model.reference import load_fixture, verify
from tests.conftest import FIXTURES, VARIANT_DUMPS

SHARED_CASES = ["sudoku_default", "sudoku_symmetric_Lx_Hx", "maze_default"]
VARIANT_CASES = sorted(p.stem for p in VARIANT_DUMPS.glob("*.json"))
CKPT = FIXTURES / "checkpoint_format" / "Sudoku" / "air_Lx_H_fixture_sudoku_default" / "step_0"


def test_all_fifteen_variants_have_a_dump():
    from airinterp.model.config import VARIANTS

    assert sorted(VARIANTS) == VARIANT_CASES


@pytest.mark.parametrize("case", SHARED_CASES)
def test_verify_reference_cli_passes_on_shared_fixture(case):
    result = CliRunner().invoke(app, ["verify-reference", str(FIXTURES / f"{case}.json")])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    assert "31 tensors" in result.output


@pytest.mark.parametrize("case", SHARED_CASES)
def test_every_fixture_tensor_within_tolerance(case):
    fx = load_fixture(FIXTURES / f"{case}.json")
    results = verify(fx)
    names = {r.tensor for r in results}
    # every ref.* output of the dump is compared
    assert len(names) == 31
    assert {"ref.act2.sub6.z_H", "ref.act1.sub3.attn_probs.layer3", "ref.act2.q_halt_logits"} <= names
    for r in results:
        assert r.max_abs_diff <= 1e-4, r
    # inputs and tables are exact on any machine
    exact = {r.tensor: r for r in results}
    for name in ("ref.input_embeddings", "ref.rope_cos", "ref.rope_sin", "ref.init.z_L", "ref.init.z_H"):
        assert exact[name].bitwise, name


@pytest.mark.parametrize("case", VARIANT_CASES)
def test_variant_matches_reference_dump(case):
    """Dumps of every variant made with tools/dump_reference.py from the reference code.

    Bitwise equal on the machine that made them. These random models amplify last-bit kernel
    differences between CPUs over the rollout (up to 8e-4 seen on a Xeon, torch 2.11, 16 threads),
    so the free rollout is held to 1e-4 relative to each tensor's magnitude on this project's
    machines, and every update is also checked teacher-forced (one update's error) at 1e-5.
    """
    fx = load_fixture(VARIANT_DUMPS / f"{case}.json")
    assert fx.config.variant == case
    forced = verify(fx, teacher_forced=True)
    assert len(forced) == 27
    for r in forced:
        assert r.max_abs_diff <= 1e-5, r
    for r in verify(fx):
        scale = max(1.0, fx.tensors[r.tensor].abs().max().item())
        assert r.max_abs_diff <= 1e-4 * scale, r


def test_verify_reference_fails_above_tolerance():
    result = CliRunner().invoke(app, ["verify-reference", str(FIXTURES / "sudoku_default.json"), "--tol", "1e-12"])
    assert result.exit_code == 1
    assert "FAIL" in result.output


def test_verify_reference_detects_a_wrong_model(tmp_path):
    """A model with a perturbed weight must fail verification."""
    model = import_reference(CKPT, seq_len=81)
    with torch.no_grad():
        model.blocks[2].mlp.down.weight.mul_(1.01)
    save(model, tmp_path / "bad.safetensors")
    result = CliRunner().invoke(
        app, ["verify-reference", str(FIXTURES / "sudoku_default.json"), "--checkpoint", str(tmp_path / "bad.safetensors")]
    )
    assert result.exit_code == 1, result.output


def test_import_reference_reproduces_sudoku_default(tmp_path):
    out = tmp_path / "sudoku_default.safetensors"
    result = CliRunner().invoke(app, ["import-reference", str(CKPT), "--seq-len", "81", "-o", str(out)])
    assert result.exit_code == 0, result.output
    model = airinterp.load(out)
    assert model.config.variant == "Lx_H" and model.config.seq_len == 81 and model.config.vocab_size == 11
    result = CliRunner().invoke(
        app, ["verify-reference", str(FIXTURES / "sudoku_default.json"), "--checkpoint", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output


def test_import_reference_equals_fixture_weights():
    imported = import_reference(CKPT, seq_len=81)
    fixture = load_fixture(FIXTURES / "sudoku_default.json").model
    for (k, a), (k2, b) in zip(imported.state_dict().items(), fixture.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b), k


def test_import_reference_accepts_bf16_and_prefixes(tmp_path):
    state = torch.load(CKPT, weights_only=True)
    # a real checkpoint: bf16 tensors; strip the compile prefix and add a DDP one
    bf16 = {"module." + k.removeprefix("_orig_mod."): v.to(torch.bfloat16) for k, v in state.items()}
    run = tmp_path / "run"
    run.mkdir()
    torch.save(bf16, run / "step_26040")
    shutil.copy(CKPT.parent / "all_config.yaml", run / "all_config.yaml")
    model = import_reference(run / "step_26040", seq_len=81)
    ref = import_reference(CKPT, seq_len=81)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v.to(torch.bfloat16).float()), k
    # the bf16-stored airinterp file round-trips exactly
    save(model, tmp_path / "m.safetensors", dtype=torch.bfloat16)
    back = airinterp.load(tmp_path / "m.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


def test_real_config_without_dtype_defaults_to_bf16(tmp_path):
    cfg = (CKPT.parent / "all_config.yaml").read_text().replace("  forward_dtype: float32\n", "")
    (tmp_path / "all_config.yaml").write_text(cfg)
    shutil.copy(CKPT, tmp_path / "step_0")
    model = import_reference(tmp_path / "step_0", seq_len=81)
    assert model.config.forward_dtype == "bfloat16"
    tokens = torch.randint(1, 11, (1, 81))
    assert model(tokens, n_act=1).dtype == torch.bfloat16
