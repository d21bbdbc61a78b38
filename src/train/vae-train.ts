/**
 * Training the image VAE: a plain loop (reconstruction + small KL, AdamW with warmup and
 * cosine decay), reconstruction grids along the way, held-out PSNR at the end, then the
 * latent scaling factor and the checkpoint. Also the latent cache Transfusion training reads.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { type DatasetOptions, getDataset } from "../data/datasets/index.js";
import type { ImageTextDataset, SplitName } from "../data/datasets/types.js";
import { writeImageGrid } from "../data/grid.js";
import { checkImage, floatToImage, type Image, imagesToTensor } from "../data/image.js";
import { saveVae } from "../io/vae-files.js";
import { Vae, type VaeConfig } from "../model/vae.js";
import { abs, add, affine, exp, mean, square, sub } from "../tensor/ops/index.js";
import { AdamW, clipFactor, cosineLr } from "../tensor/optim.js";
import { Rng } from "../tensor/rng.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../tensor/safetensors.js";
import type { Tensor } from "../tensor/tensor.js";

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

/** A split viewed as just images. */
interface ImageSource {
  size: number;
  get(i: number): Image;
}

/** Returns train and held-out image sources with a common size and channel count. */
async function resolveData(
  o: TrainVaeOptions,
): Promise<{ name: string; train: ImageSource; test: ImageSource }> {
  if (typeof o.data === "string") {
    const ds = await getDataset(o.data, o.datasetOptions);
    const view = (s: SplitName): ImageSource => {
      const split = ds.split(s);
      return { size: split.size, get: (i) => split.get(i).image };
    };
    return { name: ds.name, train: view("train"), test: view("test") };
  }
  const all = o.data;
  if (all.length < 2 && !o.testData)
    throw new Error("trainVae: need at least 2 images (some are held out)");
  const nTest = o.testData ? 0 : Math.max(1, Math.floor(all.length / 10));
  const train = all.slice(0, all.length - nTest);
  const test = o.testData ?? all.slice(all.length - nTest);
  if (test.length === 0) throw new Error("trainVae: testData is empty");
  const first = checkImage(train[0]!, "trainVae: image 0");
  [...train, ...test].forEach((img, i) => {
    checkImage(img, `trainVae: image ${i}`);
    if (
      img.width !== first.width ||
      img.height !== first.height ||
      img.channels !== first.channels
    ) {
      throw new Error(
        `trainVae: image ${i} is ${img.width}×${img.height}×${img.channels}, expected ${first.width}×${first.height}×${first.channels} like image 0`,
      );
    }
  });
  const src = (arr: readonly Image[]): ImageSource => ({ size: arr.length, get: (i) => arr[i]! });
  return { name: "images", train: src(train), test: src(test) };
}

function checkInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min)
    throw new Error(`trainVae: ${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

/** Returns `count` images of a source: the first `count`, or all when it holds fewer. */
function firstImages(src: ImageSource, count: number): Image[] {
  return Array.from({ length: Math.min(count, src.size) }, (_, i) => src.get(i));
}

/**
 * Returns the trained VAE, its held-out PSNR and the files written. Deterministic for a seed
 * on a given backend: initialisation, batch order and posterior noise all come from it.
 */
export async function trainVae(options: TrainVaeOptions): Promise<TrainVaeResult> {
  const o = { ...VAE_TRAIN_DEFAULTS, ...options };
  const steps = checkInt("steps", o.steps, 1);
  const batchSize = checkInt("batchSize", o.batchSize, 1);
  checkInt("evalImages", o.evalImages, 1);
  checkInt("scaleImages", o.scaleImages, 2);
  if (!(o.lr > 0 && Number.isFinite(o.lr)))
    throw new Error(`trainVae: lr must be a positive number, got ${o.lr}`);
  if (!(o.klWeight >= 0 && Number.isFinite(o.klWeight)))
    throw new Error(`trainVae: klWeight must be ≥ 0, got ${o.klWeight}`);
  if (o.recon !== "l1" && o.recon !== "l2")
    throw new Error(`trainVae: recon must be "l1" or "l2", got "${o.recon}"`);
  const gridEvery = checkInt("gridEvery", o.gridEvery ?? 0, 0);

  const data = await resolveData(o);
  const sample = data.train.get(0);
  const rng = new Rng(o.seed);
  const vae = new Vae({ ...o.config, imageChannels: sample.channels }, rng);
  vae.latentShape(sample.height, sample.width);
  const dataRng = new Rng((o.seed ^ 0x5eed) >>> 0);
  const noiseRng = new Rng((o.seed ^ 0xa11ce) >>> 0);
  const params = vae.parameters();
  // β2 = 0.99 and no weight decay: a small conv net trained briefly, not the paper's transformer.
  const opt = new AdamW(params, { lr: o.lr, beta2: 0.99, weightDecay: 0 });
  const warmupSteps = Math.ceil(steps * 0.05);
  const schedule = { maxLr: o.lr, minLr: o.lr / 10, warmupSteps, totalSteps: steps };
  const gridImages = firstImages(data.test, 8);
  const files: string[] = [];
  const writeGrid = async (name: string) => {
    if (!o.outDir) return;
    const path = join(o.outDir, name);
    await writeReconstructionGrid(vae, gridImages, path);
    files.push(path);
  };

  // Epoch-wise shuffled order: every image is seen once per pass, even in tiny datasets.
  let order: number[] = [];
  const nextBatch = (): Tensor => {
    const picked: Image[] = [];
    while (picked.length < batchSize) {
      if (order.length === 0)
        order = dataRng.shuffle(Array.from({ length: data.train.size }, (_, i) => i));
      picked.push(data.train.get(order.pop()!));
    }
    return imagesToTensor(picked);
  };

  const start = performance.now();
  const tail: Array<[number, number]> = [];
  const tailLength = Math.max(1, Math.ceil(steps / 10));
  for (let step = 0; step < steps; step++) {
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
    const lr = cosineLr(step, schedule);
    opt.update(lr, clipFactor(params, 1).factor);
    opt.zeroGrad();
    tail.push([rv, kv]);
    if (tail.length > tailLength) tail.shift();
    const done = step + 1;
    if (o.onProgress && (done % o.progressEvery === 0 || done === steps)) {
      const seconds = (performance.now() - start) / 1000;
      o.onProgress({
        step: done,
        steps,
        loss: lv,
        recon: rv,
        kl: kv,
        lr,
        seconds,
        etaSeconds: (seconds / done) * (steps - done),
      });
    }
    if (gridEvery > 0 && done % gridEvery === 0 && done < steps)
      await writeGrid(`recon-step${String(done).padStart(6, "0")}.png`);
  }
  const seconds = (performance.now() - start) / 1000;
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
  const xr = decodeMeans(vae, x, batchSize);
  const per = x.size / images.length;
  let total = 0;
  for (let n = 0; n < images.length; n++) {
    let se = 0;
    for (let i = n * per; i < (n + 1) * per; i++) {
      // Differences on the [−1, 1] scale are halved to get the [0, 1] scale.
      const d = (Math.min(1, Math.max(-1, xr.f32[i]!)) - x.f32[i]!) / 2;
      se += d * d;
    }
    const mse = se / per;
    total += mse > 0 ? Math.min(100, -10 * Math.log10(mse)) : 100;
  }
  return total / images.length;
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
  const x = imagesToTensor(images);
  const xr = decodeMeans(vae, x, 64);
  const [, C, H, W] = x.shape as [number, 1 | 3, number, number];
  const per = C * H * W;
  const recons = images.map((_, i) =>
    floatToImage(xr.f32.subarray(i * per, (i + 1) * per), C, H, W),
  );
  await writeImageGrid(path, [...images, ...recons], { columns: images.length });
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
