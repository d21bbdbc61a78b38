"""The diffusion pieces training needs: the cosine noise schedule and the two forward processes.

Mirrors src/diffusion/schedule.ts, noise.ts and flow.ts. Timestep convention: an integer
t in [0, T-1] indexes the latent after t+1 noising steps, so alphas_cumprod[0] = 1 - beta_0 is
already slightly noisy and the clean latent sits "before" index 0. All schedule arithmetic is
float64, and noised latents are rounded to float32 once, as the TypeScript does.
"""

from __future__ import annotations

import math

import torch


def cosine_betas(T: int = 1000, offset: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Returns the cosine schedule's betas (Nichol & Dhariwal 2021, eq. 17), float64 [T].

    With f(tau) = cos^2(((tau/T + s)/(1 + s)) * pi/2) over continuous tau in [0, T], step t goes
    from tau = t to tau = t+1, so beta_t = 1 - f(t+1)/f(t), clipped at max_beta (f(T) = 0 would
    make the last beta exactly 1).
    """
    if not (isinstance(T, int) and T >= 1):
        raise ValueError(f"cosine_betas: T must be an integer >= 1, got {T}")

    def f(tau: int) -> float:
        return math.cos(((tau / T + offset) / (1 + offset)) * (math.pi / 2)) ** 2

    return torch.tensor([min(1 - f(t + 1) / f(t), max_beta) for t in range(T)], dtype=torch.float64)


def alphas_cumprod(T: int = 1000) -> torch.Tensor:
    """Returns abar_t = prod_{s<=t} (1 - beta_s) of the cosine schedule, float64 [T].

    Taken as the running product of (1 - beta) in order (not the closed form f(t+1)/f(0)), as
    src/diffusion/schedule.ts does: equal to the TypeScript's up to the last bit of a cosine
    (Python's libm and V8 may round cos differently; the test sees at most 1e-15 relative).
    """
    out = []
    prod = 1.0
    for beta in cosine_betas(T).tolist():
        prod *= 1 - beta
        out.append(prod)
    return torch.tensor(out, dtype=torch.float64)


def ddpm_noise(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """Returns x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps per image (Ho et al. 2020, eq. 4).

    x0, eps [N, ...] float32, t LongTensor [N]; computed in float64 and rounded once.
    """
    a = abar.to(x0.device)[t].view(-1, *[1] * (x0.dim() - 1))
    return (a.sqrt() * x0.double() + (1 - a).sqrt() * eps.double()).to(x0.dtype)


def flow_noise(x0: torch.Tensor, eps: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
    """Returns x_tau = (1 - tau) * x0 + tau * eps per image (the straight path, noise at tau = 1).

    The regression target is the path's constant velocity eps - x0. time: float [N] in [0, 1].
    """
    tau = time.double().to(x0.device).view(-1, *[1] * (x0.dim() - 1))
    return ((1 - tau) * x0.double() + tau * eps.double()).to(x0.dtype)


def flow_timestep(time: torch.Tensor, T: int) -> torch.Tensor:
    """Returns the model's integer timestep for flow time tau in [0, 1]: round(tau * (T - 1)).

    Rounds halves up, like JavaScript's Math.round (torch.round would round them to even).
    """
    x = time.double() * (T - 1)
    r = torch.floor(x)
    return (r + (x - r >= 0.5).double()).long()


def sample_flow_time(t: torch.Tensor, T: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Returns tau = (t + u) / T with u ~ U[0, 1) per image: the training flow time of layout
    timesteps t (uniform on [0, cap/T) when t is uniform on the integers [0, cap)), float64 [N]."""
    u = torch.rand(t.shape, generator=generator, dtype=torch.float64)
    return (t.double() + u) / T
