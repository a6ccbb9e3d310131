"""AIR's siblings through the same hooks, against tensors of their unmodified reference code and in their
training-checkpoint layouts: TRM (one stack, Lx_H's rule, H 3 x L 6, a 16-position prefix) and HRM
(the same rule, its H-updates through a second stack)."""

import json
import shutil

import pytest
import torch

from airinterp.checkpoints import import_reference
from airinterp.checkpoints.verify import check_parity, load_fixture
from airinterp.model.config import AIRConfig
from tests.helpers import DATA, invoke

TRM = DATA / "recurrent_reference"


def test_trm_attention_fixture_verifies():
    fx = load_fixture(TRM / "trm_sudoku_att.json")
    c = fx.config
    assert (c.family, c.variant, c.H_cycles, c.L_cycles, c.L_layers, c.prefix_len, c.n_pos) == ("trm", "Lx_H", 3, 6, 2, 16, 97)
    names = [u.name for u in fx.model.schedule]
    assert len(names) == 21 and names[:7] == ["L0_0", "L0_1", "L0_2", "L0_3", "L0_4", "L0_5", "H0"] and names[-1] == "H2"
    assert [u.name for u in fx.model.schedule if u.grad] == names[14:]  # TRM trains its whole last H-cycle
    rows = check_parity(fx)
    bad = [r for r in rows if not r.ok]
    assert not bad, bad
    assert {r.tensor for r in rows} >= {"ref.act2.sub21.z_H", "ref.act2.logits", "ref.act1.sub7.attn_probs.layer1"}
    forced = [r for r in rows if r.mode == "teacher-forced" and r.tensor.endswith(("z_L", "z_H"))]
    assert len(forced) == 2 * 21 + 2 and max(r.max_abs_diff for r in forced) < 1e-5


def test_trm_training_checkpoint_imports_and_equals_the_fixture(tmp_path):
    ckpt = tmp_path / "run"
    shutil.copytree(TRM / "trm", ckpt)
    model = import_reference(ckpt / "step_0", seq_len=81)
    fx = load_fixture(TRM / "trm_sudoku_att.json")
    for k, v in fx.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    res = invoke("import-reference", ckpt / "step_0", "--seq-len", "81", "-o", tmp_path / "trm.safetensors")
    assert res.exit_code == 0 and "TRM (update rule Lx_H)" in res.output
    res = invoke("info", tmp_path / "trm.safetensors")
    assert "source: " in res.output and "EMA weights: the run set ema: true, rate 0.999" in res.output
    res = invoke("verify-reference", TRM / "trm_sudoku_att.json", "--checkpoint", tmp_path / "trm.safetensors")
    assert res.exit_code == 0 and res.output.strip().endswith("PASS")


@pytest.mark.parametrize(
    ("name", "extra", "needle"),
    [
        ("recursive_reasoning.trm_singlez@X", {}, "single-z"),
    ],
)
def test_siblings_not_built_yet_are_refused_in_one_line(name, extra, needle):
    arch = json.loads((TRM / "trm_sudoku_att.json").read_text())["config_dict_passed_to_model"] | {"name": name, **extra}
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        AIRConfig.from_reference_dict(arch)


def test_hrm_fixture_verifies_with_its_second_stack():
    fx = load_fixture(TRM / "hrm_sudoku.json")
    c, m = fx.config, fx.model
    assert (c.family, c.L_layers, c.H_layers, c.n_pos) == ("hrm", 4, 4, 82)
    assert m.stack("H") is m.h_blocks and m.stack("L") is m.blocks and m.h_blocks is not m.blocks
    assert [u.name for u in m.schedule if u.grad] == ["L1_1", "H1"]
    bad = [r for r in check_parity(fx) if not r.ok]
    assert not bad, bad


def test_hrm_training_checkpoint_layout_imports(tmp_path):
    """HRM's pretrain.py form: ``_orig_mod.model.inner.*`` keys in a torch.save file beside all_config.yaml."""
    from safetensors.torch import load_file

    weights = {k: v for k, v in load_file(TRM / "hrm_sudoku.safetensors").items() if not k.startswith("ref.")}
    run = tmp_path / "Sudoku-extreme-1k-aug-1000 ACT-torch" / "hrm_fixture_sudoku"  # HRM's default names hold a space
    run.mkdir(parents=True)
    torch.save({"_orig_mod." + k: v for k, v in weights.items()}, run / "step_0")
    shutil.copy(TRM / "hrm" / "all_config.yaml", run)
    model = import_reference(run / "step_0", seq_len=81)
    fx = load_fixture(TRM / "hrm_sudoku.json")
    assert model.config == fx.config
    for k, v in fx.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    from airinterp.checkpoints.reference import to_reference_state_dict

    back = to_reference_state_dict(model, prefix="model.inner.")
    assert set(back) == set(weights) and all(torch.equal(back[k], weights[k]) for k in weights)


def test_hrm_with_unequal_depths_names_each_updates_own_stack():
    from airinterp.model import HookedAIR, hook_names
    from tests.helpers import make_config, make_tokens

    cfg = make_config(family="hrm", L_layers=2, H_layers=1)
    names = set(hook_names(cfg, 1))
    assert "act.0.L0_0.blocks.1.attn.hook_pattern" in names and "act.0.H0.blocks.0.attn.hook_pattern" in names
    assert not any(n.startswith("act.0.H0.blocks.1.") for n in names)
    model = HookedAIR(cfg)
    with pytest.raises(ValueError, match=r"layer 1 does not exist \(the stack has blocks 0..0\)"):
        model.hook_point("act.0.H1.blocks.1.hook_resid_post")
    _, cache = model.run_with_cache(make_tokens(), n_act=1, names_filter=lambda n: n.endswith("hook_resid_post"))
    assert len([k for k in cache.keys() if ".H" in k]) == 2 and len([k for k in cache.keys() if ".L" in k]) == 8
    with pytest.raises(ValueError, match="H_layers 1: only HRM has an H stack"):
        make_config(H_layers=1)


def test_trm_mlp_t_blocks_mix_positions_and_name_their_own_sites():
    from airinterp.model import HookedAIR, hook_names
    from airinterp.model.layers import rms_norm
    from tests.helpers import make_config, make_tokens

    cfg = make_config(family="trm", mlp_t=True, pos_encodings="none", H_cycles=2, L_cycles=3, puzzle_emb_len=4)
    names = set(hook_names(cfg, 1))
    assert "act.0.L0_2.blocks.1.mlp_t.hook_post" in names and not any("attn." in n for n in names)
    model = HookedAIR(cfg)
    with pytest.raises(ValueError, match=r"attn.hook_pattern is not a site of this model's TRM mlp_t blocks \(no attention\)"):
        model.hook_point("act.0.L0_0.blocks.0.attn.hook_pattern")
    blk = model.blocks[0]
    assert blk.mlp_t.gate_up.weight.shape == (2 * cfg.mlp_t_width, cfg.n_pos) and not hasattr(blk, "attn")
    _, cache = model.run_with_cache(make_tokens(), n_act=1, names_filter=lambda n: n.startswith("act.0.L0_1.blocks.0."))
    h = cache["act.0.L0_1.blocks.0.hook_resid_pre"]
    with torch.no_grad():  # the block written out: hT <- N(hT + W_d (silu(W_g hT) * W_u hT)) over positions, then the MLP
        g, u = (h.transpose(1, 2) @ blk.mlp_t.gate_up.weight.T).chunk(2, dim=-1)
        ht = rms_norm(h.transpose(1, 2) + (torch.nn.functional.silu(g) * u) @ blk.mlp_t.down.weight.T, cfg.rms_norm_eps)
        mid = ht.transpose(1, 2)
        g2, u2 = (mid @ blk.mlp.gate_up.weight.T).chunk(2, dim=-1)
        want = rms_norm(mid + (torch.nn.functional.silu(g2) * u2) @ blk.mlp.down.weight.T, cfg.rms_norm_eps)
    torch.testing.assert_close(cache["act.0.L0_1.blocks.0.hook_resid_mid"], mid, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cache["act.0.L0_1.blocks.0.hook_resid_post"], want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="pos_encodings none"):
        make_config(family="trm", pos_encodings="none")


SHARED = DATA.parents[2] / "shared" / "fixtures" / "recurrent_reference"


@pytest.mark.skipif(not (SHARED / "trm_sudoku_mlp_t.json").is_file(), reason="the shared fixtures are not beside this checkout")
def test_trm_mlp_t_fixture_verifies():
    """Kept out of tests/data for size (3.8 MB); runs where ../shared is present (the development machines)."""
    fx = load_fixture(SHARED / "trm_sudoku_mlp_t.json")
    assert fx.config.mlp_t and fx.config.pos_encodings == "none"
    rows = check_parity(fx)
    assert not [r for r in rows if not r.ok]
    assert max(r.max_abs_diff for r in rows if r.mode == "teacher-forced") < 1e-5
