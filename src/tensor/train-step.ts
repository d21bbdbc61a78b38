/**
 * One optimisation step as every training loop of the project takes it (the Transformer
 * trainer, the VAE/VQ trainers, the evaluation classifier): the warm-up + cosine learning
 * rate of the step, global-norm clipping, the AdamW update, cleared gradients, and the clock
 * behind per-step seconds and the ETA of progress reports. It lives in tensor/ because it
 * knows only parameters and gradients, so every layer above may use it.
 */
import { type AdamW, type CosineSchedule, clipFactorOf, cosineLr, gradNorm } from "./optim.js";
import type { Tensor } from "./tensor.js";

export interface TrainStepperOptions {
  /** Learning rate by step: linear warm-up, then cosine decay to minLr. */
  schedule: CosineSchedule;
  /** Global gradient-norm limit (0 = off). */
  clip: number;
  /**
   * When true, a step whose loss or gradient norm is not finite leaves the weights and the
   * optimiser state alone (its gradients are still cleared); when false every step updates,
   * for loops that stop on a non-finite loss themselves.
   */
  skipNonFinite?: boolean;
}

/** What one `apply` did. */
export interface StepUpdate {
  /** The learning rate of the step. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** False when the step was skipped for a non-finite loss or gradient. */
  applied: boolean;
}

/** Where a loop stands: seconds since its first step began and the estimated seconds left. */
export interface LoopTiming {
  seconds: number;
  etaSeconds: number;
}

export class TrainStepper {
  readonly opt: AdamW;
  /** The optimised parameters, in the optimiser's order (the clipping norm sums in it). */
  readonly params: Tensor[];
  private readonly schedule: CosineSchedule;
  private readonly clip: number;
  private readonly skipNonFinite: boolean;
  /** performance.now() when the first step began (NaN before). */
  private loopStart = Number.NaN;
  private stepStart = Number.NaN;

  constructor(opt: AdamW, o: TrainStepperOptions) {
    this.opt = opt;
    // The optimiser's own order, so the clipping norm sums the gradients in a fixed order.
    this.params = opt.entries.map((e) => e.param);
    this.schedule = { ...o.schedule };
    this.clip = o.clip;
    this.skipNonFinite = o.skipNonFinite ?? false;
  }

  /** Returns the learning rate of `step` (0-based). */
  lr(step: number): number {
    return cosineLr(step, this.schedule);
  }

  /** Starts the clock of a step; the first call also starts the loop's clock. */
  begin(): void {
    this.stepStart = performance.now();
    if (Number.isNaN(this.loopStart)) this.loopStart = this.stepStart;
  }

  /**
   * Returns the step's learning rate, gradient norm and whether it was applied, after
   * updating the weights from their gradients (scaled to the clipping limit) and clearing
   * the gradients. `loss` matters only with skipNonFinite.
   */
  apply(step: number, loss = 0): StepUpdate {
    return this.applyWithNorm(step, loss, gradNorm(this.params));
  }

  /**
   * As `apply`, with the gradient norm already read (`readGradNorm` of the optimiser's
   * parameters): the form a loop takes on a device backend, where it awaits the norm together
   * with the loss.
   */
  applyWithNorm(step: number, loss: number, gradientNorm: number): StepUpdate {
    const { norm, factor } = clipFactorOf(gradientNorm, this.clip);
    const lr = this.lr(step);
    const applied = !this.skipNonFinite || (Number.isFinite(loss) && Number.isFinite(norm));
    if (applied) this.opt.update(lr, factor);
    this.opt.zeroGrad();
    return { lr, gradNorm: norm, applied };
  }

  /** Returns the seconds since the current step began. */
  stepSeconds(): number {
    return (performance.now() - this.stepStart) / 1000;
  }

  /** Returns the seconds since the first step began (0 before it). */
  elapsed(): number {
    return Number.isNaN(this.loopStart) ? 0 : (performance.now() - this.loopStart) / 1000;
  }

  /** Returns the elapsed seconds and the ETA of a loop that has done `done` of `total` steps. */
  progress(done: number, total: number): LoopTiming {
    const seconds = this.elapsed();
    return { seconds, etaSeconds: done > 0 ? (seconds / done) * (total - done) : 0 };
  }
}
