"""Our checkpoint format: safetensors with the config and an integrity digest in the metadata.

**Our format.** One ``.safetensors`` file. Tensors are the model's ``state_dict()`` under our key
names (below); they are floating point, stored in float32 or bfloat16, and loaded into float32
parameters. The header metadata holds:

- ``format``: ``"airinterp.air"``; ``format_version``: ``"2"``;
- ``config``: the :class:`AIRConfig` as JSON (``model_dump_json``);
- ``sha256``: the integrity digest of the config and every tensor (:func:`digest`), checked on
  load, so a config edited apart from its weights (a head count, the variant, ``seq_len``,
  ``rope_theta``: nothing a tensor shape shows) or a flipped byte in the data is refused;
- ``airinterp_version``; and optional free-form ``source`` (e.g. the imported reference file).

Version 1 files (no digest) still load, with a warning that they cannot be checked.

A directory, a file and a card are one :class:`airinterp.checkpoints.paths.Checkpoint`; reference
import is :mod:`airinterp.checkpoints.reference`.
"""

import hashlib
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from airinterp.errors import InputError
from airinterp.io import atomic_file, atomic_write_text
from airinterp.model.air import HookedAIR
from airinterp.model.config import AIRConfig

FORMAT = "airinterp.air"
FORMAT_VERSION = "2"
_READABLE_VERSIONS = ("1", "2")


class CheckpointError(InputError):
    """A checkpoint that cannot be read or does not match its config."""


def load_into(model: HookedAIR, state: Mapping[str, Tensor], source: str = "checkpoint") -> HookedAIR:
    """Copy ``state`` (our key names) into ``model``, checking names and shapes against its config."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{source} does not match the config (variant {model.config.variant}): "
            + (f"missing {missing[:8]} " if missing else "")
            + (f"unexpected {extra[:8]}" if extra else "")
        )
    not_float = [f"{k} ({state[k].dtype})" for k in expected if not state[k].is_floating_point()]
    if not_float:
        raise CheckpointError(f"{source}: weights must be floating point; these are not: {not_float[:6]}")
    bad = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs config {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(state[k].shape) != tuple(v.shape)
    ]
    if bad:
        raise CheckpointError(f"{source}: shapes disagree with the config: " + "; ".join(bad[:6]))
    nonfinite = [k for k, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if nonfinite:
        raise CheckpointError(f"{source}: non-finite values in {nonfinite[:6]}")
    with torch.no_grad():
        for k, v in expected.items():
            v.copy_(state[k].to(v.dtype))
    return model


def digest(config_json: str, tensors: Mapping[str, Tensor]) -> str:
    """sha256 over the config JSON and every tensor's name, dtype, shape and bytes (sorted by name)."""
    h = hashlib.sha256(f"{FORMAT}/{FORMAT_VERSION}\0".encode())
    h.update(config_json.encode())
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"\0{key}\0{str(t.dtype).removeprefix('torch.')}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


INDEX = "model.safetensors.index.json"
#: the files a checkpoint directory holds, in the order load looks for them
CHECKPOINT_FILES = ("model.safetensors", INDEX)


def _tensors_and_meta(model: HookedAIR, dtype: torch.dtype | None, source: str | None) -> tuple[dict[str, Tensor], dict[str, str]]:
    from airinterp._version import __version__

    tensors = {
        k: (v.detach().to("cpu", dtype) if dtype is not None and v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
    config_json = model.config.model_dump_json()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config_json,
        "sha256": digest(config_json, tensors),
        "airinterp_version": __version__,
    }
    if source is not None:
        meta["source"] = source
    return tensors, meta


def _write_safetensors(tensors: Mapping[str, Tensor], path: Path, meta: dict[str, str]) -> None:
    """safetensors file written whole (:func:`airinterp.io.atomic_file`)."""
    from safetensors.torch import save_file

    with atomic_file(path) as tmp:
        save_file(dict(tensors), str(tmp), metadata=meta)


def save(model: HookedAIR, path: "str | Path", *, dtype: torch.dtype | None = None, source: str | None = None,
         max_shard_bytes: int | None = None) -> Path:  # fmt: skip
    """Write ``model`` in our format; ``dtype`` (e.g. torch.bfloat16) shrinks the file.

    One ``.safetensors`` file, written beside ``path`` and renamed into place: a kill never leaves
    half a file. With ``max_shard_bytes``, ``path`` is a directory and the model is sharded as
    Hugging Face's sharded safetensors are: ``model-00001-of-0000N.safetensors`` ... plus
    ``model.safetensors.index.json`` (``weight_map``: tensor -> shard; ``metadata``: our format,
    config and the digest over all tensors), the index written last (see :func:`save_sharded`)."""
    path = Path(path)
    if max_shard_bytes is not None:
        return save_sharded(model, path, max_shard_bytes=max_shard_bytes, dtype=dtype, source=source)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory; give the .safetensors file to write (or max_shard_bytes to shard)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors, meta = _tensors_and_meta(model, dtype, source)
    _write_safetensors(tensors, path, meta)
    return path


#: files a sharded checkpoint's directory may hold besides its shards (kept when it is rewritten)
_KEPT_FILES = ("model.safetensors", INDEX, "card.json", "metrics.jsonl", "README.md")


def save_sharded(model: HookedAIR, directory: "str | Path", *, max_shard_bytes: int = 15 * 2**20,
                 dtype: torch.dtype | None = None, source: str | None = None) -> Path:  # fmt: skip
    """Shards of at most ``max_shard_bytes`` of tensor data each (a tensor larger than that gets
    a shard of its own) and the index, in ``directory``; returns the index's path.

    The directory is written whole: shards and index go into a staging sibling (with the other
    files ``directory`` holds, e.g. its card), which then replaces ``directory`` by rename; a kill
    at any point leaves the old checkpoint readable (in place, or set aside as a hidden sibling
    ``.NAME.old-PID`` between the two renames), never shards that match neither index."""
    import shutil

    from airinterp.io import staging_dir

    directory = Path(os.path.abspath(directory))  # "." or "..": the staging sibling needs a real name
    here = Path(os.path.abspath(os.getcwd()))
    if directory == here or directory in here.parents:  # it is replaced whole: not under the caller's feet
        raise CheckpointError(f"{directory}: is the working directory (or holds it); the shards' directory is replaced "
                              "whole, so shard into another directory")  # fmt: skip
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory}: is a file; a sharded checkpoint is a directory")
    if max_shard_bytes < 1:
        raise CheckpointError(f"max_shard_bytes must be >= 1, got {max_shard_bytes}")
    is_shard = lambda f: f.name.startswith("model-") and f.name.endswith(".safetensors")  # noqa: E731
    if directory.is_dir():  # the directory is replaced whole: only a checkpoint's own files may be in it
        foreign = sorted(f.name for f in directory.iterdir() if not (f.is_file() and (is_shard(f) or f.name in _KEPT_FILES)))
        if foreign:
            raise CheckpointError(f"{directory}: holds {foreign[0]!r}, not a checkpoint's file; shard into a new directory "
                                  f"or one holding only {', '.join(_KEPT_FILES)} and shards")  # fmt: skip
    tensors, meta = _tensors_and_meta(model, dtype, source)
    with staging_dir(directory) as tmp:
        if directory.is_dir():  # its card etc. stay (not the old shards and index)
            for f in directory.iterdir():
                if f.name != INDEX and not is_shard(f):
                    shutil.copy2(f, tmp / f.name)
        _write_shards(tensors, meta, tmp, max_shard_bytes)
    return directory / INDEX


def _write_shards(tensors: dict[str, Tensor], meta: dict[str, str], directory: Path, max_shard_bytes: int) -> None:
    import json

    groups: list[list[str]] = [[]]
    size = 0
    for key in sorted(tensors):
        n = tensors[key].numel() * tensors[key].element_size()
        if groups[-1] and size + n > max_shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(key)
        size += n
    names = [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    for name, keys in zip(names, groups, strict=True):
        _write_safetensors({k: tensors[k] for k in keys}, directory / name, {"format": FORMAT, "shard_of": INDEX})
    index = {
        "metadata": {**meta, "total_size": str(sum(t.numel() * t.element_size() for t in tensors.values()))},
        "weight_map": {k: name for name, keys in zip(names, groups, strict=True) for k in keys},
    }
    atomic_write_text(directory / INDEX, json.dumps(index, indent=2, sort_keys=True) + "\n")


def read_sharded(index_path: "str | Path") -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and metadata of a sharded checkpoint (its index), every shard checked: present,
    holding exactly the tensors the index assigns to it."""
    import json

    index_path = Path(index_path)
    try:
        index = json.loads(index_path.read_text())
    except OSError as err:
        raise CheckpointError(f"{index_path}: cannot read ({err.strerror})") from None
    except ValueError as err:
        raise CheckpointError(f"{index_path}: not JSON ({err})") from None
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict) or not isinstance(index.get("metadata"), dict):
        raise CheckpointError(f"{index_path}: not a sharded-checkpoint index (expected 'metadata' and 'weight_map' objects)")
    by_shard: dict[str, set[str]] = {}
    for key, shard in index["weight_map"].items():
        if not isinstance(shard, str) or "/" in shard or "\\" in shard:
            raise CheckpointError(f"{index_path}: weight_map[{key!r}] = {shard!r}; expected a shard file name beside the index")
        by_shard.setdefault(shard, set()).add(key)
    missing = [s for s in sorted(by_shard) if not (index_path.parent / s).is_file()]
    if missing:
        raise CheckpointError(f"{index_path}: shard {missing[0]} is missing ({len(missing)} of {len(by_shard)} shards not beside the index)")
    tensors: dict[str, Tensor] = {}
    for shard, keys in sorted(by_shard.items()):
        part, _ = read_safetensors(index_path.parent / shard)
        if set(part) != keys:
            lost, extra = sorted(keys - set(part)), sorted(set(part) - keys)
            raise CheckpointError(f"{index_path.parent / shard}: holds other tensors than the index says "
                                  f"(missing {lost[:3]}, unexpected {extra[:3]})")  # fmt: skip
        tensors.update(part)
    meta = {k: str(v) for k, v in index["metadata"].items()}
    return tensors, meta


def checkpoint_file(path: "str | Path") -> Path:
    """The file a checkpoint path names: a ``.safetensors`` file, a sharded index, or a directory
    holding ``model.safetensors`` or ``model.safetensors.index.json``."""
    path = Path(path)
    if path.is_dir():
        for name in CHECKPOINT_FILES:
            if (path / name).is_file():
                return path / name
    return path


def read_safetensors(path: "str | Path") -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, with a clear error for anything else."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory; expected a .safetensors file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8:
        raise CheckpointError(f"{path}: not a safetensors file (only {size} bytes)")
    header_len = int.from_bytes(head, "little")
    if header_len <= 0 or 8 + header_len > size:
        raise CheckpointError(f"{path}: not a safetensors file, or truncated (header says {header_len} bytes, file has {size})")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({err})") from None
    return tensors, meta


def _shape_hint(config_json: str, tensors: Mapping[str, Tensor]) -> str:
    """Which tensors have another shape than the config implies (a wrong shard), if any."""
    try:
        config = AIRConfig.model_validate_json(config_json)  # bounded (untrusted input): checked before anything is built
        with torch.device("meta"):  # shapes only (one ACT step's hooks; no memory for the weights the config claims)
            expected = HookedAIR(config.model_copy(update={"halt_max_steps": 1}), seed=None).state_dict()
    except Exception:  # noqa: BLE001  (an invalid config is reported later)
        return ""
    bad = [f"{k}: {tuple(t.shape)} vs config {tuple(expected[k].shape)}" for k, t in tensors.items()
           if k in expected and tuple(t.shape) != tuple(expected[k].shape)]  # fmt: skip
    return ("; shapes disagree with the config: " + "; ".join(bad[:4])) if bad else ""


def load(path: "str | Path", *, device: "str | torch.device | None" = None, dtype: str | None = None,
         allow_unverified: bool = False) -> HookedAIR:  # fmt: skip
    """Load our checkpoint format; ``dtype`` overrides the config's forward dtype;
    ``allow_unverified``: read a format-version-1 file (no digest: its config cannot be checked
    against its weights), with a warning, to re-save it.

    ``path`` is the ``.safetensors`` file, a sharded checkpoint's ``model.safetensors.index.json``,
    or a directory holding either (a run directory, a shipped checkpoint). The digest is checked
    before the model is built; for shards, over all of them together."""
    from airinterp.checkpoints.paths import locate  # (paths imports this module)
    from airinterp.errors import one_line, resolve_device

    path = checkpoint_file(locate(path))
    target = resolve_device(device) if device is not None else None
    tensors, meta = read_sharded(path) if path.name.endswith(".index.json") else read_safetensors(path)
    if "shard_of" in meta:
        raise CheckpointError(f"{path}: one shard of a sharded checkpoint; load its directory or {path.parent / INDEX}")
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not an airinterp checkpoint (metadata format={meta.get('format')!r}); "
            "reference checkpoints go through `airinterp import-reference`"
        )
    version = meta.get("format_version")
    if version not in _READABLE_VERSIONS:
        raise CheckpointError(f"{path}: format_version {version!r}, this airinterp reads {', '.join(_READABLE_VERSIONS)}")
    if "config" not in meta:
        raise CheckpointError(f"{path}: metadata has no 'config'")
    if version == "1":
        if not allow_unverified:
            raise CheckpointError(f"{path}: format_version 1 has no integrity digest, so its config cannot be checked against "
                                  "its weights (an edited head count or variant would load silently); if you trust it, "
                                  "airinterp.load(path, allow_unverified=True) and airinterp.checkpoints.save it to add one")  # fmt: skip
        warnings.warn(f"{path}: format_version 1 has no integrity digest: its config is taken on trust; re-save it "
                      "(airinterp.checkpoints.save) to add one", stacklevel=2)  # fmt: skip
    else:
        want = meta.get("sha256")
        if want is None:
            raise CheckpointError(f"{path}: metadata has no 'sha256' integrity digest (format_version 2 requires one)")
        if digest(meta["config"], tensors) != want:
            raise CheckpointError(
                f"{path}: integrity check failed: the config or the tensors differ from what was saved "
                "(the sha256 digest in the metadata does not match)" + _shape_hint(meta["config"], tensors)
            )
    try:
        config = AIRConfig.model_validate_json(meta["config"])
    except Exception as err:
        raise CheckpointError(one_line(err, f"{path}: invalid config in metadata: ")) from None
    if dtype is not None:
        try:
            config = AIRConfig.model_validate({**config.model_dump(), "forward_dtype": dtype})
        except Exception as err:
            raise CheckpointError(one_line(err, "dtype: ")) from None
    model = HookedAIR(config, seed=None)
    load_into(model, tensors, source=str(path))
    if target is not None:
        model.to(target)
    return model


__all__ = [
    "CHECKPOINT_FILES", "CheckpointError", "INDEX", "checkpoint_file", "digest", "load", "load_into",
    "read_safetensors", "read_sharded", "save", "save_sharded",
]  # fmt: skip
