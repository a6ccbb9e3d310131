"""Verify HookedAIR against a reference dump (the format of ``shared/fixtures/air_reference``).

A dump is a JSON manifest beside a ``.safetensors`` file holding the reference weights under their
original key names and ``ref.*`` tensors: inputs, the RoPE tables, x~, the initial states, the
state after every sub-step of the recorded ACT steps, the logits and Q logits at the end of each
recorded ACT step and attention probabilities. ``tools/dump_reference.py`` writes such dumps from a
checkpoint of the reference repository.

Rollouts are compared with read-only hooks on the states, stack inputs, outputs and attention
patterns. The attention output still comes from SDPA (the reference's CPU kernel on CPU), and the
additions follow the reference's order, so on the machine and torch build that made the dump
float32 agreement is bitwise; across CPUs, kernels differ in the last bits and the dumps' random
models amplify those differences over the sub-steps. :func:`check_parity` therefore judges what
does not depend on the CPU: teacher-forced, one update at a time (the stack inputs bitwise), and
the free rollout against the model's own one-ulp sensitivity (:func:`sensitivity`).
"""

import hashlib
import json
import re
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from airinterp.checkpoints.format import CheckpointError, load_into, read_safetensors
from airinterp.checkpoints.reference import map_reference_state_dict
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.config import AIRConfig
from airinterp.model.layers import rope_tables

_STATE = re.compile(r"ref\.act(\d+)\.sub(\d+)\.(z_L|z_H)")
_ACT_OUT = re.compile(r"ref\.act(\d+)\.(logits|q_halt_logits|q_continue_logits)")
_ATTN = re.compile(r"ref\.act(\d+)\.sub(\d+)\.attn_probs\.layer(\d+)")
_STACK = re.compile(r"ref\.act(\d+)\.sub(\d+)\.(hidden_states_in|input_injection|stack_input)")
#: one update's error, teacher-forced, relative to max(1, the tensor's magnitude)
FORCED_TOL = 1e-5
#: weight noise of the sensitivity runs: one float32 ulp, relative
SENSITIVITY_REL = 2.0**-23
#: the free rollout may differ from the reference by this multiple of the model's own spread
SPREAD_MULTIPLE = 100.0
_INPUTS = {"ref.inputs", "ref.labels", "ref.puzzle_identifiers", "ref.attn_query_index", "ref.state_position_index"}
#: the default name of the index tensor of position-subset states (manifest ``state_capture``)
STATE_INDEX = "ref.state_position_index"


@dataclass(frozen=True)
class Comparison:
    tensor: str  # name in the dump
    hook: str  # our name (or what we computed)
    shape: tuple[int, ...]
    max_abs_diff: float
    bitwise: bool
    scale: float = 0.0  # max |reference value|
    exact: bool = False  # must be bitwise on any CPU (see is_exact)


@dataclass(frozen=True)
class Fixture:
    case: str
    config: AIRConfig
    model: HookedAIR
    tensors: dict[str, Tensor]
    n_act: int
    #: tensors that hold only some positions (manifest ``state_capture``): name -> the positions of its rows
    subset: dict[str, Tensor] = field(default_factory=dict)


def _position_subsets(path: Path, manifest: dict, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The manifest's ``state_capture``: the tensors under ``position_subset`` (names, or shell-style
    patterns such as ``ref.act*.sub*.z_*``) hold only the positions ``ref.state_position_index``
    lists (row j = position index[j]; another index tensor may be named by ``index_tensor``)."""
    import fnmatch

    capture = manifest.get("state_capture")
    if capture is None:
        return {}
    if not isinstance(capture, dict):
        raise CheckpointError(f"{path}: state_capture must be a JSON object")
    listed = capture.get("position_subset")
    if isinstance(listed, dict):  # e.g. {"tensors": [...], "index_tensor": ...}
        capture = {**capture, **listed}
        listed = listed.get("tensors")
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
        raise CheckpointError(f"{path}: state_capture.position_subset must list tensor names (or patterns)")
    index_name = capture.get("index_tensor") or capture.get("position_index") or STATE_INDEX
    if not isinstance(index_name, str) or index_name not in tensors:
        raise CheckpointError(f"{path}: state_capture names position subsets but the dump has no {index_name!r}")
    index = tensors[index_name].reshape(-1).long()
    names = [k for k in tensors if k != index_name and any(fnmatch.fnmatchcase(k, p) for p in listed)]
    unmatched = [p for p in listed if not any(fnmatch.fnmatchcase(k, p) for k in tensors)]
    if unmatched:
        raise CheckpointError(f"{path}: state_capture.position_subset names tensors the dump lacks: {unmatched[:4]}")
    for k in names:
        if tensors[k].ndim < 2 or tensors[k].shape[-2] != len(index):
            raise CheckpointError(f"{path}: {k} has shape {tuple(tensors[k].shape)}, not {len(index)} rows "
                                  f"(the positions of {index_name})")  # fmt: skip
    return dict.fromkeys(names, index)


def _listed(manifest: dict) -> dict[str, list[int] | None]:
    """The manifest's tensor list (a dict name -> {shape, dtype} or a list of {name, shape, dtype})."""
    listed = manifest.get("tensors") or {}
    if isinstance(listed, dict):
        return {k: (v.get("shape") if isinstance(v, dict) else None) for k, v in listed.items()}
    if isinstance(listed, list):
        return {e["name"]: e.get("shape") for e in listed if isinstance(e, dict) and "name" in e}
    raise InputError("'tensors' must be a dict or a list")


def _check_complete(path: Path, manifest: dict, tensors: dict[str, Tensor], config: AIRConfig) -> None:
    """Every tensor the manifest lists or the recorded steps imply is in the file, with its shape."""
    listed = _listed(manifest)
    missing = sorted(k for k in listed if k not in tensors)
    wrong = [f"{k}: file {tuple(tensors[k].shape)} vs manifest {tuple(v)}" for k, v in listed.items()
             if k in tensors and v is not None and tuple(tensors[k].shape) != tuple(v)]  # fmt: skip
    written = [u.state[1] for u in config.schedule]  # the state each update writes (single-z: always z_L)
    for a in manifest.get("act_steps_recorded") or []:
        want = [f"ref.act{a}.sub{k}.z_{st}" for k, st in enumerate(written, start=1)]
        want += [f"ref.act{a}.{o}" for o in ("logits", "q_halt_logits", "q_continue_logits")]
        # single-z: an H-update's output may be recorded under z_H as well (it is the one state)
        missing += [k for k in want if k not in tensors and k not in missing
                    and not (config.single_z and k.replace(".z_L", ".z_H") in tensors)]  # fmt: skip
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
    if "config_dict_passed_to_model" in manifest and "config_dict_passed_to_AIR" not in manifest:  # TRM / HRM manifests
        manifest["config_dict_passed_to_AIR"] = manifest["config_dict_passed_to_model"]
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
    subset = _position_subsets(st_path, manifest, tensors)
    if subset and int(next(iter(subset.values())).max()) >= config.n_pos:
        raise CheckpointError(f"{manifest_path}: state_position_index reaches past the model's {config.n_pos} positions")
    return Fixture(manifest.get("case", manifest_path.stem), config, model, tensors, max(acts), subset)


def our_name(ref_name: str, config: AIRConfig) -> str | None:
    """The hook holding the same tensor as ``ref_name`` (None for inputs and computed tables)."""
    updates = config.schedule
    if ref_name == "ref.input_embeddings":
        return "hook_input"
    if ref_name == "ref.g_input":
        return "hook_g_input"
    if ref_name in ("ref.init.z_L", "ref.init.z_H"):
        return f"hook_{ref_name[-3:].replace('_', '')}_init"
    if m := _STATE.fullmatch(ref_name):
        return f"act.{int(m.group(1)) - 1}.{updates[int(m.group(2)) - 1].name}.hook_out"
    if m := _STACK.fullmatch(ref_name):
        site = "hook_injection" if m.group(3) == "input_injection" else "hook_in"
        return f"act.{int(m.group(1)) - 1}.{updates[int(m.group(2)) - 1].name}.{site}"
    if m := _ACT_OUT.fullmatch(ref_name):
        site = {"logits": "hook_logits", "q_halt_logits": "hook_q_halt", "q_continue_logits": "hook_q_continue"}
        return f"act.{int(m.group(1)) - 1}.{site[m.group(2)]}"
    if m := _ATTN.fullmatch(ref_name):
        u = updates[int(m.group(2)) - 1].name
        return f"act.{int(m.group(1)) - 1}.{u}.blocks.{m.group(3)}.attn.hook_pattern"
    return None


def reference_tensors(fx: Fixture) -> dict[str, Tensor]:
    """Every reference output of the dump to compare, by name.

    A dump that records the stack's two operands (``ref.act{a}.sub{k}.hidden_states_in`` and
    ``.input_injection``: the reference's ``f_level(hidden_states, input_injection)`` arguments)
    yields ``ref.act{a}.sub{k}.stack_input``, their sum as the reference's stack forms it
    (``hidden_states = hidden_states + input_injection``), the tensor our ``hook_in`` holds.
    """
    t = fx.tensors
    out = {k: v for k, v in t.items() if k.startswith("ref.") and k not in _INPUTS}
    for k in list(out):
        if (m := _STACK.fullmatch(k)) and m.group(3) == "hidden_states_in":
            del out[k]
            injection = t.get(f"ref.act{m.group(1)}.sub{m.group(2)}.input_injection")
            if injection is None and not fx.config.single_z:
                raise CheckpointError(f"{fx.case}: {k} has no matching input_injection in the dump")
            # TRM single-z's stack takes one argument: what it receives is the stack input
            out[f"ref.act{m.group(1)}.sub{m.group(2)}.stack_input"] = t[k] if injection is None else t[k] + injection
    return out


def is_exact(ref_name: str, teacher_forced: bool) -> bool:
    """Whether ``ref_name`` must agree bitwise on every CPU.

    Exact: what the model computes from the dump's own tensors by gathers, broadcasts and single
    float32 additions or products, each correctly rounded whatever the CPU: x~, the initial states
    and, teacher-forced (every state, and g(x~), replaced by the reference's), each update's
    injection and stack input. Everything behind a matrix product, a reduction or a transcendental
    function (the RoPE tables, RMSNorm, softmax) may differ in the last bits between CPU kernels.
    """
    if ref_name in ("ref.input_embeddings", "ref.init.z_L", "ref.init.z_H"):
        return True
    return teacher_forced and bool(_STACK.fullmatch(ref_name))


def _rollout(fx: Fixture, model: HookedAIR, want: dict[str, Tensor], device: str, teacher_forced: bool):
    """Our tensors under the names of ``want`` (one rollout of ``model`` on the dump's inputs)."""
    t = fx.tensors
    tokens = t["ref.inputs"].to(device)
    ids = t["ref.puzzle_identifiers"].to(device) if "ref.puzzle_identifiers" in t else None
    names = {k: our_name(k, fx.config) for k in want}
    wanted = [n for n in names.values() if n is not None]
    forced: list = []
    if teacher_forced:
        # the reference's value in place of ours: cloned, so its memory is aligned as a fresh
        # tensor's (some CPU kernels round differently for a buffer that starts mid-page)
        # a state the dump holds at some positions only cannot replace ours: those stay unforced
        ref_of = {n: k for k, n in names.items()
                  if n is not None and (n.endswith(".hook_out") or n == "hook_g_input") and k not in fx.subset}  # fmt: skip

        def force(x: Tensor, hook) -> Tensor:
            computed[hook.name] = x.detach().clone()  # ours, before it is replaced
            return t[ref_of[hook.name]].to(x.device, x.dtype).clone()

        forced = [(n, force) for n in ref_of]
    computed: dict[str, Tensor] = {}
    with torch.inference_mode(), model.hooks(fwd_hooks=forced):
        _, cache = model.run_with_cache(tokens, ids, n_act=fx.n_act, names_filter=wanted)
    got = {**cache.cache_dict, **computed}  # a cache hook on a forced point sees the reference's value
    cos, sin = rope_tables(fx.config.n_stack_pos, fx.config.head_dim, fx.config.rope_theta)
    query_rows = t.get("ref.attn_query_index")
    ours: dict[str, tuple[str, Tensor]] = {}
    for ref_name, hook in names.items():
        if ref_name == "ref.rope_cos":
            value, hook = cos, "rope_tables(cos)"
        elif ref_name == "ref.rope_sin":
            value, hook = sin, "rope_tables(sin)"
        elif hook is None:
            raise CheckpointError(f"dump tensor {ref_name!r} has no airinterp counterpart")
        else:
            value = got[hook]
            if _ATTN.fullmatch(ref_name) and query_rows is not None and value.shape[-2] != want[ref_name].shape[-2]:
                value = value[..., query_rows.to(value.device).long(), :]
            if ref_name in fx.subset:  # the dump holds these positions of the state only
                value = value[..., fx.subset[ref_name].to(value.device), :]
        ours[ref_name] = (hook, value.detach().cpu())
    return ours


def verify(
    fx: Fixture, *, device: str = "cpu", teacher_forced: bool = False, model: HookedAIR | None = None
) -> list[Comparison]:
    """Run our model on the dump's inputs and compare every output tensor it holds.

    ``teacher_forced``: every update's output (and g(x~) where the variant has it) is recorded,
    then replaced by the reference's, so each comparison measures one update's error rather than
    the rollout's accumulated drift (random models amplify last-bit kernel differences between
    CPUs over the sub-steps), and each update's injection and stack input, made by additions from
    the reference's own states, must be bitwise equal (:func:`is_exact`). ``model``: another model
    to run in place of the dump's (e.g. a perturbed copy).
    """
    model = (model if model is not None else fx.model).to(device).eval()
    want = reference_tensors(fx)
    return _compare(want, _rollout(fx, model, want, device, teacher_forced), teacher_forced)


def _compare(want: dict[str, Tensor], ours: dict[str, tuple[str, Tensor]], teacher_forced: bool) -> list[Comparison]:
    results = []
    for ref_name in sorted(want):
        hook, value = ours[ref_name]
        ref = want[ref_name]
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(f"{ref_name}: shape {tuple(ref.shape)} in the dump, ours {tuple(value.shape)}")
        diff = (value.double() - ref.double()).abs().max().item() if ref.numel() else 0.0
        scale = ref.abs().max().item() if ref.numel() and ref.is_floating_point() else 0.0
        bitwise = bool(torch.equal(value.to(ref.dtype), ref))
        results.append(Comparison(ref_name, hook, tuple(ref.shape), diff, bitwise, scale,
                                  is_exact(ref_name, teacher_forced)))  # fmt: skip
    return results


def perturbed(model: HookedAIR, rel: float, seed: int) -> HookedAIR:
    """A copy of ``model`` with every floating-point weight and buffer multiplied by (1 + rel * N(0, 1))."""
    copy = deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for v in copy.state_dict().values():
            if v.is_floating_point():
                noise = torch.randn(v.shape, generator=gen, dtype=torch.float64)
                v.copy_((v.double() * (1 + rel * noise)).to(v.dtype))
    return copy


def sensitivity(
    fx: Fixture, *, n: int = 4, rel: float = SENSITIVITY_REL, seed: int = 0, device: str = "cpu",
    model: HookedAIR | None = None,
) -> dict[str, float]:
    """How far the model's own free rollout moves under weight noise of one float32 ulp.

    Per reference tensor: the largest max |difference| between our model (or ``model``) and ``n``
    copies whose every weight is multiplied by (1 + ``rel`` * N(0, 1)) (seeds ``seed`` ..
    ``seed + n - 1``). A chaotic random model amplifies such last-bit differences over the rollout
    as it amplifies the rounding differences between CPU kernels; this is that amplification,
    measured on this machine.
    """
    model = (model if model is not None else fx.model).to(device).eval()
    want = reference_tensors(fx)
    return _spread(fx, model, want, _rollout(fx, model, want, device, False), n, rel, seed, device)


def _spread(fx, model, want, base, n: int, rel: float, seed: int, device: str) -> dict[str, float]:
    spread = dict.fromkeys(want, 0.0)
    for i in range(n):
        other = _rollout(fx, perturbed(model, rel, seed + i), want, device, False)
        for k, (_, v) in other.items():
            if v.numel():
                spread[k] = max(spread[k], (v.double() - base[k][1].double()).abs().max().item())
    return spread


@dataclass(frozen=True)
class ParityRow:
    mode: str  # "teacher-forced" or "free"
    tensor: str
    hook: str
    max_abs_diff: float
    bound: float  # 0.0: must be bitwise
    bitwise: bool
    ok: bool


def check_parity(
    fx: Fixture,
    *,
    model: HookedAIR | None = None,
    device: str = "cpu",
    forced_tol: float = FORCED_TOL,
    multiple: float = SPREAD_MULTIPLE,
    n_sensitivity: int = 4,
    seed: int = 0,
) -> list[ParityRow]:
    """Our model against the dump, judged so that the verdict does not depend on the CPU.

    1. Teacher-forced (:func:`verify`): what :func:`is_exact` names (x~, the initial states, every
       update's injection and stack input) bitwise; every other tensor, one update's error, within
       ``forced_tol`` x max(1, |reference|). A dump whose states hold a subset of positions
       (``state_capture``) cannot replace ours: then only x~ and the initial states are judged here.
    2. Free rollout: within ``multiple`` x the model's own spread under one-ulp weight noise
       (:func:`sensitivity`, measured here on this CPU), and never held tighter than ``forced_tol``
       (so the spread is measured only when some tensor differs by more than that).

    A fixed bound on a free rollout judges the CPU as much as the model: the dumps' random models
    are chaotic, and last-bit kernel differences between CPUs grow over the sub-steps by as much
    as ulp-sized weight noise does (e.g. 6.6e-5 from 1e-7 noise, 7.8e-4 on another Xeon's kernels).
    """
    model = (model if model is not None else fx.model).to(device).eval()

    def floor(r: Comparison) -> float:
        return forced_tol * max(1.0, r.scale)

    def judged(mode: str, r: Comparison, bound: float) -> ParityRow:
        if r.exact:  # bitwise, whatever the bound
            return ParityRow(mode, r.tensor, r.hook, r.max_abs_diff, 0.0, r.bitwise, r.bitwise)
        return ParityRow(mode, r.tensor, r.hook, r.max_abs_diff, bound, r.bitwise, r.max_abs_diff <= bound)

    forced_rows = verify(fx, device=device, teacher_forced=True, model=model)
    if fx.subset:  # states held at some positions cannot be forced: only what needs no forcing is judged forced
        forced_rows = [r for r in forced_rows if is_exact(r.tensor, False)]
    rows = [judged("teacher-forced", r, floor(r)) for r in forced_rows]
    want = reference_tensors(fx)
    free = _rollout(fx, model, want, device, False)
    compared = _compare(want, free, False)
    spread = dict.fromkeys(want, 0.0)
    if any(not r.exact and r.max_abs_diff > floor(r) for r in compared):
        spread = _spread(fx, model, want, free, n_sensitivity, SENSITIVITY_REL, seed, device)
    rows += [judged("free", r, max(floor(r), multiple * spread[r.tensor])) for r in compared]
    return rows
