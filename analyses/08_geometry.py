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
# # Trajectories and dimensionality (beyond the paper)
#
# How many directions does each state use, and how does that compare with the same architecture
# before training? The participation ratio PR = tr(S)^2 / ||S||_F^2 of the covariance S of a state's
# cell vectors (its d_model vector at each cell) counts the effective dimensions: 1 for one
# direction, d_model for isotropic. The HRM paper reports PR(zH) 89.95 vs PR(zL) 30.22 for its
# trained model (d_model 512), 42.09 / 40.75 untrained. Then both states on one shared PCA basis,
# and perturbation basins: how much noise a state takes before the answer changes.

# %% tags=["parameters"]
TASK = "sudoku"
CHECKPOINT = None  # None: the shipped default for TASK; e.g. "checkpoints/sudoku6_Lx_Hx" (the control)
N_PUZZLES = 100
SEED = 0
BASIN_ACT = 1  # the basins perturb the states as carried into this ACT step
SCALES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)  # noise size / each cell's norm

# %%
import pandas as pd
import plotly.io as pio

from airinterp.analysis.geometry import run_basins, run_geometry, untrained_like
from airinterp.analysis.inputs import open_inputs
from airinterp.report import figures

pio.renderers.default = "plotly_mimetype+notebook"

inp = open_inputs(TASK, CHECKPOINT, n_puzzles=N_PUZZLES, seed=SEED)
trained = run_geometry(inp.model, inp.ds, inp.indices)
untrained = run_geometry(untrained_like(inp.model, SEED), inp.ds, inp.indices, model_kind="untrained")
pd.concat([trained.state_pr(SEED), untrained.state_pr(SEED)], ignore_index=True)

# %%
pr = pd.concat([trained.pr_summary(SEED), untrained.pr_summary(SEED)], ignore_index=True)
figures.participation_lines(pr, "participation ratio per sub-step (grey: untrained)")

# %% [markdown]
# Both states on one basis fitted to every sub-step of both: each puzzle's cell-mean state.

# %%
trained.components()

# %%
figures.trajectory_plot(trained.trajectories(), "zL and zH on one shared PCA basis")

# %% [markdown]
# Basins: seeded noise of growing size on each state as carried into ACT step `BASIN_ACT`; the
# share of puzzles whose answer at the trained length is unchanged.

# %%
basins = run_basins(inp.model, inp.ds, inp.indices, inp.rules, act=BASIN_ACT, scales=SCALES, seed=SEED)
figures.basin_curves(basins.summary, f"noise on the states carried into ACT step {BASIN_ACT}")

# %%
basins.summary[["state", "scale", "unchanged", "unchanged_ci_low", "unchanged_ci_high", "cells_changed", "exact", "exact_clean"]]
