/**
 * The training loop: AdamW with warmup + cosine decay, global-norm clipping, an EMA of the
 * weights, NaN/Inf guarding, atomic checkpoints and exact resume.
 *
 * Every step's randomness (which examples, their layout, t, noise) comes from an RNG seeded by
 * (seed, step), so a resumed run replays exactly the losses of an uninterrupted one.
 *
 * A step reads back only its loss and gradient norm, together, so the loop runs on a device
 * backend too; weights, moments and the EMA stay where the backend keeps them until a
 * checkpoint brings them to the host (`toHost`).
 */
import { join } from "node:path";
import type { NoiseSchedule } from "../diffusion/schedule.js";
import {
  loadModuleTensors,
  loadOptimizerTensors,
  MODEL_FILE,
  moduleTensors,
  optimizerTensors,
  readSafetensorsFile,
  replaceFolder,
  resolveCheckpointDir,
  TRAIN_STATE_FILE,
  writeSafetensorsFile,
} from "../io/checkpoint.js";
import { checkFiniteSaving } from "../io/integrity.js";
import { readLossValues, type TransfusionBatch, transfusionLoss } from "../model/loss.js";
import type { Transfusion } from "../model/transfusion.js";
import { backend } from "../tensor/backends/index.js";
import { AdamW, readGradNorm } from "../tensor/optim.js";
import { withArenaAsync } from "../tensor/pool.js";
import { Rng, mixSeed as stepSeed } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { TrainStepper } from "../tensor/train-step.js";

export interface TrainSettings {
  steps: number;
  maxLr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm limit (0 = off). */
  clip: number;
  /** EMA decay of the sampling weights (0 = no EMA: sample with the raw weights). */
  emaDecay: number;
  seed: number;
  /** Steps between checkpoints (0 = only at the end). */
  checkpointEvery: number;
  /** Consecutive non-finite steps tolerated before stopping. */
  nanPatience: number;
}

/** Paper optimiser settings (docs/RECIPE.md §7) with learning rate and warmup scaled for small runs. */
export const DEFAULT_TRAIN: TrainSettings = {
  steps: 2000,
  maxLr: 1e-3,
  minLr: 5e-5,
  warmupSteps: 100,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  clip: 1,
  emaDecay: 0.995,
  seed: 0,
  checkpointEvery: 250,
  nanPatience: 20,
};

export interface StepMetrics {
  step: number;
  lm: number;
  image: number;
  total: number;
  /** Images in the step's batch (their codec FLOPs count toward the run's compute). */
  images: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  stepSeconds: number;
  skipped: boolean;
}

export interface TrainerOptions {
  model: Transfusion;
  settings: TrainSettings;
  schedule: NoiseSchedule;
  /** Returns the batch of `step`, drawn from `rng` only. */
  batchFor: (step: number, rng: Rng) => TransfusionBatch;
  /** Checkpoint folder; null for none. */
  checkpointDir: string | null;
  /** Writes the non-weight files of a checkpoint (config, tokenizer, VAE) into a folder. */
  writeStatic?: (dir: string, step: number) => void;
  onStep?: (m: StepMetrics) => void | Promise<void>;
  /** Called after each checkpoint `run` writes; a returned promise is awaited (and may throw). */
  onCheckpoint?: (dir: string, step: number) => void | Promise<void>;
  /** Polled between steps; true saves a checkpoint and stops. */
  shouldStop?: () => boolean;
}

export class Trainer {
  readonly model: Transfusion;
  readonly opt: AdamW;
  /** Learning rate, clipping, the update and step timing. */
  private readonly stepper: TrainStepper;
  readonly settings: TrainSettings;
  /** EMA of each parameter, by name (kept where the parameters are). */
  readonly ema = new Map<string, Tensor>();
  /** Steps completed. */
  step = 0;
  /** Non-finite steps skipped so far. */
  skippedSteps = 0;
  private consecutiveBad = 0;

  constructor(private readonly o: TrainerOptions) {
    this.model = o.model;
    this.settings = o.settings;
    const s = o.settings;
    this.opt = trainerOptimizer(o.model.namedParameters(), s);
    this.stepper = new TrainStepper(this.opt, {
      schedule: { maxLr: s.maxLr, minLr: s.minLr, warmupSteps: s.warmupSteps, totalSteps: s.steps },
      clip: s.clip,
      // A bad batch or a spike is skipped, not applied; nanPatience decides when to give up.
      skipNonFinite: true,
    });
    for (const [name, p] of o.model.namedParameters()) this.ema.set(name, p.clone());
  }

  /** Loads the checkpoint at `dir` (or its `.old` twin); returns the step it resumes from. */
  resume(dir: string): number {
    const found = resolveCheckpointDir(dir);
    if (!found) throw new Error(`no checkpoint to resume in ${dir}`);
    const statePath = join(found, TRAIN_STATE_FILE);
    const state = readSafetensorsFile(statePath);
    loadOptimizerTensors(this.model, this.opt, state, statePath);
    const modelPath = join(found, MODEL_FILE);
    // Same checks as loading for sampling: every shape the config implies, finite values.
    loadModuleTensors(this.model, readSafetensorsFile(modelPath), modelPath, "", this.emaHost());
    const step = Number(state.metadata.step);
    const adamStep = Number(state.metadata.adam_step);
    if (!Number.isInteger(step) || step < 0 || !Number.isInteger(adamStep)) {
      throw new Error(`${statePath}: metadata "step"/"adam_step" missing or invalid`);
    }
    this.step = step;
    this.opt.step = adamStep;
    this.skippedSteps = Number(state.metadata.skipped_steps ?? 0) || 0;
    return step;
  }

  /** Returns the learning rate of step `step`. */
  lr(step: number): number {
    return this.stepper.lr(step);
  }

  /** Runs one step (or skips it if the loss or gradients are not finite); returns its metrics. */
  trainStep(): Promise<StepMetrics> {
    // Every activation and gradient buffer of the step goes back to the pool at its end.
    return withArenaAsync(() => this.trainStepInner());
  }

  private async trainStepInner(): Promise<StepMetrics> {
    this.stepper.begin();
    const { seed } = this.settings;
    const batch = this.o.batchFor(this.step, new Rng(stepSeed(seed, this.step, 1)));
    const parts = transfusionLoss(
      this.model,
      batch,
      this.o.schedule,
      new Rng(stepSeed(seed, this.step, 2)),
    );
    parts.total.backward();
    // The step's one wait for the backend: its loss and gradient norm, read together.
    const [values, gradientNorm] = await Promise.all([
      readLossValues(parts),
      readGradNorm(this.stepper.params),
    ]);
    const total = values.total;
    const {
      lr,
      gradNorm: norm,
      applied: finite,
    } = this.stepper.applyWithNorm(this.step, total, gradientNorm);
    if (finite) {
      this.updateEma();
      this.consecutiveBad = 0;
    } else {
      this.skippedSteps++;
      this.consecutiveBad++;
    }
    this.step++;
    if (this.consecutiveBad > this.settings.nanPatience) {
      throw new Error(
        `training stopped: ${this.consecutiveBad} consecutive steps had a non-finite loss or gradient ` +
          `(last loss ${total}, grad norm ${norm}); lower the learning rate or check the data. ` +
          "The last good checkpoint was kept.",
      );
    }
    const stepSeconds = this.stepper.stepSeconds();
    return {
      step: this.step,
      lm: values.lm,
      image: values.image,
      total,
      images: parts.images,
      lr,
      gradNorm: norm,
      tokensPerSecond: (batch.layout.batch * batch.layout.seqLen) / stepSeconds,
      stepSeconds,
      skipped: !finite,
    };
  }

  private updateEma(): void {
    updateEma(this.ema, this.model.namedParameters(), this.settings.emaDecay, this.opt.step);
  }

  /** Returns the EMA's host arrays by name (after `toHost` on a device backend). */
  private emaHost(): Map<string, Float32Array> {
    return new Map([...this.ema].map(([n, t]) => [n, t.f32]));
  }

  /**
   * Returns the sampling weights by name (the EMA, or the raw weights when EMA is off) as
   * host arrays; on a device backend call `toHost` first.
   */
  samplingWeights(): Map<string, Float32Array> {
    if (this.settings.emaDecay > 0) return this.emaHost();
    return new Map(this.model.namedParameters().map(([n, p]) => [n, p.f32]));
  }

  /**
   * Brings the weights, the optimiser's moments and the EMA to host memory (nothing to do on
   * a host backend); the next step moves them back to the device.
   */
  async toHost(): Promise<void> {
    const tensors = [
      ...this.model.parameters(),
      ...this.opt.m,
      ...this.opt.v,
      ...this.ema.values(),
    ];
    await Promise.all(tensors.map((t) => t.toHost()));
  }

  /**
   * Returns the folder written: a checkpoint of the current state in the configured folder
   * (atomically), or null without one. Refuses, before touching the folder, a state holding
   * NaN or ±Infinity, so the previous checkpoint stays the one a resume finds.
   */
  save(): string | null {
    const dir = this.o.checkpointDir;
    if (!dir) return null;
    const sampling = this.samplingWeights();
    const named = this.model.namedParameters();
    checkFiniteSaving(
      named.map(([name]) => [name, sampling.get(name)!]),
      join(dir, MODEL_FILE),
    );
    // The train state too: a resume refuses non-finite moments, so saving them would strand it.
    const state = optimizerTensors(this.model, this.opt);
    checkFiniteSaving(
      Object.entries(state).map(([name, t]) => [name, t.data]),
      join(dir, TRAIN_STATE_FILE),
    );
    replaceFolder(dir, (tmp) => {
      this.o.writeStatic?.(tmp, this.step);
      writeSafetensorsFile(
        join(tmp, MODEL_FILE),
        moduleTensors(this.model, "", this.samplingWeights()),
        {
          format: "transfusion-model/1",
          step: String(this.step),
        },
      );
      writeSafetensorsFile(join(tmp, TRAIN_STATE_FILE), state, {
        step: String(this.step),
        adam_step: String(this.opt.step),
        seed: String(this.settings.seed),
        skipped_steps: String(this.skippedSteps),
      });
    });
    return dir;
  }

  /** Returns once a checkpoint is written and the onCheckpoint hook has finished. */
  private async checkpoint(): Promise<void> {
    await this.toHost();
    const dir = this.save();
    if (dir) await this.o.onCheckpoint?.(dir, this.step);
  }

  /**
   * Trains until `settings.steps` (or a stop request), checkpointing as configured. Yields to
   * the event loop between steps so signals (Ctrl-C) and async hooks get to run.
   */
  async run(): Promise<{ steps: number; interrupted: boolean }> {
    const every = this.settings.checkpointEvery;
    while (this.step < this.settings.steps) {
      const m = await this.trainStep();
      await this.o.onStep?.(m);
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.o.shouldStop?.()) {
        await this.checkpoint();
        return { steps: this.step, interrupted: true };
      }
      if (every > 0 && this.step % every === 0 && this.step < this.settings.steps)
        await this.checkpoint();
    }
    await this.checkpoint();
    return { steps: this.step, interrupted: false };
  }
}

/**
 * Returns the trainer's AdamW over named parameters: decoupled weight decay on matrices, none
 * on norm gains, biases and the embedding (the usual AdamW practice). python/train.py mirrors it.
 */
export function trainerOptimizer(named: Array<[string, Tensor]>, s: TrainSettings): AdamW {
  return new AdamW(
    named.map(([name, p]) => ({ param: p, decay: p.rank >= 2 && !name.startsWith("embed.") })),
    { lr: s.maxLr, beta1: s.beta1, beta2: s.beta2, eps: s.eps, weightDecay: s.weightDecay },
  );
}

/**
 * Updates the EMA of each named parameter after AdamW update number `n` (1-based): e ← d·e +
 * (1−d)·p with d = min(d0, (1+n)/(10+n)), warmed up so early checkpoints are not dominated by
 * the random init. d0 = 0 turns the EMA off (nothing is updated).
 */
export function updateEma(
  ema: Map<string, Tensor>,
  named: Array<[string, Tensor]>,
  d0: number,
  n: number,
): void {
  if (d0 <= 0) return;
  const d = Math.min(d0, (1 + n) / (10 + n));
  const be = backend();
  for (const [name, p] of named) {
    const e = ema.get(name)!.store;
    be.affine(e, e, e.length, d, 0);
    be.axpy(e.length, 1 - d, p.store, e);
  }
}

/** Copies sampling weights into a model (e.g. a second instance used only for sampling). */
export function loadWeights(model: Transfusion, weights: Map<string, Float32Array>): void {
  for (const [name, p] of model.namedParameters()) {
    const w = weights.get(name);
    if (!w || w.length !== p.size) throw new Error(`loadWeights: missing or mis-shaped "${name}"`);
    p.assign(w);
  }
}

export { loadModuleTensors, stepSeed };
