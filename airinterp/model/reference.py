"""Verify HookedAIR against a reference dump (the format of ``shared/fixtures/air_reference``).

A dump is a JSON manifest beside a ``.safetensors`` file holding the reference weights under their
original key names and ``ref.*`` tensors: inputs, the RoPE tables, x~, the initial states, the
state after every sub-step of the recorded ACT steps, the logits and Q logits at the end of each
recorded ACT step and attention probabilities. ``tools/dump_reference.py`` writes such dumps from a
checkpoint of the reference repository.

One rollout is compared, with read-only hooks on the states, outputs and attention patterns.
The attention output still comes from SDPA (the reference's kernel on CPU), and the additions follow
the reference's order, so on the machine and torch build that made the dump float32 agreement is
bitwise; across CPUs, kernels differ in the last bits and the differences grow over sub-steps.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from airinterp.model.air import HookedAIR
from airinterp.model.checkpoint import CheckpointError, load_into, map_reference_state_dict, read_safetensors
from airinterp.model.config import AIRConfig
from airinterp.model.layers import rope_tables
from airinterp.model.schedule import act_schedule

_STATE = re.compile(r"ref\.act(\d+)\.sub(\d+)\.(z_L|z_H)")
_ACT_OUT = re.compile(r"ref\.act(\d+)\.(logits|q_halt_logits|q_continue_logits)")
_ATTN = re.compile(r"ref\.act(\d+)\.sub(\d+)\.attn_probs\.layer(\d+)")
_INPUTS = {"ref.inputs", "ref.labels", "ref.puzzle_identifiers", "ref.attn_query_index"}


@dataclass(frozen=True)
class Comparison:
    tensor: str  # name in the dump
    hook: str  # our name (or what we computed)
    shape: tuple[int, ...]
    max_abs_diff: float
    bitwise: bool


@dataclass(frozen=True)
class Fixture:
    case: str
    config: AIRConfig
    model: HookedAIR
    tensors: dict[str, Tensor]
    n_act: int


def _listed(manifest: dict) -> dict[str, list[int] | None]:
    """The manifest's tensor list (a dict name -> {shape, dtype} or a list of {name, shape, dtype})."""
    listed = manifest.get("tensors") or {}
    if isinstance(listed, dict):
        return {k: (v.get("shape") if isinstance(v, dict) else None) for k, v in listed.items()}
    if isinstance(listed, list):
        return {e["name"]: e.get("shape") for e in listed if isinstance(e, dict) and "name" in e}
    raise ValueError("'tensors' must be a dict or a list")


def _check_complete(path: Path, manifest: dict, tensors: dict[str, Tensor], config: AIRConfig) -> None:
    """Every tensor the manifest lists or the recorded steps imply is in the file, with its shape."""
    listed = _listed(manifest)
    missing = sorted(k for k in listed if k not in tensors)
    wrong = [f"{k}: file {tuple(tensors[k].shape)} vs manifest {tuple(v)}" for k, v in listed.items()
             if k in tensors and v is not None and tuple(tensors[k].shape) != tuple(v)]  # fmt: skip
    stages = [u.stage for u in act_schedule(config.H_cycles, config.L_cycles)]
    for a in manifest.get("act_steps_recorded") or []:
        want = [f"ref.act{a}.sub{k}.z_{st}" for k, st in enumerate(stages, start=1)]
        want += [f"ref.act{a}.{o}" for o in ("logits", "q_halt_logits", "q_continue_logits")]
        missing += [k for k in want if k not in tensors and k not in missing]
    for sub in manifest.get("substeps") or []:
        for key in ("z_L", "z_H"):
            name = sub.get(key) if isinstance(sub, dict) else None
            if isinstance(name, str) and name not in tensors and name not in missing:
                missing.append(name)
    if missing:
        raise CheckpointError(f"{path}: the dump lacks {len(missing)} tensor(s) its manifest names: {missing[:6]}")
    if wrong:
        raise CheckpointError(f"{path}: tensor shapes differ from the manifest: {wrong[:4]}")
    if "ref.inputs" not in tensors:
        raise CheckpointError(f"{path}: the dump has no 'ref.inputs' (the token ids to run)")
    outputs = [k for k in tensors if _STATE.fullmatch(k) or _ACT_OUT.fullmatch(k) or _ATTN.fullmatch(k)]
    if not outputs:
        raise CheckpointError(f"{path}: the dump holds no reference outputs (ref.act*.sub*.z_*, ref.act*.logits, ...) to compare")


def load_fixture(manifest_path: "str | Path") -> Fixture:
    manifest_path = Path(manifest_path)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (FileNotFoundError, IsADirectoryError):
        raise CheckpointError(f"{manifest_path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{manifest_path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{manifest_path}: not a reference dump manifest (a JSON object expected)")
    for key in ("config_dict_passed_to_AIR", "safetensors_file", "reference"):
        if key not in manifest:
            raise CheckpointError(f"{manifest_path}: not a reference dump manifest (no {key!r})")
    if not isinstance(manifest["config_dict_passed_to_AIR"], dict) or not isinstance(manifest["reference"], dict):
        raise CheckpointError(f"{manifest_path}: 'config_dict_passed_to_AIR' and 'reference' must be JSON objects")
    st_path = manifest_path.parent / str(manifest["safetensors_file"])
    want_sha = manifest.get("safetensors_sha256")
    if want_sha is not None and st_path.is_file():
        got = hashlib.sha256(st_path.read_bytes()).hexdigest()
        if got != want_sha:
            raise CheckpointError(
                f"{st_path}: sha256 {got[:16]}... differs from the manifest's safetensors_sha256 "
                f"{str(want_sha)[:16]}...: not the file the manifest describes"
            )
    tensors, _ = read_safetensors(st_path)
    arch = dict(manifest["config_dict_passed_to_AIR"])
    arch["name"] = manifest["reference"].get("arch_name") or manifest["reference"].get("model_module")
    try:
        config = AIRConfig.from_reference_dict(arch)
        _check_complete(st_path, manifest, tensors, config)
    except (ValueError, TypeError, KeyError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{manifest_path}: {err}") from None
    weights = {k: v for k, v in tensors.items() if not k.startswith("ref.")}
    model = load_into(HookedAIR(config, seed=None), map_reference_state_dict(weights), source=str(manifest_path))
    acts = manifest.get("act_steps_recorded") or sorted(
        {int(m.group(1)) for k in tensors if (m := _STATE.fullmatch(k))}
    )
    return Fixture(manifest.get("case", manifest_path.stem), config, model, tensors, max(acts))


def our_name(ref_name: str, config: AIRConfig) -> str | None:
    """The hook holding the same tensor as ``ref_name`` (None for inputs and computed tables)."""
    updates = act_schedule(config.H_cycles, config.L_cycles)
    if ref_name == "ref.input_embeddings":
        return "hook_input"
    if ref_name in ("ref.init.z_L", "ref.init.z_H"):
        return f"hook_{ref_name[-3:].replace('_', '')}_init"
    if m := _STATE.fullmatch(ref_name):
        return f"act.{int(m.group(1)) - 1}.{updates[int(m.group(2)) - 1].name}.hook_out"
    if m := _ACT_OUT.fullmatch(ref_name):
        site = {"logits": "hook_logits", "q_halt_logits": "hook_q_halt", "q_continue_logits": "hook_q_continue"}
        return f"act.{int(m.group(1)) - 1}.{site[m.group(2)]}"
    if m := _ATTN.fullmatch(ref_name):
        u = updates[int(m.group(2)) - 1].name
        return f"act.{int(m.group(1)) - 1}.{u}.blocks.{m.group(3)}.attn.hook_pattern"
    return None


def verify(fx: Fixture, *, device: str = "cpu", teacher_forced: bool = False) -> list[Comparison]:
    """Run our model on the dump's inputs and compare every output tensor it holds.

    ``teacher_forced``: every update's output is recorded, then replaced by the reference's state,
    so each comparison measures one update's error rather than the rollout's accumulated drift
    (random models amplify last-bit kernel differences between CPUs over the sub-steps).
    """
    model = fx.model.to(device).eval()
    t = fx.tensors
    tokens = t["ref.inputs"].to(device)
    ids = t["ref.puzzle_identifiers"].to(device) if "ref.puzzle_identifiers" in t else None
    names = {k: our_name(k, fx.config) for k in t if k.startswith("ref.") and k not in _INPUTS}
    wanted = [n for n in names.values() if n is not None]
    forced: list = []
    if teacher_forced:
        ref_of = {n: k for k, n in names.items() if n is not None and n.endswith(".hook_out")}

        def force(x: Tensor, hook) -> Tensor:
            return t[ref_of[hook.name]].to(x.device, x.dtype)

        forced = [(n, force) for n in ref_of]
    with torch.inference_mode(), model.hooks(fwd_hooks=forced):
        _, cache = model.run_with_cache(tokens, ids, n_act=fx.n_act, names_filter=wanted)
    got = cache.cache_dict
    cos, sin = rope_tables(fx.config.n_stack_pos, fx.config.head_dim, fx.config.rope_theta)
    query_rows = t.get("ref.attn_query_index")
    results = []
    for ref_name, hook in sorted(names.items()):
        want = t[ref_name]
        if ref_name == "ref.rope_cos":
            ours, hook = cos, "rope_tables(cos)"
        elif ref_name == "ref.rope_sin":
            ours, hook = sin, "rope_tables(sin)"
        elif hook is None:
            raise CheckpointError(f"dump tensor {ref_name!r} has no airinterp counterpart")
        else:
            ours = got[hook]
            if _ATTN.fullmatch(ref_name) and query_rows is not None and ours.shape[-2] != want.shape[-2]:
                ours = ours[..., query_rows.to(ours.device).long(), :]
        ours = ours.detach().cpu()
        if tuple(ours.shape) != tuple(want.shape):
            raise CheckpointError(f"{ref_name}: shape {tuple(want.shape)} in the dump, ours {tuple(ours.shape)}")
        diff = (ours.double() - want.double()).abs().max().item() if want.numel() else 0.0
        results.append(
            Comparison(ref_name, hook, tuple(want.shape), diff, bool(torch.equal(ours.to(want.dtype), want)))
        )
    return results
