"""Decoded rollouts (AIR_SPEC 4.a): both states through the LM head after every update.

:class:`DecodeRecorder` hooks every update's ``hook_out`` (the state the update wrote) and the two
init hooks, and keeps the argmax token of each cell as ``uint8``: after update ``k`` (flat
sub-step ``k = n_updates * act + index``) ``tokens[state][:, k]`` is the decoded grid of that
state; the state an update does not write repeats its previous grid (the initial state's decode
before its first write), exactly as the reference's traces. The initial decode itself is not part
of the rollout table. ``probs=True`` also keeps the probability of the chosen token (float16).

Decoding is argmax over **all** vocabulary ids (PAD and BLANK included), cells only, with the LM
head trained on z_H, for z_L too (spec 4.0).
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from airinterp.analysis.run import Hook, PuzzleBatch, puzzle_batches, rollout
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.hooks import Address, HookPoint, read_only, select
from airinterp.model.schedule import STATES, SubStep, check_state, written
from airinterp.tasks.dataset import PuzzleDataset


class DecodeRecorder:
    """Keeps the decoded grid of z_L and z_H after every update of each batch."""

    def __init__(self, model: HookedAIR, probs: bool = False, keep: bool = True) -> None:
        self.model = model
        self.probs = probs
        self.keep = keep  # False: only the latest batch is held (callers reduce it themselves)
        self.batches: list[DecodedRollout] = []
        self.batch: DecodedRollout | None = None  # the latest batch
        self._cur: dict[str, Tensor] = {}
        self._init: dict[str, Tensor] = {}

    def hooks(self, model: HookedAIR) -> list[Hook]:
        schedule = model.schedule

        def decode(x: Tensor) -> tuple[Tensor, Tensor | None]:
            logits = model.unembed(x)
            if self.probs:
                p, tok = logits.float().softmax(-1).max(-1)
                return tok.to(torch.uint8), p.to(torch.float16)
            return logits.argmax(-1).to(torch.uint8), None

        @read_only
        def on_init(x: Tensor, hook: HookPoint) -> None:
            self._init[hook.name[len("hook_"):-len("_init")]] = decode(x)  # type: ignore[index]

        @read_only
        def on_update(x: Tensor, hook: HookPoint) -> None:
            addr = Address.parse(hook.name)  # type: ignore[arg-type]
            s = SubStep.of(schedule, addr.act, addr.update)  # type: ignore[arg-type]
            tok, p = decode(x)
            self._cur[s.update.state][:, s.flat] = tok
            if p is not None:
                self._cur[s.update.state + "_p"][:, s.flat] = p

        return [(select(site=["hook_zH_init", "hook_zL_init"]), on_init),
                (select(site="hook_out", scope="update"), on_update)]  # fmt: skip

    def start_batch(self, batch: PuzzleBatch, n_act: int) -> None:
        c = self.model.config
        K, B = n_act * c.n_updates, len(batch)
        self._batch = batch
        self._init = {}
        self._cur = {}
        for s in c.states:
            self._cur[s] = torch.zeros(B, K, c.seq_len, dtype=torch.uint8, device=batch.inputs.device)
            if self.probs:
                self._cur[s + "_p"] = torch.zeros(B, K, c.seq_len, dtype=torch.float16, device=batch.inputs.device)
        self._written = {s: written(self.model.schedule, s, K) for s in c.states}

    def end_batch(self) -> None:
        grids: dict[str, np.ndarray] = {}
        for s in self.model.config.states:
            grids[s] = self._finish(self._cur[s], self._init[s][0], self._written[s])
            if self.probs:
                grids[s + "_p"] = self._finish(self._cur[s + "_p"], self._init[s][1], self._written[s])
        b = self._batch
        out = DecodedRollout(indices=b.indices, inputs=b.inputs.cpu().numpy(), labels=b.labels, **grids)
        self.batch = out
        if self.keep:
            self.batches.append(out)

    @staticmethod
    def _finish(cur: Tensor, init: Tensor, written: np.ndarray) -> np.ndarray:
        """Fill the sub-steps where the state was not written with its previous grid."""
        K = cur.shape[1]
        src = np.where(written, np.arange(K), -1)
        src = np.maximum.accumulate(src)  # latest write at or before k (-1: none yet)
        full = torch.cat((init[:, None], cur), dim=1)  # position 0: the initial decode
        return full[:, torch.from_numpy(src + 1).to(cur.device)].cpu().numpy()

    def result(self) -> "DecodedRollout":
        """Everything kept so far as one :class:`DecodedRollout`."""
        if not self.batches:
            raise InputError("no batch was recorded")
        return DecodedRollout.concat(self.batches)


@dataclass(frozen=True)
class DecodedRollout:
    """Decoded grids [puzzle, substep, cell] (uint8) of both states (TRM single-z: of its one,
    ``zL``; ``zH`` is None); ``indices`` the puzzles' split indices; ``inputs``/``labels``
    [puzzle, cell] when known; ``*_p`` probabilities."""

    indices: np.ndarray
    zL: np.ndarray
    zH: np.ndarray | None = None
    zL_p: np.ndarray | None = None
    zH_p: np.ndarray | None = None
    inputs: np.ndarray | None = None
    labels: np.ndarray | None = None
    output: np.ndarray | None = None  # the model's prediction: argmax of its final logits
    meta: dict = field(default_factory=dict)

    @property
    def states(self) -> tuple[str, ...]:
        """The states decoded: ``("zL", "zH")``, or ``("zL",)`` for TRM single-z."""
        return tuple(s for s in STATES if getattr(self, s) is not None)

    def state(self, name: str) -> np.ndarray:
        grids = getattr(self, check_state(name))
        if grids is None:
            raise InputError(f"state {name}: this rollout's model (TRM single-z) has one state, zL")
        return grids

    def __getitem__(self, name: str) -> np.ndarray:
        """``r["zH"]``, ``r["zL_p"]``: a state's grids (or probabilities) by name."""
        if name not in ("zL", "zH", "zL_p", "zH_p"):
            raise KeyError(name)
        return getattr(self, name)

    @classmethod
    def concat(cls, parts: "list[DecodedRollout]") -> "DecodedRollout":
        """Batches (in order) as one rollout table."""
        if not parts:
            raise InputError("no batch was recorded")

        def cat(name: str) -> np.ndarray | None:
            vals = [getattr(p, name) for p in parts]
            return None if any(v is None for v in vals) else np.concatenate(vals)

        return cls(indices=cat("indices"), zL=cat("zL"), zH=cat("zH"), zL_p=cat("zL_p"), zH_p=cat("zH_p"),  # type: ignore[arg-type]
                   inputs=cat("inputs"), labels=cat("labels"), output=cat("output"))  # fmt: skip

    @property
    def n_substeps(self) -> int:
        return self.zL.shape[1]

    def grid_io(self, puzzles: "int | None" = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Split index -> (inputs, labels) [cell] of the first ``puzzles`` puzzles (None: all;
        {} when the rollout kept neither): what the grid figures mark givens and wrong cells with."""
        if self.inputs is None or self.labels is None:
            return {}
        n = len(self.indices) if puzzles is None else min(puzzles, len(self.indices))
        return {int(self.indices[i]): (np.asarray(self.inputs[i]), np.asarray(self.labels[i])) for i in range(n)}

    def frame(self, puzzles: "int | None" = None) -> pd.DataFrame:
        """The tidy token table: one row per (puzzle, substep, state, cell); ``puzzle`` is the
        split index, ``substep`` the flat index of the update after which both were decoded.
        ``puzzles``: only the first that many (a 30x30 rollout is 172,800 rows per puzzle)."""
        sl = slice(None) if puzzles is None else slice(0, puzzles)
        parts = []
        for s in self.states:
            g = self.state(s)[sl]
            P, K, C = g.shape
            cols = {
                "puzzle": np.repeat(self.indices[sl], K * C),
                "substep": np.tile(np.repeat(np.arange(K), C), P),
                "state": np.full(P * K * C, s),
                "cell": np.tile(np.arange(C), P * K),
                "token": g.reshape(-1).astype(np.int16),
            }
            p = getattr(self, s + "_p")
            if p is not None:
                cols["prob"] = p[sl].reshape(-1).astype(np.float32)
            parts.append(pd.DataFrame(cols))
        df = pd.concat(parts, ignore_index=True)
        df["state"] = df["state"].astype("category")
        return df


def decode_rollouts(
    model: HookedAIR,
    ds: PuzzleDataset,
    indices: np.ndarray,
    *,
    n_act: int | None = None,
    batch_size: int = 64,
    probs: bool = False,
    interventions=(),
    progress: Callable[[int], None] | None = None,
) -> DecodedRollout:
    """Decoded rollouts of the puzzles ``indices`` of ``ds`` (optionally under interventions)."""
    rec = DecodeRecorder(model, probs=probs, keep=False)
    parts = []
    for batch in puzzle_batches(model, ds, indices, batch_size):
        out = record(model, batch, rec, n_act=n_act, interventions=interventions)
        parts.append(replace(rec.batch, output=out.logits.argmax(-1).cpu().numpy()))  # type: ignore[type-var]
        if progress:
            progress(len(batch))
    return DecodedRollout.concat(parts)


def record(model: HookedAIR, batch: PuzzleBatch, rec: DecodeRecorder, *, n_act: int | None = None,
           interventions=(), recorders=()):  # fmt: skip
    """:func:`rollout` with ``rec`` (and other recorders) attached."""
    return rollout(model, batch, n_act=n_act, interventions=interventions, recorders=[rec, *recorders])
