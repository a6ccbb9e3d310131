"""The shared post-norm block: RMSNorm without weight, RoPE, bidirectional attention, SwiGLU.

Numerics follow the reference exactly (same operation order, fp32 RMSNorm and RoPE, SDPA on the
same tensor layouts), so a float32 rollout is bitwise equal to the reference on the same build.
When a hook needs the attention scores or pattern they are computed explicitly in float32
(softmax(q.k / sqrt(d)), as the reference's analysis scripts do). If the hooks only read them,
the attention output still comes from SDPA, so caching patterns never changes the rollout; if a
hook edits them, that call's output is pattern @ v (the eager path, ~1e-6 from SDPA in float32).
"""

import contextlib
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from airinterp.model.hooks import HookPoint


def rms_norm(h: Tensor, eps: float) -> Tensor:
    """y = h / sqrt(mean(h^2) + eps), computed in float32, cast back; no learnable gain."""
    dtype = h.dtype
    h32 = h.to(torch.float32)
    var = h32.square().mean(-1, keepdim=True)
    return (h32 * torch.rsqrt(var + eps)).to(dtype)


def rope_tables(n_pos: int, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos/sin tables [n_pos, head_dim]: angles duplicated along the last axis (rotate-half)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    pos = torch.arange(n_pos, dtype=torch.float32)
    angles = torch.outer(pos, inv_freq)
    table = torch.cat((angles, angles), dim=-1)
    return table.cos(), table.sin()


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(
    x: Float[Tensor, "batch pos head d_head"], cos: Tensor, sin: Tensor
) -> Float[Tensor, "batch pos head d_head"]:
    """GPT-NeoX pairing (channel c with c + d/2), in float32, cast back."""
    dtype = x.dtype
    x = x.to(cos.dtype)
    return ((x * cos.unsqueeze(-2)) + (_rotate_half(x) * sin.unsqueeze(-2))).to(dtype)


def _fire(hooks: Mapping[str, HookPoint], site: str, x: Tensor) -> Tensor:
    """Call the site's HookPoint if it is among the active ones (a module call costs ~5 us)."""
    hp = hooks.get(site)
    return x if hp is None else hp(x)


def _scores(qh: Tensor, kh: Tensor) -> Tensor:
    """q.k / sqrt(d) in float32 [batch, head, pos_q, pos_k]. Scaling q first is exact when
    sqrt(d) is a power of two (d = 16, 64, 256)."""
    return (qh.float() * (1.0 / math.sqrt(qh.shape[-1]))) @ kh.float().transpose(-1, -2)


def _pattern(qh: Tensor, kh: Tensor, rows: int | None = None) -> Tensor:
    """softmax(q.k / sqrt(d)). On CPU it is built in blocks of 64 query rows so each block's
    softmax runs while it is still in cache (bitwise equal to the unblocked result); on GPUs, where
    every block costs kernel launches, in one piece."""
    B, H, T, d = qh.shape
    if rows is None:
        rows = 64 if qh.device.type == "cpu" else T
    q = qh.float() * (1.0 / math.sqrt(d))
    kt = kh.float().transpose(-1, -2).contiguous()
    if rows >= T:
        return _softmax_(q @ kt)
    out = torch.empty(B, H, T, kh.shape[-2], dtype=torch.float32, device=qh.device)
    for i in range(0, T, rows):
        out[:, :, i : i + rows] = _softmax_(q[:, :, i : i + rows] @ kt)
    return out


def _softmax_(x: Tensor) -> Tensor:
    """Softmax over the last axis, written in place (ATen's own kernel: bitwise ``x.softmax(-1)``);
    out of place when autograd needs the graph."""
    if x.requires_grad:
        return x.softmax(dim=-1)
    return torch.ops.aten._softmax.out(x, -1, False, out=x)


def _marked_read_only(hook_point: nn.Module) -> bool:
    """Every hook attached is marked :func:`read_only` (so an edit breaks a promise)."""
    fns = [getattr(h.user_hook, "func", h.user_hook) for h in getattr(hook_point, "fwd_hooks", [])]
    return bool(fns) and all(getattr(fn, "read_only", False) for fn in fns)


def _call_tracking_edits(hook_point: nn.Module, x: Tensor) -> tuple[Tensor, bool]:
    """Run a HookPoint; report whether its hooks replaced ``x`` or modified it in place.

    In-place edits are seen through the version counter; the scores and pattern are built as
    normal tensors even under ``torch.inference_mode`` (:func:`_explicit`) so they have one.
    """
    version = x._version
    out = hook_point(x)
    edited = out is not x or x._version != version
    if edited and _marked_read_only(hook_point):
        raise RuntimeError(
            f"a hook marked read_only edited {getattr(hook_point, 'name', 'the attention pattern')} "
            "(returned a new tensor or wrote into it); drop the mark if it is meant to edit"
        )
    return out, edited


def _explicit():
    """Context for building the explicit scores/pattern: under inference mode, leave it (without
    enabling gradients) so the tensors get a version counter and in-place edits by hooks are
    seen. Without this an analysis hook that only reads had to be trusted or the call fell back
    to ``pattern @ v``, a ~1e-4 change of the rollout (issue 9)."""
    if torch.is_inference_mode_enabled():
        return _NormalTensors()
    return contextlib.nullcontext()


class _NormalTensors(contextlib.ExitStack):
    def __enter__(self):
        super().__enter__()
        self.enter_context(torch.inference_mode(False))
        self.enter_context(torch.no_grad())
        return self


class Linear(nn.Module):
    """Bias-optional linear layer whose fp32 weight is cast to the input dtype at use."""

    def __init__(self, d_in: int, d_out: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(d_out)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.weight.to(x.dtype), bias)


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.qkv = Linear(d_model, 3 * d_model)  # rows: [all q heads | all k heads | all v heads]
        self.o = Linear(d_model, d_model)


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, d_mlp: int) -> None:
        super().__init__()
        self.gate_up = Linear(d_model, 2 * d_mlp)  # first d_mlp rows: gate; last d_mlp: up
        self.down = Linear(d_mlp, d_model)


class Block(nn.Module):
    """One post-norm block: h <- N(h + Attn(h)); h <- N(h + MLP(h)). Shared by L and H updates.

    With ``mlp_t`` = (positions, width) the token mixing is TRM's ``mlp_t`` instead of attention:
    a SwiGLU across the sequence axis, hT <- N(hT + MLP_t(hT)) on the transposed residual
    [batch, d_model, pos] (so that RMSNorm runs over the positions of each channel)."""

    def __init__(self, d_model: int, n_heads: int, d_mlp: int, eps: float, mlp_t: "tuple[int, int] | None" = None) -> None:
        super().__init__()
        if mlp_t is None:
            self.attn = Attention(d_model, n_heads)
        else:
            self.mlp_t = SwiGLU(*mlp_t)
        self.mlp = SwiGLU(d_model, d_mlp)
        self.eps = eps

    def _swiglu_residual(self, x: Tensor, mlp: "SwiGLU", hk: Mapping[str, HookPoint], prefix: str, out_site: str) -> Tensor:
        """N(x + SwiGLU(x)) with the SwiGLU's sites (``{prefix}.hook_pre`` / ``hook_pre_linear`` /
        ``hook_post``, then ``out_site``): the MLP over channels and TRM's mlp_t over positions."""
        gate, up = mlp.gate_up(x).chunk(2, dim=-1)
        if hk:
            gate = _fire(hk, f"{prefix}.hook_pre", gate)
            up = _fire(hk, f"{prefix}.hook_pre_linear", up)
        post = F.silu(gate) * up
        if hk:
            post = _fire(hk, f"{prefix}.hook_post", post)
        out = mlp.down(post)
        if hk:
            out = _fire(hk, out_site, out)
        return rms_norm(x + out, self.eps)

    def _mix_positions(self, h: Tensor, hk: Mapping[str, HookPoint]) -> Tensor:
        """TRM's mlp_t sub-layer on the transposed residual [batch, d_model, pos], in the reference's order."""
        return self._swiglu_residual(h.transpose(1, 2), self.mlp_t, hk, "mlp_t", "hook_mlp_t_out").transpose(1, 2)

    def forward(
        self,
        h: Float[Tensor, "batch pos d_model"],
        rope: tuple[Tensor, Tensor] | None,
        hooks: Mapping[str, HookPoint] | None = None,
        *,
        wants_pattern: bool = False,
        eager: bool = False,
    ) -> Float[Tensor, "batch pos d_model"]:
        """``hooks``: this call's HookPoints that have something attached, by block site
        (``"attn.hook_pattern"``); ``wants_pattern``: one of them is on the scores or pattern, so
        those are computed explicitly; ``eager``: the output is ``pattern @ v`` whatever the hooks."""
        hk = hooks or {}
        if hk:
            h = _fire(hk, "hook_resid_pre", h)
        if hasattr(self, "mlp_t"):
            h = self._mix_positions(h, hk)
            if hk:
                h = _fire(hk, "hook_resid_mid", h)
            return self._mlp(h, hk)
        B, T, _ = h.shape
        H, d = self.attn.n_heads, self.attn.d_head

        qkv = self.attn.qkv(h).view(B, T, 3 * H, d)
        q, k, v = qkv[:, :, :H], qkv[:, :, H : 2 * H], qkv[:, :, 2 * H :]
        if hk:
            q = _fire(hk, "attn.hook_q", q)
            k = _fire(hk, "attn.hook_k", k)
            v = _fire(hk, "attn.hook_v", v)
        if rope is not None:
            cos, sin = rope
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if hk:
            q = _fire(hk, "attn.hook_rot_q", q)
            k = _fire(hk, "attn.hook_rot_k", k)

        qh, kh, vh = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)
        if eager or wants_pattern:
            # Explicit scores and pattern in float32. Hooks that only read them (caching) leave
            # the fused kernel in charge of the output, so the trajectory stays bitwise that of
            # a hooks-off run; a hook that returns a new tensor or edits one in place switches
            # this call to pattern @ v.
            edited = eager
            scores_hp = hk.get("attn.hook_attn_scores")
            with _explicit():
                if scores_hp is not None:
                    scores = _scores(qh, kh)
                else:  # nobody holds the scores: build the pattern directly
                    pattern = _pattern(qh, kh)
            if scores_hp is not None:
                scores, changed = _call_tracking_edits(scores_hp, scores)
                edited = edited or changed
                with _explicit():
                    pattern = scores.softmax(dim=-1)
            pattern_hp = hk.get("attn.hook_pattern")
            if pattern_hp is not None:
                pattern, changed = _call_tracking_edits(pattern_hp, pattern)
                edited = edited or changed
            if edited:
                zh = (pattern @ vh.float()).to(vh.dtype)
            else:
                zh = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=None, dropout_p=0.0)
        else:
            zh = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=None, dropout_p=0.0)
        z = zh.permute(0, 2, 1, 3)
        if hk:
            z = _fire(hk, "attn.hook_z", z)
        attn_out = self.attn.o(z.reshape(B, T, H * d))
        if hk:
            attn_out = _fire(hk, "hook_attn_out", attn_out)
        h = rms_norm(h + attn_out, self.eps)
        if hk:
            h = _fire(hk, "hook_resid_mid", h)
        return self._mlp(h, hk)

    def _mlp(self, h: Tensor, hk: Mapping[str, HookPoint]) -> Tensor:
        h = self._swiglu_residual(h, self.mlp, hk, "mlp", "hook_mlp_out")
        if hk:
            h = _fire(hk, "hook_resid_post", h)
        return h
