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
# # Attention locality (AIR_SPEC 4.d-4.e, Figs 8-13)
#
# The first L-update (L0_0) and the first H-update (H0) of each analysed ACT step read the same
# zH; the paper finds L's attention more local (more mass on the query's neighbourhood, lower
# entropy) and, deeper, more on violated peers. The metrics are computed inside read-only hooks as
# each pattern is produced; no pattern is cached.

# %% tags=["parameters"]
TASK = "sudoku"
CHECKPOINT = None  # None: the shipped default for TASK; or any checkpoint, e.g. "checkpoints/sudoku6_hrm" (HRM) or "checkpoints/sudoku6_trm" (TRM)
N_PUZZLES = 100
SEED = 0

# %%
import numpy as np
import plotly.io as pio

from airinterp.analysis.attention import attention_example, default_steps, propose_examples, run_attention
from airinterp.analysis.inputs import open_inputs
from airinterp.analysis.run import puzzle_batches
from airinterp.report import figures

# figures: interactive in Jupyter, plus an HTML copy (plotly.js inlined once) for viewers without plotly's renderer
pio.renderers.default = "plotly_mimetype+notebook"

inp = open_inputs(TASK, CHECKPOINT, n_puzzles=N_PUZZLES, seed=SEED)
model, c = inp.model, inp.model.config
steps = default_steps(c.halt_max_steps)
res = run_attention(model, inp.ds, inp.indices, steps=steps, seed=SEED, per_head=True)
head_mean = res.summary[res.summary.method == "head_mean"]
head_mean[head_mean.metric.isin(["nbr_mass", "entropy", "viol_mass"])][["layer", "class", "metric", "delta_mean", "ci_low", "ci_high", "n_puzzles"]]

# %%
figures.attention_contrasts(res.summary, ["nbr_mass", "entropy", "viol_mass"], "head_mean", f"{c.label}: L0_0 - H0 per layer")

# %%
figures.head_heatmap(res.heads, "nbr_mass", "control")

# %% [markdown]
# ## One query, L vs H, across steps
# The seeded selector of spec 4.e proposes (puzzle, query) candidates; the example keeps the raw rows.

# %%
candidates = propose_examples(model, inp.ds, inp.indices[:20], step=steps[0], layer=0, n=3, seed=SEED)
assert not candidates.empty, "no query cells (Sudoku blanks / Maze path cells) in these puzzles"
best = candidates.sort_values("score", ascending=False).iloc[0]
batch = next(puzzle_batches(model, inp.ds, np.array([int(best["puzzle"])]), 1))
ex = attention_example(model, batch, int(best["query"]), layer=0, steps=steps)
ex.metrics

# %%
marks = {a: g["violations"] for a, g in ex.grids.items()}
box = inp.rules.box  # Sudoku box outlines (None for Maze)
figures.attention_maps(ex.rows, inp.rules.roles(), ex.side, ex.query, steps, ["L0_0", "H0"], marks, ex.inputs, box,
                       title=f"puzzle {ex.puzzle}, query {divmod(ex.query, ex.side)}, head {ex.head}")
