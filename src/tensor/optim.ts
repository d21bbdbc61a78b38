/** AdamW with a fused update, global-norm gradient clipping, and the warmup + cosine schedule. */
import { backend } from "./backends/current.js";
import type { Tensor } from "./tensor.js";

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
  readonly m: Float32Array[];
  readonly v: Float32Array[];
  /** Number of updates taken so far. */
  step = 0;

  constructor(params: Array<Tensor | ParamGroupEntry>, options: Partial<AdamWOptions> = {}) {
    this.options = { ...PAPER_ADAMW, ...options };
    this.entries = params.map((p) => ("param" in p ? p : { param: p, decay: p.rank >= 2 }));
    this.m = this.entries.map((e) => new Float32Array(e.param.size));
    this.v = this.entries.map((e) => new Float32Array(e.param.size));
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
        e.param.f32,
        g,
        this.m[i]!,
        this.v[i]!,
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

/** Returns the global L2 norm of all gradients (missing gradients count as zero). */
export function gradNorm(params: readonly Tensor[]): number {
  const be = backend();
  let s = 0;
  for (const p of params) if (p.grad) s += be.sumSquares(p.grad, p.size);
  return Math.sqrt(s);
}

/**
 * Returns the factor that scales gradients to global norm ≤ maxNorm (1 when already within),
 * and the norm before clipping. Pass the factor to AdamW.update as gradScale.
 */
export function clipFactor(
  params: readonly Tensor[],
  maxNorm: number,
): { norm: number; factor: number } {
  const norm = gradNorm(params);
  const factor = maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
  return { norm, factor };
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
