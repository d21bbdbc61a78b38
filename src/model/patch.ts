/** Cutting latents into k×k patches (raster order) and putting them back; timestep features. */
import { permute, reshape } from "../tensor/ops/shape.js";
import { Tensor } from "../tensor/tensor.js";

/** Returns patches [N·g·g, C·k²] of latents [N, C, H, W] in raster order (row by row). */
export function patchify(latents: Tensor, k: number): Tensor {
  const [N, C, H, W] = latents.shape as [number, number, number, number];
  if (H % k !== 0 || W % k !== 0)
    throw new Error(`patchify: ${H}×${W} latent not divisible by patch ${k}`);
  const gh = H / k;
  const gw = W / k;
  if (k === 1) {
    // [N, C, H, W] → [N, H, W, C]: one vector of C numbers per latent pixel.
    return reshape(permute(latents, [0, 2, 3, 1]), [N * H * W, C]);
  }
  const x = reshape(latents, [N, C, gh, k, gw, k]);
  return reshape(permute(x, [0, 2, 4, 1, 3, 5]), [N * gh * gw, C * k * k]);
}

/** Returns latents [N, C, H, W] from patches [N·g·g, C·k²] (inverse of patchify). */
export function unpatchify(
  patches: Tensor,
  N: number,
  C: number,
  H: number,
  W: number,
  k: number,
): Tensor {
  const gh = H / k;
  const gw = W / k;
  if (k === 1) return permute(reshape(patches, [N, H, W, C]), [0, 3, 1, 2]);
  const x = reshape(patches, [N, gh, gw, C, k, k]);
  return reshape(permute(x, [0, 3, 1, 4, 2, 5]), [N, C, H, W]);
}

/**
 * Returns sinusoidal features [N, dim] of timesteps (the Transformer/DDPM embedding):
 * [cos(t·f_i), sin(t·f_i)] with f_i = maxPeriod^(−i/(dim/2)).
 */
export function timestepFeatures(t: ArrayLike<number>, dim: number, maxPeriod = 10000): Tensor {
  const half = dim / 2;
  const out = new Float32Array(t.length * dim);
  for (let n = 0; n < t.length; n++) {
    for (let i = 0; i < half; i++) {
      const a = t[n]! * maxPeriod ** (-i / half);
      out[n * dim + i] = Math.cos(a);
      out[n * dim + half + i] = Math.sin(a);
    }
  }
  return new Tensor(out, [t.length, dim]);
}
