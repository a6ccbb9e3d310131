"""An analysis is interventions + recorders + one forward of the model's own rollout.

Nothing here re-implements the ACT loop: :func:`rollout` attaches hooks (interventions first, so
recorders see the edited rollout: torch runs forward hooks in registration order, each seeing the
previous one's return value) and calls ``model(...)``. Recorders keep only what they reduce to
(token ids, counts), never states. Puzzles are a seeded sample of a split, indices recorded.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from airinterp.errors import InputError
from airinterp.model.air import AIROutput, HookedAIR
from airinterp.model.hooks import Address
from airinterp.model.inputs import check_n_act
from airinterp.tasks.dataset import PuzzleDataset
from airinterp.types import PuzzleIds, Tokens

Hook = tuple["str | Callable[[str], bool]", Callable]


@dataclass(frozen=True)
class PuzzleBatch:
    """Puzzles of one forward: their split indices, inputs and identifiers on the model's device,
    labels as numpy."""

    indices: np.ndarray  # [batch] indices into the split
    inputs: Tokens  # [batch, cell] long
    labels: np.ndarray  # [batch, cell]
    ids: PuzzleIds  # [batch] long

    def __len__(self) -> int:
        return len(self.indices)


@runtime_checkable
class Recorder(Protocol):
    """Read-only hooks plus the per-batch bookkeeping around them."""

    def hooks(self, model: HookedAIR) -> list[Hook]: ...

    def start_batch(self, batch: PuzzleBatch, n_act: int) -> None: ...

    def end_batch(self) -> None: ...


@runtime_checkable
class Intervention(Protocol):
    def hooks(self, model: HookedAIR) -> list[Hook]: ...


@dataclass(frozen=True)
class Hooks:
    """A fixed list of (name, hook) pairs as an intervention, for hooks with no per-batch
    bookkeeping (a capture, a patch): ``rollout(..., interventions=[Hooks([(name, fn)])])``."""

    fixed: Iterable[Hook]  # any iterable, kept as a tuple

    def __post_init__(self) -> None:  # a generator would be spent by the first batch
        object.__setattr__(self, "fixed", tuple(self.fixed))

    def hooks(self, model: HookedAIR) -> list[Hook]:
        return list(self.fixed)


def rollout(
    model: HookedAIR,
    batch: PuzzleBatch,
    *,
    n_act: int | None = None,
    interventions: Sequence[Intervention] = (),
    recorders: Sequence[Recorder] = (),
) -> AIROutput:
    """One evaluation rollout of ``batch`` (fresh carry, ``n_act`` ACT steps, eval mode, no
    gradients) with the interventions' and recorders' hooks attached for the call only."""
    n_act = check_n_act(n_act, model.config.halt_max_steps)
    hooks: list[Hook] = []
    for iv in interventions:
        hooks += iv.hooks(model)
    for name, _ in hooks:  # an intervention on a step the rollout never reaches would silently do nothing
        act = Address.parse(name).act if isinstance(name, str) else None
        if act is not None and act >= n_act:
            raise InputError(f"hook {name}: ACT step {act} is beyond the rollout's {n_act} steps (n_act); it would never run")
    for rec in recorders:
        rec.start_batch(batch, n_act)
        hooks += rec.hooks(model)
    was_training = model.training
    if was_training:  # (switching walks every HookPoint: only when needed)
        model.eval()
    try:
        with torch.inference_mode(), model.hooks(fwd_hooks=hooks):
            out = model(batch.inputs, batch.ids, n_act=n_act, return_type="output")
    finally:
        if was_training:
            model.train()
    for rec in recorders:
        rec.end_batch()
    return out


def sample_puzzles(n_available: int, n: int | None, seed: int) -> np.ndarray:
    """A seeded sample of ``n`` distinct split indices, sorted (None or n >= n_available: all);
    a ValueError when the split has fewer than ``n``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
    if n is None:
        return np.arange(n_available)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"n_puzzles must be >= 1, got {n!r}")
    if n > n_available:
        raise InputError(f"n_puzzles {n}: the split has only {n_available} puzzles")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_available, size=n, replace=False))


def sample_distinct(ds: PuzzleDataset, n: int | None, seed: int) -> np.ndarray:
    """A seeded sample of ``n`` of the split's distinct puzzles (:meth:`PuzzleDataset.distinct`),
    sorted; None: all of them. Where every puzzle is distinct: :func:`sample_puzzles`' sample."""
    pool = ds.distinct()
    if n is not None and not isinstance(n, bool) and isinstance(n, int) and n > len(pool) and len(pool) < ds.n_examples:
        raise InputError(f"n_puzzles {n}: the split has only {len(pool)} distinct puzzles ({ds.n_examples} rows)")
    return pool[sample_puzzles(len(pool), n, seed)]


def check_indices(ds: PuzzleDataset, indices: "np.ndarray | Sequence[int]") -> np.ndarray:
    """``indices`` as int64: whole numbers inside the split, each puzzle once, no two the same
    puzzle by content (statistics count each row as an independent puzzle; patching pairs a
    puzzle with another's value); an InputError naming the first offender otherwise."""
    raw = np.asarray(indices)
    if raw.ndim != 1 or raw.size == 0:
        raise InputError(f"indices: expected a non-empty list of puzzle indices, got shape {raw.shape}")
    if raw.dtype.kind not in "iu":
        if raw.dtype.kind == "f" and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw)):
            raw = raw.astype(np.int64)
        else:
            raise InputError(f"indices: whole numbers expected, got {raw.dtype} values like {raw.reshape(-1)[0]!r}")
    idx = raw.astype(np.int64)
    bad = idx[(idx < 0) | (idx >= ds.n_examples)]
    if bad.size:
        raise InputError(f"indices: {int(bad[0])} is outside the split (0..{ds.n_examples - 1})")
    values, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        k = int(np.argmax(counts > 1))
        raise InputError(f"indices: puzzle {int(values[k])} appears {int(counts[k])} times; each puzzle once "
                         "(a repeat would count as another independent puzzle)")  # fmt: skip
    rows = np.ascontiguousarray(ds.data["inputs"][idx]).reshape(len(idx), -1)
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    if len(first) < len(idx):
        dup = int(np.argmax(np.bincount(inverse.reshape(-1)) > 1))
        same = idx[inverse.reshape(-1) == dup]
        raise InputError(f"indices: puzzles {int(same[0])} and {int(same[1])} are the same puzzle (identical inputs); "
                         "sample distinct puzzles (airinterp samples from PuzzleDataset.distinct())")  # fmt: skip
    return idx


def puzzle_batches(
    model: HookedAIR, ds: PuzzleDataset, indices: np.ndarray, batch_size: int
) -> Iterator[PuzzleBatch]:
    """The puzzles ``indices`` of ``ds`` in batches, on the model's device (one example per
    puzzle, as in every dataset airinterp builds and the reference's); ``indices`` are checked
    (:func:`check_indices`) before the first batch."""
    indices = check_indices(ds, indices)
    return _batches(model, ds, indices, batch_size)


def _batches(model: HookedAIR, ds: PuzzleDataset, indices: np.ndarray, batch_size: int) -> Iterator[PuzzleBatch]:
    inputs, labels = ds.data["inputs"], ds.data["labels"]
    ident = ds.data["puzzle_identifiers"]
    pstart = ds.data["puzzle_indices"]
    # example -> puzzle row (for the identifier)
    owner = np.searchsorted(pstart, np.arange(ds.n_examples), side="right") - 1
    for lo in range(0, len(indices), batch_size):
        idx = np.asarray(indices[lo : lo + batch_size], dtype=np.int64)
        yield PuzzleBatch(
            indices=idx,
            inputs=torch.from_numpy(np.asarray(inputs[idx], dtype=np.int64)).to(model.device),
            labels=np.asarray(labels[idx], dtype=np.int64),
            ids=torch.from_numpy(np.asarray(ident[owner[idx]], dtype=np.int64)).to(model.device),
        )


def tokens_batch(model: HookedAIR, tokens: object, labels: "np.ndarray | None" = None) -> PuzzleBatch:
    """A batch from token ids or puzzle text (labels default to -1: unknown)."""
    t = model.to_tokens(tokens)
    lab = np.full(tuple(t.shape), -1, np.int64) if labels is None else np.asarray(labels, np.int64)
    if lab.shape != tuple(t.shape):
        raise InputError(f"labels have shape {lab.shape}, the tokens {tuple(t.shape)}")
    return PuzzleBatch(np.arange(t.shape[0]), t, lab, torch.zeros(t.shape[0], dtype=torch.long, device=t.device))
