"""The reference's on-disk puzzle dataset format (spec 1.6) and its batching (spec 1.7).

::

    <dir>/identifiers.json                     ["<blank>"]
    <dir>/{train,test}/dataset.json            metadata (reference PuzzleDatasetMetadata keys)
    <dir>/{train,test}/all__inputs.npy         uint8 [n_examples, seq_len]
    <dir>/{train,test}/all__labels.npy         uint8 [n_examples, seq_len]
    <dir>/{train,test}/all__puzzle_identifiers.npy   int32 [n_puzzles]       all 0
    <dir>/{train,test}/all__puzzle_indices.npy       int32 [n_puzzles + 1]   0, 1, ..., n_examples
    <dir>/{train,test}/all__group_indices.npy        int32 [n_groups + 1]    first puzzle of each group
    <dir>/airinterp_build.json                 how we built it (seed, options, sources, statistics)

Each puzzle holds one example; a group is an original puzzle with its augmentations. Reading
memory-maps inputs and labels. :meth:`PuzzleDataset.train_batches` reproduces the reference's
sampling stream exactly (Philox seeded ``seed + iteration``, the same draws in the same order).
"""

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IGNORE_LABEL_ID = -100
FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")


def write_split(
    root: "str | Path",
    split: str,
    inputs: np.ndarray,
    labels: np.ndarray,
    group_sizes: Sequence[int],
    vocab_size: int,
) -> Path:
    """Write one split; ``group_sizes[g]`` consecutive examples form group g."""
    root = Path(root)
    out = root / split
    out.mkdir(parents=True, exist_ok=True)
    inputs = np.ascontiguousarray(inputs, dtype=np.uint8)
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    if inputs.shape != labels.shape or inputs.ndim != 2:
        raise ValueError(f"inputs {inputs.shape} and labels {labels.shape} must both be [n_examples, seq_len]")
    n = inputs.shape[0]
    if sum(group_sizes) != n:
        raise ValueError(f"group sizes add up to {sum(group_sizes)}, not the {n} examples")
    arrays = {
        "inputs": inputs,
        "labels": labels,
        "puzzle_identifiers": np.zeros(n, np.int32),
        "puzzle_indices": np.arange(n + 1, dtype=np.int32),
        "group_indices": np.concatenate([[0], np.cumsum(group_sizes)]).astype(np.int32),
    }
    for name, arr in arrays.items():
        np.save(out / f"all__{name}.npy", arr)
    meta = {
        "pad_id": 0,
        "ignore_label_id": 0,
        "blank_identifier_id": 0,
        "vocab_size": int(vocab_size),
        "seq_len": int(inputs.shape[1]),
        "num_puzzle_identifiers": 1,
        "total_groups": len(group_sizes),
        "mean_puzzle_examples": 1,
        "sets": ["all"],
    }
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    (root / "identifiers.json").write_text(json.dumps(["<blank>"]) + "\n")
    return out


@dataclass
class Batch:
    inputs: np.ndarray  # int32 [batch, seq_len]
    labels: np.ndarray  # int32 [batch, seq_len], IGNORE_LABEL_ID where unlabelled or padding
    puzzle_identifiers: np.ndarray  # int32 [batch]
    n_real: int  # rows before padding


class PuzzleDataset:
    """One split of a dataset directory, memory-mapped."""

    def __init__(self, root: "str | Path", split: str = "train") -> None:
        self.root = Path(root)
        self.split = split
        meta_path = self.root / split / "dataset.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: not a puzzle dataset split (no dataset.json)")
        self.metadata = json.loads(meta_path.read_text())
        for key in ("vocab_size", "seq_len", "sets", "pad_id", "ignore_label_id"):
            if key not in self.metadata:
                raise ValueError(f"{meta_path}: missing metadata key {key!r}")
        sets = self.metadata["sets"]
        if sets != ["all"]:
            raise ValueError(f"{meta_path}: only the single set 'all' is supported, got {sets}")
        self.data = {
            f: np.load(self.root / split / f"all__{f}.npy", mmap_mode="r" if f in ("inputs", "labels") else None)
            for f in FIELDS
        }
        n, seq = self.data["inputs"].shape
        if seq != self.metadata["seq_len"] or self.data["labels"].shape != (n, seq):
            raise ValueError(f"{self.root / split}: arrays do not match seq_len {self.metadata['seq_len']}")

    @property
    def n_examples(self) -> int:
        return int(self.data["inputs"].shape[0])

    @property
    def n_groups(self) -> int:
        return int(self.data["group_indices"].size - 1)

    def _collate(self, idx: np.ndarray, puzzle_idx: np.ndarray, size: int) -> Batch:
        inputs = np.asarray(self.data["inputs"][idx], dtype=np.int32)
        labels = np.asarray(self.data["labels"][idx], dtype=np.int32)
        ignore = self.metadata["ignore_label_id"]
        if ignore is not None:
            labels[labels == ignore] = IGNORE_LABEL_ID
        ids = self.data["puzzle_identifiers"][puzzle_idx].astype(np.int32)
        n_real = inputs.shape[0]
        if n_real < size:
            pad = size - n_real
            inputs = np.pad(inputs, ((0, pad), (0, 0)), constant_values=self.metadata["pad_id"])
            labels = np.pad(labels, ((0, pad), (0, 0)), constant_values=IGNORE_LABEL_ID)
            ids = np.pad(ids, (0, pad), constant_values=self.metadata.get("blank_identifier_id", 0))
        return Batch(inputs, labels, ids, n_real)

    def train_batches(
        self, global_batch_size: int, seed: int, iteration: int, epochs_per_iter: int = 1,
        rank: int = 0, world_size: int = 1,
    ) -> Iterator[Batch]:  # fmt: skip
        """The reference's training stream for ``iteration`` (1, 2, ...): ``epochs_per_iter``
        permutations of the groups from ``Philox(seed + iteration)``, one puzzle drawn per group,
        full global batches only (the short last one is dropped), this rank's contiguous slice."""
        if global_batch_size % world_size:
            raise ValueError(f"global batch {global_batch_size} is not a multiple of world size {world_size}")
        local = global_batch_size // world_size
        rng = np.random.Generator(np.random.Philox(seed=seed + iteration))
        order = np.concatenate([rng.permutation(self.n_groups) for _ in range(epochs_per_iter)])
        groups = self.data["group_indices"]
        starts = self.data["puzzle_indices"]
        pos = 0
        while pos + global_batch_size <= order.size:
            puzzles = np.array(
                [rng.integers(groups[g], groups[g + 1]) for g in order[pos : pos + global_batch_size]], dtype=np.int64
            )
            pos += global_batch_size
            examples = starts[puzzles]  # one example per puzzle
            mine = slice(rank * local, (rank + 1) * local)
            yield self._collate(examples[mine], puzzles[mine], local)

    def test_batches(self, global_batch_size: int, rank: int = 0, world_size: int = 1) -> Iterator[Batch]:
        """Examples in file order; a short last batch is padded (PAD inputs, IGNORE labels)."""
        local = global_batch_size // world_size
        starts = self.data["puzzle_indices"]
        for start in range(0, self.n_examples, global_batch_size):
            end = min(self.n_examples, start + global_batch_size)
            lo, hi = start + rank * local, min(start + (rank + 1) * local, end)
            idx = np.arange(lo, max(lo, hi))
            puzzles = np.searchsorted(starts, idx, side="right") - 1
            yield self._collate(idx, puzzles, local)
