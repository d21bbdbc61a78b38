"""The KL-VAE the latents come from: a mirror of src/model/vae.ts reading vae.safetensors.

Images [N, C, H, W] in [-1, 1] map to latents [latentChannels, H/2^levels, W/2^levels]:
    encoder: conv_in -> per level {res blocks, stride-2 conv} -> mid res blocks
             -> GroupNorm, SiLU, conv to 2 * latentChannels (mean ‖ log-variance)
    decoder: conv_in -> mid res blocks -> per level {nearest x2, conv, res blocks}
             -> GroupNorm, SiLU, conv to the image channels
Transfusion diffuses scaled latents (z - shift) * scale, with both factors stored in the file's
metadata beside the config (src/io/vae-files.ts), so the file alone is enough to load.
"""

from __future__ import annotations

import json
import os

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ResBlock, conv3
from .model import float_weights
from .safetensors_io import load

VAE_FORMAT = "transfusion-vae/1"
VAE_FILE = "vae.safetensors"
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
CONFIG_KEYS = (
    "imageChannels",
    "latentChannels",
    "levels",
    "baseChannels",
    "channelMultipliers",
    "resBlocksPerLevel",
    "groups",
)


def _stage(width: int, blocks: int, groups: int) -> nn.ModuleList:
    """Returns `blocks` residual blocks of one width (named .0, .1, ...)."""
    return nn.ModuleList(ResBlock(width, width, groups=groups) for _ in range(blocks))


def _run(blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    for b in blocks:
        x = b(x)
    return x


class VaeEncoder(nn.Module):
    def __init__(self, c: dict, out_channels: int):
        super().__init__()
        w = [m * c["baseChannels"] for m in c["channelMultipliers"]]
        n, g = c["resBlocksPerLevel"], c["groups"]
        self.conv_in = conv3(c["imageChannels"], w[0])
        self.down = nn.ModuleList(
            nn.ModuleDict({"res": _stage(w[i], n, g), "downsample": conv3(w[i], w[i + 1], stride=2)})
            for i in range(c["levels"])
        )
        self.mid = _stage(w[-1], n, g)
        self.norm_out = nn.GroupNorm(g, w[-1], eps=1e-5)
        self.conv_out = conv3(w[-1], out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level["downsample"](_run(level["res"], h))
        h = _run(self.mid, h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VaeDecoder(nn.Module):
    def __init__(self, c: dict, in_channels: int):
        super().__init__()
        w = [m * c["baseChannels"] for m in c["channelMultipliers"]]
        n, g = c["resBlocksPerLevel"], c["groups"]
        self.conv_in = conv3(in_channels, w[-1])
        self.mid = _stage(w[-1], n, g)
        # up.i goes from resolution level i+1 to level i; run from the bottom up.
        self.up = nn.ModuleList(
            nn.ModuleDict({"upsample": conv3(w[i + 1], w[i]), "res": _stage(w[i], n, g)})
            for i in range(c["levels"])
        )
        self.norm_out = nn.GroupNorm(g, w[0], eps=1e-5)
        self.conv_out = conv3(w[0], c["imageChannels"])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = _run(self.mid, self.conv_in(z))
        for i in reversed(range(len(self.up))):
            h = _run(
                self.up[i]["res"], self.up[i]["upsample"](F.interpolate(h, scale_factor=2, mode="nearest"))
            )
        return self.conv_out(F.silu(self.norm_out(h)))


class Vae(nn.Module):
    """The KL-VAE: parameters under `encoder.` and `decoder.`, plus the latent scaling factors."""

    def __init__(self, config: dict, scaling_factor: float = 1.0, shift_factor: float = 0.0):
        super().__init__()
        self.config = dict(config)
        self.scaling_factor = scaling_factor
        self.shift_factor = shift_factor
        self.encoder = VaeEncoder(config, 2 * config["latentChannels"])
        self.decoder = VaeDecoder(config, config["latentChannels"])

    def moments(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the posterior's mean and log-variance (clamped to [-30, 20]) of images in [-1, 1]."""
        c = self.config["latentChannels"]
        f = 2 ** self.config["levels"]
        if images.dim() != 4 or images.shape[1] != self.config["imageChannels"]:
            raise ValueError(
                f"vae.encode: expected images [N, {self.config['imageChannels']}, H, W], got {list(images.shape)}"
            )
        if images.shape[2] % f or images.shape[3] % f:
            raise ValueError(
                f"vae: image {images.shape[2]}×{images.shape[3]} is not divisible by the downsampling factor {f}"
            )
        h = self.encoder(images)
        return h[:, :c], h[:, c:].clamp(LOGVAR_MIN, LOGVAR_MAX)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Returns the scaled latents (mean - shift) * scale of images [N, C, H, W] in [-1, 1]:
        the posterior mean, as the TypeScript's encodeLatents (factors applied in float64)."""
        mean, _ = self.moments(images)
        return ((mean.double() - self.shift_factor) * self.scaling_factor).to(mean.dtype)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Returns images [N, C, H, W] (roughly in [-1, 1], unclamped) from scaled latents:
        the decoder applied to latents / scale + shift."""
        if latents.dim() != 4 or latents.shape[1] != self.config["latentChannels"]:
            raise ValueError(
                f"vae.decode: expected latents [N, {self.config['latentChannels']}, h, w], got {list(latents.shape)}"
            )
        z = (latents.double() * (1 / self.scaling_factor) + self.shift_factor).to(latents.dtype)
        return self.decoder(z)


def load_vae(path: str) -> Vae:
    """Returns the VAE (eval mode) of a checkpoint or VAE folder's vae.safetensors (or of that
    file itself). The config and factors come from the file's metadata; errors name the file
    and the field or tensor."""
    file = os.path.join(path, VAE_FILE) if os.path.isdir(path) else path
    tensors, meta = load(file)

    def field(key: str) -> str:
        if key not in meta:
            raise ValueError(f'{file}: missing metadata field "__metadata__.{key}"')
        return meta[key]

    if field("format") != VAE_FORMAT:
        raise ValueError(
            f'{file}: metadata field "__metadata__.format" is "{field("format")}", expected "{VAE_FORMAT}"'
        )
    try:
        config = json.loads(field("config"))
    except json.JSONDecodeError as err:
        raise ValueError(f'{file}: metadata field "__metadata__.config" is not JSON: {err}') from err
    if not isinstance(config, dict):
        raise ValueError(f'{file}: metadata field "__metadata__.config" must be a JSON object')
    for key in CONFIG_KEYS:
        if key not in config:
            raise ValueError(f'{file}: __metadata__.config: missing field "{key}"')
    if len(config["channelMultipliers"]) != config["levels"] + 1:
        raise ValueError(
            f'{file}: __metadata__.config: field "channelMultipliers" must list levels + 1 integers'
        )

    def factor(key: str, positive: bool) -> float:
        try:
            v = float(field(key))
        except ValueError:
            v = float("nan")
        if not (v == v and abs(v) != float("inf")) or (positive and v <= 0):
            raise ValueError(
                f'{file}: metadata field "__metadata__.{key}" must be a finite{" positive" if positive else ""} number, got "{field(key)}"'
            )
        return v

    vae = Vae(config, factor("scaling_factor", True), factor("shift_factor", False))
    expected = {name: t.shape for name, t in vae.state_dict().items()}
    vae.load_state_dict(float_weights(file, tensors, expected), strict=True)
    return vae.eval()
