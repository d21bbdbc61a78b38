/**
 * The DDPM forward process and its inversions over flat Float32Array latents: noising a clean
 * latent to timestep t, drawing training timesteps, and recovering x0 or ε from x_t.
 * Arithmetic is done in float64 and rounded once on store.
 */
import type { Rng } from "../tensor/rng.js";
import type { NoiseSchedule } from "./schedule.js";

/**
 * Noise cap for image-before-caption data (SPEC §5): t is drawn from [0, 500) — the first half
 * of a 1000-step schedule — so the caption conditions on a still recognisable image.
 */
export const CAPTION_NOISE_CAP = 500;

/**
 * Returns x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (Ho et al. 2020, eq. 4: the closed-form marginal
 * q(x_t | x0)), written into `out` (a new array when omitted; may alias x0 or eps).
 */
export function addNoise(
  x0: Float32Array,
  eps: Float32Array,
  t: number,
  schedule: NoiseSchedule,
  out: Float32Array = new Float32Array(x0.length),
): Float32Array {
  checkLengths("addNoise", x0, eps, out);
  const a = schedule.signalScale(t);
  const b = schedule.noiseScale(t);
  for (let i = 0; i < x0.length; i++) out[i] = a * x0[i]! + b * eps[i]!;
  return out;
}

/**
 * Returns a training timestep drawn uniformly from the integers [0, cap). `cap` defaults to T
 * (the whole schedule); pass CAPTION_NOISE_CAP for image-first captioning data.
 */
export function sampleTimestep(rng: Rng, T: number, cap: number = T): number {
  if (!Number.isInteger(T) || T < 1)
    throw new Error(`sampleTimestep: T must be an integer ≥ 1, got ${T}`);
  if (!Number.isInteger(cap) || cap < 1 || cap > T) {
    throw new Error(`sampleTimestep: cap must be an integer in [1, ${T}], got ${cap}`);
  }
  return rng.int(cap);
}

/**
 * Returns the clean latent implied by a noise prediction, x̂0 = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t
 * (Ho et al. 2020, eq. 4 solved for x0; Improved DDPM's "predict_xstart_from_eps"), clipped
 * to ±clip when `clip` is given. Written into `out` (may alias xt or epsPred).
 */
export function predictX0(
  xt: Float32Array,
  epsPred: Float32Array,
  t: number,
  schedule: NoiseSchedule,
  clip: number | null = null,
  out: Float32Array = new Float32Array(xt.length),
): Float32Array {
  checkLengths("predictX0", xt, epsPred, out);
  checkClip("predictX0", clip);
  const ab = schedule.alphaBar(t);
  const inv = 1 / Math.sqrt(ab);
  const b = Math.sqrt(1 - ab);
  for (let i = 0; i < xt.length; i++) out[i] = clampX0((xt[i]! - b * epsPred[i]!) * inv, clip);
  return out;
}

/**
 * Returns the noise implied by a clean latent, ε = (x_t − √ᾱ_t·x0)/√(1−ᾱ_t) (eq. 4 solved for
 * ε), written into `out` (may alias xt or x0). This is also the exact ε-oracle for data that
 * is a single known point.
 */
export function epsFromX0(
  xt: Float32Array,
  x0: Float32Array,
  t: number,
  schedule: NoiseSchedule,
  out: Float32Array = new Float32Array(xt.length),
): Float32Array {
  checkLengths("epsFromX0", xt, x0, out);
  const ab = schedule.alphaBar(t);
  const a = Math.sqrt(ab);
  const b = Math.sqrt(1 - ab);
  for (let i = 0; i < xt.length; i++) out[i] = (xt[i]! - a * x0[i]!) / b;
  return out;
}

/** Returns nothing; throws unless every array has the length of the first. */
export function checkLengths(where: string, ...arrays: Float32Array[]): void {
  const n = arrays[0]!.length;
  for (let k = 1; k < arrays.length; k++) {
    if (arrays[k]!.length !== n) {
      throw new Error(`${where}: argument ${k} has length ${arrays[k]!.length}, expected ${n}`);
    }
  }
}

/** Returns nothing; throws unless clip is null or a positive finite number. */
export function checkClip(where: string, clip: number | null): void {
  if (clip !== null && !(clip > 0 && Number.isFinite(clip))) {
    throw new Error(`${where}: x0 clip must be a positive number or null, got ${clip}`);
  }
}

/** Returns x clipped to ±clip, or x unchanged when clip is null. */
export function clampX0(x: number, clip: number | null): number {
  if (clip === null) return x;
  return Math.min(clip, Math.max(-clip, x));
}
