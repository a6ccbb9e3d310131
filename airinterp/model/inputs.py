"""What the model accepts as input, checked before any work: token ids, puzzle text, identifiers.

Every check raises an InputError that says what was expected. Puzzle text is the one place the
model meets a task's encoding: :func:`encode_text` imports :mod:`airinterp.tasks` lazily, the one
deliberate upward import of ``model/`` (``model.to_tokens("1..4 ...")`` is TransformerLens's idiom;
docs/architecture.md lists it).
"""

import torch
from jaxtyping import Int
from torch import Tensor

from airinterp.errors import InputError
from airinterp.model.config import AIRConfig


def is_text(x: object) -> bool:
    """Puzzle text: a str, or a non-empty list/tuple holding a str."""
    return isinstance(x, str) or (isinstance(x, (list, tuple)) and len(x) > 0 and any(isinstance(p, str) for p in x))


def encode_text(puzzles: object, c: AIRConfig, device: torch.device) -> Int[Tensor, "batch cell"]:
    """Puzzle text (one string or a list) -> token ids [batch, cell] on ``device``, by the task's encoding."""
    from airinterp.tasks import encode_puzzles  # the one upward import of model/ (module docstring)

    if c.task is None:
        raise InputError(f"to_tokens: the model's task is unknown (vocab_size {c.vocab_size}); set AIRConfig.task or pass token ids")
    if not isinstance(puzzles, str):
        bad = [i for i, p in enumerate(puzzles) if not isinstance(p, str)]
        if bad:
            raise InputError(f"puzzle {bad[0]}: expected puzzle text (str), got {type(puzzles[bad[0]]).__name__}")
    return encode_puzzles(c.task, puzzles, c.seq_len).to(device)


def check_n_act(n_act: object, default: int) -> int:
    """``n_act`` (None: ``default``) as a whole number of ACT steps >= 1."""
    n_act = default if n_act is None else n_act
    if isinstance(n_act, bool) or not isinstance(n_act, int) or n_act < 1:
        raise InputError(f"n_act must be a whole number of ACT steps >= 1, got {n_act!r}")
    return n_act


def steps_requested(n_act: object, stop_at_layer: object) -> object:
    """The ACT steps a call asks for: ``n_act``, or TransformerLens's ``stop_at_layer`` read as ACT
    steps (see ``HookedAIR.forward``); both given and different is an InputError."""
    if stop_at_layer is None:
        return n_act
    if isinstance(stop_at_layer, bool) or not isinstance(stop_at_layer, int) or stop_at_layer < 1:
        raise InputError(f"stop_at_layer {stop_at_layer!r}: ACT steps to run, a whole number >= 1 (airinterp's hook "
                         "names start with the ACT step, so tools that stop after a hook's first integer stop after its step)")  # fmt: skip
    if n_act is not None and n_act != stop_at_layer:
        raise InputError(f"n_act {n_act!r} and stop_at_layer {stop_at_layer!r}: both count ACT steps; give one")
    return stop_at_layer


def check_tokens(tokens: object, c: AIRConfig, device: torch.device) -> Int[Tensor, "batch cell"]:
    """Token ids [batch, seq_len] (a tensor, array or nested list) or puzzle text, checked (type,
    shape, vocabulary, dtype) and moved to ``device``; an InputError says what was expected."""
    expected = (
        f"expected puzzle text (a str or a list of str) or token ids (an integer tensor or nested "
        f"list of shape [batch, {c.seq_len}])"
    )
    if is_text(tokens):
        return encode_text(tokens, c, device)  # type: ignore[arg-type]
    if isinstance(tokens, (bytes, bytearray)):
        raise InputError(f"tokens: got bytes; decode puzzle text to str first ({expected})")
    if isinstance(tokens, (list, tuple)) and len(tokens) == 0:
        raise InputError("tokens: empty batch (no puzzles given)")
    if not isinstance(tokens, Tensor):
        if tokens is None or not isinstance(tokens, (list, tuple)) and not hasattr(tokens, "__array__"):
            raise InputError(f"tokens: {expected}; got {type(tokens).__name__}")
        try:
            tokens = torch.as_tensor(tokens)
        except (ValueError, TypeError, RuntimeError) as err:
            raise InputError(f"tokens: {expected}; could not read {type(tokens).__name__} as one ({err})") from None
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool or tokens.is_complex():
        raise InputError(f"tokens must be integer ids, got dtype {tokens.dtype} ({expected})")
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        raise InputError(
            f"tokens must have shape [batch >= 1, {c.seq_len}], got {tuple(tokens.shape)}"
        )
    if tokens.shape[1] != c.seq_len:
        raise InputError(
            f"sequence length {tokens.shape[1]} does not match the model's seq_len {c.seq_len}"
            + (f" ({c.task})" if c.task else "")
        )
    if tokens.numel():
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= c.vocab_size:
            bad = sorted({int(v) for v in tokens.flatten().tolist() if not 0 <= v < c.vocab_size})
            raise InputError(
                f"token ids {bad[:10]} are outside the vocabulary [0, {c.vocab_size})"
            )
    return tokens.to(device, torch.long)

def check_ids(ids: object, batch: int, c: AIRConfig, device: torch.device) -> Int[Tensor, " batch"]:
    """Puzzle identifiers [batch] (None: all 0), checked against the model's ``num_puzzle_identifiers``."""
    if ids is None:
        return torch.zeros(batch, dtype=torch.long, device=device)
    if not isinstance(ids, Tensor):
        try:
            ids = torch.as_tensor(ids)
        except (ValueError, TypeError, RuntimeError):
            raise InputError(f"puzzle_identifiers must be a 1-D integer tensor, got {type(ids).__name__}") from None
    if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.is_complex() or ids.ndim != 1:
        raise InputError(f"puzzle_identifiers must be a 1-D integer tensor, got {ids.dtype} {tuple(ids.shape)}")
    if ids.shape[0] != batch:
        raise InputError(
            f"puzzle_identifiers has {ids.shape[0]} entries but the batch has {batch} puzzles"
        )
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= c.num_puzzle_identifiers):
        raise InputError(
            f"puzzle identifiers must lie in [0, {c.num_puzzle_identifiers}), got "
            f"{sorted(set(ids.tolist()))[:10]}"
        )
    return ids.to(device, torch.long)

# ---- pieces of the forward -------------------------------------------------------------
