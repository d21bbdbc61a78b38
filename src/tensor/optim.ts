/** AdamW with a fused update, global-norm gradient clipping, and the warmup + cosine schedule. */
import { backend } from "./backends/current.js";
import { type FloatStore, isHost } from "./storage.js";
import { Tensor } from "./tensor.js";

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** The paper's AdamW settings (docs/RECIPE.md §7). */
export const PAPER_ADAMW: AdamWOptions = {
  lr: 3e-4,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
};

/** A parameter with its optimiser state; `decay` false exempts it from weight decay. */
export interface ParamGroupEntry {
  param: Tensor;
  decay: boolean;
}

export class AdamW {
  readonly options: AdamWOptions;
  readonly entries: ParamGroupEntry[];
  /** First and second moments, one tensor per parameter (kept where the parameters are). */
  readonly m: Tensor[];
  readonly v: Tensor[];
  /** Number of updates taken so far. */
  step = 0;

  constructor(params: Array<Tensor | ParamGroupEntry>, options: Partial<AdamWOptions> = {}) {
    this.options = { ...PAPER_ADAMW, ...options };
    this.entries = params.map((p) => ("param" in p ? p : { param: p, decay: p.rank >= 2 }));
    this.m = this.entries.map((e) => new Tensor(new Float32Array(e.param.size), e.param.shape));
    this.v = this.entries.map((e) => new Tensor(new Float32Array(e.param.size), e.param.shape));
  }

  /**
   * Applies one update with learning rate `lr` (default: options.lr); `gradScale` multiplies
   * every gradient first (clipping). Parameters without a gradient are left untouched.
   */
  update(lr = this.options.lr, gradScale = 1): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.options;
    const bc1 = 1 - beta1 ** this.step;
    const bc2 = 1 - beta2 ** this.step;
    const be = backend();
    this.entries.forEach((e, i) => {
      const g = e.param.grad;
      if (!g) return;
      const wd = e.decay ? weightDecay : 0;
      be.adamw(
        e.param.store,
        g,
        this.m[i]!.store,
        this.v[i]!.store,
        e.param.size,
        lr,
        beta1,
        beta2,
        eps,
        wd,
        bc1,
        bc2,
        gradScale,
      );
    });
  }

  /** Clears every parameter's gradient. */
  zeroGrad(): void {
    for (const e of this.entries) e.param.grad = null;
  }
}

/** Returns each parameter's Σ grad² (0 without a gradient) in one array of the backend. */
function gradSquares(params: readonly Tensor[]): FloatStore {
  const be = backend();
  const parts = be.alloc(params.length);
  params.forEach((p, i) => {
    if (p.grad) be.sumSquares(p.grad, p.size, parts, i);
  });
  return parts;
}

/** Returns √(Σ parts) summed in double. */
function rootSum(parts: Float32Array): number {
  let s = 0;
  for (const x of parts) s += x;
  return Math.sqrt(s);
}

/**
 * Returns the global L2 norm of all gradients (missing gradients count as zero), on a host
 * backend; `readGradNorm` works on every backend.
 */
export function gradNorm(params: readonly Tensor[]): number {
  const parts = gradSquares(params);
  if (!isHost(parts)) {
    throw new Error(
      `gradNorm: gradients are in ${parts.device} memory; use \`await readGradNorm(params)\``,
    );
  }
  return rootSum(parts);
}

/** Returns the global L2 norm of all gradients once they are computed, on every backend. */
export async function readGradNorm(params: readonly Tensor[]): Promise<number> {
  const parts = gradSquares(params);
  return rootSum(isHost(parts) ? parts : await backend().read(parts, params.length));
}

/**
 * Returns the factor that scales gradients to global norm ≤ maxNorm (1 when already within),
 * and the norm before clipping. Pass the factor to AdamW.update as gradScale.
 */
export function clipFactor(
  params: readonly Tensor[],
  maxNorm: number,
): { norm: number; factor: number } {
  return clipFactorOf(gradNorm(params), maxNorm);
}

/** Returns the clipping factor of a gradient norm (see clipFactor). */
export function clipFactorOf(norm: number, maxNorm: number): { norm: number; factor: number } {
  return { norm, factor: maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1 };
}

export interface CosineSchedule {
  maxLr: number;
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** Returns the learning rate at `step` (0-based): linear warmup, then cosine decay to minLr. */
export function cosineLr(step: number, s: CosineSchedule): number {
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (s.maxLr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  return s.minLr + 0.5 * (s.maxLr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
