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
# # Decoded rollouts and content changes (AIR_SPEC 4.a-4.b, Figs 2-5)
#
# Both states decoded after every update; content changes count cells whose decoded token moves
# from one non-mask token to another. The paper's zH is a committed proposal and its zL keeps
# BLANK cells that move; we measure whether ours does.

# %% tags=["parameters"]
TASK = "sudoku"
CHECKPOINT = None  # None: the shipped default for TASK; or any checkpoint, e.g. "checkpoints/sudoku6_hrm" (HRM) or "checkpoints/sudoku6_trm" (TRM)
N_PUZZLES = 100
SEED = 0

# %%
import plotly.io as pio

from airinterp.analysis.inputs import open_inputs
from airinterp.analysis.suite import decode_section
from airinterp.report import figures

# figures: interactive in Jupyter, plus an HTML copy (plotly.js inlined once) for viewers without plotly's renderer
pio.renderers.default = "plotly_mimetype+notebook"

inp = open_inputs(TASK, CHECKPOINT, n_puzzles=N_PUZZLES, seed=SEED)  # the shipped checkpoint and its test split
model, c, rules = inp.model, inp.model.config, inp.rules
section = decode_section(inp)  # decoded rollouts, content changes, per-sub-step means
rollout = section.rollout
rollout.zL.shape  # [puzzle, sub-step, cell] token ids

# %%
substeps = section.substeps
cols = ["undecided_fraction", "content_changes", "cell_accuracy"] + (["blank_fraction"] if rules.blank is not None else [])
figures.substep_lines(substeps, cols, f"{c.label}: per sub-step means over {len(inp.indices)} puzzles")

# %%
figures.decode_grids(rollout.frame(puzzles=1), rules.roles(), rules.side, rules.token_names, int(rollout.indices[0]), section.updates)

# %% [markdown]
# ## Content changes per puzzle
# Reference mode (the paper's: Sudoku BLANK / Maze path are masks) and harmonized mode (the undecided
# tokens are masks), over all cells and over non-given cells.

# %%
changes = section.changes
changes.groupby("state")[["content_changes", "content_changes_harmonized", "content_changes_nongiven", "mask_flips", "content_per_updated"]].mean()
