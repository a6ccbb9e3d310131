"""An analysis is interventions + recorders + one forward of the model's own rollout.

Nothing here re-implements the ACT loop: :func:`rollout` attaches hooks (interventions first, so
recorders see the edited rollout: torch runs forward hooks in registration order, each seeing the
previous one's return value) and calls ``model(...)``. Recorders keep only what they reduce to
(token ids, counts), never states. Puzzles are a seeded sample of a split, indices recorded.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from airinterp.errors import InputError
from airinterp.model.air import AIROutput, HookedAIR
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

    fixed: Sequence[Hook]

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


def puzzle_batches(
    model: HookedAIR, ds: PuzzleDataset, indices: np.ndarray, batch_size: int
) -> Iterator[PuzzleBatch]:
    """The puzzles ``indices`` of ``ds`` in batches, on the model's device (one example per
    puzzle, as in every dataset airinterp builds and the reference's)."""
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
