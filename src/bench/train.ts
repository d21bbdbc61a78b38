/**
 * `transfusion bench train`: training steps (forward + backward + clipped AdamW) of a fixed
 * Transfusion workload, with MFU against the sgemm rate measured in the same run (the core
 * bench's FLOP rule: 6·N·tokens + 12·L·T²·d·B, N = block + head parameters) and a comparison with the published figures of the PyTorch port.
 *
 * Workload: d=256, 4 layers, 4 heads, SwiGLU hidden from the config default (704), vocabulary
 * 1024 (the `small` preset's), linear patch encoder, patch 1, 4-channel 8×8 latents (64
 * patches per image), batch 8. Every row is one document: 32 text tokens, BOI, 64 patches,
 * EOI, 32 text tokens — exactly 130 positions, so seqLen = 130 and there is no padding.
 */

import { packDocuments, type TokenDocument } from "../data/pack.js";
import { cosineSchedule } from "../diffusion/schedule.js";
import { makeConfig, patchesPerImage, type TransfusionConfig } from "../model/config.js";
import { type TransfusionBatch, transfusionLoss } from "../model/loss.js";
import { Transfusion } from "../model/transfusion.js";
import { swigluHidden } from "../nn/transformer.js";
import { type BackendName, backend, setBackend } from "../tensor/backends/index.js";
import { AdamW, clipFactor } from "../tensor/optim.js";
import { withArena } from "../tensor/pool.js";
import { Rng } from "../tensor/rng.js";
import { measureSgemm } from "./core.js";
import { trainStepFlops } from "./flops.js";
import { median, modelShape, peakRssMb } from "./stats.js";

/**
 * The PyTorch port trains this shape at 1,350–1,550 tokens/s with 1.04 GB peak memory
 * (published figures); the comparison uses the midpoint of that range.
 */
export const PYTORCH_PORT_TRAIN = { tokensPerSecond: 1450, peakMemoryMb: 1040 } as const;

/** Special token ids of the bench workloads (text tokens are drawn from the rest). */
export const BENCH_SPECIAL = { padId: 0, boiId: 1, eoiId: 2, eodId: 3 } as const;
const FIRST_TEXT_ID = 4;

/** Shape of the bench model and its sequences (train and sample benches share it). */
export interface BenchModelShape {
  dim: number;
  layers: number;
  heads: number;
  vocab: number;
  latentChannels: number;
  latentSize: number;
  patchSize: number;
}

/** The fixed workload's model shape. */
export const BENCH_MODEL: BenchModelShape = {
  dim: 256,
  layers: 4,
  heads: 4,
  vocab: 1024,
  latentChannels: 4,
  latentSize: 8,
  patchSize: 1,
};

/** Returns the bench model's config: the `small` preset's defaults with the shape applied. */
export function benchConfig(shape: Partial<BenchModelShape> = {}): TransfusionConfig {
  const s = { ...BENCH_MODEL, ...shape };
  // The preset's SwiGLU hidden size belongs to its own width: recompute the default for ours.
  return makeConfig("small", { ...s, encoder: "linear", mlpHidden: swigluHidden(s.dim) });
}

/** Returns the N of the FLOP rule: parameters of the transformer blocks and the text head. */
export function blockAndHeadParams(model: Transfusion): number {
  return model.layers.reduce((s, b) => s + b.parameterCount(), 0) + model.head.parameterCount();
}

/** Returns `n` random text token ids (never a special id). */
export function randomText(rng: Rng, n: number, vocab: number): number[] {
  return Array.from({ length: n }, () => FIRST_TEXT_ID + rng.int(vocab - FIRST_TEXT_ID));
}

/**
 * The train bench's workloads. `bench` is the fixed one above. `demo` has the matrix shapes of
 * a `transfusion demo` step (width 128, SwiGLU 352, vocabulary 512, 16 patches per image at
 * patch 2, 8 rows × 128 positions): every row is 55 text + BOI + 16 patches + EOI + 55 text,
 * so the products are those of the demo's step, but its rows hold one image each where the
 * demo packs about four image–caption pairs into a row (the attention mask differs).
 */
export const TRAIN_WORKLOADS = {
  bench: { model: {}, textTokens: 32, batch: 8 },
  demo: { model: { dim: 128, vocab: 512, patchSize: 2 }, textTokens: 55, batch: 8 },
} as const satisfies Record<
  string,
  { model: Partial<BenchModelShape>; textTokens: number; batch: number }
>;

export type TrainWorkload = keyof typeof TRAIN_WORKLOADS;

/** Returns true for the name of a train-bench workload. */
export function isTrainWorkload(name: string): name is TrainWorkload {
  return Object.hasOwn(TRAIN_WORKLOADS, name);
}

export interface TrainBenchOptions {
  backend?: BackendName;
  /** The workload (default `bench`); `model`, `batch` and `textTokens` apply over it. */
  workload?: TrainWorkload;
  /** Timed training steps after warm-up (default 10 native, 3 js). */
  steps?: number;
  /** Untimed warm-up steps (default 2 native, 1 js). */
  warmup?: number;
  /** Model shape overrides (tests use a tiny one). */
  model?: Partial<BenchModelShape>;
  batch?: number;
  /** Text tokens before and after the image in every row. */
  textTokens?: number;
  /** Size of the square sgemm the MFU is measured against. */
  sgemmN?: number;
  onProgress?: (msg: string) => void;
}

export interface TrainBenchResult {
  backend: string;
  threads: number;
  workload: TrainWorkload;
  shape: BenchModelShape & {
    mlpHidden: number;
    encoder: string;
    batch: number;
    seqLen: number;
    textTokensPerRow: number;
    patchesPerImage: number;
    textTargetsPerRow: number;
  };
  /** Parameters of the whole model, and the N of the FLOP rule (blocks + head). */
  params: number;
  blockAndHeadParams: number;
  sgemmN: number;
  /**
   * The MFU denominator: the larger of two `measureSgemm` runs, one before and one after the
   * timed steps. On a shared machine a single run can land on a busy moment and read low,
   * which would inflate the MFU; the larger reading is the better estimate of the roofline.
   */
  sgemmGflops: number;
  sgemmGflopsBefore: number;
  sgemmGflopsAfter: number;
  stepFlops: number;
  /** Positions trained per step (batch × seqLen, patches included). */
  tokensPerStep: number;
  steps: number;
  stepSecondsMedian: number;
  stepSecondsMin: number;
  /** Median milliseconds of each phase of a step (batch build, forward+loss, backward, clip+AdamW). */
  phaseMs: { batch: number; forward: number; backward: number; optimizer: number };
  trainStepsPerSecond: number;
  trainTokensPerSecond: number;
  trainModelGflops: number;
  mfu: number;
  peakRssMb: number;
  /**
   * Ours ÷ 1450 tokens/s, the midpoint of the PyTorch port's published 1,350–1,550 (null for
   * a workload other than `bench`: the port's figures are for that one).
   */
  vsPytorchPortTokensPerSecond: number | null;
  /** Our peak RSS ÷ the PyTorch port's 1.04 GB (target ≤ 0.5; null as above). */
  vsPytorchPortPeakMemory: number | null;
  lastLoss: number;
}

/** Returns the batch of one step: `batch` rows of text, image, text, with random t and latents. */
export function trainBenchBatch(
  config: TransfusionConfig,
  batch: number,
  textTokens: number,
  schedule: { T: number },
  rng: Rng,
): TransfusionBatch {
  const g = config.latentSize / config.patchSize;
  const docs: TokenDocument[] = Array.from({ length: batch }, (_, k) => ({
    segments: [
      { text: randomText(rng, textTokens, config.vocab) },
      { image: k, t: rng.int(schedule.T) },
      { text: randomText(rng, textTokens, config.vocab) },
    ],
  }));
  const seqLen = 2 * textTokens + g * g + 2;
  const { layout } = packDocuments(
    docs,
    {
      seqLen,
      gridH: g,
      gridW: g,
      boiId: BENCH_SPECIAL.boiId,
      eoiId: BENCH_SPECIAL.eoiId,
      padId: BENCH_SPECIAL.padId,
    },
    batch,
  );
  const per = config.latentChannels * config.latentSize * config.latentSize;
  const latents = rng.fillNormal(new Float32Array(batch * per));
  return { layout, latents };
}

/** Runs the train bench and returns its figures. */
export async function runTrainBench(opts: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const be = opts.backend ? setBackend(opts.backend) : backend();
  const isJs = be.name === "js";
  const progress = opts.onProgress ?? (() => {});
  const workload = opts.workload ?? "bench";
  const w = TRAIN_WORKLOADS[workload];
  const config = benchConfig({ ...w.model, ...opts.model });
  const B = opts.batch ?? w.batch;
  const textTokens = opts.textTokens ?? w.textTokens;
  const n = patchesPerImage(config);
  const T = 2 * textTokens + n + 2;

  const sgemmN = opts.sgemmN ?? (isJs ? 256 : 1024);
  progress(`sgemm ${sgemmN}³ on ${be.name}`);
  const sgemmReps = isJs ? 3 : 7;
  const sgemmGflopsBefore = await measureSgemm(sgemmN, sgemmReps);

  const model = new Transfusion(config, new Rng(1234));
  const schedule = cosineSchedule({ T: config.diffusionSteps });
  // As the Trainer does: norm gains, biases and embeddings are not decayed.
  const opt = new AdamW(
    model.namedParameters().map(([name, p]) => ({
      param: p,
      decay: p.rank >= 2 && !name.startsWith("embed."),
    })),
    { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 },
  );
  const params = model.parameters();
  const rng = new Rng(99);
  let lastLoss = Number.NaN;
  let textTargetsPerRow = 0;
  const now = () => process.hrtime.bigint();
  const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
  /** One step, mirroring Trainer.trainStep without the EMA and checkpoints; returns phase ms. */
  const step = (): [number, number, number, number] =>
    withArena(() => {
      const t0 = now();
      const batch = trainBenchBatch(config, B, textTokens, schedule, rng);
      const t1 = now();
      const parts = transfusionLoss(model, batch, schedule, rng);
      lastLoss = parts.total.item();
      textTargetsPerRow = parts.textTargets / B;
      const t2 = now();
      parts.total.backward();
      const t3 = now();
      const { factor } = clipFactor(params, 1.0);
      opt.update(3e-4, factor);
      opt.zeroGrad();
      const t4 = now();
      return [ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t3, t4)] as [number, number, number, number];
    });

  const warmup = opts.warmup ?? (isJs ? 1 : 2);
  for (let i = 0; i < warmup; i++) {
    progress(`warm-up step ${i + 1}/${warmup}`);
    step();
  }
  const steps = opts.steps ?? (isJs ? 3 : 10);
  const times: number[] = [];
  const phases: Array<[number, number, number, number]> = [];
  for (let i = 0; i < steps; i++) {
    const p = step();
    phases.push(p);
    times.push((p[0] + p[1] + p[2] + p[3]) / 1000);
    progress(`step ${i + 1}/${steps}: ${(times[i]! * 1000).toFixed(0)} ms`);
  }
  progress(`sgemm ${sgemmN}³ again`);
  const sgemmGflopsAfter = await measureSgemm(sgemmN, sgemmReps);
  const sgemmGflops = Math.max(sgemmGflopsBefore, sgemmGflopsAfter);
  const stepSeconds = median(times);
  const N = blockAndHeadParams(model);
  const stepFlops = trainStepFlops(N, config.layers, T, config.dim, B);
  const trainModelGflops = stepFlops / stepSeconds / 1e9;
  const tokensPerStep = B * T;
  const trainTokensPerSecond = tokensPerStep / stepSeconds;
  const rss = peakRssMb();
  const phase = (k: number) => median(phases.map((p) => p[k]!));
  const port = workload === "bench";
  return {
    backend: be.name,
    threads: be.threads,
    workload,
    shape: {
      ...modelShape(config),
      batch: B,
      seqLen: T,
      textTokensPerRow: 2 * textTokens,
      patchesPerImage: n,
      textTargetsPerRow,
    },
    params: model.parameterCount(),
    blockAndHeadParams: N,
    sgemmN,
    sgemmGflops,
    sgemmGflopsBefore,
    sgemmGflopsAfter,
    stepFlops,
    tokensPerStep,
    steps,
    stepSecondsMedian: stepSeconds,
    stepSecondsMin: Math.min(...times),
    phaseMs: { batch: phase(0), forward: phase(1), backward: phase(2), optimizer: phase(3) },
    trainStepsPerSecond: 1 / stepSeconds,
    trainTokensPerSecond,
    trainModelGflops,
    mfu: trainModelGflops / sgemmGflops,
    peakRssMb: rss,
    vsPytorchPortTokensPerSecond: port
      ? trainTokensPerSecond / PYTORCH_PORT_TRAIN.tokensPerSecond
      : null,
    vsPytorchPortPeakMemory: port ? rss / PYTORCH_PORT_TRAIN.peakMemoryMb : null,
    lastLoss,
  };
}
