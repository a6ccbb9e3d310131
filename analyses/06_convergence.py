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
# # Convergence: layer lens, commit points, fixed points (beyond the paper)
#
# The rollout runs past its trained length (twice, by default). After every block of every update the
# residual stream is decoded through the LM head (a layer lens with our hook names); each cell's
# **commit point** is where a state starts decoding the model's answer and keeps it; the
# **fixed-point residual** ||f(z) - z|| / ||z|| says whether an update still moves its state.
# Questions: at which update and block does the answer appear, in zH and in zL? Do wrong answers stay
# trapped when the rollout goes on, or escape?

# %% tags=["parameters"]
TASK = "sudoku"
CHECKPOINT = None  # None: the shipped default for TASK; e.g. "checkpoints/sudoku6_Lx_Hx" (the control) or "checkpoints/sudoku6_hrm"
N_PUZZLES = 100
SEED = 0
LENGTH = 2  # rollout length in multiples of the trained halt_max_steps

# %%
import plotly.io as pio

from airinterp.analysis.convergence import run_convergence
from airinterp.analysis.inputs import open_inputs
from airinterp.report import figures

pio.renderers.default = "plotly_mimetype+notebook"

inp = open_inputs(TASK, CHECKPOINT, n_puzzles=N_PUZZLES, seed=SEED)
model = inp.model
res = run_convergence(model, inp.ds, inp.indices, inp.rules, n_act=LENGTH * model.config.halt_max_steps)
lens = res.lens_summary(SEED)
figures.lens_heatmap(lens, "accuracy", f"{model.config.label}: layer lens, non-given accuracy", res.trained_substeps)

# %% [markdown]
# Where each state commits to the answer (the output at the trained length), as the share of
# non-given cells committed by each sub-step; the table gives the mean commit sub-step, the share
# that never commits and which block the commit happens in.

# %%
commit = res.commit_summary(SEED)
figures.commit_curves(commit, "cells committed to the answer")

# %%
commit[commit.substep == -1][["state", "metric", "mean", "ci_low", "ci_high", "n"]]

# %% [markdown]
# Fixed points: puzzles right at the trained length (solid) and wrong (dotted). Past the trained
# length, do wrong answers escape?

# %%
figures.residual_lines(res.residual_summary(SEED), f"fixed-point residuals over {res.n_act} ACT steps", res.trained_act)

# %%
res.escape_summary()
