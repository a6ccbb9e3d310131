"""Bad checkpoints (ours and the reference's) get a one-line error naming the file and the problem."""

import pickle
import shutil

import pytest
import torch
from safetensors.torch import save_file

import airinterp
from airinterp.checkpoints import CheckpointError, import_reference, load_into, save
from tests.helpers import FIXTURES, make_model

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
    import re  # a puzzle_emb_ndim the weights contradict, or a string that is no interpolation (issue 22.9)

    text = (CKPT.parent / "all_config.yaml").read_text()
    for value, needle in (("banana", "puzzle_emb_ndim 'banana': expected a number"), ("32", "puzzle_emb_ndim 32, but the weights' puzzle_emb is 64 wide")):
        (run / "all_config.yaml").write_text(re.sub(r"puzzle_emb_ndim: .*", f"puzzle_emb_ndim: {value}", text))
        with pytest.raises(CheckpointError, match=needle):
            import_reference(run / "step_0", seq_len=81)


# ---- integrity: the config and the weights travel together --------------------------------------

import json  # noqa: E402
import warnings  # noqa: E402

from airinterp.checkpoints import digest, read_safetensors  # noqa: E402
from tests.helpers import assert_clean_error, invoke, snapshot  # noqa: E402


def _rewrite(path, config_update=None, tensors_update=None, keep_digest=True, meta_update=None):
    """Rewrite a checkpoint's metadata/tensors; ``keep_digest``: leave the old digest (tampering)."""
    tensors, meta = read_safetensors(path)
    if config_update:
        meta["config"] = json.dumps({**json.loads(meta["config"]), **config_update})
    tensors.update(tensors_update or {})
    if not keep_digest:
        meta["sha256"] = digest(meta["config"], tensors)
    meta.update(meta_update or {})
    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize(
    "update",
    [{"num_heads": 2}, {"num_heads": 8}, {"variant": "Lx_Hx"}, {"seq_len": 15}, {"rope_theta": 500.0}, {"halt_max_steps": 9}],
    ids=lambda u: next(iter(u)) + "=" + str(next(iter(u.values()))),
)
def test_config_edited_apart_from_its_weights_is_refused(tmp_path, update):
    path = save(make_model(num_heads=4), tmp_path / "m.safetensors")
    _rewrite(path, config_update=update)
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError, match="integrity check failed"):
        airinterp.load(path)
    for cmd in (["info", path], ["hooks", path], ["eval", path, "--data", tmp_path]):
        assert_clean_error(invoke(*cmd), str(path), "integrity check failed")
    assert snapshot(tmp_path) == before


def test_flipped_byte_in_tensor_data_is_refused(tmp_path):
    path = save(make_model(), tmp_path / "m.safetensors")
    data = bytearray(path.read_bytes())
    data[len(data) - 100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="integrity check failed"):
        airinterp.load(path)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.uint8])
def test_non_float_weights_are_refused(tmp_path, dtype):
    model = make_model()
    path = save(model, tmp_path / "m.safetensors")
    w = model.state_dict()["lm_head.weight"]
    _rewrite(path, tensors_update={"lm_head.weight": (w > 0).to(dtype)}, keep_digest=False)  # a consistent digest
    with pytest.raises(CheckpointError, match=rf"weights must be floating point; these are not: \['lm_head.weight \(torch.{str(dtype)[6:]}\)'\]"):
        airinterp.load(path)


def test_digest_metadata_problems(tmp_path):
    path = save(make_model(), tmp_path / "m.safetensors")
    tensors, meta = read_safetensors(path)
    del meta["sha256"]
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="no 'sha256' integrity digest"):
        airinterp.load(path)
    meta["format_version"] = "7"
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="format_version '7', this airinterp reads 1, 2"):
        airinterp.load(path)
    meta["format_version"] = "1"  # the first format had no digest: refused unless taken on trust, then with a warning
    meta["config"] = json.dumps({**json.loads(meta["config"]), "num_heads": 4})  # edited: nothing can tell
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="format_version 1 has no integrity digest, so its config cannot be checked"):
        airinterp.load(path)
    assert_clean_error(invoke("info", path), "format_version 1", "allow_unverified=True")
    with pytest.warns(UserWarning, match="format_version 1 has no integrity digest: its config is taken on trust"):
        airinterp.load(path, allow_unverified=True)
    meta["format_version"] = "2"
    meta["config"] = "{not json"
    meta["sha256"] = digest(meta["config"], tensors)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="invalid config in metadata"):
        airinterp.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        good = save(make_model(), tmp_path / "ok.safetensors")
        airinterp.load(good)


def test_checkpoint_paths(tmp_path):
    assert_clean_error(invoke("info", tmp_path), str(tmp_path), "is a directory; expected a .safetensors file")
    save(make_model(), tmp_path / "model.safetensors")
    assert airinterp.load(tmp_path).config.hidden_size == 32  # a directory holding model.safetensors
    assert_clean_error(invoke("info", tmp_path / "nope.safetensors"), "nope.safetensors: no such file")
    with pytest.raises(CheckpointError, match="is a directory; give the .safetensors file"):
        save(make_model(), tmp_path)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = save(make_model(), tmp_path / "m.safetensors")
    before = snapshot(tmp_path)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save(make_model(seed=3), path)
    assert snapshot(tmp_path) == before


def test_load_checks_device_and_dtype(tmp_path):
    path = save(make_model(), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="device 'gpu': unknown device"):
        airinterp.load(path, device="gpu")
    with pytest.raises(CheckpointError, match="dtype: forward_dtype"):
        airinterp.load(path, dtype="int8")


# ---- reference dumps (verify-reference) ---------------------------------------------------------

import hashlib  # noqa: E402

from tests.helpers import VARIANT_DUMPS  # noqa: E402


def _dump(tmp_path, drop=(), keep_sha=False, manifest_update=None):
    manifest = json.loads((VARIANT_DUMPS / "Lx_H.json").read_text())
    tensors, meta = read_safetensors(VARIANT_DUMPS / manifest["safetensors_file"])
    for pattern in drop:
        tensors = {k: v for k, v in tensors.items() if not k.startswith(pattern)}
    st = tmp_path / manifest["safetensors_file"]
    save_file(tensors, str(st), metadata=meta)
    if not keep_sha:
        manifest["safetensors_sha256"] = hashlib.sha256(st.read_bytes()).hexdigest()
    manifest.update(manifest_update or {})
    (tmp_path / "dump.json").write_text(json.dumps(manifest))
    return tmp_path / "dump.json"


def test_verify_reference_refuses_incomplete_or_altered_dumps(tmp_path):
    assert invoke("verify-reference", _dump(tmp_path)).exit_code == 0
    # a whole ACT step's tensors missing (the manifest lists them), digest updated to match
    res = invoke("verify-reference", _dump(tmp_path, drop=("ref.act2.",)))
    assert_clean_error(res, "the dump lacks", "tensor(s) its manifest names", "ref.act2.")
    # the file changed after the manifest was written
    res = invoke("verify-reference", _dump(tmp_path, drop=("ref.act2.",), keep_sha=True))
    assert_clean_error(res, "differs from the manifest's safetensors_sha256")
    no_list = {"tensors": [], "act_steps_recorded": [], "substeps": []}
    res = invoke("verify-reference", _dump(tmp_path, drop=("ref.inputs",), manifest_update=no_list))
    assert_clean_error(res, "has no 'ref.inputs'")
    res = invoke("verify-reference", _dump(tmp_path, drop=("ref.act", "ref.init"), manifest_update=no_list))
    assert_clean_error(res, "holds no reference outputs")
    (tmp_path / "x.json").write_text("[1, 2]")
    assert_clean_error(invoke("verify-reference", tmp_path / "x.json"), "not a reference dump manifest")


@pytest.mark.parametrize("keep_digest", [True, False], ids=["digest-wrong", "digest-consistent"])
@pytest.mark.parametrize(
    "update, needle",
    [({"halt_max_steps": 100_000}, "halt_max_steps"), ({"halt_max_steps": 1000}, None),
     ({"H_cycles": 64, "L_cycles": 63}, "block calls per ACT step: at most 1024"), ({"hidden_size": 10**9}, "hidden_size")],
    ids=["steps-1e5", "steps-1e3", "updates", "width"],
)  # fmt: skip
def test_untrusted_config_is_bounded_before_anything_is_built(tmp_path, update, needle, keep_digest):
    """A config asking for unbounded work is refused (or, within the bounds, loads) in about a
    second, digest right or wrong: nothing is built from it beyond a fixed hook budget (issue 22.1)."""
    import time

    path = save(make_model(), tmp_path / "m.safetensors")
    _rewrite(path, config_update=update, keep_digest=keep_digest)
    if not keep_digest and needle is None:  # a consistent, in-bounds 1000-step config loads (test_hook_budget_...)
        return
    t = time.perf_counter()
    with pytest.raises(CheckpointError, match="integrity check failed" if keep_digest else needle):
        airinterp.load(path)  # tampered: wording the error builds one ACT step's hooks, on the meta device
    assert time.perf_counter() - t < 5  # ~0.1 s idle; it was minutes (1,000 steps: 72 s) and unbounded memory


def test_hook_budget_bounds_what_construction_builds(monkeypatch):
    """Construction builds the HookPoints of as many ACT steps as fit HOOK_BUDGET; later steps'
    hooks are made when addressed, so a 1000-step config costs what a short one does."""
    import airinterp.model.air as air_module
    from tests.helpers import make_config, make_tokens

    per_step = sum(1 for _ in air_module.HookedAIR(make_config(halt_max_steps=1), seed=None).step_hook_names(0))
    monkeypatch.setattr(air_module, "HOOK_BUDGET", 3 * per_step)
    model = air_module.HookedAIR(make_config(halt_max_steps=1000), seed=0)
    assert sorted(model._full_steps) == [0, 1, 2]
    seen = []
    model.run_with_hooks(make_tokens(), n_act=6, fwd_hooks=[("act.5.H0.hook_out", lambda x, hook: seen.append(hook.name))])
    assert seen == ["act.5.H0.hook_out"] and sorted(model._full_steps) == [0, 1, 2]
