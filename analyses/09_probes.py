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
# # Probes and their causal test (beyond the paper)
#
# What can be read linearly from the state each update writes, and does the model use it? Linear
# probes (scikit-learn's logistic regression, folds grouped by puzzle) read the solution, whether
# the model's proposal for a cell will still change ("undecided") and, for Sudoku, each cell's
# candidate set; a probe on permuted labels is the control. Then each probe's weight directions
# are mean-ablated in the rollout, beside a random subspace of the same rank: a probe that decodes
# but whose ablation changes nothing downstream is reported as such.

# %% tags=["parameters"]
TASK = "sudoku"
CHECKPOINT = None  # None: the shipped default for TASK; e.g. "checkpoints/sudoku6_Lx_Hx" (the control)
N_PUZZLES = 100
SEED = 0
ACTS = None  # probed ACT steps; None: 0, 1, 2, 4, 8, ... and the last
ABLATE_ACTS = None  # ablated ACT steps; None: 1 and the last
FOLDS = 5

# %%
import plotly.io as pio

from airinterp.analysis.inputs import open_inputs
from airinterp.analysis.probes import run_probes
from airinterp.report import figures

pio.renderers.default = "plotly_mimetype+notebook"

inp = open_inputs(TASK, CHECKPOINT, n_puzzles=N_PUZZLES, seed=SEED)
folds = min(FOLDS, len(inp.indices))
res = run_probes(inp.model, inp.ds, inp.indices, inp.rules, acts=ACTS, ablate_acts=ABLATE_ACTS, folds=folds, seed=SEED)
figures.probe_lines(res.accuracy, "linear probes on the state each update writes")

# %%
res.accuracy[["act", "update", "state", "target", "accuracy", "control", "majority", "selectivity"]]

# %% [markdown]
# The causal test: the output's non-given accuracy when the probe's directions (or a random
# subspace of the same rank) are ablated at one update.

# %%
figures.ablation_bars(res.causal, "output non-given accuracy, probe directions ablated")

# %%
res.causal[["act", "update", "state", "target", "arm", "rank", "probe_acc_clean", "probe_acc_ablated", "refit_acc_ablated",
            "decode_nongiven_delta", "output_nongiven_delta", "output_exact_delta"]]
