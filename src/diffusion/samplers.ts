/**
 * Reverse-process samplers for a model trained to predict ε: respaced DDPM (the paper's
 * "250 steps of a model trained on 1000") and DDIM. Each steps a whole latent in place given
 * the model's prediction, so the caller can keep the latent inside its sequence buffer and
 * the model only ever sees the latest x_t (SPEC §6). Also classifier-free guidance.
 *
 * Timesteps follow schedule.ts: index t is the latent after t+1 noising steps, ᾱ_{−1} = 1.
 */
import type { Rng } from "../tensor/rng.js";
import { checkClip, checkLengths, clampX0 } from "./noise.js";
import type { NoiseSchedule } from "./schedule.js";

/** What a sampler needs from the model: the noise ε or the flow velocity ε − x0. */
export type Prediction = "epsilon" | "velocity";

/**
 * One reverse-process sampler. Start from pure noise x ~ N(0, I) (e.g. rng.fillNormal), then
 * for i = 0 … steps−1: ask the model for its prediction at `timesteps()[i]` and call
 * `step(i, x, prediction, rng)`. After the last step x is the sample.
 */
export interface Sampler {
  /** What `step` expects as `prediction`. */
  readonly prediction: Prediction;
  /** Number of model evaluations K. */
  readonly steps: number;
  /** Returns the model's integer timestep for each step, in calling (descending) order. */
  timesteps(): number[];
  /** Overwrites xt with the latent for step i+1 (the sample after the last step). */
  step(i: number, xt: Float32Array, prediction: Float32Array, rng: Rng): void;
  /**
   * Returns the clean sample x̂0 that step i's prediction implies for xt (clipped as `step`
   * clips it), in `out`; xt is not changed and no random numbers are drawn. Shown while an
   * image is denoised: what the model currently thinks the final image is.
   */
  predictX0(
    i: number,
    xt: Float32Array,
    prediction: Float32Array,
    out?: Float32Array,
  ): Float32Array;
}

/** Returns the model's prediction for latent xt at `timestep`, the i-th step of the sampler. */
export type Denoiser = (xt: Float32Array, timestep: number, i: number) => Float32Array;

/** Returns x after running every step of `sampler` on it in place (x starts as pure noise). */
export function runSampler(
  sampler: Sampler,
  x: Float32Array,
  denoise: Denoiser,
  rng: Rng,
): Float32Array {
  const ts = sampler.timesteps();
  for (let i = 0; i < sampler.steps; i++) sampler.step(i, x, denoise(x, ts[i]!, i), rng);
  return x;
}

/**
 * Returns the classifier-free guided prediction ε = ε_u + s·(ε_c − ε_u) (Ho & Salimans 2022,
 * eq. 6 in ε form) in `out` (may alias either input). Evaluated as ε_c + (s−1)·(ε_c − ε_u) so
 * that s = 1 returns ε_c bit for bit. Works the same for velocity predictions.
 */
export function guide(
  epsCond: Float32Array,
  epsUncond: Float32Array,
  scale: number,
  out: Float32Array = new Float32Array(epsCond.length),
): Float32Array {
  checkLengths("guide", epsCond, epsUncond, out);
  if (!Number.isFinite(scale)) throw new Error(`guide: scale must be finite, got ${scale}`);
  const w = scale - 1;
  for (let i = 0; i < out.length; i++) {
    const c = epsCond[i]!;
    out[i] = c + w * (c - epsUncond[i]!);
  }
  return out;
}

/**
 * Returns K of the T training timesteps, ascending and evenly spread over the whole range:
 * τ_k = round(k·(T−1)/(K−1)), so τ_0 = 0 and τ_{K−1} = T−1 (K = 1 gives [T−1]). Spacing is
 * ≥ 1 when K ≤ T, so the τ's are distinct. This is Improved DDPM's "respacing" (§4), and
 * K = T gives back every step.
 */
export function spacedTimesteps(T: number, K: number): number[] {
  if (!Number.isInteger(K) || K < 1 || K > T) {
    throw new Error(`sampler steps must be an integer in [1, ${T}], got ${K}`);
  }
  if (K === 1) return [T - 1];
  return Array.from({ length: K }, (_, k) => Math.round((k * (T - 1)) / (K - 1)));
}

/** Options shared by the ε-prediction samplers. */
export interface SpacedSamplerOptions {
  /** Number of sampling steps K ≤ T (default 250, as in the paper). */
  steps?: number;
  /**
   * Clip the predicted x0 to ±x0Clip before each update (null = off, the default). Pixel-space
   * DDPMs clip to ±1 because pixels live there; our VAE latents are roughly unit-variance
   * and unbounded, so a ±1 clip would cut real signal. Turn on (e.g. 3–4) only to tame an
   * under-trained model's early x0 guesses.
   */
  x0Clip?: number | null;
}

/**
 * The common part of respaced samplers: the K chosen timesteps, their ᾱ's, and argument
 * checks. Step i runs from τ_k to τ_{k−1} with k = K−1−i; the last step goes to ᾱ = 1 (x0).
 */
abstract class SpacedSampler implements Sampler {
  readonly prediction: Prediction = "epsilon";
  readonly steps: number;
  readonly x0Clip: number | null;
  /** Chosen training timesteps τ_k, ascending. */
  readonly spaced: readonly number[];
  /** ᾱ_{τ_k}, ascending in k. */
  readonly alphasCumprod: Float64Array;

  constructor(schedule: NoiseSchedule, opts: SpacedSamplerOptions, name: string) {
    this.steps = opts.steps ?? 250;
    this.x0Clip = opts.x0Clip ?? null;
    checkClip(name, this.x0Clip);
    this.spaced = spacedTimesteps(schedule.T, this.steps);
    this.alphasCumprod = Float64Array.from(this.spaced, (t) => schedule.alphasCumprod[t]!);
  }

  timesteps(): number[] {
    return [...this.spaced].reverse();
  }

  abstract step(i: number, xt: Float32Array, prediction: Float32Array, rng: Rng): void;

  /** Returns x̂0 = (x_t − √(1−ᾱ)·ε̂)/√ᾱ, clipped to ±x0Clip, in `out`. */
  predictX0(
    i: number,
    xt: Float32Array,
    epsPred: Float32Array,
    out: Float32Array = new Float32Array(xt.length),
  ): Float32Array {
    const [ab] = this.alphas(i, xt, epsPred);
    checkLengths("predictX0", xt, out);
    const invSqrtAb = 1 / Math.sqrt(ab);
    const noiseScale = Math.sqrt(1 - ab);
    for (let j = 0; j < xt.length; j++) {
      out[j] = clampX0((xt[j]! - noiseScale * epsPred[j]!) * invSqrtAb, this.x0Clip);
    }
    return out;
  }

  /** Returns [ᾱ at the current step, ᾱ at the next step] after validating the arguments. */
  protected alphas(i: number, xt: Float32Array, eps: Float32Array): [number, number] {
    if (!Number.isInteger(i) || i < 0 || i >= this.steps) {
      throw new Error(`sampler step ${i} is not an integer in [0, ${this.steps - 1}]`);
    }
    checkLengths("sampler step", xt, eps);
    const k = this.steps - 1 - i;
    return [this.alphasCumprod[k]!, k === 0 ? 1 : this.alphasCumprod[k - 1]!];
  }
}

/** Options of the respaced DDPM sampler. */
export interface DdpmSamplerOptions extends SpacedSamplerOptions {
  /**
   * Reverse-step variance: "posterior" uses β̃ = (1−ᾱ_prev)/(1−ᾱ)·β (default), "beta" uses β
   * itself. Ho et al. (2020, §3.2) found both give similar samples; Improved DDPM (§3.1)
   * shows β̃ is the better fixed choice when steps are skipped.
   */
  variance?: "posterior" | "beta";
}

/**
 * Ancestral DDPM sampling over K respaced steps (Ho et al. 2020, Algorithm 2, with Improved
 * DDPM §4 respacing). Skipping from τ_k straight to τ_{k−1} is a valid one-step chain with
 * β'_k = 1 − ᾱ_{τ_k}/ᾱ_{τ_{k−1}} (ᾱ_{τ_{−1}} = 1), and each step samples the Gaussian
 * posterior q(x_prev | x_t, x̂0) of Ho et al. eq. 6–7:
 *   μ̃ = √ᾱ_prev·β'/(1−ᾱ) · x̂0 + √(1−β')·(1−ᾱ_prev)/(1−ᾱ) · x_t,
 *   β̃ = (1−ᾱ_prev)/(1−ᾱ) · β',
 * with x̂0 = (x_t − √(1−ᾱ)·ε̂)/√ᾱ. Without clipping this equals eq. 11,
 * μ = (x_t − β'/√(1−ᾱ)·ε̂)/√(1−β'); going through x̂0 lets x0Clip act. On the final step
 * ᾱ_prev = 1, so μ̃ = x̂0 and no noise is added: the sample is the posterior mean.
 */
export class DdpmSampler extends SpacedSampler {
  readonly variance: "posterior" | "beta";
  /** β'_k of the respaced chain, ascending in k (equal to the schedule's β's when K = T). */
  readonly betas: Float64Array;

  constructor(schedule: NoiseSchedule, opts: DdpmSamplerOptions = {}) {
    super(schedule, opts, "DdpmSampler");
    this.variance = opts.variance ?? "posterior";
    if (this.variance !== "posterior" && this.variance !== "beta") {
      throw new Error(`DdpmSampler: variance must be "posterior" or "beta", got ${this.variance}`);
    }
    this.betas = this.alphasCumprod.map(
      (ab, k) => 1 - ab / (k === 0 ? 1 : this.alphasCumprod[k - 1]!),
    );
  }

  step(i: number, xt: Float32Array, epsPred: Float32Array, rng: Rng): void {
    const [ab, abPrev] = this.alphas(i, xt, epsPred);
    const beta = 1 - ab / abPrev;
    const coefX0 = (Math.sqrt(abPrev) * beta) / (1 - ab);
    const coefXt = (Math.sqrt(1 - beta) * (1 - abPrev)) / (1 - ab);
    const last = i === this.steps - 1;
    const variance = last
      ? 0
      : this.variance === "posterior"
        ? ((1 - abPrev) / (1 - ab)) * beta
        : beta;
    const sigma = Math.sqrt(variance);
    const invSqrtAb = 1 / Math.sqrt(ab);
    const noiseScale = Math.sqrt(1 - ab);
    for (let j = 0; j < xt.length; j++) {
      const x = xt[j]!;
      const x0 = clampX0((x - noiseScale * epsPred[j]!) * invSqrtAb, this.x0Clip);
      const mean = coefX0 * x0 + coefXt * x;
      xt[j] = last ? mean : mean + sigma * rng.normal();
    }
  }
}

/** Options of the DDIM sampler. */
export interface DdimSamplerOptions extends SpacedSamplerOptions {
  /** Stochasticity η ∈ [0, 1]: 0 is deterministic DDIM, 1 matches DDPM's β̃ noise level. */
  eta?: number;
}

/**
 * DDIM sampling (Song, Meng & Ermon 2021, eq. 12) over K respaced steps:
 *   x_prev = √ᾱ_prev·x̂0 + √(1 − ᾱ_prev − σ²)·ε̂ + σ·z,
 *   σ = η·√((1−ᾱ_prev)/(1−ᾱ))·√(1 − ᾱ/ᾱ_prev)   (eq. 16).
 * When x0Clip changes x̂0, ε̂ is recomputed from the clipped x̂0 so both terms describe the
 * same point. The final step (ᾱ_prev = 1, σ = 0) returns x̂0. With η = 0 no random numbers
 * are drawn.
 */
export class DdimSampler extends SpacedSampler {
  readonly eta: number;

  constructor(schedule: NoiseSchedule, opts: DdimSamplerOptions = {}) {
    super(schedule, opts, "DdimSampler");
    this.eta = opts.eta ?? 0;
    if (!(this.eta >= 0 && this.eta <= 1)) {
      throw new Error(`DdimSampler: eta must be in [0, 1], got ${this.eta}`);
    }
  }

  step(i: number, xt: Float32Array, epsPred: Float32Array, rng: Rng): void {
    const [ab, abPrev] = this.alphas(i, xt, epsPred);
    const sigma = this.eta * Math.sqrt(((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev));
    const dirScale = Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma));
    const sqrtAbPrev = Math.sqrt(abPrev);
    const sqrtAb = Math.sqrt(ab);
    const noiseScale = Math.sqrt(1 - ab);
    for (let j = 0; j < xt.length; j++) {
      const x = xt[j]!;
      let eps = epsPred[j]!;
      const raw = (x - noiseScale * eps) / sqrtAb;
      const x0 = clampX0(raw, this.x0Clip);
      if (x0 !== raw) eps = (x - sqrtAb * x0) / noiseScale;
      const next = sqrtAbPrev * x0 + dirScale * eps;
      xt[j] = sigma > 0 ? next + sigma * rng.normal() : next;
    }
  }
}
