/**
 * What the image-autoencoder trainers (the KL-VAE's in vae-train.ts, the VQ tokenizer's in
 * vqvae-train.ts) share: data resolution, shuffled batches, the optimiser settings (the step
 * itself is tensor/train-step.ts), the step loop with progress, held-out PSNR and
 * reconstruction grids.
 */
import { join } from "node:path";
import { type DatasetOptions, getDataset } from "../data/datasets/index.js";
import type { SplitName } from "../data/datasets/types.js";
import { writeImageGrid } from "../data/grid.js";
import { checkImage, floatToImage, type Image, imagesToTensor } from "../data/image.js";
import { AdamW } from "../tensor/optim.js";
import type { Rng } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { TrainStepper } from "../tensor/train-step.js";

/** Where a trainer's images come from. */
export interface ImageDataOptions {
  /** A dataset name (see getDataset) or training images (all one size and channel count). */
  data: string | readonly Image[];
  /** Held-out images when `data` is an array; default: its last 10%. */
  testData?: readonly Image[];
  /** Passed to getDataset when `data` is a name (e.g. imageSize). */
  datasetOptions?: DatasetOptions;
}

/** A split viewed as just images. */
export interface ImageSource {
  size: number;
  get(i: number): Image;
}

/**
 * Returns train and held-out image sources with a common size and channel count; errors start
 * with `who` (the calling trainer).
 */
export async function resolveImageData(
  o: ImageDataOptions,
  who = "trainVae",
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
    throw new Error(`${who}: need at least 2 images (some are held out)`);
  const nTest = o.testData ? 0 : Math.max(1, Math.floor(all.length / 10));
  const train = all.slice(0, all.length - nTest);
  const test = o.testData ?? all.slice(all.length - nTest);
  if (test.length === 0) throw new Error(`${who}: testData is empty`);
  const first = checkImage(train[0]!, `${who}: image 0`);
  [...train, ...test].forEach((img, i) => {
    checkImage(img, `${who}: image ${i}`);
    if (
      img.width !== first.width ||
      img.height !== first.height ||
      img.channels !== first.channels
    ) {
      throw new Error(
        `${who}: image ${i} is ${img.width}×${img.height}×${img.channels}, expected ${first.width}×${first.height}×${first.channels} like image 0`,
      );
    }
  });
  const src = (arr: readonly Image[]): ImageSource => ({ size: arr.length, get: (i) => arr[i]! });
  return { name: "images", train: src(train), test: src(test) };
}

/** Returns v, or throws (starting with `who`) unless it is an integer ≥ min. */
export function checkIntOption(who: string, name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min)
    throw new Error(`${who}: ${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

/** Returns v, or throws (starting with `who`) unless it is a positive finite number. */
export function checkLr(who: string, v: number): number {
  if (!(v > 0 && Number.isFinite(v)))
    throw new Error(`${who}: lr must be a positive number, got ${v}`);
  return v;
}

/** Returns `count` images of a source: the first `count`, or all when it holds fewer. */
export function firstImages(src: ImageSource, count: number): Image[] {
  return Array.from({ length: Math.min(count, src.size) }, (_, i) => src.get(i));
}

/**
 * Returns a function drawing the next training batch [batchSize, C, H, W]. The order is
 * shuffled epoch by epoch, so every image is seen once per pass, even in tiny datasets.
 */
export function batchDrawer(src: ImageSource, batchSize: number, rng: Rng): () => Tensor {
  let order: number[] = [];
  return () => {
    const picked: Image[] = [];
    while (picked.length < batchSize) {
      if (order.length === 0) order = rng.shuffle(Array.from({ length: src.size }, (_, i) => i));
      picked.push(src.get(order.pop()!));
    }
    return imagesToTensor(picked);
  };
}

/**
 * Returns the autoencoders' step helper: AdamW (β2 = 0.99, no weight decay: a small conv net
 * trained briefly, not the paper's transformer), gradients clipped to norm 1, warmup (5%) +
 * cosine decay to lr/10.
 */
export function autoencoderStepper(params: Tensor[], lr: number, steps: number): TrainStepper {
  const opt = new AdamW(params, { lr, beta2: 0.99, weightDecay: 0 });
  const warmupSteps = Math.ceil(steps * 0.05);
  return new TrainStepper(opt, {
    schedule: { maxLr: lr, minLr: lr / 10, warmupSteps, totalSteps: steps },
    clip: 1,
  });
}

/** Where a training run stands, as progress callbacks receive it. */
export interface StepTiming {
  step: number;
  steps: number;
  seconds: number;
  etaSeconds: number;
}

/**
 * Returns the seconds the loop took, after running `body(step)` for step = 0 … steps − 1
 * (the body applies the step through `stepper`, whose clock times the loop). Every
 * `progressEvery` steps and after the last, `onProgress` gets the body's report with the step
 * count, elapsed time and ETA; every `gridEvery` steps (0: never; not after the last, which
 * the caller writes as the final grid) `writeGrid` gets recon-stepNNNNNN.png.
 */
export async function runSteps<R extends object>(
  o: {
    steps: number;
    progressEvery: number;
    gridEvery: number;
    onProgress?: ((p: StepTiming & R) => void) | undefined;
  },
  stepper: TrainStepper,
  writeGrid: (name: string) => Promise<void>,
  body: (step: number) => R,
): Promise<number> {
  for (let step = 0; step < o.steps; step++) {
    stepper.begin();
    const report = body(step);
    const done = step + 1;
    if (o.onProgress && (done % o.progressEvery === 0 || done === o.steps))
      o.onProgress({ step: done, steps: o.steps, ...report, ...stepper.progress(done, o.steps) });
    if (o.gridEvery > 0 && done % o.gridEvery === 0 && done < o.steps)
      await writeGrid(`recon-step${String(done).padStart(6, "0")}.png`);
  }
  return stepper.elapsed();
}

/**
 * Returns a function that writes the comparison grid of `images` and `reconstruct(images)` to
 * `outDir/name` and records the path in `files`; it does nothing without `outDir`.
 */
export function gridWriter(
  outDir: string | undefined,
  images: readonly Image[],
  reconstruct: (x: Tensor) => Tensor,
  files: string[],
): (name: string) => Promise<void> {
  return async (name) => {
    if (!outDir) return;
    const path = join(outDir, name);
    await writeComparisonGrid(images, reconstruct, path);
    files.push(path);
  };
}

/**
 * Returns the mean per-image PSNR in dB of reconstructions xr against images x (both
 * [N, C, H, W] on [−1, 1]; xr clamped to it), measured on [0, 1]; a perfect image counts 100.
 */
export function meanPsnr(x: Tensor, xr: Tensor): number {
  if (x.shape.join() !== xr.shape.join()) {
    throw new Error(`meanPsnr: shapes [${x.shape.join(", ")}] and [${xr.shape.join(", ")}] differ`);
  }
  const N = x.shape[0]!;
  const per = x.size / N;
  let total = 0;
  for (let n = 0; n < N; n++) {
    let se = 0;
    for (let i = n * per; i < (n + 1) * per; i++) {
      // Differences on the [−1, 1] scale are halved to get the [0, 1] scale.
      const d = (Math.min(1, Math.max(-1, xr.f32[i]!)) - x.f32[i]!) / 2;
      se += d * d;
    }
    const mse = se / per;
    total += mse > 0 ? Math.min(100, -10 * Math.log10(mse)) : 100;
  }
  return total / N;
}

/**
 * Returns once a grid is written to `path`: `images` on the top row and, below, the images
 * `reconstruct` makes of them (a tensor [N, C, H, W] on [−1, 1]).
 */
export async function writeComparisonGrid(
  images: readonly Image[],
  reconstruct: (x: Tensor) => Tensor,
  path: string,
): Promise<void> {
  const x = imagesToTensor(images);
  const xr = reconstruct(x);
  const [, C, H, W] = x.shape as [number, 1 | 3, number, number];
  const per = C * H * W;
  const recons = images.map((_, i) =>
    floatToImage(xr.f32.subarray(i * per, (i + 1) * per), C, H, W),
  );
  await writeImageGrid(path, [...images, ...recons], { columns: images.length });
}
