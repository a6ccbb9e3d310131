"""The AIR model: config, schedule, hook names, HookedAIR and checkpoints."""

from airinterp.model.air import AIROutput, Carry, HookedAIR
from airinterp.model.config import VARIANTS, AIRConfig, UnknownVariantError
from airinterp.model.hooks import Address, glob, hook_catalogue, hook_names, read_only, select
from airinterp.model.schedule import Update, act_schedule

__all__ = [
    "AIRConfig", "AIROutput", "Address", "Carry", "HookedAIR", "UnknownVariantError", "Update",
    "VARIANTS", "act_schedule", "glob", "hook_catalogue", "hook_names", "read_only", "select",
]  # fmt: skip
