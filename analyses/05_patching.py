# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Patching across sub-steps
#
# When does each state start to matter? Replace zL or zH, as carried into one ACT step, with
# another puzzle's value and run the rest of the rollout. Then TransformerLens's own patching
# utilities on one update of the rollout, through `UpdateLens`.

# %% tags=["parameters"]
TASK = "sudoku"
CHECKPOINT = None  # None: the shipped default for TASK; or any checkpoint, e.g. "checkpoints/sudoku6_hrm" (HRM) or "checkpoints/sudoku6_trm" (TRM)
N_PUZZLES = 100
SEED = 0

# %%
import plotly.io as pio

from airinterp.analysis.inputs import open_inputs
from airinterp.analysis.patching import UpdateLens, run_patch, state_targets
from airinterp.analysis.suite import (  # no last batch of one: each puzzle needs a donor
    patch_acts,
    patch_batch_size,
)
from airinterp.report import figures

# figures: interactive in Jupyter, plus an HTML copy (plotly.js inlined once) for viewers without plotly's renderer
pio.renderers.default = "plotly_mimetype+notebook"

inp = open_inputs(TASK, CHECKPOINT, n_puzzles=N_PUZZLES, seed=SEED)
model = inp.model
acts = patch_acts(model.config.halt_max_steps)  # every step of a short rollout; 0, 1, 2, 4, 8, ... and the last of a long one
targets = state_targets(model, "zL", acts) + state_targets(model, "zH", acts)
res = run_patch(model, inp.ds, inp.indices, targets, source="other", batch_size=patch_batch_size(N_PUZZLES, 64), seed=SEED)
res.summary[["target", "exact_clean", "exact_patched", "exact_delta", "exact_delta_ci_low", "exact_delta_ci_high", "output_cells_changed"]]

# %%
figures.patch_curve(res.summary, "exact", f"{model.config.label}: exact accuracy after patching each state")

# %% [markdown]
# ## TransformerLens activation patching on the last H-update
# `UpdateLens` presents one update as a `blocks.{i}` model, so `generic_activation_patch` runs unchanged:
# the residual stream of one puzzle patched into another's, per layer and position.

# %%
from transformer_lens.patching import generic_activation_patch, layer_pos_patch_setter

from airinterp.analysis.run import puzzle_batches

last = model.config.halt_max_steps - 1
lens = UpdateLens(model, f"act.{last}.H1")
pair = next(puzzle_batches(model, inp.ds, inp.indices[:2], 2)).inputs  # two test puzzles
clean_tokens, corrupt_tokens = pair[:1], pair[1:2]
clean_logits, clean_cache = lens.run_with_cache(clean_tokens)
effect = generic_activation_patch(
    lens, corrupt_tokens, clean_cache, lambda out: (out.argmax(-1) == clean_logits.argmax(-1)).float().mean(),
    layer_pos_patch_setter, "resid_pre", index_axis_names=("layer", "pos"))
effect.shape  # [layer, position]: the fraction of output cells that match the clean run
