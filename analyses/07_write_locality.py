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
# # Causal locality of writes (beyond the paper)
#
# The paper measures where L- and H-updates *attend*; this measures where they *carry a change*.
# After each update of one ACT step, one seeded non-given cell of the state it wrote is perturbed
# (seeded noise, or another puzzle's value); the rollout goes on and every cell's output at the next
# updates is compared with the clean run, grouped by the task's geometry around the perturbed cell.
# Does an L-update write more locally than an H-update?

# %% tags=["parameters"]
TASK = "sudoku"
CHECKPOINT = None  # None: the shipped default for TASK; e.g. "checkpoints/sudoku6_Lx_Hx" (the control)
N_PUZZLES = 100
SEED = 0
ACT = 1
SOURCE = "noise"  # or "other": another puzzle's value at the cell
NOISE = 0.1  # relative to the cell's norm

# %%
import plotly.io as pio

from airinterp.analysis.inputs import open_inputs
from airinterp.analysis.write_locality import run_write_locality
from airinterp.report import figures

pio.renderers.default = "plotly_mimetype+notebook"

inp = open_inputs(TASK, CHECKPOINT, n_puzzles=N_PUZZLES, seed=SEED)
res = run_write_locality(inp.model, inp.ds, inp.indices, inp.rules, act=ACT, source=SOURCE, noise=NOISE, seed=SEED)
figures.write_locality_lines(res.summary, f"one cell perturbed after each update of ACT step {ACT}")

# %%
figures.locality_bars(res.locality, "locality of the update that reads the perturbation")

# %% [markdown]
# The paired contrast: the same cell of zL perturbed after L0_0 (read next by an L-update) and
# after L0_1 (read next by H0), on the same puzzles.

# %%
res.contrast
