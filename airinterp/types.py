"""jaxtyping aliases and the dimension vocabulary.

Dimensions: ``batch pos cell d_model head d_head d_mlp vocab act update layer``. ``pos`` includes
the puzzle-embedding prefix (and the level slot of the no-strip control); ``cell`` is the grid.
"""

from collections.abc import Callable

from jaxtyping import Bool, Float, Int
from torch import Tensor

Tokens = Int[Tensor, "batch cell"]
PuzzleIds = Int[Tensor, "batch"]
State = Float[Tensor, "batch pos d_model"]
Logits = Float[Tensor, "batch cell vocab"]
Pattern = Float[Tensor, "batch head pos_q pos_k"]
HeadAct = Float[Tensor, "batch pos head d_head"]
Rows = Float[Tensor, " batch"]
Flags = Bool[Tensor, " batch"]

#: a progress callback: advance(n done)
Advance = Callable[[int], None]
#: a progress factory: (label, total) -> advance
ProgressFactory = Callable[[str, int], Advance]

__all__ = ["Advance", "Flags", "HeadAct", "Logits", "Pattern", "ProgressFactory", "PuzzleIds", "Rows", "State", "Tokens"]
