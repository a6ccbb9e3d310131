"""Bad input gets a clear error naming the problem."""

import pickle
import shutil

import pytest
import torch
from safetensors.torch import save_file

import airinterp
from airinterp.model.checkpoint import CheckpointError, import_reference, load_into, save
from tests.conftest import FIXTURES, make_model, make_tokens

CKPT = FIXTURES / "checkpoint_format" / "Sudoku" / "air_Lx_H_fixture_sudoku_default" / "step_0"


def test_wrong_sequence_length():
    with pytest.raises(ValueError, match="sequence length 15 does not match the model's seq_len 16"):
        make_model()(torch.ones(2, 15, dtype=torch.long))


def test_tokens_outside_vocabulary():
    tokens = make_tokens()
    tokens[0, 3] = 11
    with pytest.raises(ValueError, match=r"token ids \[11\] are outside the vocabulary \[0, 11\)"):
        make_model()(tokens)
    tokens[0, 3] = -1
    with pytest.raises(ValueError, match="outside the vocabulary"):
        make_model()(tokens)


def test_float_or_misshapen_tokens():
    with pytest.raises(ValueError, match="integer ids"):
        make_model()(torch.ones(2, 16))
    with pytest.raises(ValueError, match=r"shape \[batch, 16\]"):
        make_model()(torch.ones(16, dtype=torch.long))


def test_batch_and_puzzle_id_mismatch():
    model = make_model()
    with pytest.raises(ValueError, match="puzzle_identifiers has 3 entries but the batch has 2 puzzles"):
        model(make_tokens(), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"puzzle identifiers must lie in \[0, 1\)"):
        model(make_tokens(), torch.tensor([0, 1]))


def test_bad_puzzle_text():
    model = make_model()
    with pytest.raises(ValueError, match="puzzle 1: Sudoku puzzle has 15 cells, expected 16"):
        model.to_tokens(["1234" * 4, "123" * 5])
    with pytest.raises(ValueError, match="character 'x' at cell 2"):
        model.to_tokens("12x4" + "." * 12)
    assert model.to_tokens("12.4" + "." * 12).tolist()[0][:4] == [2, 3, 1, 5]


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
        import_reference(run / "step_1")
    (run / "step_2").write_bytes(pickle.dumps({"a": _Evil()}))
    with pytest.raises(CheckpointError, match="refused to load"):
        import_reference(run / "step_2")


def test_reference_checkpoint_problems(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    state = torch.load(CKPT, weights_only=True)
    torch.save(state, run / "step_0")
    with pytest.raises(CheckpointError, match="no config: .*all_config.yaml does not exist"):
        import_reference(run / "step_0")
    shutil.copy(CKPT.parent / "all_config.yaml", run / "all_config.yaml")
    bad = dict(state)
    bad["_orig_mod.model.inner.mystery.weight"] = torch.zeros(3)
    torch.save(bad, run / "step_1")
    with pytest.raises(CheckpointError, match="keys airinterp does not know: .*mystery"):
        import_reference(run / "step_1")
    wrong = dict(state)
    wrong["_orig_mod.model.inner.f_level.layers.0.mlp.down_proj.weight"] = torch.zeros(64, 100)
    torch.save(wrong, run / "step_2")
    with pytest.raises(CheckpointError, match=r"blocks.0.mlp.down.weight: checkpoint \(64, 100\) vs config \(64, 256\)"):
        import_reference(run / "step_2")
    data = (run / "step_0").read_bytes()
    (run / "step_3").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        import_reference(run / "step_3")
    (run / "all_config.yaml").write_text((CKPT.parent / "all_config.yaml").read_text().replace("air.air_1net_Lx_H@AIR", "air.air_1net_Lx_Q@AIR"))
    with pytest.raises(CheckpointError, match="unknown AIR variant"):
        import_reference(run / "step_0")
