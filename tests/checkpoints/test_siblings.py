"""AIR's siblings through the same hooks: TRM (one stack, Lx_H's rule, H 3 x L 6, a 16-position
prefix) against tensors of its unmodified reference code, and its training-checkpoint layout."""

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
    res = invoke("verify-reference", TRM / "trm_sudoku_att.json", "--checkpoint", tmp_path / "trm.safetensors")
    assert res.exit_code == 0 and res.output.strip().endswith("PASS")


@pytest.mark.parametrize(
    ("name", "extra", "needle"),
    [
        ("hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1", {}, "HRM (a second stack for the H-updates) is not supported yet"),
        ("recursive_reasoning.trm_singlez@X", {}, "single-z"),
        ("recursive_reasoning.trm@X", {"mlp_t": True}, "mlp_t=True"),
    ],
)
def test_siblings_not_built_yet_are_refused_in_one_line(name, extra, needle):
    arch = json.loads((TRM / "trm_sudoku_att.json").read_text())["config_dict_passed_to_model"] | {"name": name, **extra}
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        AIRConfig.from_reference_dict(arch)
