"""AIR's siblings through the same hooks, against tensors of their unmodified reference code and in their
training-checkpoint layouts: TRM (one stack, Lx_H's rule, H 3 x L 6, a 16-position prefix) and HRM
(the same rule, its H-updates through a second stack)."""

import json
import shutil

import pytest
import torch

from airinterp.checkpoints import import_reference
from airinterp.checkpoints.verify import check_parity, load_fixture
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


def test_trm_single_z_fixture_verifies_bitwise():
    """TRM single-z (trm_singlez.py, dumped by tools/dump_trm_singlez.py): one state z_L, L-calls
    f(z + x~), H-calls f(z); every update writes zL and the output decodes it."""
    fx = load_fixture(TRM / "trm_singlez_sudoku6.json")
    c, m = fx.config, fx.model
    assert (c.family, c.states, c.prefix_len, c.n_updates) == ("trm_singlez", ("zL",), 16, 8)
    assert [u.state for u in m.schedule] == ["zL"] * 8 and not hasattr(m, "H_init")
    assert [u.name for u in m.schedule if u.grad] == ["L1_0", "L1_1", "L1_2", "H1"]  # its whole last cycle trains
    rows = check_parity(fx)
    assert all(r.ok for r in rows), [r for r in rows if not r.ok]
    states = {r.tensor for r in rows if r.tensor.endswith(".z_L")}
    assert states >= {f"ref.act{a}.sub{k}.z_L" for a in (1, 2) for k in range(1, 9)}
    assert all(r.max_abs_diff == 0 for r in rows if r.mode == "teacher-forced")


def test_trm_single_z_training_checkpoint_imports(tmp_path):
    """A single-z run's pretrain.py layout (``_orig_mod.model.inner.*`` beside all_config.yaml) imports
    by its arch name, with L_init and no H_init, and the imported model reproduces the fixture."""
    import yaml
    from safetensors.torch import load_file

    manifest = json.loads((TRM / "trm_singlez_sudoku6.json").read_text())
    weights = {k: v for k, v in load_file(TRM / "trm_singlez_sudoku6.safetensors").items() if not k.startswith("ref.")}
    run = tmp_path / "Sudoku-extreme-1k-aug-1000-ACT-torch" / "singlez"
    run.mkdir(parents=True)
    torch.save({"_orig_mod." + k: v for k, v in weights.items()}, run / "step_0")
    config = yaml.safe_load((TRM / "trm" / "all_config.yaml").read_text())
    arch = {k: v for k, v in manifest["config_dict_passed_to_model"].items() if k not in ("batch_size", "seq_len", "vocab_size", "num_puzzle_identifiers")}
    config["arch"] = {**arch, "name": manifest["reference"]["arch_name"], "loss": config["arch"]["loss"]}
    (run / "all_config.yaml").write_text(yaml.safe_dump(config))
    model = import_reference(run / "step_0", seq_len=36)
    assert model.config.family == "trm_singlez" and "H_init" not in model.state_dict()
    res = invoke("import-reference", run / "step_0", "--seq-len", "36", "-o", tmp_path / "sz.safetensors")
    assert res.exit_code == 0, res.output
    res = invoke("verify-reference", TRM / "trm_singlez_sudoku6.json", "--checkpoint", tmp_path / "sz.safetensors")
    assert res.exit_code == 0 and res.output.strip().endswith("PASS")


def test_single_z_hooks_name_one_state(tmp_path):
    """Its hooks are exactly the catalogue's; zH's hooks and an H-update's injection are refused in one
    line naming what exists; state_site and decode read its one state."""
    from airinterp.model import hook_names
    from tests.helpers import make_model

    model = make_model(family="trm_singlez", H_cycles=2, L_cycles=2, puzzle_emb_len=3)
    tokens = torch.randint(1, 5, (2, model.config.seq_len))
    _, cache = model.run_with_cache(tokens, n_act=2)
    assert set(cache.keys()) == set(hook_names(model.config, 2))
    for bad, needle in (("act.0.hook_zH", "one state, zL"), ("hook_zH_init", "one state, zL"), ("act.0.H0.hook_injection", "no second operand")):
        with pytest.raises(ValueError, match=needle):
            model.run_with_hooks(tokens, n_act=1, fwd_hooks=[(bad, lambda x, hook: x)])
    assert model.state_site("zL", before="act.1.H0") == "act.1.L0_1.hook_out"
    assert model.state_site("zL", before="act.1.L0_0") == "act.0.hook_zL"
    with pytest.raises(ValueError, match="one state"):
        model.state_site("zH", before="act.1.L0_0")
    assert torch.equal(model.decode(cache["act.1.hook_zL"]), cache["act.1.hook_logits"].argmax(-1))
    assert torch.equal(cache["act.0.H0.hook_in"], cache["act.0.L0_1.hook_out"])  # f(z): no injection
    torch.testing.assert_close(cache["act.0.L0_0.hook_in"], cache["hook_zL_init"] + cache["hook_input"], rtol=0, atol=0)


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


def _position_subset_dump(tmp_path, case: str, positions: list[int], index: list[int] | None = None, pattern: bool = True):
    """A copy of a fixture whose states hold only ``positions`` (the README's ``state_capture`` rule:
    row j of such a tensor is position ``ref.state_position_index[j]``); ``index`` records other
    positions than the rows hold (a wrong dump)."""
    import hashlib

    from safetensors.torch import load_file, save_file

    m = json.loads((TRM / f"{case}.json").read_text())
    t = load_file(TRM / m["safetensors_file"])
    states = [k for k in t if k.startswith("ref.act") and k.endswith(("z_L", "z_H"))]
    for k in states:
        t[k] = t[k][:, positions].contiguous()
    t["ref.state_position_index"] = torch.tensor(index or positions)
    st = tmp_path / f"{case}_subset.safetensors"
    save_file(t, str(st))
    m |= {"safetensors_file": st.name, "safetensors_sha256": hashlib.sha256(st.read_bytes()).hexdigest(),
          "state_capture": {"position_subset": ["ref.act*.sub*.z_*"] if pattern else states},
          "tensors": [{"name": k, "shape": list(v.shape)} for k, v in t.items()]}  # fmt: skip
    path = tmp_path / f"{case}_subset.json"
    path.write_text(json.dumps(m))
    return path


@pytest.mark.parametrize(("case", "positions", "pattern"), [("trm_sudoku_att", [0, 1, 16, 40, 96], True), ("hrm_sudoku", [0, 3, 81], False)])
def test_dumps_holding_a_subset_of_positions_verify(tmp_path, case, positions, pattern):
    """Larger held-out cases may store states at some positions only (``state_capture``): ours are
    compared at those positions; such states cannot be teacher-forced, so the free rollout judges them."""
    fx = load_fixture(_position_subset_dump(tmp_path, case, positions, pattern=pattern))
    assert len(fx.subset) == 2 * fx.config.n_updates
    rows = check_parity(fx)
    assert all(r.ok for r in rows), [r for r in rows if not r.ok]
    assert {r.tensor for r in rows if r.mode == "free"} >= set(fx.subset)
    assert all(r.tensor in ("ref.input_embeddings", "ref.init.z_L", "ref.init.z_H") for r in rows if r.mode == "teacher-forced")


def test_a_position_subset_with_the_wrong_index_fails(tmp_path):
    fx = load_fixture(_position_subset_dump(tmp_path, "trm_sudoku_att", [0, 1, 16, 40, 96], index=[0, 2, 16, 40, 96]))
    bad = {r.tensor for r in check_parity(fx) if not r.ok}
    assert "ref.act1.sub1.z_L" in bad and "ref.act2.logits" not in bad


def test_a_position_subset_without_its_index_is_refused_in_one_line(tmp_path):
    from safetensors.torch import load_file, save_file

    path = _position_subset_dump(tmp_path, "trm_sudoku_att", [0, 5])
    m = json.loads(path.read_text())
    t = load_file(tmp_path / m["safetensors_file"])
    del t["ref.state_position_index"]
    save_file(t, str(tmp_path / m["safetensors_file"]))
    m.pop("safetensors_sha256")
    m["tensors"] = [e for e in m["tensors"] if e["name"] != "ref.state_position_index"]
    path.write_text(json.dumps(m))
    with pytest.raises(ValueError, match="state_position_index"):
        load_fixture(path)
