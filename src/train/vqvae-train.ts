/**
 * Training the VQ image tokenizer: the VAE trainer's loop (AdamW, warmup + cosine, shuffled
 * batches, grids; shared through autoencoder.ts) on reconstruction + codebook + commitment
 * loss, with dead codes re-seeded from encoder outputs so the codebook stays in use. Ends
 * with held-out PSNR, codebook usage and code perplexity, then the checkpoint.
 */
import type { ImageTextDataset } from "../data/datasets/types.js";
import { type Image, imagesToTensor } from "../data/image.js";
import { saveVqVae } from "../io/vqvae-files.js";
import { VqVae, type VqVaeConfig } from "../model/vqvae.js";
import { add, mean, permute, square, sub } from "../tensor/ops/index.js";
import type { AdamW } from "../tensor/optim.js";
import { Rng } from "../tensor/rng.js";
import { noGrad, type Tensor } from "../tensor/tensor.js";
import {
  autoencoderStepper,
  batchDrawer,
  checkIntOption,
  checkLr,
  firstImages,
  gridWriter,
  type ImageDataOptions,
  meanPsnr,
  resolveImageData,
  runSteps,
} from "./autoencoder.js";

export interface TrainVqVaeOptions extends ImageDataOptions {
  /** Folder for vqvae.safetensors, vqvae.json and grids; nothing is written without it. */
  outDir?: string;
  /** Architecture; imageChannels is taken from the data. */
  config?: Partial<Omit<VqVaeConfig, "imageChannels">>;
  steps?: number;
  batchSize?: number;
  /** Peak learning rate; warmup is 5% of the steps, then cosine decay to lr/10. */
  lr?: number;
  seed?: number;
  /**
   * Encoder vectors a code may go unchosen before it is re-seeded from the current batch
   * (0: never). Default: 8 × codebookSize, i.e. codes used 8× less often than uniform.
   */
  deadCodeWindow?: number;
  /** Write a reconstruction grid every this many steps (0: only at the end). */
  gridEvery?: number;
  /** Held-out images for PSNR, usage and perplexity. */
  evalImages?: number;
  /** Called every `progressEvery` steps and after the last. */
  onProgress?: (p: VqVaeProgress) => void;
  progressEvery?: number;
}

export interface VqVaeProgress {
  step: number;
  steps: number;
  loss: number;
  recon: number;
  codebook: number;
  commit: number;
  /** Fraction of the codebook chosen within the dead-code window. */
  live: number;
  /** Codes re-seeded so far. */
  restarts: number;
  lr: number;
  seconds: number;
  etaSeconds: number;
}

export interface TrainVqVaeResult {
  vqvae: VqVae;
  /** Mean per-image PSNR (dB) of held-out reconstructions, images on a [0, 1] scale. */
  psnr: number;
  /** Fraction of the codebook used on the held-out images. */
  usage: number;
  /** exp(entropy) of the held-out code histogram: the number of equally used codes it equals. */
  perplexity: number;
  steps: number;
  /** Seconds of the training loop (not counting evaluation and saving). */
  seconds: number;
  /** Codes re-seeded during training. */
  restarts: number;
  files: string[];
}

/**
 * Defaults, measured on shapes (easy, 32 px, 4×4 codes of 512; native backend, 2 cores):
 * - The VAE's optimiser settings (batch 4, lr 2e-3, see VAE_TRAIN_DEFAULTS), not re-tuned.
 * - 2,400 steps (≈ 80 s): 29.9 dB, against 25.5 ± 1.3 dB (3 seeds) after 1,200 (≈ 40 s).
 * - Dead-code window 8 × codebookSize vectors: 26.9 dB and 99% of codes used after 1,200
 *   steps; no restarts: 23.8 dB and 14% used (collapse); 2 × K: 26.6 dB; 64 × K: 24.7 dB, 81%.
 */
export const VQVAE_TRAIN_DEFAULTS = {
  steps: 2400,
  batchSize: 4,
  lr: 2e-3,
  seed: 0,
  evalImages: 256,
  progressEvery: 10,
};

/**
 * Re-seeds codes that fell out of use: a code not chosen for `window` encoder vectors gets a
 * random encoder output of the current batch, so it lands where the data is and is chosen
 * again. Deterministic for its Rng.
 */
export class CodeRestarter {
  /** Vectors seen when each code was last chosen or re-seeded (its grace period starts). */
  private readonly lastChosen: Float64Array;
  /** Vectors seen when each code was last chosen; −∞ before its first use. */
  private readonly lastHit: Float64Array;
  private seen = 0;
  /** Codes re-seeded so far. */
  restarts = 0;

  constructor(
    readonly codebookSize: number,
    readonly window: number,
    private readonly rng: Rng,
  ) {
    this.lastChosen = new Float64Array(codebookSize);
    this.lastHit = new Float64Array(codebookSize).fill(Number.NEGATIVE_INFINITY);
  }

  /** Returns the fraction of codes chosen within the last `window` vectors (ever, if 0). */
  live(): number {
    let n = 0;
    for (const t of this.lastHit) if (this.seen - t < (this.window || Infinity)) n++;
    return n / this.codebookSize;
  }

  /**
   * Returns the ids of the codes re-seeded in `codebook` [K, D] after a batch whose encoder
   * vectors `rows()` [M, D] chose `codes`. Each gets a random row plus a jitter of 1% of the
   * rows' RMS, so codes seeded from one vector can still part.
   */
  update(codebook: Float32Array, rows: () => Float32Array, codes: Int32Array): number[] {
    this.seen += codes.length;
    for (const k of codes) this.lastChosen[k] = this.lastHit[k] = this.seen;
    if (this.window <= 0) return [];
    const dead: number[] = [];
    for (let k = 0; k < this.codebookSize; k++)
      if (this.seen - this.lastChosen[k]! >= this.window) dead.push(k);
    if (dead.length === 0) return dead;
    const z = rows();
    const D = z.length / codes.length;
    let ss = 0;
    for (const v of z) ss += v * v;
    const jitter = 0.01 * Math.sqrt(ss / z.length);
    for (const k of dead) {
      const r = this.rng.int(codes.length);
      for (let i = 0; i < D; i++) codebook[k * D + i] = z[r * D + i]! + jitter * this.rng.normal();
      this.lastChosen[k] = this.seen;
    }
    this.restarts += dead.length;
    return dead;
  }
}

/** Zeroes the AdamW moments of the given codebook rows, so old momentum does not move them. */
function resetMoments(opt: AdamW, codebook: Tensor, rows: number[]): void {
  const i = opt.entries.findIndex((e) => e.param === codebook);
  const D = codebook.shape[1]!;
  for (const k of rows) {
    opt.m[i]!.f32.fill(0, k * D, (k + 1) * D);
    opt.v[i]!.f32.fill(0, k * D, (k + 1) * D);
  }
}

/**
 * Returns the trained tokenizer, its held-out PSNR, codebook usage and perplexity, and the
 * files written. Deterministic for a seed on a given backend: initialisation, batch order
 * and code restarts all come from it.
 */
export async function trainVqVae(options: TrainVqVaeOptions): Promise<TrainVqVaeResult> {
  const o = { ...VQVAE_TRAIN_DEFAULTS, ...options };
  const who = "trainVqVae";
  const steps = checkIntOption(who, "steps", o.steps, 1);
  const batchSize = checkIntOption(who, "batchSize", o.batchSize, 1);
  checkIntOption(who, "evalImages", o.evalImages, 1);
  checkLr(who, o.lr);
  const gridEvery = checkIntOption(who, "gridEvery", o.gridEvery ?? 0, 0);

  const data = await resolveImageData(o, who);
  const sample = data.train.get(0);
  const rng = new Rng(o.seed);
  const vq = new VqVae({ ...o.config, imageChannels: sample.channels }, rng);
  const [h, w] = vq.codeGrid(sample.height, sample.width);
  const K = vq.config.codebookSize;
  const window = checkIntOption(who, "deadCodeWindow", o.deadCodeWindow ?? 8 * K, 0);
  const restarter = new CodeRestarter(K, window, new Rng((o.seed ^ 0xdead) >>> 0));
  const stepper = autoencoderStepper(vq.parameters(), o.lr, steps);
  const files: string[] = [];
  const reconstruct = (x: Tensor) => vq.decodeCodes(vq.encodeCodes(x), x.shape[0]!, h, w);
  const writeGrid = gridWriter(o.outDir, firstImages(data.test, 8), reconstruct, files);
  const nextBatch = batchDrawer(data.train, batchSize, new Rng((o.seed ^ 0x5eed) >>> 0));

  const seconds = await runSteps({ ...o, steps, gridEvery }, stepper, writeGrid, (step) => {
    const x = nextBatch();
    const out = vq.forward(x);
    const recon = mean(square(sub(out.recon, x)));
    const loss = add(add(recon, out.codebookLoss), out.commitLoss);
    const lv = loss.item();
    if (!Number.isFinite(lv))
      throw new Error(`${who}: loss became ${lv} at step ${step + 1}; lower the learning rate`);
    const [rv, cv, mv] = [recon.item(), out.codebookLoss.item(), out.commitLoss.item()];
    loss.backward();
    const { lr } = stepper.apply(step);
    // After the update, so the re-seeded rows are what the next step sees.
    const rows = () => noGrad(() => permute(out.z, [0, 2, 3, 1])).f32;
    const dead = restarter.update(vq.codebook.f32, rows, out.codes);
    resetMoments(stepper.opt, vq.codebook, dead);
    const live = restarter.live();
    return {
      loss: lv,
      recon: rv,
      codebook: cv,
      commit: mv,
      live,
      restarts: restarter.restarts,
      lr,
    };
  });
  await writeGrid("recon-final.png");
  const { psnr, usage, perplexity } = evaluateVqVae(vq, firstImages(data.test, o.evalImages));
  const restarts = restarter.restarts;
  if (o.outDir) {
    const training = {
      data: data.name,
      ...(typeof o.data === "string" ? { datasetOptions: o.datasetOptions ?? {} } : {}),
      steps,
      batchSize,
      lr: o.lr,
      seed: o.seed,
      deadCodeWindow: window,
      seconds,
      restarts,
      psnr,
      usage,
      perplexity,
    };
    files.unshift(...saveVqVae(vq, o.outDir, { training }));
  }
  return { vqvae: vq, psnr, usage, perplexity, steps, seconds, restarts, files };
}

/** Returns the used fraction of K codes and the perplexity exp(entropy) of their histogram. */
function codeStatistics(codes: Int32Array, K: number): { usage: number; perplexity: number } {
  const counts = new Float64Array(K);
  for (const k of codes) counts[k]!++;
  let used = 0;
  let entropy = 0;
  for (const c of counts) {
    if (c === 0) continue;
    used++;
    const p = c / codes.length;
    entropy -= p * Math.log(p);
  }
  return { usage: used / K, perplexity: Math.exp(entropy) };
}

/**
 * Returns the fraction of the codebook that `images` use and the perplexity of their code
 * histogram (K when all codes are equally used, 1 when one code is).
 */
export function codebookUsage(
  vq: VqVae,
  images: readonly Image[],
): { usage: number; perplexity: number } {
  return codeStatistics(vq.encodeCodes(imagesToTensor(images)), vq.config.codebookSize);
}

/**
 * Returns the mean per-image PSNR (dB, images on [0, 1], reconstructions clamped) of `images`
 * encoded to codes and decoded again, with the codebook usage and perplexity of those codes.
 */
export function evaluateVqVae(
  vq: VqVae,
  images: readonly Image[],
): { psnr: number; usage: number; perplexity: number } {
  if (images.length === 0) throw new Error("evaluateVqVae: no images");
  const x = imagesToTensor(images);
  const [h, w] = vq.codeGrid(x.shape[2]!, x.shape[3]!);
  const codes = vq.encodeCodes(x);
  const psnr = meanPsnr(x, vq.decodeCodes(codes, images.length, h, w));
  return { psnr, ...codeStatistics(codes, vq.config.codebookSize) };
}

/**
 * Returns evaluateVqVae on the first `count` test images of `ds` (all when it has fewer) and
 * the number used; throws naming `source` (where the tokenizer came from) when the dataset's
 * channel count is not the tokenizer's.
 */
export function evaluateVqVaeOnTestSplit(
  vq: VqVae,
  ds: ImageTextDataset,
  count: number,
  source: string,
): { psnr: number; usage: number; perplexity: number; images: number } {
  if (ds.channels !== vq.config.imageChannels) {
    throw new Error(
      `${source}: the tokenizer reads ${vq.config.imageChannels}-channel images but ${ds.name} has ${ds.channels}`,
    );
  }
  const test = ds.split("test");
  const images = Array.from({ length: Math.min(count, test.size) }, (_, i) => test.get(i).image);
  return { ...evaluateVqVae(vq, images), images: images.length };
}
