/**
 * Noise schedules for the discrete DDPM forward process: the cosine schedule the paper trains
 * with (Nichol & Dhariwal 2021) and the linear schedule of Ho et al. (2020) for comparison.
 *
 * Timestep convention, used by every file in diffusion/: an integer t ∈ [0, T−1] indexes the
 * latent after t+1 noising steps. `betas[t]` is the variance added by that (t+1)-th step and
 * `alphasCumprod[t]` = ᾱ_t = ∏_{s=0..t} (1 − β_s), so ᾱ_0 = 1 − β_0 is already slightly noisy
 * and the clean latent x0 sits "before" index 0 (ᾱ = 1). This is the indexing of the improved
 * DDPM reference code, so t = 0 is the least noisy input the model is trained on and
 * t = T−1 is (numerically) pure noise.
 */

/** Options of the cosine schedule; every field has the paper's default. */
export interface CosineScheduleOptions {
  /** Number of training diffusion steps (paper: 1000). */
  T?: number;
  /** Offset s that keeps β small near t = 0 (Nichol & Dhariwal: 0.008). */
  offset?: number;
  /** Largest β allowed; the last cosine β would be 1 (Nichol & Dhariwal: 0.999). */
  maxBeta?: number;
}

/** Options of the linear schedule (Ho et al. 2020: β from 1e-4 to 0.02 over 1000 steps). */
export interface LinearScheduleOptions {
  T?: number;
  /** β of the first step when T = 1000. */
  betaStart?: number;
  /** β of the last step when T = 1000. */
  betaEnd?: number;
}

/**
 * A discrete variance schedule. Built from its β's alone: ᾱ is their cumulative product, so
 * the one-step chain q(x_t | x_{t−1}) and the closed-form marginal q(x_t | x0) always agree.
 */
export class NoiseSchedule {
  /** Number of training steps; valid timesteps are 0 … T−1. */
  readonly T: number;
  /** βₜ: variance added by the step that produces x_t. */
  readonly betas: Float64Array;
  /** ᾱₜ = ∏_{s≤t} (1 − β_s): the signal fraction of x_t's variance. */
  readonly alphasCumprod: Float64Array;

  constructor(
    betas: Float64Array,
    /** Where the β's came from ("cosine", "linear"), for messages and logs. */
    readonly kind: string,
  ) {
    if (betas.length < 1) throw new Error("NoiseSchedule: needs at least one β");
    this.T = betas.length;
    this.betas = betas;
    this.alphasCumprod = new Float64Array(betas.length);
    let prod = 1;
    for (let t = 0; t < betas.length; t++) {
      const b = betas[t]!;
      if (!(b > 0 && b < 1)) {
        throw new Error(`NoiseSchedule(${kind}): β[${t}] = ${b} is outside (0, 1)`);
      }
      prod *= 1 - b;
      this.alphasCumprod[t] = prod;
    }
  }

  /** Returns ᾱ_t for an integer timestep t ∈ [0, T−1] (throws otherwise). */
  alphaBar(t: number): number {
    checkTimestep(t, this.T);
    return this.alphasCumprod[t]!;
  }

  /** Returns ᾱ_{t−1}, with ᾱ_{−1} = 1 for the clean latent before step 0. */
  alphaBarPrev(t: number): number {
    checkTimestep(t, this.T);
    return t === 0 ? 1 : this.alphasCumprod[t - 1]!;
  }

  /** Returns √ᾱ_t, the scale of x0 inside x_t. */
  signalScale(t: number): number {
    return Math.sqrt(this.alphaBar(t));
  }

  /** Returns √(1 − ᾱ_t), the scale of ε inside x_t. */
  noiseScale(t: number): number {
    return Math.sqrt(1 - this.alphaBar(t));
  }
}

/** Returns nothing; throws unless t is an integer timestep in [0, T−1]. */
export function checkTimestep(t: number, T: number): void {
  if (!Number.isInteger(t) || t < 0 || t >= T) {
    throw new Error(`timestep ${t} is not an integer in [0, ${T - 1}]`);
  }
}

/**
 * Returns the cosine schedule of Nichol & Dhariwal ("Improved DDPM", 2021, eq. 17):
 * ᾱ(τ) = f(τ)/f(0) with f(τ) = cos²(((τ/T) + s)/(1 + s) · π/2) over continuous τ ∈ [0, T].
 *
 * Index t is the step from τ = t to τ = t+1, so β_t = 1 − ᾱ(t+1)/ᾱ(t), clipped at maxBeta
 * because f(T) = 0 would make the last β exactly 1 (a singular final step). ᾱ is then
 * recomputed as the cumulative product of (1 − β) rather than taken from the closed form:
 * the two agree to rounding everywhere except the clipped tail, and the product keeps the
 * discrete chain self-consistent (the posterior q(x_{t−1} | x_t, x0) used by the samplers
 * assumes exactly ᾱ_t = ᾱ_{t−1}·(1 − β_t)). With the defaults only β_{T−1} is clipped,
 * giving ᾱ_{T−1} ≈ 2.4e-9 instead of 0.
 */
export function cosineSchedule(opts: CosineScheduleOptions = {}): NoiseSchedule {
  const T = opts.T ?? 1000;
  const s = opts.offset ?? 0.008;
  const maxBeta = opts.maxBeta ?? 0.999;
  checkSteps(T, "cosineSchedule");
  if (!(s > 0)) throw new Error(`cosineSchedule: offset must be > 0, got ${s}`);
  if (!(maxBeta > 0 && maxBeta < 1)) {
    throw new Error(`cosineSchedule: maxBeta must be in (0, 1), got ${maxBeta}`);
  }
  const f = (tau: number): number => Math.cos(((tau / T + s) / (1 + s)) * (Math.PI / 2)) ** 2;
  const betas = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    betas[t] = Math.min(1 - f(t + 1) / f(t), maxBeta);
  }
  return new NoiseSchedule(betas, "cosine");
}

/**
 * Returns the linear schedule of Ho et al. (DDPM, 2020, §4): β rising linearly from betaStart
 * to betaEnd. For T ≠ 1000 both ends are scaled by 1000/T, as in Improved DDPM, so the total
 * noise added (and hence ᾱ_{T−1} ≈ 4e-5) stays about the same.
 */
export function linearSchedule(opts: LinearScheduleOptions = {}): NoiseSchedule {
  const T = opts.T ?? 1000;
  checkSteps(T, "linearSchedule");
  const scale = 1000 / T;
  const start = (opts.betaStart ?? 1e-4) * scale;
  const end = (opts.betaEnd ?? 0.02) * scale;
  if (!(start > 0 && end < 1 && start <= end)) {
    throw new Error(
      `linearSchedule: need 0 < betaStart ≤ betaEnd < 1 after scaling, got ${start}, ${end}`,
    );
  }
  const betas = new Float64Array(T);
  for (let t = 0; t < T; t++) betas[t] = T === 1 ? start : start + ((end - start) * t) / (T - 1);
  return new NoiseSchedule(betas, "linear");
}

function checkSteps(T: number, where: string): void {
  if (!Number.isInteger(T) || T < 1)
    throw new Error(`${where}: T must be an integer ≥ 1, got ${T}`);
}
