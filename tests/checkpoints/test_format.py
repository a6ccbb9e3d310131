"""Sharded checkpoints: Hugging-Face-style shards + model.safetensors.index.json, read by load."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import airinterp
from airinterp.checkpoints import INDEX, CheckpointError, save, save_sharded
from tests.helpers import invoke, make_model, make_tokens


def _equal(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_through_the_directory_and_the_index(tmp_path):
    model = make_model()
    index = save_sharded(model, tmp_path / "ck", max_shard_bytes=20_000)
    shards = sorted((tmp_path / "ck").glob("model-*-of-*.safetensors"))
    assert index.name == INDEX and len(shards) > 2
    assert all(p.name.endswith(f"-of-{len(shards):05d}.safetensors") for p in shards)
    meta = json.loads(index.read_text())
    assert set(meta["weight_map"]) == set(model.state_dict()) and meta["metadata"]["format"] == "airinterp.air"
    for path in (tmp_path / "ck", index):
        loaded = airinterp.load(path)
        _equal(model, loaded)
        assert torch.equal(model(make_tokens()), loaded(make_tokens()))
    with pytest.raises(CheckpointError, match="one shard of a sharded checkpoint; load its directory"):
        airinterp.load(shards[0])
    # resharding into the same directory with fewer shards leaves no stale shard
    save(model, tmp_path / "ck", max_shard_bytes=10**9)
    assert len(list((tmp_path / "ck").glob("model-*.safetensors"))) == 1
    _equal(model, airinterp.load(tmp_path / "ck"))


def test_bf16_shards_and_the_cli(tmp_path):
    model = make_model()
    save(model, tmp_path / "one.safetensors")
    res = invoke("shard", tmp_path / "one.safetensors", "-o", tmp_path / "sh", "--max-shard-mb", "0.02", "--dtype", "bfloat16")
    assert res.exit_code == 0, res.output
    assert "shards" in res.output
    loaded = airinterp.load(tmp_path / "sh")
    assert all(v.dtype == torch.bfloat16 for v in load_file(next((tmp_path / "sh").glob("model-*"))).values() if v.is_floating_point())
    for k, v in model.state_dict().items():
        assert torch.allclose(loaded.state_dict()[k], v.to(torch.bfloat16).to(v.dtype))
    res = invoke("info", tmp_path / "sh")
    assert res.exit_code == 0 and "hidden_size: 32" in res.output


def test_missing_wrong_and_mixed_up_shards_are_clear_errors(tmp_path):
    model = make_model()
    index = save_sharded(model, tmp_path / "ck", max_shard_bytes=20_000)
    shards = sorted((tmp_path / "ck").glob("model-*-of-*.safetensors"))
    # a wrong-shaped tensor in a shard
    part = load_file(shards[0])
    key = next(k for k, v in part.items() if v.dim() == 2)
    part[key] = part[key][:, :-1].contiguous()
    save_file(part, shards[-1].with_name("wrong.safetensors"))
    weight_map = json.loads(index.read_text())
    for k in part:
        weight_map["weight_map"][k] = "wrong.safetensors"
    index.write_text(json.dumps(weight_map))
    with pytest.raises(CheckpointError, match=rf"integrity check failed.*shapes disagree.*{key}"):
        airinterp.load(tmp_path / "ck")
    # a missing shard
    (tmp_path / "ck" / "wrong.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"shard wrong\.safetensors is missing"):
        airinterp.load(index)
    # a shard that holds other tensors than the index says
    save_sharded(model, tmp_path / "ck2", max_shard_bytes=20_000)
    idx = json.loads((tmp_path / "ck2" / INDEX).read_text())
    first, second = sorted(set(idx["weight_map"].values()))[:2]
    k = next(k for k, v in idx["weight_map"].items() if v == first)
    idx["weight_map"][k] = second
    (tmp_path / "ck2" / INDEX).write_text(json.dumps(idx))
    with pytest.raises(CheckpointError, match="holds other tensors than the index says"):
        airinterp.load(tmp_path / "ck2")
    (tmp_path / "ck2" / INDEX).write_text("{")
    with pytest.raises(CheckpointError, match="not JSON"):
        airinterp.load(tmp_path / "ck2")


def test_resharding_in_place_survives_a_crash_and_keeps_the_card(tmp_path, monkeypatch):
    """shard D -o D with the same shard count rewrote same-named shards before the new index was in
    place: a kill in between lost the weights (issue 22.2). Now the directory is replaced whole."""
    import airinterp.checkpoints.format as fmt

    model = make_model()
    save_sharded(model, tmp_path / "ck", max_shard_bytes=20_000)
    (tmp_path / "ck" / "card.json").write_text('{"steps": 3}')
    other = make_model(seed=1)
    real, written = fmt._write_safetensors, []

    def crash_after_one(tensors, path, meta):
        if written:
            raise KeyboardInterrupt  # killed while writing the second shard
        written.append(path)
        real(tensors, path, meta)

    monkeypatch.setattr(fmt, "_write_safetensors", crash_after_one)
    with pytest.raises(KeyboardInterrupt):
        save_sharded(other, tmp_path / "ck", max_shard_bytes=20_000)
    monkeypatch.setattr(fmt, "_write_safetensors", real)
    _equal(model, airinterp.load(tmp_path / "ck"))  # the old checkpoint, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no staging left behind
    save_sharded(other, tmp_path / "ck", max_shard_bytes=20_000)
    _equal(other, airinterp.load(tmp_path / "ck"))
    assert (tmp_path / "ck" / "card.json").read_text() == '{"steps": 3}'
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("x")
    with pytest.raises(CheckpointError, match="holds 'thesis.tex', not a checkpoint's file"):
        save_sharded(other, tmp_path / "notes")
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "x"
