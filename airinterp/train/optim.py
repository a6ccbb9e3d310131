"""AdamATan2, the puzzle-embedding sign-SGD and the learning-rate schedule (spec 2.4)."""

import math

import torch
from torch import Tensor

from airinterp.errors import InputError


class AdamATan2(torch.optim.Optimizer):
    """Adam with ``atan2`` in place of the division by ``sqrt(v) + eps`` (no epsilon).

    Per tensor, with bias corrections c1 = 1 - beta1^t, c2 = 1 - beta2^t::

        p <- p * (1 - lr * weight_decay)
        m <- beta1 m + (1 - beta1) g ;  v <- beta2 v + (1 - beta2) g^2
        p <- p - lr * a * atan2(m / c1, b * sqrt(v / c2))

    ``a = 1.27``, ``b = 1`` are the defaults of the optimizer bundled with AIR (lucidrains'
    adam-atan2-pytorch); HRM's kernel uses ``a = 1`` (spec defect T1).
    """

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.95),
                 weight_decay: float = 0.0, a: float = 1.27, b: float = 1.0) -> None:  # fmt: skip
        if lr < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise InputError(f"invalid AdamATan2 settings lr={lr} betas={betas} weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, a=a, b=b))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, (b1, b2), wd, a, b = group["lr"], group["betas"], group["weight_decay"], group["a"], group["b"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
                state["step"] += 1
                t = float(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                p.mul_(1 - lr * wd)
                m.lerp_(g.float(), 1 - b1)
                v.mul_(b2).addcmul_(g.float(), g.float(), value=1 - b2)
                m_hat = m / (1 - b1**t)
                v_hat = v / (1 - b2**t)
                p.add_(torch.atan2(m_hat, b * v_hat.sqrt()).to(p.dtype), alpha=-lr * a)
        return loss


def sign_sgd_rows_(
    table: Tensor, ids: Tensor, grads: Tensor, lr: float, weight_decay: float
) -> None:
    """Puzzle-embedding update: sum the per-row gradients per identifier, then for each identifier
    present ``w <- w (1 - lr wd) - lr sign(sum g)``. Rows absent from the batch are untouched."""
    with torch.no_grad():
        summed = torch.zeros_like(table).index_add_(0, ids, grads.to(table.dtype))
        present = torch.zeros(table.shape[0], dtype=torch.bool, device=table.device)
        present[ids] = True
        rows = table[present]
        table[present] = rows * (1 - lr * weight_decay) - lr * torch.sign(summed[present])


def learning_rate(step: int, base_lr: float, warmup: int, total: int, min_ratio: float = 1.0) -> float:
    """Linear warmup for ``warmup`` steps, then cosine decay to ``min_ratio * base_lr`` at ``total``.

    ``min_ratio = 1.0`` (the reference's setting) makes the second phase constant: "warmup then
    constant" (spec defect T2). ``step`` counts optimizer steps from 1.
    """
    if step < warmup:
        return base_lr * step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return base_lr * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))))
