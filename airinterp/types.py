"""jaxtyping aliases and the dimension vocabulary.

Dimensions: ``batch pos cell d_model head d_head d_mlp vocab act update layer``. ``pos`` includes
the puzzle-embedding prefix (and the level slot of the no-strip control); ``cell`` is the grid.
"""

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

__all__ = ["Tokens", "PuzzleIds", "State", "Logits", "Pattern", "HeadAct", "Rows", "Flags"]
