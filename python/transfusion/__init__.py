"""PyTorch mirror of the TypeScript Transfusion model: reads its checkpoint folders as they are.

    from transfusion import load_checkpoint, Layout, transfusion_loss
    model, config = load_checkpoint("runs/x/checkpoint")

See model.py (model, layout, loss, checkpoints), vae.py (the KL-VAE), diffusion.py (schedule and
noising) and safetensors_io.py (the file format).
"""

from .diffusion import alphas_cumprod, cosine_betas, flow_timestep
from .model import (
    Layout,
    Transfusion,
    build_mask,
    load_checkpoint,
    loss_sums,
    noise_batch,
    transfusion_loss,
    validate_config,
)
from .safetensors_io import load, save
from .vae import Vae, load_vae

__all__ = [
    "Layout",
    "Transfusion",
    "Vae",
    "alphas_cumprod",
    "build_mask",
    "cosine_betas",
    "flow_timestep",
    "load",
    "load_checkpoint",
    "load_vae",
    "loss_sums",
    "noise_batch",
    "save",
    "transfusion_loss",
    "validate_config",
]
