"""Checkpoints on disk: our format (:mod:`.format`), a checkpoint as one value (:mod:`.paths`),
reference import (:mod:`.reference`) and verification against reference dumps (:mod:`.verify`)."""

from airinterp.checkpoints.format import (
    CHECKPOINT_FILES,
    INDEX,
    CheckpointError,
    checkpoint_file,
    digest,
    load,
    load_into,
    read_safetensors,
    read_sharded,
    save,
    save_sharded,
)
from airinterp.checkpoints.paths import DEFAULT_CHECKPOINTS, REPO, Checkpoint, read_card
from airinterp.checkpoints.reference import import_reference, to_reference_state_dict, torch_load_weights_only

__all__ = [
    "CHECKPOINT_FILES", "DEFAULT_CHECKPOINTS", "INDEX", "REPO", "Checkpoint", "CheckpointError", "checkpoint_file",
    "digest", "import_reference", "load", "load_into", "read_card", "read_safetensors", "read_sharded", "save",
    "save_sharded", "to_reference_state_dict", "torch_load_weights_only",
]  # fmt: skip
