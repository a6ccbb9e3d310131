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

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from airinterp.errors import InputError

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
        raise InputError(f"inputs {inputs.shape} and labels {labels.shape} must both be [n_examples, seq_len]")
    n = inputs.shape[0]
    if n and max(int(inputs.max()), int(labels.max())) >= vocab_size:
        raise InputError(f"token ids up to {max(int(inputs.max()), int(labels.max()))} do not fit the vocabulary size {vocab_size}")
    if sum(group_sizes) != n:
        raise InputError(f"group sizes add up to {sum(group_sizes)}, not the {n} examples")
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


class DatasetError(InputError):
    """A dataset directory that is not in the format, or whose arrays are inconsistent."""


_SHAPES = {  # field -> shape in terms of (n_examples, seq_len, n_puzzles, n_groups)
    "inputs": ("n", "seq"), "labels": ("n", "seq"), "puzzle_identifiers": ("p",),
    "puzzle_indices": ("p+1",), "group_indices": ("g+1",),
}  # fmt: skip


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy file, checked against its size before anything is mapped."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing (a dataset split has all__{{{','.join(FIELDS)}}}.npy)")
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except Exception as err:  # numpy raises ValueError or OSError for anything that is not .npy
        raise DatasetError(f"{path}: not a .npy array file ({err})") from None
    if dtype.hasobject:
        raise DatasetError(f"{path}: holds Python objects; expected an integer array")
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < need:
        raise DatasetError(f"{path}: truncated ({size} bytes, its header needs {need})")
    return tuple(int(d) for d in shape), dtype


class PuzzleDataset:
    """One split of a dataset directory, memory-mapped, checked on opening: the metadata's keys
    and types, every array's presence, dtype (integers), shape and length, token ids inside the
    vocabulary, labels inside it or the ignore id, puzzle ids inside the identifier table, and
    the index arrays. A problem is a :class:`DatasetError` naming the file and field."""

    def __init__(self, root: "str | Path", split: str = "train") -> None:
        self.root = Path(root)
        self.split = split
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such dataset directory")
        meta_path = self.root / split / "dataset.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: not a puzzle dataset split (no dataset.json)")
        try:
            self.metadata = json.loads(meta_path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise DatasetError(f"{meta_path}: not valid JSON ({err})") from None
        if not isinstance(self.metadata, dict):
            raise DatasetError(f"{meta_path}: expected a JSON object")
        for key in ("vocab_size", "seq_len", "sets", "pad_id", "ignore_label_id"):
            if key not in self.metadata:
                raise DatasetError(f"{meta_path}: missing metadata key {key!r}")
        m = self.metadata

        def whole(key: str, lo: int, optional: bool = False) -> None:
            v = m.get(key)
            if optional and v is None:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise DatasetError(f"{meta_path}: {key} must be an integer >= {lo}, got {v!r}")

        whole("vocab_size", 2)
        whole("seq_len", 1)
        whole("pad_id", 0)
        whole("ignore_label_id", 0, optional=True)
        whole("num_puzzle_identifiers", 1, optional="num_puzzle_identifiers" not in m)
        whole("blank_identifier_id", 0, optional=True)
        if m["sets"] != ["all"]:
            raise DatasetError(f"{meta_path}: only the single set 'all' is supported, got {m['sets']}")
        files = {f: self.root / split / f"all__{f}.npy" for f in FIELDS}
        headers = {f: _npy_header(path) for f, path in files.items()}
        for f, (shape, dtype) in headers.items():
            if not np.issubdtype(dtype, np.integer):
                raise DatasetError(f"{files[f]}: dtype {dtype}; expected integers (token ids and indices are never {dtype.kind == 'f' and 'floats' or dtype})")
            if len(shape) != len(_SHAPES[f]):
                raise DatasetError(f"{files[f]}: shape {shape}; expected {len(_SHAPES[f])} dimension(s)")
        n, seq = headers["inputs"][0]
        n_puzzles, n_groups = headers["puzzle_identifiers"][0][0], headers["group_indices"][0][0] - 1
        expect = {"inputs": (n, m["seq_len"]), "labels": (n, m["seq_len"]), "puzzle_identifiers": (n_puzzles,),
                  "puzzle_indices": (n_puzzles + 1,), "group_indices": (n_groups + 1,)}  # fmt: skip
        for f, want in expect.items():
            if headers[f][0] != want:
                raise DatasetError(f"{files[f]}: shape {headers[f][0]}; expected {want} (seq_len {m['seq_len']} in dataset.json)")
        if n == 0 or n_puzzles == 0 or n_groups < 1:
            raise DatasetError(f"{self.root / split}: the split holds no examples")
        self.data = {f: np.load(files[f], mmap_mode="r" if f in ("inputs", "labels") else None) for f in FIELDS}
        self._check_values(files)

    def _check_values(self, files: dict[str, Path]) -> None:
        m, d = self.metadata, self.data
        V = m["vocab_size"]

        def outside(a: np.ndarray, lo: int, hi: int, allowed: "int | None" = None) -> list[int]:
            bad = (a < lo) | (a >= hi)
            if allowed is not None:
                bad &= a != allowed
            return sorted({int(v) for v in np.asarray(a)[bad].reshape(-1)[:10000]})[:8] if bad.any() else []

        for f, allowed in (("inputs", None), ("labels", m.get("ignore_label_id"))):
            bad = outside(d[f], 0, V, allowed)
            if bad:
                also = f" or ignore_label_id {allowed}" if allowed is not None else ""
                raise DatasetError(f"{files[f]}: values {bad} lie outside the vocabulary [0, {V}){also}")
        n_ids = m.get("num_puzzle_identifiers", 1)
        bad = outside(d["puzzle_identifiers"], 0, n_ids)
        if bad:
            raise DatasetError(f"{files['puzzle_identifiers']}: puzzle ids {bad} lie outside [0, {n_ids}) (num_puzzle_identifiers)")
        for f, top in (("puzzle_indices", self.n_examples), ("group_indices", int(d["puzzle_identifiers"].shape[0]))):
            a = d[f]
            if a[0] != 0 or a[-1] != top or (np.diff(a) < 1).any():
                raise DatasetError(f"{files[f]}: must rise strictly from 0 to {top}, got {a[:4].tolist()}...{a[-2:].tolist()}")
        meta_path = self.root / self.split / "dataset.json"
        # (total_puzzles is not checked: the reference builders write the group count there)
        if "total_groups" in m and m["total_groups"] != self.n_groups:  # taken on trust, it would misstate the split
            raise DatasetError(f"{meta_path}: total_groups {m['total_groups']!r}, but the arrays hold {self.n_groups}")
        ignore = m.get("ignore_label_id")
        if ignore is not None and ignore < V and ignore != m["pad_id"] and (np.asarray(d["inputs"]) == ignore).any():
            raise DatasetError(f"{meta_path}: ignore_label_id {ignore} is a token the inputs use (not the pad id "
                               f"{m['pad_id']}); labels equal to it would be dropped from the loss and the accuracy")  # fmt: skip

    def check_fits(self, seq_len: int, vocab_size: int) -> None:
        """The puzzles are ``seq_len`` cells over ``vocab_size`` tokens (a model's); InputError otherwise."""
        if self.metadata["seq_len"] != seq_len or self.metadata["vocab_size"] != vocab_size:
            raise DatasetError(
                f"{self.root}: seq_len {self.metadata['seq_len']} / vocab {self.metadata['vocab_size']} do not match the "
                f"model's {seq_len} / {vocab_size}"
            )

    def fingerprint(self) -> str:
        """sha256 of this split's metadata and arrays: the same data, wherever it lies."""
        h = hashlib.sha256(json.dumps(self.metadata, sort_keys=True).encode())
        for f in FIELDS:
            a = np.ascontiguousarray(self.data[f])
            h.update(f"\0{f}\0{a.dtype.str}\0{a.shape}\0".encode())
            h.update(memoryview(a).cast("B"))
        return h.hexdigest()

    @property
    def n_examples(self) -> int:
        return int(self.data["inputs"].shape[0])

    @property
    def built_task(self) -> str | None:
        """The task an ``airinterp data`` build made this dataset for (its ``airinterp_build.json``:
        sudoku builds record ``aug``, maze builds ``tie_break``); None for other datasets."""
        try:
            c = json.loads((self.root / "airinterp_build.json").read_text())["config"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return "sudoku" if "aug" in c else "maze" if "tie_break" in c else None

    def distinct(self) -> np.ndarray:
        """The examples whose inputs no earlier example repeats (sorted indices): the split's
        distinct puzzles, what a sample draws from (a repeat is not an independent puzzle)."""
        if not hasattr(self, "_distinct"):
            rows = np.ascontiguousarray(self.data["inputs"]).reshape(self.n_examples, -1)
            _, first = np.unique(rows, axis=0, return_index=True)
            self._distinct = np.sort(first)
        return self._distinct

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
            raise InputError(f"global batch {global_batch_size} is not a multiple of world size {world_size}")
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

    def batches_of(self, indices: np.ndarray, batch_size: int) -> Iterator[Batch]:
        """The examples ``indices`` in that order, ``batch_size`` at a time (a short last batch padded)."""
        starts = self.data["puzzle_indices"]
        for lo in range(0, len(indices), batch_size):
            idx = np.asarray(indices[lo : lo + batch_size], dtype=np.int64)
            yield self._collate(idx, np.searchsorted(starts, idx, side="right") - 1, batch_size)

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
