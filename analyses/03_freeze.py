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
# # State-freeze interventions (AIR_SPEC 4.c, Figs 6-7)
#
# Freezing a state makes each of its updates return its input; the other state is measured,
# paired with the normal rollout of the same puzzles. The paper: on Sudoku, freezing zH lowers
# zL's content changes and freezing zL raises zH's; on Maze both raise.

# %% tags=["parameters"]
TASK = "sudoku"
CHECKPOINT = None  # None: the shipped default for TASK; or any checkpoint, e.g. "checkpoints/sudoku6_hrm" (HRM) or "checkpoints/sudoku6_trm" (TRM)
N_PUZZLES = 100
SEED = 0
FROM_ACT = 1  # a second experiment freezes from this ACT step on

# %%
import plotly.io as pio

from airinterp.analysis.freeze import Freeze, run_freeze
from airinterp.analysis.inputs import open_inputs
from airinterp.report import figures

# figures: interactive in Jupyter, plus an HTML copy (plotly.js inlined once) for viewers without plotly's renderer
pio.renderers.default = "plotly_mimetype+notebook"

inp = open_inputs(TASK, CHECKPOINT, n_puzzles=N_PUZZLES, seed=SEED)
model = inp.model
zh = run_freeze(model, inp.ds, inp.indices, Freeze("zH"), seed=SEED)
zh.summary[["metric", "base_mean", "treated_mean", "delta_mean", "delta_ci_low", "delta_ci_high", "p_sign_flip"]]

# %%
figures.freeze_comparison(zh.summary, ["content_changes", "content_changes_harmonized", "output_exact"], "freeze zH: zL measured")

# %% [markdown]
# With zL frozen from ACT step 0, an Lx_H model's zH never sees the input: its trajectory is the same
# for every puzzle. The result says so (`input_independent`), and a freeze from a later ACT step avoids it.

# %%
zl = run_freeze(model, inp.ds, inp.indices, Freeze("zL"), seed=SEED)
zl_late = run_freeze(model, inp.ds, inp.indices, Freeze("zL", from_act=FROM_ACT), seed=SEED)
print("from step 0: input-independent =", zl.input_independent)
print(f"from step {FROM_ACT}: input-independent =", zl_late.input_independent)
zl_late.summary[["metric", "base_mean", "treated_mean", "delta_mean", "delta_ci_low", "delta_ci_high"]]

# %%
figures.paired_points(zl_late.puzzles, "content_changes", f"zH content changes per puzzle, zL frozen from step {FROM_ACT}")
