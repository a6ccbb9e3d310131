"""Import of reference AIR checkpoints (``step_<N>`` torch files plus ``all_config.yaml``).

**Key mapping from the reference** (after stripping ``_orig_mod.``, ``module.``, ``model.`` and
the leading ``inner.``):

============================================  ==============================================
reference                                      airinterp
============================================  ==============================================
``embed_tokens.embedding_weight`` [V, D]       ``embed_tokens.weight``
``embed_pos.embedding_weight`` [S+P, D]        ``embed_pos.weight`` (``pos_encodings=learned``)
``puzzle_emb.weights`` [N, ndim] (buffer)      ``puzzle_emb``
``lm_head.weight``, ``q_head.weight/bias``     same names
``H_init``, ``L_init`` [D]                     same names
``f_level.layers.{i}.self_attn.qkv_proj``      ``blocks.{i}.attn.qkv``
``f_level.layers.{i}.self_attn.o_proj``        ``blocks.{i}.attn.o``
``f_level.layers.{i}.mlp.gate_up_proj``        ``blocks.{i}.mlp.gate_up``
``f_level.layers.{i}.mlp.down_proj``           ``blocks.{i}.mlp.down``
``input_token_L`` / ``input_token_H``          ``level_token_L`` / ``level_token_H`` (as [D])
``g_input.weight``                             ``g_input.weight``
============================================  ==============================================
"""

import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from airinterp.checkpoints.format import CheckpointError, load_into, read_safetensors
from airinterp.model.air import HookedAIR
from airinterp.model.config import AIRConfig

_PREFIXES = ("_orig_mod.", "module.", "model.")
_SIMPLE = {
    "embed_tokens.embedding_weight": "embed_tokens.weight",
    "embed_pos.embedding_weight": "embed_pos.weight",
    "puzzle_emb.weights": "puzzle_emb",
    "lm_head.weight": "lm_head.weight",
    "q_head.weight": "q_head.weight",
    "q_head.bias": "q_head.bias",
    "H_init": "H_init",
    "L_init": "L_init",
    "input_token_L": "level_token_L",
    "input_token_H": "level_token_H",
    "g_input.weight": "g_input.weight",
}
_LAYER = re.compile(r"(f_level|L_level|H_level)\.layers\.(\d+)\.(self_attn\.qkv_proj|self_attn\.o_proj|mlp\.gate_up_proj|mlp\.down_proj|mlp_t\.gate_up_proj|mlp_t\.down_proj)\.weight")
_OUR_LAYER = re.compile(r"(blocks|h_blocks)\.(\d+)\.(attn\.qkv|attn\.o|mlp\.gate_up|mlp\.down|mlp_t\.gate_up|mlp_t\.down)\.weight")
_LAYER_PARTS = {
    "self_attn.qkv_proj": "attn.qkv",
    "self_attn.o_proj": "attn.o",
    "mlp.gate_up_proj": "mlp.gate_up",
    "mlp.down_proj": "mlp.down",
    "mlp_t.gate_up_proj": "mlp_t.gate_up",
    "mlp_t.down_proj": "mlp_t.down",
}


def strip_reference_prefix(key: str) -> str:
    """``_orig_mod.model.inner.X`` / ``model.inner.X`` / ``inner.X`` -> ``X``."""
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    if not key.startswith("inner."):
        raise CheckpointError(f"reference key {key!r} does not lie under the AIR module's 'inner.'")
    return key[len("inner.") :]


def map_reference_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Reference state dict (any prefix form) -> our key names. Unknown keys are an error."""
    out: dict[str, Tensor] = {}
    unknown: list[str] = []
    for raw, t in state.items():
        key = strip_reference_prefix(raw)
        if key in _SIMPLE:
            new = _SIMPLE[key]
            if new.startswith("level_token"):
                t = t.reshape(-1)
        elif (m := _LAYER.fullmatch(key)) is not None:
            stack = "h_blocks" if m.group(1) == "H_level" else "blocks"  # HRM's H stack; f_level (AIR), L_level (TRM, HRM)
            new = f"{stack}.{m.group(2)}.{_LAYER_PARTS[m.group(3)]}.weight"
        else:
            unknown.append(raw)
            continue
        out[new] = t
    if unknown:
        raise CheckpointError(f"reference checkpoint has keys airinterp does not know: {unknown[:8]}")
    return out


def to_reference_state_dict(model: HookedAIR, prefix: str = "inner.") -> dict[str, Tensor]:
    """Our state dict under the reference's key names (the bare model module's, by default): AIR's
    ``f_level``, TRM's ``L_level``, HRM's ``H_level`` and ``L_level``."""
    inverse = {v: k for k, v in _SIMPLE.items()}
    parts = {v: k for k, v in _LAYER_PARTS.items()}
    out: dict[str, Tensor] = {}
    for key, t in model.state_dict().items():
        if key in inverse:
            new = inverse[key]
            if key.startswith("level_token") and model.config.variant.endswith(("prepend", "prepend_no_strip")):
                t = t.view(1, 1, -1)
        else:
            m = _OUR_LAYER.fullmatch(key)
            if m is None:
                raise CheckpointError(f"no reference name for {key!r}")
            stack = {"air": "f_level"}.get(model.config.family, "L_level") if m.group(1) == "blocks" else "H_level"
            new = f"{stack}.layers.{m.group(2)}.{parts[m.group(3)]}.weight"
        out[prefix + new] = t
    return out


def torch_load_weights_only(path: "str | Path", what: str = "torch checkpoint") -> Any:
    """``torch.load(weights_only=True)`` on CPU, its failures as one-line CheckpointErrors: a pickle
    holding code or objects is refused (never run), a damaged file is called corrupt."""
    from airinterp.errors import unpickling_reason

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused to load: not tensors and plain data, which is all a weights-only load reads "
            f"({unpickling_reason(err)})"
        ) from None
    except Exception as err:  # truncated archives raise RuntimeError, EOFError, BadZipFile...
        first = str(err).splitlines()[0] if str(err) else ""
        raise CheckpointError(f"{path}: corrupt or truncated {what} ({type(err).__name__}: {first})") from None


def read_reference_weights(path: "str | Path") -> dict[str, Tensor]:
    """A reference ``step_<N>`` file (torch.save state dict, loaded weights-only) or safetensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"PK" or magic[:1] == b"\x80":  # torch.save zip archive, or a legacy pickle
        obj = torch_load_weights_only(path)
        if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
            raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
        return dict(obj)
    tensors, _ = read_safetensors(path)
    return tensors


def read_reference_config(path: "str | Path") -> dict[str, Any]:
    """The ``arch`` section of a reference ``all_config.yaml`` (plus data_path for seq_len)."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such config file") from None
    except yaml.YAMLError as err:
        raise CheckpointError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("arch"), dict):
        raise CheckpointError(f"{path}: no 'arch' section; is this a reference all_config.yaml?")
    return doc


def config_from_reference(
    doc: dict[str, Any], state: Mapping[str, Tensor], *, seq_len: int | None = None, forward_dtype: str | None = None
) -> AIRConfig:
    """Fill the fields the reference takes from the data (vocab, ids, seq_len) from the weights."""
    arch = dict(doc["arch"])
    emb = state.get("embed_tokens.weight")
    if emb is None:
        raise CheckpointError("reference checkpoint has no token embedding")
    arch.setdefault("vocab_size", int(emb.shape[0]))
    if "puzzle_emb" in state:
        arch.setdefault("num_puzzle_identifiers", int(state["puzzle_emb"].shape[0]))
    if "embed_pos.weight" in state:
        arch.setdefault("pos_encodings", "learned")
    if seq_len is None and "seq_len" not in arch:
        seq_len = _seq_len_from_data(doc.get("data_path") or doc.get("data_paths"))  # AIR / HRM: data_path; TRM: data_paths
    if seq_len is not None:
        arch["seq_len"] = seq_len
    if forward_dtype is not None:
        arch["forward_dtype"] = forward_dtype
    ndim = arch.get("puzzle_emb_ndim")
    if isinstance(ndim, str):  # an unresolved ${.hidden_size}, the reference configs' own; any other string is an error
        if ndim.replace(" ", "") not in ("${.hidden_size}", "${arch.hidden_size}", "${hidden_size}"):
            raise CheckpointError(f"reference config: puzzle_emb_ndim {ndim!r}: expected a number or ${{.hidden_size}}")
        arch["puzzle_emb_ndim"] = arch["hidden_size"]
    if "puzzle_emb" in state and isinstance(arch.get("puzzle_emb_ndim"), int):
        width = int(state["puzzle_emb"].shape[-1])
        if arch["puzzle_emb_ndim"] != width:  # the weights show it: the config must agree
            raise CheckpointError(f"reference config: puzzle_emb_ndim {arch['puzzle_emb_ndim']}, but the weights' puzzle_emb is {width} wide")
    try:
        return AIRConfig.from_reference_dict(arch)
    except ValueError as err:
        raise CheckpointError(f"reference config: {err}") from None


_SEQ_HINT = "pass --seq-len (81 for the paper's 9x9 Sudoku, 900 for 30x30 Maze-Hard)"


def _seq_len_from_data(data_path: "str | list | None") -> int:
    """seq_len from the dataset ``all_config.yaml`` names; the vocabulary does not tell it (6x6
    and 9x9 Sudoku share one), so without the dataset this is an error, never a guess."""
    if isinstance(data_path, list):  # some reference configs list several datasets
        data_path = data_path[0] if data_path else None
    if not data_path:
        raise CheckpointError(f"cannot tell the sequence length: all_config.yaml names no data_path; {_SEQ_HINT}")
    meta = Path(str(data_path)) / "train" / "dataset.json"
    if not meta.is_file():
        raise CheckpointError(f"cannot tell the sequence length: the data_path in all_config.yaml ({meta}) does not exist here; {_SEQ_HINT}")
    try:
        return int(json.loads(meta.read_text())["seq_len"])
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{meta}: no usable seq_len ({err}); {_SEQ_HINT}") from None


def describe_source(weights: "str | Path", config: "str | Path | None" = None) -> str:
    """Where an imported checkpoint came from, for its metadata: the file, the architecture its
    all_config.yaml names and, for TRM runs with ``ema: true``, that the weights are the EMA copy."""
    weights = Path(weights)
    config = Path(config) if config is not None else weights.parent / "all_config.yaml"
    try:
        doc = read_reference_config(config)
    except CheckpointError:
        return str(weights)
    arch = doc["arch"].get("name", "?")
    ema = " (EMA weights: the run set ema: true, rate {})".format(doc.get("ema_rate", "?")) if doc.get("ema") else ""
    return f"{weights}; {arch}{ema}"


def import_reference(
    weights: "str | Path",
    config: "str | Path | None" = None,
    *,
    seq_len: int | None = None,
    forward_dtype: str | None = None,
) -> HookedAIR:
    """Build a HookedAIR from a reference checkpoint and its ``all_config.yaml``."""
    weights = Path(weights)
    config = Path(config) if config is not None else weights.parent / "all_config.yaml"
    if not config.is_file():
        raise CheckpointError(f"no config: {config} does not exist; pass --config")
    doc = read_reference_config(config)
    state = map_reference_state_dict(read_reference_weights(weights))
    cfg = config_from_reference(doc, state, seq_len=seq_len, forward_dtype=forward_dtype)
    expected_emb = (cfg.vocab_size, cfg.hidden_size)
    if tuple(state["embed_tokens.weight"].shape) != expected_emb:
        raise CheckpointError(f"token embedding {tuple(state['embed_tokens.weight'].shape)} vs config {expected_emb}")
    model = HookedAIR(cfg, seed=None)
    return load_into(model, state, source=str(weights))


__all__ = [
    "config_from_reference", "describe_source", "import_reference", "map_reference_state_dict", "read_reference_config",
    "read_reference_weights", "strip_reference_prefix", "to_reference_state_dict", "torch_load_weights_only",
]  # fmt: skip
