"""What every analysis starts from: a checkpoint, its test split, a seeded sample of puzzles.

Defaults are the shipped ones: ``--task sudoku`` -> ``checkpoints/sudoku6_Lx_H``, ``--task maze``
-> ``checkpoints/maze10_Lx_H``, each with the test split its card names (``eval_data``). Every
check runs here, before any rollout, and fails with one line naming the option.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import airinterp
from airinterp.analysis.run import sample_puzzles
from airinterp.model.air import HookedAIR
from airinterp.tasks.dataset import PuzzleDataset

REPO = Path(airinterp.__file__).resolve().parent.parent
DEFAULT_CHECKPOINTS = {"sudoku": "checkpoints/sudoku6_Lx_H", "maze": "checkpoints/maze10_Lx_H"}
TASKS = tuple(DEFAULT_CHECKPOINTS)


@dataclass
class AnalysisInputs:
    model: HookedAIR
    ds: PuzzleDataset
    indices: np.ndarray
    checkpoint: Path
    data: Path
    seed: int
    n_act: int

    def config(self) -> dict:
        """What ``config.json`` records: where everything came from and which puzzles ran."""
        from importlib.metadata import PackageNotFoundError, version

        import torch

        try:
            tl_version = version("transformer_lens")
        except PackageNotFoundError:
            tl_version = "unknown"

        card = _card(self.checkpoint)
        return {
            "checkpoint": str(self.checkpoint), "variant": self.model.config.variant, "task": self.model.config.task,
            "model_config": self.model.config.model_dump(),
            "checkpoint_card_steps": card.get("steps"),
            "data": str(self.data), "split": self.ds.split, "data_fingerprint": self.ds.fingerprint(),
            "n_split": self.ds.n_examples, "seed": self.seed, "n_puzzles": len(self.indices),
            "puzzle_indices": [int(i) for i in self.indices], "n_act": self.n_act,
            "device": str(self.model.device),
            "versions": {"airinterp": airinterp.__version__, "torch": torch.__version__,
                         "transformer_lens": tl_version},
        }  # fmt: skip


def _card(checkpoint: Path) -> dict:
    d = checkpoint if checkpoint.is_dir() else checkpoint.parent
    try:
        return json.loads((d / "card.json").read_text())
    except (OSError, ValueError):
        return {}


def _resolve(path: str, checkpoint: Path) -> Path | None:
    p = Path(path)
    if p.is_absolute():
        return p if p.exists() else None
    d = checkpoint if checkpoint.is_dir() else checkpoint.parent
    for base in (Path.cwd(), REPO, d.parent.parent, d):
        if (base / p).exists():
            return base / p
    return None


def open_inputs(
    task: str | None = None,
    checkpoint: "str | Path | None" = None,
    data: "str | Path | None" = None,
    *,
    n_puzzles: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    n_act: int | None = None,
) -> AnalysisInputs:
    """Load and check everything an analysis needs; ValueError (one line) on bad input."""
    if task is not None and task not in TASKS:
        raise ValueError(f"--task {task!r}: expected one of {', '.join(TASKS)}")
    if checkpoint is None:
        checkpoint = REPO / DEFAULT_CHECKPOINTS[task or "sudoku"]
        if not checkpoint.exists():
            raise ValueError(f"--checkpoint: the shipped default {checkpoint} is not here (an installed copy "
                             "without the repository?); pass --checkpoint")  # fmt: skip
    checkpoint = Path(checkpoint)
    model = airinterp.load(checkpoint, device=device)
    c = model.config
    if c.task is None:
        raise ValueError(f"--checkpoint {checkpoint}: the model's task is unknown (vocab {c.vocab_size})")
    if task is not None and c.task != task:
        raise ValueError(f"--checkpoint {checkpoint} is a {c.task} model but --task is {task}")
    if data is None:
        eval_data = _card(checkpoint).get("eval_data")
        found = _resolve(eval_data, checkpoint) if eval_data else None
        if found is None:
            raise ValueError(
                f"--data: not given and {'the card of ' + str(checkpoint) + ' names no test data' if not eval_data else 'the test data its card names (' + eval_data + ') is not here'}; "
                "pass --data DATASET_DIR"
            )  # fmt: skip
        data = found
    data = Path(data)
    from airinterp.train.evaluate import check_fits

    ds = PuzzleDataset(data, "test")
    check_fits(model, ds)
    n_act = c.halt_max_steps if n_act is None else n_act
    if isinstance(n_act, bool) or not isinstance(n_act, int) or n_act < 1:
        raise ValueError(f"--n-act must be >= 1, got {n_act!r}")
    indices = sample_puzzles(ds.n_examples, n_puzzles, seed)
    return AnalysisInputs(model=model, ds=ds, indices=indices, checkpoint=checkpoint, data=data, seed=seed, n_act=n_act)
