"""Losses of the reference's ACT head (spec 2.3): stablemax cross-entropy and the Q-head losses."""

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from airinterp.tasks.dataset import IGNORE_LABEL_ID


def stablemax(x: Tensor, eps: float = 1e-30) -> Tensor:
    """s(x) = x + 1 for x >= 0 and 1 / (1 - x + eps) for x < 0."""
    return torch.where(x < 0, 1 / (1 - x + eps), x + 1)


def stablemax_cross_entropy(
    logits: Float[Tensor, "batch cell vocab"], labels: Int[Tensor, "batch cell"], ignore_index: int = IGNORE_LABEL_ID
) -> Float[Tensor, "batch cell"]:
    """-log(s(x_label) / sum_j s(x_j)) computed in float64; ignored positions give 0."""
    s = stablemax(logits.to(torch.float64))
    logp = torch.log(s / s.sum(-1, keepdim=True))
    valid = labels != ignore_index
    picked = logp.gather(-1, torch.where(valid, labels, 0).long().unsqueeze(-1)).squeeze(-1)
    return -torch.where(valid, picked, 0)


def act_losses(
    logits: Tensor, labels: Tensor, q_halt: Tensor, q_continue: Tensor, target_q_continue: Tensor | None
) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """(total loss summed over rows, loss parts, per-row exact correctness).

    LM loss of a row = mean over its labelled cells (divisor >= 1); q_halt's target is the row's
    exact correctness at this step; q_continue's target is the bootstrapped value (training only).
    Total = LM + 0.5 (q_halt + q_continue); the caller divides by the global batch size.
    """
    mask = labels != IGNORE_LABEL_ID
    counts = mask.sum(-1)
    divisor = counts.clamp_min(1).unsqueeze(-1)
    with torch.no_grad():
        correct = mask & (logits.argmax(-1) == labels)
        exact = correct.sum(-1) == counts
    lm = (stablemax_cross_entropy(logits, labels) / divisor).sum()
    q_halt_loss = F.binary_cross_entropy_with_logits(q_halt, exact.to(q_halt.dtype), reduction="sum")
    parts = {"lm_loss": lm, "q_halt_loss": q_halt_loss}
    total = lm + 0.5 * q_halt_loss
    if target_q_continue is not None:
        q_cont_loss = F.binary_cross_entropy_with_logits(q_continue, target_q_continue, reduction="sum")
        parts["q_continue_loss"] = q_cont_loss
        total = total + 0.5 * q_cont_loss
    return total, parts, exact
