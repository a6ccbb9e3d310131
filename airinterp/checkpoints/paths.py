"""A checkpoint on disk as one value: its file, its directory, its card, its name, the shipped defaults.

A checkpoint is named by a directory (a shipped checkpoint, a training run: ``model.safetensors``
or a sharded index inside, ``card.json`` beside it) or by its file. Every caller (load, train,
the analyses, the CLI, the report) asks :class:`Checkpoint` rather than re-deriving these.
"""

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from airinterp.checkpoints.format import CHECKPOINT_FILES, checkpoint_file
from airinterp.errors import InputError

#: the source checkout this package lives in (the shipped checkpoints and data are under it)
REPO = Path(__file__).resolve().parents[2]
#: the shipped default checkpoint of each task, relative to :data:`REPO`
DEFAULT_CHECKPOINTS = {"sudoku": "checkpoints/sudoku6_Lx_H", "maze": "checkpoints/maze10_Lx_H"}


def shown(path: "str | Path") -> str:
    """``path`` as shown to a reader (reports, titles, messages): relative to the source checkout
    when inside it, so outputs carry no machine's layout; as given otherwise."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def locate(path: "str | Path") -> Path:
    """``path``; a relative one that is not under the working directory but is under the source
    checkout (``checkpoints/sudoku6_Lx_H`` from a notebook's folder): that one instead."""
    p = Path(path)
    if not p.is_absolute() and not p.exists() and (REPO / p).exists():
        return REPO / p
    return p


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint path as given (a directory or a ``.safetensors``/index file)."""

    path: Path

    def __init__(self, path: "str | Path | Checkpoint") -> None:
        object.__setattr__(self, "path", locate(path.path if isinstance(path, Checkpoint) else path))

    @classmethod
    def default(cls, task: str) -> "Checkpoint":
        """The shipped default of ``task``; a ValueError if this is an installed copy without them."""
        if task not in DEFAULT_CHECKPOINTS:
            raise InputError(f"task {task!r}: expected one of {', '.join(DEFAULT_CHECKPOINTS)}")
        ck = cls(REPO / DEFAULT_CHECKPOINTS[task])
        if not ck.path.exists():
            raise InputError(f"checkpoint: the shipped default {ck.path} is not here (an installed copy without the "
                             "repository?); name a checkpoint")  # fmt: skip
        return ck

    @property
    def dir(self) -> Path:
        """The directory holding the weights and the card."""
        return self.path if self.path.is_dir() else self.path.parent

    @property
    def file(self) -> Path:
        """The weights file: ``model.safetensors`` or a sharded index (the path itself if a file)."""
        return checkpoint_file(self.path)

    @property
    def key(self) -> Path:
        """Identity: a directory and the weights file inside it are one checkpoint."""
        p = self.path.resolve()
        return p.parent if p.name in CHECKPOINT_FILES else p

    @property
    def name(self) -> str:
        """A label: the directory's name, or a file's stem unless it is one of the standard names."""
        if self.path.is_dir() or self.path.name in CHECKPOINT_FILES:
            return self.dir.name
        return self.path.name.removesuffix(".safetensors")

    @cached_property
    def card(self) -> dict:
        """``card.json`` beside the weights ({} when there is none or it is unreadable)."""
        return read_card(self.dir / "card.json")

    def resolve(self, relative: str) -> Path | None:
        """A path a card names (``eval_data``): absolute, or relative to the card: its directory,
        then the root of the layout it sits in (``<root>/checkpoints/<name>/card.json``, the
        checkpoint's grandparent), then the source checkout; never the working directory (a
        directory of one's own with the same relative path must not stand in). None if none exists."""
        p = Path(relative)
        if p.is_absolute():
            return p if p.exists() else None
        for base in (self.dir, self.dir.parent.parent, REPO):
            if (base / p).exists():
                return base / p
        return None

    def test_data(self) -> Path:
        """The test data the card names (``eval_data``, :meth:`resolve`d); an InputError saying
        why when the card names none or it is not here."""
        eval_data = self.card.get("eval_data")
        found = self.resolve(eval_data) if eval_data else None
        if found is None:
            why = f"the card of {self} names no test data" if not eval_data else f"the test data its card names ({eval_data}) is not here"
            raise InputError(f"data: not given and {why}; name a dataset directory")
        return found

    def load(self, *, device=None, dtype: str | None = None):
        """The model (:func:`airinterp.checkpoints.format.load`)."""
        from airinterp.checkpoints.format import CheckpointError, load

        model = load(self.path, device=device, dtype=dtype)
        card = self.card  # checked when read: a wrongly typed field fails here, before any work
        said = {k: card.get(k) for k in ("variant", "family")}
        said |= {f"config.{k}": (card.get("config") or {}).get(k) for k in ("variant", "family", "task", "hidden_size")
                 if isinstance(card.get("config"), dict)}  # fmt: skip
        for key, value in said.items():
            actual = getattr(model.config, key.removeprefix("config."))
            if key.endswith("variant") and isinstance(value, str):
                from airinterp.model.config import normalize_variant

                try:
                    value = normalize_variant(value)  # the trainer's card keeps the name as given (air_1net_Lx_Hx)
                except ValueError:
                    pass
            if value is not None and value != actual:
                raise CheckpointError(f"{self.dir / 'card.json'}: {key} {value!r}, but the weights' signed config says {actual!r}; "
                                      "the card describes another model")  # fmt: skip
        return model

    def __str__(self) -> str:
        return str(self.path)


#: the card fields airinterp reads, with the JSON types they must have (others are documentation)
CARD_FIELDS: dict[str, tuple[type, ...]] = {
    "steps": (int,), "wall_time_s": (int, float), "variant": (str,), "family": (str,), "preset": (str,), "data": (str,),
    "device": (str,), "eval_data": (str,), "final_eval": (dict,), "config": (dict,), "run": (dict,), "budgets": (list,),
    "cumulative_steps": (int,), "cumulative_wall_time_s": (int, float),
}  # fmt: skip


def read_card(path: Path) -> dict:
    """A card file as a dict ({} when missing or not JSON: a card is documentation). A card whose
    fields airinterp reads (:data:`CARD_FIELDS`) have the wrong type is a CheckpointError naming
    the field, when it is read, before any work (it failed after a whole report)."""
    from airinterp.checkpoints.format import CheckpointError

    try:
        card = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(card, dict):
        return {}
    for key, types in CARD_FIELDS.items():
        v = card.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, types)):
            raise CheckpointError(f"{path}: field {key!r} is {type(v).__name__} {v!r:.40}; expected {' or '.join(t.__name__ for t in types)}")
    for key, v in (card.get("final_eval") or {}).items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise CheckpointError(f"{path}: field 'final_eval.{key}' is {type(v).__name__} {v!r:.40}; expected a number")
    budgets = card.get("budgets") or []
    if not all(isinstance(b, dict) for b in budgets):
        raise CheckpointError(f"{path}: field 'budgets' must be a list of objects")
    return card
