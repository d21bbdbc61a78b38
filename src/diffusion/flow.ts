/**
 * Flow matching, an option next to DDPM (off by default; the paper trains with DDPM):
 * rectified-flow interpolation between data and noise, its velocity target, and an Euler
 * sampler with the same Sampler interface as DDPM/DDIM.
 *
 * Time runs in DDPM's direction: t = 0 is clean data, t = 1 is pure noise (the straight
 * path of Liu et al. 2022, "Flow Straight and Fast", and Lipman et al. 2023, "Flow Matching",
 * with σ_min = 0, written with noise at t = 1). The model still takes an integer
 * timestep embedding; continuous t maps to it by flowTimestep, t ↦ round(t·(T−1)), so
 * t = 0 and t = 1 land on the DDPM range's ends 0 and T−1. Training and sampling must both go
 * through that mapping.
 */
import type { Rng } from "../tensor/rng.js";
import { checkClip, checkLengths, clampX0 } from "./noise.js";
import type { Prediction, Sampler } from "./samplers.js";

/** Returns x_t = (1−t)·x0 + t·ε for t ∈ [0, 1] in `out` (may alias x0 or eps). */
export function flowInterpolate(
  x0: Float32Array,
  eps: Float32Array,
  t: number,
  out: Float32Array = new Float32Array(x0.length),
): Float32Array {
  checkLengths("flowInterpolate", x0, eps, out);
  checkTime(t, "flowInterpolate");
  for (let i = 0; i < x0.length; i++) out[i] = (1 - t) * x0[i]! + t * eps[i]!;
  return out;
}

/**
 * Returns the regression target v = ε − x0 = d x_t / dt (the straight path's constant
 * velocity, Liu et al. 2022 eq. 1) in `out` (may alias x0 or eps).
 */
export function flowVelocityTarget(
  x0: Float32Array,
  eps: Float32Array,
  out: Float32Array = new Float32Array(x0.length),
): Float32Array {
  checkLengths("flowVelocityTarget", x0, eps, out);
  for (let i = 0; i < x0.length; i++) out[i] = eps[i]! - x0[i]!;
  return out;
}

/** Returns the model's integer timestep for continuous time t ∈ [0, 1]: round(t·(T−1)). */
export function flowTimestep(t: number, T: number): number {
  checkTime(t, "flowTimestep");
  return Math.round(t * (T - 1));
}

/**
 * Returns a training time drawn uniformly from [0, maxTime). maxTime defaults to 1 (the whole
 * path); the captioning noise cap of 500 of T = 1000 steps corresponds to maxTime = 0.5.
 */
export function sampleFlowTime(rng: Rng, maxTime = 1): number {
  if (!(maxTime > 0 && maxTime <= 1)) {
    throw new Error(`sampleFlowTime: maxTime must be in (0, 1], got ${maxTime}`);
  }
  return rng.uniform() * maxTime;
}

/** Options of the flow Euler sampler. */
export interface FlowEulerOptions {
  /** Number of Euler steps K (default 250, the same budget as DDPM). */
  steps?: number;
  /** Training steps T of the model's timestep embedding (default 1000). */
  T?: number;
  /**
   * Clip the implied x̂0 = x_t − t·v to ±x0Clip and use v = (x_t − x̂0)/t instead (null = off,
   * the default, for the same reason as the DDPM samplers: latents are not bounded).
   */
  x0Clip?: number | null;
}

/**
 * Euler integration of dx/dt = v(x, t) from t = 1 (noise) to t = 0 over K uniform steps:
 * t_i = 1 − i/K, x_{t_{i+1}} = x_{t_i} + (t_{i+1} − t_i)·v̂. Along a straight path the
 * velocity is constant, so with an exact velocity for a single data point every step is exact.
 * Deterministic: no random numbers are drawn.
 */
export class FlowEulerSampler implements Sampler {
  readonly prediction: Prediction = "velocity";
  readonly steps: number;
  readonly T: number;
  readonly x0Clip: number | null;

  constructor(opts: FlowEulerOptions = {}) {
    this.steps = opts.steps ?? 250;
    this.T = opts.T ?? 1000;
    this.x0Clip = opts.x0Clip ?? null;
    if (!Number.isInteger(this.steps) || this.steps < 1) {
      throw new Error(`FlowEulerSampler: steps must be an integer ≥ 1, got ${this.steps}`);
    }
    if (!Number.isInteger(this.T) || this.T < 1) {
      throw new Error(`FlowEulerSampler: T must be an integer ≥ 1, got ${this.T}`);
    }
    checkClip("FlowEulerSampler", this.x0Clip);
  }

  /** Returns the continuous time t_i = 1 − i/K of each step, descending from 1. */
  times(): number[] {
    return Array.from({ length: this.steps }, (_, i) => 1 - i / this.steps);
  }

  /** Returns flowTimestep(t_i, T) for each step: the model's conditioning, descending. */
  timesteps(): number[] {
    return this.times().map((t) => flowTimestep(t, this.T));
  }

  /** Returns x̂0 = x_t − t·v̂ (the end of the straight path), clipped to ±x0Clip, in `out`. */
  predictX0(
    i: number,
    xt: Float32Array,
    velocity: Float32Array,
    out: Float32Array = new Float32Array(xt.length),
  ): Float32Array {
    this.checkStep(i);
    checkLengths("FlowEulerSampler.predictX0", xt, velocity, out);
    const t = 1 - i / this.steps;
    for (let j = 0; j < xt.length; j++) {
      out[j] = clampX0(xt[j]! - t * velocity[j]!, this.x0Clip);
    }
    return out;
  }

  step(i: number, xt: Float32Array, velocity: Float32Array, _rng: Rng): void {
    this.checkStep(i);
    checkLengths("FlowEulerSampler.step", xt, velocity);
    const t = 1 - i / this.steps;
    const dt = -1 / this.steps;
    for (let j = 0; j < xt.length; j++) {
      const x = xt[j]!;
      let v = velocity[j]!;
      if (this.x0Clip !== null) {
        const raw = x - t * v;
        const x0 = clampX0(raw, this.x0Clip);
        if (x0 !== raw) v = (x - x0) / t;
      }
      xt[j] = x + dt * v;
    }
  }

  private checkStep(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.steps) {
      throw new Error(`FlowEulerSampler: step ${i} is not an integer in [0, ${this.steps - 1}]`);
    }
  }
}

function checkTime(t: number, where: string): void {
  if (!(t >= 0 && t <= 1)) throw new Error(`${where}: time must be in [0, 1], got ${t}`);
}
