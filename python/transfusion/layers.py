"""Layers of the model and its autoencoder, named exactly as the TypeScript names its tensors.

Mirrors src/nn/ (layers.ts, transformer.ts, modality.ts, resblock.ts) and the timestep
embedding of src/model/patch.ts and encoders.ts. Every module's state_dict() keys are the
checkpoint's tensor names (`attn.q_proj.weight`, `mlp_image.w1.weight`, `norm1.weight`, ...).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * w over the last axis (Llama; no bias, no mean)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates x [B, T, H, D] by RoPE in the rotate-half layout: element i pairs with i + D/2.

    With (c, s) = (cos, sin) of the angle at row (b, t) and frequency i (tables [B, T, D/2]):
    (x1, x2) -> (x1 c - x2 s, x2 c + x1 s), a rotation of each pair by its angle.
    """
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos.unsqueeze(2), sin.unsqueeze(2)
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


def per_modality(
    x: torch.Tensor, is_image: torch.Tensor | None, shared: nn.Module, image: nn.Module | None
) -> torch.Tensor:
    """Returns `shared` applied to the text rows of x [B, T, d] and `image` to its image rows.

    Without image weights (or rows) every row goes through `shared`. Each modality's layer sees
    only its own rows (gather, apply, scatter), as in src/nn/modality.ts.
    """
    if image is None:
        return shared(x)
    if is_image is None:
        raise ValueError("modality-specific weights need the rows' modalities (is_image)")
    B, T, d = x.shape
    flat, m = x.reshape(B * T, d), is_image.reshape(B * T)
    y_text, y_image = shared(flat[~m]), image(flat[m])
    out = y_text.new_empty(B * T, y_text.shape[-1])
    out[~m] = y_text
    out[m] = y_image
    return out.view(B, T, -1)


class Attention(nn.Module):
    """Multi-head self-attention with q/k/v/o projections (no biases) and RoPE.

    softmax(q k^T / sqrt(D) + mask) v per head, where masked-out keys get -inf. With
    `modality_specific` the image rows use their own projections (`q_proj_image`, ...), while
    attention itself still runs over the whole mixed sequence.
    """

    def __init__(self, dim: int, heads: int, modality_specific: bool = False):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)
        if modality_specific:
            self.q_proj_image = nn.Linear(dim, dim, bias=False)
            self.k_proj_image = nn.Linear(dim, dim, bias=False)
            self.v_proj_image = nn.Linear(dim, dim, bias=False)
            self.o_proj_image = nn.Linear(dim, dim, bias=False)
        self.modality_specific = modality_specific

    def _image(self, name: str) -> nn.Module | None:
        return getattr(self, f"{name}_image") if self.modality_specific else None

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        is_image: torch.Tensor | None,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        H, D = self.heads, self.head_dim
        q = per_modality(x, is_image, self.q_proj, self._image("q_proj")).view(B, T, H, D)
        k = per_modality(x, is_image, self.k_proj, self._image("k_proj")).view(B, T, H, D)
        v = per_modality(x, is_image, self.v_proj, self._image("v_proj")).view(B, T, H, D)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T, D]
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * D)
        return per_modality(y, is_image, self.o_proj, self._image("o_proj"))


class Mlp(nn.Module):
    """SwiGLU feed-forward: w2(silu(w1 x) * w3 x), no biases."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    """Pre-norm residual block: x += attn(rmsnorm(x)); x += mlp(rmsnorm(x))."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, modality_specific: bool = False):
        super().__init__()
        self.attn_norm = RMSNorm(dim)
        self.attn = Attention(dim, heads, modality_specific)
        self.mlp_norm = RMSNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden)
        self.mlp_image = Mlp(dim, mlp_hidden) if modality_specific else None

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        is_image: torch.Tensor | None,
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, is_image)
        return x + per_modality(self.mlp_norm(x), is_image, self.mlp, self.mlp_image)


def groups_for(channels: int) -> int:
    """Returns the GroupNorm group count of the U-Net: the largest of 8, 4, 2, 1 dividing it."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


def conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    """Returns a 3x3 convolution with padding 1 (the TypeScript's Conv2d(cin, cout, 3[, stride, 1]))."""
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    """Convolutional residual block: x + conv2(silu(gn2(conv1(silu(gn1(x))) + t_proj(silu(temb))))).

    The input goes through a 1x1 `skip` conv when the width changes; `t_proj` exists only with a
    timestep width t_dim, and is skipped when called without temb. GroupNorm eps is 1e-5 with the
    biased variance; both norms use `groups` (default groups_for of each norm's width).
    """

    def __init__(self, cin: int, cout: int, t_dim: int | None = None, groups: int | None = None):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups or groups_for(cin), cin, eps=1e-5)
        self.conv1 = conv3(cin, cout)
        self.t_proj = nn.Linear(t_dim, cout) if t_dim else None
        self.norm2 = nn.GroupNorm(groups or groups_for(cout), cout, eps=1e-5)
        self.conv2 = conv3(cout, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.t_proj is not None and temb is not None:
            h = h + self.t_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


def timestep_features(t: torch.Tensor, dim: int = 128, max_period: float = 10000.0) -> torch.Tensor:
    """Returns sinusoidal features [N, dim] of integer timesteps t [N] (Transformer/DDPM):
    [cos(t f_i), sin(t f_i)] for i < dim/2, f_i = max_period^(-i/(dim/2)); float64, then float32."""
    half = dim // 2
    freqs = max_period ** (-torch.arange(half, dtype=torch.float64) / half)
    angles = t.double().reshape(-1, 1).cpu() * freqs
    return torch.cat([angles.cos(), angles.sin()], dim=1).float()


class TimestepMlp(nn.Module):
    """Timestep embedding: 128 sinusoidal features -> Linear -> SiLU -> Linear (`l1`, `l2`)."""

    def __init__(self, out: int, features: int = 128):
        super().__init__()
        self.features = features
        self.l1 = nn.Linear(features, out)
        self.l2 = nn.Linear(out, out)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        feats = timestep_features(t, self.features).to(self.l1.weight.device)
        return self.l2(F.silu(self.l1(feats)))
