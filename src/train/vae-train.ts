/**
 * Training the image VAE: a plain loop (reconstruction + small KL, AdamW with warmup and
 * cosine decay), reconstruction grids along the way, held-out PSNR at the end, then the
 * latent scaling factor and the checkpoint. Also the latent cache Transfusion training reads.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { DatasetOptions } from "../data/datasets/index.js";
import type { ImageTextDataset, SplitName } from "../data/datasets/types.js";
import { type Image, imagesToTensor } from "../data/image.js";
import { saveVae } from "../io/vae-files.js";
import { Vae, type VaeConfig } from "../model/vae.js";
import { abs, add, affine, exp, mean, square, sub } from "../tensor/ops/index.js";
import { Rng } from "../tensor/rng.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../tensor/safetensors.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  autoencoderStepper,
  batchDrawer,
  checkIntOption,
  checkLr,
  firstImages,
  gridWriter,
  meanPsnr,
  resolveImageData,
  runSteps,
  writeComparisonGrid,
} from "./autoencoder.js";

export type ReconLoss = "l1" | "l2";

export interface TrainVaeOptions {
  /** A dataset name (see getDataset) or training images (all one size and channel count). */
  data: string | readonly Image[];
  /** Held-out images for PSNR and grids when `data` is an array; default: its last 10%. */
  testData?: readonly Image[];
  /** Passed to getDataset when `data` is a name (e.g. imageSize). */
  datasetOptions?: DatasetOptions;
  /** Folder for the checkpoint and grids; nothing is written without it. */
  outDir?: string;
  /** Architecture; imageChannels is taken from the data. */
  config?: Partial<Omit<VaeConfig, "imageChannels">>;
  steps?: number;
  batchSize?: number;
  /** Peak learning rate; warmup is 5% of the steps, then cosine decay to lr/10. */
  lr?: number;
  /** Weight of the mean per-element KL against the mean per-pixel reconstruction loss. */
  klWeight?: number;
  recon?: ReconLoss;
  seed?: number;
  /** Write a reconstruction grid every this many steps (0: only at the end). */
  gridEvery?: number;
  /** Held-out images used for the final PSNR. */
  evalImages?: number;
  /** Training images whose latents set the scaling factor. */
  scaleImages?: number;
  /** Called every `progressEvery` steps and after the last. */
  onProgress?: (p: VaeProgress) => void;
  progressEvery?: number;
}

export interface VaeProgress {
  step: number;
  steps: number;
  loss: number;
  recon: number;
  kl: number;
  lr: number;
  seconds: number;
  etaSeconds: number;
}

export interface TrainVaeResult {
  vae: Vae;
  /** Mean per-image PSNR (dB) of held-out reconstructions, images on a [0, 1] scale. */
  psnr: number;
  steps: number;
  /** Seconds of the training loop (not counting evaluation and saving). */
  seconds: number;
  /** Reconstruction and KL terms averaged over the last 10% of steps. */
  finalRecon: number;
  finalKl: number;
  files: string[];
}

/**
 * Defaults, measured on `shapes` (native backend, 2 cores, PSNR on 256 test images):
 * - L2 reconstruction: PSNR is an L2 measure, and L2 weights each pixel's gradient by its
 *   error, so the few wrong shape pixels dominate the many nearly-right background pixels;
 *   L1 spends as much gradient on the background and after 300 steps had 22 dB vs 30 dB.
 * - KL weight 1e-4 (per-element mean KL against per-pixel mean error): as sharp as 1e-5
 *   (30.2 vs 30.1 dB) while latents stay bounded (std ≈ 1) and the decoder learns to absorb
 *   posterior noise of ≈ 8% of the latent std; 1e-3 costs 0.4–1.4 dB.
 * - Small batches, many steps: at equal time, batch 4 ≥ batch 8 > 16 > 32 (e.g. 96 s of
 *   training: batch 4 × 1200 steps 35.9 dB, batch 8 × 600 steps 33.2 dB).
 */
export const VAE_TRAIN_DEFAULTS = {
  steps: 1200,
  batchSize: 4,
  lr: 2e-3,
  klWeight: 1e-4,
  recon: "l2" as ReconLoss,
  seed: 0,
  evalImages: 256,
  scaleImages: 512,
  progressEvery: 10,
};

/**
 * Returns the trained VAE, its held-out PSNR and the files written. Deterministic for a seed
 * on a given backend: initialisation, batch order and posterior noise all come from it.
 */
export async function trainVae(options: TrainVaeOptions): Promise<TrainVaeResult> {
  const o = { ...VAE_TRAIN_DEFAULTS, ...options };
  const who = "trainVae";
  const steps = checkIntOption(who, "steps", o.steps, 1);
  const batchSize = checkIntOption(who, "batchSize", o.batchSize, 1);
  checkIntOption(who, "evalImages", o.evalImages, 1);
  checkIntOption(who, "scaleImages", o.scaleImages, 2);
  checkLr(who, o.lr);
  if (!(o.klWeight >= 0 && Number.isFinite(o.klWeight)))
    throw new Error(`trainVae: klWeight must be ≥ 0, got ${o.klWeight}`);
  if (o.recon !== "l1" && o.recon !== "l2")
    throw new Error(`trainVae: recon must be "l1" or "l2", got "${o.recon}"`);
  const gridEvery = checkIntOption(who, "gridEvery", o.gridEvery ?? 0, 0);

  const data = await resolveImageData(o);
  const sample = data.train.get(0);
  const rng = new Rng(o.seed);
  const vae = new Vae({ ...o.config, imageChannels: sample.channels }, rng);
  vae.latentShape(sample.height, sample.width);
  const dataRng = new Rng((o.seed ^ 0x5eed) >>> 0);
  const noiseRng = new Rng((o.seed ^ 0xa11ce) >>> 0);
  const stepper = autoencoderStepper(vae.parameters(), o.lr, steps);
  const files: string[] = [];
  const reconstruct = (x: Tensor) => decodeMeans(vae, x, 64);
  const writeGrid = gridWriter(o.outDir, firstImages(data.test, 8), reconstruct, files);
  const nextBatch = batchDrawer(data.train, batchSize, dataRng);

  const tail: Array<[number, number]> = [];
  const tailLength = Math.max(1, Math.ceil(steps / 10));
  const seconds = await runSteps({ ...o, steps, gridEvery }, stepper, writeGrid, (step) => {
    const x = nextBatch();
    const { mean: mu, logvar } = vae.encode(x);
    const xr = vae.decode(vae.sample(mu, logvar, noiseRng));
    const diff = sub(xr, x);
    const recon = mean(o.recon === "l1" ? abs(diff) : square(diff));
    // KL(N(μ, σ²) ‖ N(0, 1)) per element: ½(μ² + σ² − 1 − log σ²).
    const kl = affine(mean(sub(add(square(mu), exp(logvar)), logvar)), 0.5, -0.5);
    const loss = add(recon, affine(kl, o.klWeight));
    const [lv, rv, kv] = [loss.item(), recon.item(), kl.item()];
    if (!Number.isFinite(lv))
      throw new Error(`trainVae: loss became ${lv} at step ${step + 1}; lower the learning rate`);
    loss.backward();
    const { lr } = stepper.apply(step);
    tail.push([rv, kv]);
    if (tail.length > tailLength) tail.shift();
    return { loss: lv, recon: rv, kl: kv, lr };
  });
  await writeGrid("recon-final.png");
  const psnr = reconstructionPsnr(vae, firstImages(data.test, o.evalImages));
  setLatentScaling(vae, imagesToTensor(firstImages(data.train, o.scaleImages)));
  const finalRecon = tail.reduce((s, [r]) => s + r, 0) / tail.length;
  const finalKl = tail.reduce((s, [, k]) => s + k, 0) / tail.length;
  if (o.outDir) {
    const training = {
      data: data.name,
      steps,
      batchSize,
      lr: o.lr,
      klWeight: o.klWeight,
      recon: o.recon,
      seed: o.seed,
      seconds,
      psnr,
      finalRecon,
      finalKl,
    };
    files.unshift(...saveVae(vae, o.outDir, { training }));
  }
  return { vae, psnr, steps, seconds, finalRecon, finalKl, files };
}

/**
 * Returns the mean per-image PSNR in dB of the VAE's reconstructions (posterior mean,
 * output clamped to [−1, 1]) with both images mapped to [0, 1]; a perfect image counts 100.
 */
export function reconstructionPsnr(vae: Vae, images: readonly Image[], batchSize = 64): number {
  const x = imagesToTensor(images);
  return meanPsnr(x, decodeMeans(vae, x, batchSize));
}

/** Returns reconstructions of x through the posterior mean, without a graph. */
function decodeMeans(vae: Vae, x: Tensor, batchSize: number): Tensor {
  // decodeLatents undoes encodeLatents' scaling, so the factors do not matter here.
  return vae.decodeLatents(vae.encodeLatents(x, { batchSize }), { batchSize });
}

/**
 * Returns the factors set on `vae`: shift = mean and scale = 1/std of the posterior means of
 * `images` [N, C, H, W], so scaled latents of that data have mean 0 and variance 1.
 */
export function setLatentScaling(
  vae: Vae,
  images: Tensor,
): { scalingFactor: number; shiftFactor: number } {
  vae.scalingFactor = 1;
  vae.shiftFactor = 0;
  const z = vae.encodeLatents(images).f32;
  let s = 0;
  for (const v of z) s += v;
  const m = s / z.length;
  let ss = 0;
  for (const v of z) ss += (v - m) * (v - m);
  const std = Math.sqrt(ss / z.length);
  if (!(std > 0 && Number.isFinite(std)))
    throw new Error(`setLatentScaling: latents have standard deviation ${std}`);
  vae.shiftFactor = m;
  vae.scalingFactor = 1 / std;
  return { scalingFactor: vae.scalingFactor, shiftFactor: vae.shiftFactor };
}

/** Returns once a grid is written to `path`: originals on the top row, reconstructions below. */
export async function writeReconstructionGrid(
  vae: Vae,
  images: readonly Image[],
  path: string,
): Promise<void> {
  await writeComparisonGrid(images, (x) => decodeMeans(vae, x, 64), path);
}

// ---- latent cache --------------------------------------------------------------------------

export interface LatentCache {
  /** Scaled posterior means, [N, C, h, w] row-major. */
  data: Float32Array;
  shape: [number, number, number, number];
  scalingFactor: number;
  shiftFactor: number;
}

/**
 * Returns the scaled latents (posterior means) of the first `limit` images (default: all) of
 * a dataset split; with `path`, also writes them as a safetensors file (tensor "latents",
 * factors and source in the metadata) that `loadLatentCache` reads back.
 */
export function cacheLatents(
  vae: Vae,
  dataset: ImageTextDataset,
  split: SplitName,
  opts: { limit?: number; batchSize?: number; path?: string } = {},
): LatentCache {
  const s = dataset.split(split);
  const n = Math.min(opts.limit ?? s.size, s.size);
  const batchSize = opts.batchSize ?? 256;
  const [c, h, w] = vae.latentShape(dataset.imageSize, dataset.imageSize);
  const per = c * h * w;
  const data = new Float32Array(n * per);
  // Images are produced batch by batch so a large split is never held as floats at once.
  for (let at = 0; at < n; at += batchSize) {
    const imgs = Array.from({ length: Math.min(batchSize, n - at) }, (_, i) => s.get(at + i).image);
    data.set(vae.encodeLatents(imagesToTensor(imgs)).f32, at * per);
  }
  const cache: LatentCache = {
    data,
    shape: [n, c, h, w],
    scalingFactor: vae.scalingFactor,
    shiftFactor: vae.shiftFactor,
  };
  if (opts.path) {
    mkdirSync(dirname(opts.path), { recursive: true });
    writeSafetensorsFile(
      opts.path,
      { latents: { shape: [...cache.shape], data } },
      {
        format: "transfusion-latents/1",
        dataset: dataset.name,
        split,
        scaling_factor: String(cache.scalingFactor),
        shift_factor: String(cache.shiftFactor),
      },
    );
  }
  return cache;
}

/** Returns the latent cache stored at `path` by cacheLatents; errors name the file and field. */
export function loadLatentCache(path: string): LatentCache {
  const { tensors, metadata } = readSafetensorsFile(path);
  const t = tensors["latents"];
  if (!t) throw new Error(`${path}: missing tensor "latents"`);
  if (t.dtype !== "F32" || t.shape.length !== 4) {
    throw new Error(
      `${path}: tensor "latents" must be F32 [N, C, h, w], got ${t.dtype} [${t.shape.join(", ")}]`,
    );
  }
  const num = (key: string): number => {
    const v = Number(metadata[key]);
    if (metadata[key] === undefined || !Number.isFinite(v))
      throw new Error(`${path}: metadata field "__metadata__.${key}" must be a number`);
    return v;
  };
  return {
    data: t.data as Float32Array,
    shape: t.shape as [number, number, number, number],
    scalingFactor: num("scaling_factor"),
    shiftFactor: num("shift_factor"),
  };
}
