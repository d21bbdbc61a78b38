"""The Transfusion model in PyTorch: one transformer over text tokens and image-latent patches.

A mirror of src/model/ (transfusion.ts, encoders.ts, patch.ts, layout.ts, loss.ts, config.ts)
that reads the TypeScript's checkpoint folders as they are and computes the same numbers.

The sequence layout (src/data/layout.ts) is B rows of T positions. Text positions carry token
ids; image k's n = gridH * gridW patches sit at positions start .. start + n - 1 of its row
(flat index row * T + start + p), where the patch codec's embeddings of its noisy latent replace
the token embeddings. Position i predicts text_targets[i] (-1: no LM loss there) with the head,
and patch position p of image k predicts the noise (or flow velocity) of patch p through the
patch decoder. Attention is causal within a document, bidirectional among one image's patches,
and never crosses documents.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .diffusion import alphas_cumprod, ddpm_noise, flow_noise, flow_timestep, sample_flow_time
from .layers import Block, RMSNorm, ResBlock, TimestepMlp, conv3, groups_for
from .safetensors_io import load

CHECKPOINT_FORMAT = "transfusion-checkpoint"
CHECKPOINT_VERSION = 1

# ----------------------------------------------------------------------------------------------
# Configuration (config.json's "model" object; src/model/config.ts validateConfig)

CONFIG_KEYS = (
    "vocab dim layers heads mlpHidden ropeTheta latentChannels latentSize patchSize encoder "
    "unetWidth imageAttention patchRope objective modalitySpecific diffusionSteps lambda "
    "timestepEmbedding imageCodes"
).split()


def validate_config(raw: object, source: str = "config") -> dict:
    """Returns a checked copy of a model config with the TypeScript's defaults for old fields.

    Configs saved before an option existed lack its field: modalitySpecific (absent = false),
    timestepEmbedding (absent = "patch", t added in patch space) and imageCodes (absent = 0).
    Errors name `source` and the field, with the TypeScript's wording.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a JSON object")
    for k in raw:
        if k not in CONFIG_KEYS:
            raise ValueError(f'{source}: unknown field "{k}"')

    def number(k: str, lo: float, integer: bool) -> int | float:
        v = raw.get(k)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= lo
        if not ok or (integer and v != int(v)):
            kind = "an integer" if integer else "a number"
            raise ValueError(f'{source}: field "{k}" must be {kind} ≥ {lo}, got {json.dumps(v)}')
        return int(v) if integer else v

    def one_of(k: str, allowed: tuple[str, ...], absent: str | None = None) -> str:
        v = raw.get(k, absent)
        if v not in allowed:
            raise ValueError(
                f'{source}: field "{k}" must be one of {", ".join(allowed)}, got {json.dumps(v)}'
            )
        return v

    modality = raw.get("modalitySpecific", False)
    if not isinstance(modality, bool):
        raise ValueError(
            f'{source}: field "modalitySpecific" must be true or false, got {json.dumps(modality)}'
        )
    c = {
        "vocab": number("vocab", 8, True),
        "dim": number("dim", 8, True),
        "layers": number("layers", 1, True),
        "heads": number("heads", 1, True),
        "mlpHidden": number("mlpHidden", 1, True),
        "ropeTheta": number("ropeTheta", 1, False),
        "latentChannels": number("latentChannels", 1, True),
        "latentSize": number("latentSize", 1, True),
        "patchSize": number("patchSize", 1, True),
        "encoder": one_of("encoder", ("linear", "unet")),
        "unetWidth": number("unetWidth", 4, True),
        "imageAttention": one_of("imageAttention", ("bidirectional", "causal")),
        "patchRope": one_of("patchRope", ("1d", "2d")),
        "objective": one_of("objective", ("ddpm", "flow")),
        "modalitySpecific": modality,
        "diffusionSteps": number("diffusionSteps", 2, True),
        "lambda": number("lambda", 0, False),
        "timestepEmbedding": one_of("timestepEmbedding", ("width", "patch"), "patch"),
        "imageCodes": number("imageCodes", 0, True) if "imageCodes" in raw else 0,
    }
    if c["dim"] % c["heads"]:
        raise ValueError(f'{source}: "dim" ({c["dim"]}) must be divisible by "heads" ({c["heads"]})')
    head_dim = c["dim"] // c["heads"]
    if head_dim % 2 or (c["patchRope"] == "2d" and head_dim % 4):
        raise ValueError(
            f"{source}: head dimension dim/heads = {head_dim} must be even (divisible by 4 for 2-D RoPE)"
        )
    if c["patchSize"] not in (1, 2, 4, 8):
        raise ValueError(f'{source}: "patchSize" must be 1, 2, 4 or 8')
    if c["latentSize"] % c["patchSize"]:
        raise ValueError(
            f'{source}: "latentSize" {c["latentSize"]} is not divisible by "patchSize" {c["patchSize"]}'
        )
    if c["imageCodes"] > 0 and (
        c["patchSize"] != 1 or c["latentChannels"] != 1 or c["vocab"] <= c["imageCodes"]
    ):
        raise ValueError(
            f'{source}: a discrete-token model ("imageCodes" > 0) needs "patchSize" 1, "latentChannels" 1 and "vocab" > "imageCodes"'
        )
    if c["encoder"] == "unet" and c["unetWidth"] % 4:
        raise ValueError(f'{source}: "unetWidth" must be a multiple of 4 (GroupNorm groups)')
    return c


def patches_per_image(c: dict) -> int:
    """Returns n = (latentSize / patchSize)^2, the patches of one image."""
    return (c["latentSize"] // c["patchSize"]) ** 2


# ----------------------------------------------------------------------------------------------
# The layout and the attention mask (src/data/layout.ts, src/model/layout.ts)


@dataclass
class Layout:
    """Where text and patches sit in a batch: [B, T] LongTensors and images [N, 4] =
    (row, start, gridH, gridW) per image, in the order of the batch's latents."""

    tokens: torch.Tensor
    text_targets: torch.Tensor
    doc_ids: torch.Tensor
    positions: torch.Tensor
    images: torch.Tensor

    @staticmethod
    def from_tensors(d: dict[str, torch.Tensor], prefix: str = "") -> "Layout":
        """Returns the layout stored under `prefix + name` in d (int tensors; `images` may have
        extra columns after the first four, which are ignored)."""

        def get(name: str) -> torch.Tensor:
            return d[prefix + name].long()

        images = get("images") if prefix + "images" in d else torch.zeros(0, 4, dtype=torch.long)
        images = images.reshape(-1, images.shape[-1])[:, :4]
        return Layout(get("tokens"), get("text_targets"), get("doc_ids"), get("positions"), images)

    def to(self, device: torch.device | str) -> "Layout":
        """Returns the layout with every tensor on `device`."""
        return Layout(*(getattr(self, f.name).to(device) for f in fields(self)))

    @property
    def batch(self) -> int:
        return self.tokens.shape[0]

    @property
    def seq_len(self) -> int:
        return self.tokens.shape[1]

    def patch_index(self) -> torch.Tensor:
        """Returns the flat positions (row * T + start + p) of every image's patches, image after
        image, as a LongTensor [N * n]."""
        T = self.seq_len
        idx = [r * T + s + p for r, s, gh, gw in self.images.tolist() for p in range(gh * gw)]
        return torch.tensor(idx, dtype=torch.long, device=self.tokens.device)


def build_mask(layout: Layout, image_attention: str = "bidirectional") -> torch.Tensor:
    """Returns the attention mask [B, T, T] (True = query i may attend to key j).

    Causal within a document: j <= i in the same contiguous run of one doc id. Among the patches
    of one image every query sees every key (unless image_attention is "causal"). A padding
    position (doc id -1) attends only to itself, so no row of the softmax is empty.
    """
    doc = layout.doc_ids
    B, T = doc.shape
    # Run ids: a new run starts wherever the doc id changes, so "same run" = same contiguous doc.
    change = torch.ones_like(doc, dtype=torch.bool)
    change[:, 1:] = doc[:, 1:] != doc[:, :-1]
    run = change.long().cumsum(1)
    causal = torch.ones(T, T, dtype=torch.bool, device=doc.device).tril()
    mask = (run[:, :, None] == run[:, None, :]) & causal & (doc >= 0)[:, :, None]
    mask |= torch.eye(T, dtype=torch.bool, device=doc.device) & (doc < 0)[:, :, None]
    if image_attention == "bidirectional":
        for r, s, gh, gw in layout.images.tolist():
            mask[r, s : s + gh * gw, s : s + gh * gw] = True
    return mask


# ----------------------------------------------------------------------------------------------
# RoPE positions (src/model/transfusion.ts ropeTables, src/tensor/ops/nn.ts ropeTables)


def rope_tables(c: dict, layout: Layout) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns cos, sin [B, T, D/2] (D = dim/heads) for the layout's positions.

    1-D RoPE: position p rotates frequency i by p * theta^(-2i/D); patch p of an image whose
    first patch sits at position p0 is at p0 + p. 2-D RoPE: the patch in grid row r, column col
    is at (p0 + r, p0 + col); the first D/4 frequencies rotate with the row and the last D/4
    with the column, both halves spanning theta^(-2j/(D/2)), j < D/4; a text position passes
    its position as both. Angles in float64, tables rounded to float32, as the TypeScript does.
    """
    D = c["dim"] // c["heads"]
    half, quarter = D // 2, D // 4
    B, T = layout.tokens.shape
    rows = layout.positions.double().cpu().clone().reshape(-1)
    cols = rows.clone()
    two_d = c["patchRope"] == "2d"
    for r, s, gh, gw in layout.images.tolist():
        base = r * T + s
        p0 = rows[base].item()
        p = torch.arange(gh * gw, dtype=torch.float64)
        rows[base : base + gh * gw] = p0 + (torch.div(p, gw, rounding_mode="floor") if two_d else p)
        cols[base : base + gh * gw] = p0 + (p % gw if two_d else p)
    i = torch.arange(half, dtype=torch.float64)
    if two_d:
        freqs = c["ropeTheta"] ** (-(2 * (i % quarter)) / half)
        pos = torch.where(i < quarter, rows[:, None], cols[:, None])
    else:
        freqs = c["ropeTheta"] ** (-(2 * i) / D)
        pos = rows[:, None]
    angles = pos * freqs
    device = layout.tokens.device
    return (
        angles.cos().float().view(B, T, half).to(device),
        angles.sin().float().view(B, T, half).to(device),
    )


# ----------------------------------------------------------------------------------------------
# Patch codecs (src/model/encoders.ts, src/model/patch.ts)


def patchify(x: torch.Tensor, k: int) -> torch.Tensor:
    """Returns patches [N, g*g', C*k*k] of latents [N, C, H, W] in raster order; each patch
    vector is channel-major: index (c, dy, dx) -> c*k*k + dy*k + dx."""
    N, C, H, W = x.shape
    x = x.reshape(N, C, H // k, k, W // k, k).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(N, (H // k) * (W // k), C * k * k)


def unpatchify(p: torch.Tensor, N: int, C: int, H: int, W: int, k: int) -> torch.Tensor:
    """Returns latents [N, C, H, W] from patches [N * g * g', C*k*k] (the inverse of patchify)."""
    x = p.reshape(N, H // k, W // k, C, k, k).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(N, C, H, W)


class LinearPatchCodec(nn.Module):
    """One linear layer each way between patch vectors (C*k*k) and the model width.

    Encode: proj(patch) + temb(t) with timestepEmbedding "width", or proj(patch + temb(t)) with
    "patch" (the embedding is then C*k*k wide). Decode: out(h), unpatchified.
    """

    def __init__(self, c: dict):
        super().__init__()
        self.c = c
        self.P = c["latentChannels"] * c["patchSize"] ** 2
        self.t_embed = TimestepMlp(c["dim"] if c["timestepEmbedding"] == "width" else self.P)
        self.proj = nn.Linear(self.P, c["dim"])
        self.out = nn.Linear(c["dim"], self.P)

    def encode(self, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        N = xt.shape[0]
        patches = patchify(xt, self.c["patchSize"])
        te = self.t_embed(t).view(N, 1, -1)
        h = self.proj(patches) + te if self.c["timestepEmbedding"] == "width" else self.proj(patches + te)
        return h.reshape(-1, self.c["dim"]), []

    def decode(self, h: torch.Tensor, N: int, skips: list[torch.Tensor]) -> torch.Tensor:
        S, C = self.c["latentSize"], self.c["latentChannels"]
        return unpatchify(self.out(h), N, C, S, S, self.c["patchSize"])


class UNetPatchCodec(nn.Module):
    """U-Net codec: log2(patchSize) down levels of (ResBlock with t, stride-2 conv) to a grid of
    model-width vectors, and up levels of (nearest x2, conv, ResBlock over [h, skip]) back.

    Widths w_l = unetWidth * min(2^l, 4); the timestep MLP is 4 * unetWidth wide and enters
    only the down path (conv_in, down.l.res, mid_down), whose ResBlock outputs are the skips.
    """

    def __init__(self, c: dict):
        super().__init__()
        self.c = c
        w = c["unetWidth"]
        self.levels = round(math.log2(c["patchSize"]))
        widths = [w * min(2**l, 4) for l in range(self.levels + 1)]
        t_dim = 4 * w
        self.t_embed = TimestepMlp(t_dim)
        self.conv_in = conv3(c["latentChannels"], widths[0])
        self.down = nn.ModuleList(
            nn.ModuleDict(
                {
                    "res": ResBlock(widths[l], widths[l], t_dim),
                    "downsample": conv3(widths[l], widths[l + 1], stride=2),
                }
            )
            for l in range(self.levels)
        )
        wL = widths[self.levels]
        self.mid_down = ResBlock(wL, wL, t_dim)
        self.to_dim = nn.Conv2d(wL, c["dim"], 1)
        self.from_dim = nn.Conv2d(c["dim"], wL, 1)
        self.mid_up = ResBlock(wL, wL)
        self.up = nn.ModuleList(
            nn.ModuleDict(
                {"conv": conv3(widths[l + 1], widths[l]), "res": ResBlock(2 * widths[l], widths[l])}
            )
            for l in range(self.levels)
        )
        self.out_norm = nn.GroupNorm(groups_for(widths[0]), widths[0], eps=1e-5)
        self.conv_out = conv3(widths[0], c["latentChannels"])

    def encode(self, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        temb = self.t_embed(t)
        h = self.conv_in(xt)
        skips = []
        for level in self.down:
            h = level["res"](h, temb)
            skips.append(h)
            h = level["downsample"](h)
        h = self.to_dim(self.mid_down(h, temb))
        return h.permute(0, 2, 3, 1).reshape(-1, self.c["dim"]), skips  # [N*g*g, dim], raster order

    def decode(self, h: torch.Tensor, N: int, skips: list[torch.Tensor]) -> torch.Tensor:
        g = self.c["latentSize"] // self.c["patchSize"]
        h = h.reshape(N, g, g, self.c["dim"]).permute(0, 3, 1, 2)
        h = self.mid_up(self.from_dim(h))
        for l in reversed(range(self.levels)):
            h = self.up[l]["conv"](F.interpolate(h, scale_factor=2, mode="nearest"))
            h = self.up[l]["res"](torch.cat([h, skips[l]], dim=1))
        return self.conv_out(F.silu(self.out_norm(h)))


# ----------------------------------------------------------------------------------------------
# The model


class Transfusion(nn.Module):
    """Embedding, patch codec (`image_codec`; none for the discrete model), `layers.i` blocks,
    final RMSNorm (`norm`) and the next-token head (`head`), with the checkpoint's names."""

    def __init__(self, config: dict):
        super().__init__()
        c = self.config = validate_config(config)
        self.embed = nn.Embedding(c["vocab"], c["dim"])
        if c["imageCodes"] == 0:
            self.image_codec = UNetPatchCodec(c) if c["encoder"] == "unet" else LinearPatchCodec(c)
        else:
            self.image_codec = None
        self.layers = nn.ModuleList(
            Block(c["dim"], c["heads"], c["mlpHidden"], c["modalitySpecific"]) for _ in range(c["layers"])
        )
        self.norm = RMSNorm(c["dim"])
        self.head = nn.Linear(c["dim"], c["vocab"], bias=False)
        init_weights(self)

    def forward(
        self,
        layout: Layout,
        xt: torch.Tensor | None,
        t: torch.Tensor | None,
        text_rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """Returns (text_logits [R, vocab] or None, their targets [R], image_pred [N, C, H, W] or None).

        The R rows are `text_rows` (flat indices row * T + i) or, by default, every position with a
        text target (>= 0), ascending. xt [N, C, H, W] are the noisy latents of the layout's N
        images at integer timesteps t [N]; image_pred is what the decoder regresses (noise, or flow
        velocity). Both may be None for a layout without images.
        """
        c = self.config
        B, T = layout.tokens.shape
        N = layout.images.shape[0]
        x = self.embed(layout.tokens.reshape(-1))
        patch_idx = layout.patch_index()
        skips: list[torch.Tensor] = []
        if N > 0:
            if xt is None or xt.shape[0] != N:
                raise ValueError(
                    f"Transfusion.forward: {N} images in the layout but latents for {0 if xt is None else xt.shape[0]}"
                )
            if self.image_codec is None:
                raise ValueError(
                    "Transfusion: a discrete-token model has no patch codec; its images are code tokens"
                )
            counts = (layout.images[:, 2] * layout.images[:, 3]).tolist()
            if any(n != patches_per_image(c) for n in counts):
                raise ValueError(
                    f"Transfusion.forward: every image must have {patches_per_image(c)} patches, got {counts}"
                )
            tokens, skips = self.image_codec.encode(xt, t.long().reshape(-1))
            x = x.index_put((patch_idx,), tokens)
        cos, sin = rope_tables(c, layout)
        mask = build_mask(layout, c["imageAttention"])
        is_image = None
        if c["modalitySpecific"]:
            is_image = torch.zeros(B * T, dtype=torch.bool, device=x.device)
            is_image[patch_idx] = True
            is_image = is_image.view(B, T)
        h = x.view(B, T, c["dim"])
        for block in self.layers:
            h = block(h, cos, sin, mask, is_image)
        h = self.norm(h).reshape(B * T, c["dim"])

        targets_flat = layout.text_targets.reshape(-1)
        rows = (
            torch.nonzero(targets_flat >= 0).reshape(-1)
            if text_rows is None
            else text_rows.long().reshape(-1)
        )
        logits = self.head(h[rows]) if rows.numel() > 0 else None
        image_pred = self.image_codec.decode(h[patch_idx], N, skips) if N > 0 else None
        return logits, targets_flat[rows], image_pred


def init_weights(model: Transfusion) -> None:
    """Initialises the parameters as the TypeScript constructor draws them (not its draws).

    Normal(0, 0.02) for the embedding, head, q/k/v and w1/w3 projections and the linear codec's
    `out`; Normal(0, 0.02/sqrt(2 * layers)) for the residual outputs o_proj and w2 (GPT-2); other
    linear layers Normal(0, 1/sqrt(fan_in)); convolutions U(+-1/sqrt(fan_in)); biases 0, norm
    gains 1.
    """
    out_std = 0.02 / math.sqrt(2 * model.config["layers"])
    for name, m in model.named_modules():
        last = name.split(".")[-1]
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.Linear):
            if last in ("o_proj", "o_proj_image", "w2"):
                std = out_std
            elif (
                last.startswith(("q_proj", "k_proj", "v_proj"))
                or last in ("w1", "w3", "head")
                or name == "image_codec.out"
            ):
                std = 0.02
            else:
                std = 1 / math.sqrt(m.in_features)
            nn.init.normal_(m.weight, std=std)
        elif isinstance(m, nn.Conv2d):
            bound = 1 / math.sqrt(m.in_channels * m.kernel_size[0] * m.kernel_size[1])
            nn.init.uniform_(m.weight, -bound, bound)
        elif isinstance(m, (nn.GroupNorm, RMSNorm)):
            nn.init.ones_(m.weight)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------------------------
# The loss (src/model/loss.ts)


def noise_batch(
    c: dict,
    x0: torch.Tensor,
    eps: torch.Tensor,
    t: torch.Tensor,
    diffuse: torch.Tensor,
    time: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns (x_t, the model's integer timesteps, the regression target), each per image.

    DDPM: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps at the image's timestep t, target eps.
    Flow: x_tau = (1 - tau) x0 + tau eps, target eps - x0, the model conditioned on
    round(tau * (T - 1)); tau is `time` [N] if given, else drawn as (t + u) / T, u ~ U[0, 1),
    as the TypeScript draws it. Clean images (diffuse False) enter as x0 at timestep 0.
    """
    T = c["diffusionSteps"]
    diffuse = diffuse.bool().reshape(-1)
    t = t.long().reshape(-1)
    if bool(((t < 0) | (t >= T))[diffuse].any()):
        raise ValueError(f"noise_batch: the timesteps of diffusing images must be integers in [0, {T})")
    zero = torch.zeros_like(t)
    if c["objective"] == "flow":
        tau = (time if time is not None else sample_flow_time(t.cpu(), T)).double().reshape(-1).to(t.device)
        tau = torch.where(diffuse, tau, torch.zeros_like(tau))
        noised, target = flow_noise(x0, eps, tau), eps - x0
        t_model = torch.where(diffuse, flow_timestep(tau, T), zero)
    else:
        noised, target = ddpm_noise(x0, eps, t.clamp(0, T - 1), alphas_cumprod(T)), eps
        t_model = torch.where(diffuse, t, zero)
    return torch.where(diffuse.view(-1, 1, 1, 1), noised, x0), t_model, target


def config_of(model: nn.Module) -> dict:
    """Returns the config of a Transfusion model, also through a wrapper such as
    DistributedDataParallel (its `.module`); the wrapper itself is what the losses call."""
    return getattr(model, "module", model).config


def _per_item_losses(model, layout, x0, eps, t, diffuse, time):
    """Returns (cross-entropy per text target [R], their targets, per-image MSE [N] or None,
    diffuse [N])."""
    c = config_of(model)
    device = layout.tokens.device
    if c["imageCodes"] > 0 or layout.images.shape[0] == 0:
        logits, targets, _ = model(layout, None, None)
        mse, diffuse = None, torch.zeros(0, dtype=torch.bool, device=device)
    else:
        xt, t_model, target = noise_batch(c, x0, eps, t, diffuse, time)
        logits, targets, pred = model(layout, xt, t_model)
        mse, diffuse = (pred - target).pow(2).flatten(1).mean(1), diffuse.bool().reshape(-1)
    if logits is None:
        return torch.zeros(0, device=device), targets, mse, diffuse
    return F.cross_entropy(logits, targets, reduction="none"), targets, mse, diffuse


def loss_sums(
    model: nn.Module,
    layout: Layout,
    x0: torch.Tensor | None,
    eps: torch.Tensor | None,
    t: torch.Tensor | None,
    diffuse: torch.Tensor | None,
    time: torch.Tensor | None = None,
) -> dict:
    """Returns the loss as sums, for training split over processes:

    {"lm_sum": sum of the cross-entropy over this batch's text targets, "image_sum": sum over
    its diffusing images of each image's mean squared error, "lm_count", "image_count"} (sums
    differentiable, counts ints), so that with the counts summed over all processes
        L = lm_sum / lm_count + lambda * image_sum / image_count
    (a term with a zero count left out) is transfusion_loss's total. Noising as in noise_batch.
    For the discrete-token model (imageCodes > 0) x0, eps, t, diffuse are ignored: lm_sum
    covers every target, text and image codes alike, and image_count is 0.
    """
    ce, _, mse, diffuse = _per_item_losses(model, layout, x0, eps, t, diffuse, time)
    image_sum = mse[diffuse].sum() if mse is not None else torch.zeros((), device=ce.device)
    return {
        "lm_sum": ce.sum(),
        "image_sum": image_sum,
        "lm_count": int(ce.numel()),
        "image_count": int(diffuse.sum()),
    }


def transfusion_loss(
    model: nn.Module,
    layout: Layout,
    x0: torch.Tensor | None,
    eps: torch.Tensor | None,
    t: torch.Tensor | None,
    diffuse: torch.Tensor | None,
    weights: torch.Tensor | None = None,
    time: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    """Returns (L, parts) with L = L_LM + lambda * L_image (Transfusion, eq. 4).

    L_LM is the mean cross-entropy over the text targets; L_image the mean over the diffusing
    images of each image's mean squared error against the target (noising as in noise_batch;
    `time` is the flow time, see there). `weights` [N], if given, replaces the per-image weights
    of L_image (default 1/n on the n diffusing images, 0 on clean ones): L_image = sum_k
    weights_k * mse_k. parts = {"lm", "image", "text_targets", "images"} (two floats, two
    counts), as the TypeScript's LossParts.

    The discrete-token model (imageCodes > 0) has one loss, the mean cross-entropy over all
    targets (x0, eps, t, diffuse ignored); its parts report text and code targets apart: lm and
    image are their mean cross-entropies, images = code targets / patches per image.
    """
    c = config_of(model)
    ce, targets, mse, diffuse = _per_item_losses(model, layout, x0, eps, t, diffuse, time)
    if c["imageCodes"] > 0:
        if ce.numel() == 0:
            raise ValueError("transfusion_loss: the batch has no targets")
        is_code = targets >= c["vocab"] - c["imageCodes"]
        n_text, n_codes = int((~is_code).sum()), int(is_code.sum())
        images = n_codes / patches_per_image(c)
        return ce.mean(), {
            "lm": float(ce[~is_code].mean()) if n_text else 0.0,
            "image": float(ce[is_code].mean()) if n_codes else 0.0,
            "text_targets": n_text,
            "images": int(images) if images == int(images) else images,
        }
    n_images = int(diffuse.sum())
    lm = ce.mean() if ce.numel() > 0 else None
    image = None
    if mse is not None and (n_images > 0 or weights is not None):
        w = weights.to(mse.dtype).reshape(-1) if weights is not None else diffuse.to(mse.dtype) / n_images
        image = (mse * w).sum()
    if lm is None and image is None:
        raise ValueError("transfusion_loss: the batch has neither text targets nor diffusing images")
    total = lm if image is None else (c["lambda"] * image if lm is None else lm + c["lambda"] * image)
    return total, {
        "lm": float(lm) if lm is not None else 0.0,
        "image": float(image) if image is not None else 0.0,
        "text_targets": int(ce.numel()),
        "images": n_images,
    }


# ----------------------------------------------------------------------------------------------
# Checkpoints (src/io/checkpoint.ts)


def resolve_checkpoint_dir(path: str) -> str:
    """Returns the folder holding the latest complete checkpoint at `path`: path itself, or the
    `path.old` a crash between the TypeScript's two renames leaves; raises if neither has one."""
    for d in (path, f"{path}.old"):
        if os.path.exists(os.path.join(d, "model.safetensors")):
            return d
    raise FileNotFoundError(f"{path}: no checkpoint here (expected model.safetensors)")


def read_checkpoint_config(folder: str) -> dict:
    """Returns the parsed config.json of a checkpoint folder, with format, version and the
    "model" object checked; errors name the file and the field."""
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror})") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON ({err})") from err
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object")
    if raw.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f'{path}: field "format" must be "{CHECKPOINT_FORMAT}"')
    if raw.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f'{path}: checkpoint version {raw.get("version")} is not supported (this reads {CHECKPOINT_VERSION})'
        )
    validate_config(raw.get("model"), f"{path}: model")
    return raw


def float_weights(
    file: str, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Size]
) -> dict[str, torch.Tensor]:
    """Returns tensors as float32 after checking them against `expected` names and shapes: every
    one present, float, finite, and nothing extra. Errors name the file and the tensor."""
    out = {}
    for name, shape in expected.items():
        t = tensors.get(name)
        if t is None:
            raise ValueError(f'{file}: missing tensor "{name}" (shape {list(shape)})')
        if not t.is_floating_point():
            raise ValueError(f'{file}: tensor "{name}" has dtype {t.dtype}, expected a float type')
        if t.shape != shape:
            raise ValueError(
                f'{file}: tensor "{name}" has shape {list(t.shape)}, the model expects {list(shape)}'
            )
        t = t.float()
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f'{file}: tensor "{name}" holds NaN or Infinity')
        out[name] = t
    for name in tensors:
        if name not in expected:
            raise ValueError(f'{file}: unexpected tensor "{name}" (not in this config)')
    return out


def load_checkpoint(path: str) -> tuple[Transfusion, dict]:
    """Returns the model of a TypeScript checkpoint folder (its model.safetensors: the EMA
    weights), in eval mode, and the folder's parsed config.json."""
    folder = resolve_checkpoint_dir(path)
    config = read_checkpoint_config(folder)
    model = Transfusion(config["model"])
    file = os.path.join(folder, "model.safetensors")
    tensors, _ = load(file)
    expected = {name: t.shape for name, t in model.state_dict().items()}
    model.load_state_dict(float_weights(file, tensors, expected), strict=True)
    return model.eval(), config
