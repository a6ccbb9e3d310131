"""What every analysis starts from: a checkpoint, its test split, a seeded sample of puzzles.

Defaults are the shipped ones (:class:`airinterp.checkpoints.Checkpoint.default`): task
``sudoku`` -> ``checkpoints/sudoku6_Lx_H``, ``maze`` -> ``checkpoints/maze10_Lx_H``, each with the
test split its card names (``eval_data``). Every check runs here, before any rollout, and fails
with one line naming the parameter (the CLI shows its flag).
"""

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from airinterp.analysis.run import sample_distinct
from airinterp.checkpoints import DEFAULT_CHECKPOINTS, Checkpoint
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.inputs import check_n_act
from airinterp.tasks.dataset import PuzzleDataset

if TYPE_CHECKING:
    from airinterp.tasks.rules import TaskRules

TASKS = tuple(DEFAULT_CHECKPOINTS)


@dataclass(frozen=True)
class AnalysisInputs:
    model: HookedAIR
    ds: PuzzleDataset
    indices: np.ndarray
    checkpoint: Path
    data: Path
    seed: int
    n_act: int

    @cached_property
    def source(self) -> Checkpoint:
        """The checkpoint as a value (its card read once)."""
        return Checkpoint(self.checkpoint)

    @cached_property
    def rules(self) -> "TaskRules":
        """The rules of the model's task at its size."""
        from airinterp.tasks.rules import rules_for

        return rules_for(self.model.config.task, self.model.config.seq_len)

    def with_indices(self, indices: np.ndarray) -> "AnalysisInputs":
        """The same inputs on other puzzles of the split."""
        return replace(self, indices=np.asarray(indices))

    def config(self) -> dict:
        """What ``config.json`` records: where everything came from and which puzzles ran."""
        from importlib.metadata import PackageNotFoundError, version

        import torch

        from airinterp._version import __version__

        try:
            tl_version = version("transformer_lens")
        except PackageNotFoundError:
            tl_version = "unknown"

        return {
            "checkpoint": str(self.checkpoint), "variant": self.model.config.variant, "task": self.model.config.task,
            "model_config": self.model.config.model_dump(),
            "checkpoint_card_steps": self.source.card.get("steps"),
            "data": str(self.data), "split": self.ds.split, "data_fingerprint": self.ds.fingerprint(),
            "n_split": self.ds.n_examples, "seed": self.seed, "n_puzzles": len(self.indices),
            "puzzle_indices": [int(i) for i in self.indices], "n_act": self.n_act,
            "device": str(self.model.device),
            "versions": {"airinterp": __version__, "torch": torch.__version__, "transformer_lens": tl_version},
        }  # fmt: skip


def open_inputs(
    task: str | None = None,
    checkpoint: "str | Path | Checkpoint | None" = None,
    data: "str | Path | None" = None,
    *,
    n_puzzles: int | None = None,
    at_most: bool = False,
    seed: int = 0,
    device: str = "cpu",
    n_act: int | None = None,
) -> AnalysisInputs:
    """Load and check everything an analysis needs; an InputError (one line) on bad input.

    ``n_puzzles``: a seeded sample of that many test puzzles (None: the whole split);
    ``at_most``: fewer when the split is smaller, instead of an error."""
    if task is not None and task not in TASKS:
        raise InputError(f"task {task!r}: expected one of {', '.join(TASKS)}")
    ck = Checkpoint.default(task or "sudoku") if checkpoint is None else Checkpoint(checkpoint)
    model = ck.load(device=device)  # reads and checks the card too (its fields' types; that it describes these weights)
    c = model.config
    if c.task is None:
        raise InputError(f"checkpoint {ck}: the model's task is unknown (vocab {c.vocab_size})")
    if task is not None and c.task != task:
        raise InputError(f"checkpoint {ck} is a {c.task} model but task is {task}")
    if data is None:
        data = ck.test_data()
    data = Path(data)
    ds = PuzzleDataset(data, "test")
    ds.check_fits(c.seq_len, c.vocab_size)
    if ds.built_task is not None and ds.built_task != c.task:  # its dataset.json claims the model's vocabulary
        raise InputError(f"data {data}: built for {ds.built_task} (airinterp_build.json), but the checkpoint is a {c.task} model")
    n_act = check_n_act(n_act, c.halt_max_steps)
    if at_most and n_puzzles is not None:
        n_puzzles = min(n_puzzles, len(ds.distinct()))
    indices = sample_distinct(ds, n_puzzles, seed)
    return AnalysisInputs(model=model, ds=ds, indices=indices, checkpoint=ck.path, data=data, seed=seed, n_act=n_act)
