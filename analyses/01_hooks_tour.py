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
# # A tour of HookedAIR's hooks
#
# One shared 4-block Transformer, two recurrent states: L-updates `zL <- f(zL + zH + x~)` see
# the puzzle, H-updates `zH <- f(zH + zL)` do not. Every (ACT step, update, layer, site) of the
# rollout is its own TransformerLens `HookPoint`, so `run_with_cache` and `run_with_hooks` work
# as on any `HookedRootModule`. Runs on CPU with the shipped 6x6 Sudoku checkpoint.

# %% tags=["parameters"]
CHECKPOINT = "checkpoints/sudoku6_Lx_H"
PUZZLE = "1..... ..4..2 .2.... ....5. 3..1.. .....6"

# %%
import pandas as pd

import airinterp
from airinterp.model import Address, glob, hook_catalogue, select
from airinterp.tasks import sudoku

model = airinterp.load(CHECKPOINT)
tokens = model.to_tokens(PUZZLE)
model.config.variant, model.config.halt_max_steps, [u.name for u in model.schedule]

# %% [markdown]
# ## Hook names
# `act.{a}.{update}.blocks.{layer}.{site}`; `Address.parse` splits a name into its fields.

# %%
catalogue = pd.DataFrame(hook_catalogue(model.config, 1), columns=["name", "shape"])
print(len(model.hook_dict), "hook points over", model.config.halt_max_steps, "ACT steps")
catalogue.head(25)

# %%
Address.parse("act.2.H0.blocks.3.attn.hook_pattern")

# %% [markdown]
# ## `run_with_cache` with a field selector
# The attention patterns of the first L- and H-update of every step, and both states after each step.

# %%
logits, cache = model.run_with_cache(tokens, names_filter=select(update=["L0_0", "H0"], site="attn.hook_pattern"))
pattern = cache["act.2.H0.blocks.3.attn.hook_pattern"]
pattern.shape  # [batch, head, query, key]: the puzzle-identifier prefix, then the cells

# %%
_, states = model.run_with_cache(tokens, names_filter=glob("act.*.hook_zH", "act.*.hook_zL"))
sorted(states.keys())

# %% [markdown]
# ## Decoding a state through the LM head
# The model decodes zH; the same head applied to zL shows what the scratchpad holds ('.' = BLANK).

# %%
last = model.config.halt_max_steps - 1
print("zH:\n" + sudoku.decode(model.decode(states[f"act.{last}.hook_zH"])[0]))
print("zL:\n" + sudoku.decode(model.decode(states[f"act.{last}.hook_zL"])[0]))
print("output:\n" + sudoku.decode(logits.argmax(-1)[0]))

# %% [markdown]
# ## Where a state lives
# The hook holding zH as an update reads it:

# %%
model.state_site("zH", before="act.2.L0_0"), model.state_site("zL", after="act.1.L0_1")
