"""Bad checkpoints (ours and the reference's) get a one-line error naming the file and the problem."""

import pickle
import shutil

import pytest
import torch
from safetensors.torch import save_file

import airinterp
from airinterp.model.checkpoint import CheckpointError, import_reference, load_into, save
from tests.conftest import FIXTURES, make_model

CKPT = FIXTURES / "checkpoint_format" / "Sudoku" / "air_Lx_H_fixture_sudoku_default" / "step_0"


def test_checkpoint_shape_mismatch(tmp_path):
    small = make_model(hidden_size=32)
    big = make_model(hidden_size=64, puzzle_emb_ndim=64)
    with pytest.raises(CheckpointError, match=r"shapes disagree with the config: .*embed_tokens.weight: checkpoint \(11, 32\) vs config \(11, 64\)"):
        load_into(big, small.state_dict())


def test_checkpoint_config_mismatch(tmp_path):
    model = make_model(variant="Lx_H")
    with pytest.raises(CheckpointError, match="missing .*level_token_H"):
        load_into(make_model(variant="L2x_H2x_input_token_addition"), model.state_dict())
    with pytest.raises(CheckpointError, match="unexpected .*g_input.weight"):
        load_into(model, make_model(variant="gx_linear").state_dict())


def test_truncated_and_foreign_files(tmp_path):
    path = save(make_model(), tmp_path / "m.safetensors")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        airinterp.load(tmp_path / "cut.safetensors")
    (tmp_path / "text.safetensors").write_text("hello, this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        airinterp.load(tmp_path / "text.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not an airinterp checkpoint"):
        airinterp.load(tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="no such file"):
        airinterp.load(tmp_path / "missing.safetensors")


def test_non_finite_weights_are_refused(tmp_path):
    model = make_model()
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")
    save(model, tmp_path / "nan.safetensors")
    with pytest.raises(CheckpointError, match="non-finite values in .*lm_head.weight"):
        airinterp.load(tmp_path / "nan.safetensors")


class _Evil:
    def __reduce__(self):
        return (print, ("this code ran while loading",))


def test_pickle_with_code_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(CKPT.parent / "all_config.yaml", run / "all_config.yaml")
    state = torch.load(CKPT, weights_only=True)
    state["evil"] = _Evil()
    torch.save(state, run / "step_1")
    with pytest.raises(CheckpointError, match="refused to load"):
        import_reference(run / "step_1", seq_len=81)
    (run / "step_2").write_bytes(pickle.dumps({"a": _Evil()}))
    with pytest.raises(CheckpointError, match="refused to load"):
        import_reference(run / "step_2", seq_len=81)


def test_reference_checkpoint_problems(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    state = torch.load(CKPT, weights_only=True)
    torch.save(state, run / "step_0")
    with pytest.raises(CheckpointError, match="no config: .*all_config.yaml does not exist"):
        import_reference(run / "step_0", seq_len=81)
    shutil.copy(CKPT.parent / "all_config.yaml", run / "all_config.yaml")
    # the config names a dataset that is not here: seq_len is not guessed from the vocabulary
    with pytest.raises(CheckpointError, match=r"the data_path in all_config.yaml .* does not exist here; pass --seq-len"):
        import_reference(run / "step_0")
    assert import_reference(run / "step_0", seq_len=81).config.seq_len == 81
    bad = dict(state)
    bad["_orig_mod.model.inner.mystery.weight"] = torch.zeros(3)
    torch.save(bad, run / "step_1")
    with pytest.raises(CheckpointError, match="keys airinterp does not know: .*mystery"):
        import_reference(run / "step_1", seq_len=81)
    wrong = dict(state)
    wrong["_orig_mod.model.inner.f_level.layers.0.mlp.down_proj.weight"] = torch.zeros(64, 100)
    torch.save(wrong, run / "step_2")
    with pytest.raises(CheckpointError, match=r"blocks.0.mlp.down.weight: checkpoint \(64, 100\) vs config \(64, 256\)"):
        import_reference(run / "step_2", seq_len=81)
    data = (run / "step_0").read_bytes()
    (run / "step_3").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        import_reference(run / "step_3", seq_len=81)
    (run / "all_config.yaml").write_text((CKPT.parent / "all_config.yaml").read_text().replace("air.air_1net_Lx_H@AIR", "air.air_1net_Lx_Q@AIR"))
    with pytest.raises(CheckpointError, match="unknown AIR variant"):
        import_reference(run / "step_0", seq_len=81)
