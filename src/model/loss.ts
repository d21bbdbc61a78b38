/**
 * The Transfusion loss (docs/RECIPE.md §1): L = L_LM + λ·L_DDPM. L_LM is the mean cross-entropy over
 * text targets; L_DDPM is, per image, the mean squared error between predicted and true noise
 * over all latent elements, then the mean over the images that diffuse. With the flow objective
 * (config `objective: "flow"`) the same reduction is taken against the velocity ε − x0.
 * The discrete-token baseline (config `imageCodes` > 0) has one loss: next-token cross-entropy
 * over text and image codes together.
 */

import type { TransfusionBatch } from "../data/layout.js";
import { flowInterpolate, flowTimestep, flowVelocityTarget } from "../diffusion/flow.js";
import { addNoise } from "../diffusion/noise.js";
import type { NoiseSchedule } from "../diffusion/schedule.js";
import { add, mul, scale } from "../tensor/ops/elementwise.js";
import { crossEntropy, mseLoss } from "../tensor/ops/nn.js";
import { sum } from "../tensor/ops/reduce.js";
import type { Rng } from "../tensor/rng.js";
import { noGrad, Tensor } from "../tensor/tensor.js";
import { isDiscrete, patchesPerImage, type TransfusionConfig, textVocab } from "./config.js";

export type { TransfusionBatch } from "../data/layout.js";

import type { Transfusion } from "./transfusion.js";

type Objective = TransfusionConfig["objective"];

export interface LossParts {
  /** The differentiable total L_LM + λ·L_DDPM. */
  total: Tensor;
  /** The mean next-token loss over text targets (one element; null without text targets). */
  lm: Tensor | null;
  /**
   * The mean diffusion loss over diffusing images, or for the discrete model the mean
   * next-token loss over image codes (one element; null without any).
   */
  image: Tensor | null;
  /** Text targets and diffusing images that contributed. */
  textTargets: number;
  images: number;
}

/** The values of a LossParts (0 for a part that is absent). */
export interface LossValues {
  total: number;
  lm: number;
  image: number;
}

/** Returns the values of `p` on a host backend (see readLossValues for every backend). */
export function lossValues(p: LossParts): LossValues {
  return { total: p.total.item(), lm: p.lm?.item() ?? 0, image: p.image?.item() ?? 0 };
}

/** Returns the values of `p` once they are computed, on every backend. */
export async function readLossValues(p: LossParts): Promise<LossValues> {
  const [total, lm, image] = await Promise.all(
    [p.total, p.lm, p.image].map((t) => (t ? t.readItem() : 0)),
  );
  return { total: total!, lm: lm!, image: image! };
}

/** A batch's images prepared for the diffusion loss. */
export interface NoisedBatch {
  /** The model input x_t [N, C, H, W] (x0 itself for clean conditioning images). */
  xt: Tensor;
  /** The noise ε drawn [N, C, H, W]. */
  eps: Tensor;
  /** What the decoder regresses [N, C, H, W]: ε under DDPM, the velocity ε − x0 under flow. */
  target: Tensor;
  /** The integer timestep the model is conditioned on, per image (0 for clean images). */
  t: Int32Array;
  /** Flow time in [0, 1) per image (0 for clean images and under DDPM). */
  time: Float64Array;
}

/**
 * Returns the x_t latents [N, C, H, W], the noise drawn, the regression target and timesteps
 * for a batch: images that diffuse are noised at their layout timestep (ddpmNoise or flowNoise);
 * clean conditioning images keep x0 and t = 0. Random draws: ε for all images first, then
 * whatever the objective draws per diffusing image (nothing under DDPM).
 */
export function noiseBatch(
  batch: TransfusionBatch,
  latentShape: [number, number, number],
  schedule: NoiseSchedule,
  rng: Rng,
  objective: Objective = "ddpm",
): NoisedBatch {
  const N = batch.layout.images.length;
  const per = latentShape[0] * latentShape[1] * latentShape[2];
  if (batch.latents.length !== N * per) {
    throw new Error(
      `batch.latents has ${batch.latents.length} values, expected ${N}×${per} for ${N} images`,
    );
  }
  const eps = new Float32Array(N * per);
  rng.fillNormal(eps);
  const noised =
    objective === "flow"
      ? flowNoise(batch, eps, per, schedule.T, rng)
      : ddpmNoise(batch, eps, per, schedule);
  const shape = [N, ...latentShape];
  const epsT = new Tensor(eps, shape);
  return {
    xt: new Tensor(noised.xt, shape),
    eps: epsT,
    target: noised.target === eps ? epsT : new Tensor(noised.target, shape),
    t: noised.t,
    time: noised.time,
  };
}

/** The flat arrays behind a NoisedBatch, filled by one objective. */
interface Noised {
  xt: Float32Array;
  target: Float32Array;
  t: Int32Array;
  time: Float64Array;
}

/**
 * Returns the DDPM inputs: x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε at each diffusing image's layout timestep,
 * the target ε itself (the same array), and t; draws nothing.
 */
function ddpmNoise(
  batch: TransfusionBatch,
  eps: Float32Array,
  per: number,
  schedule: NoiseSchedule,
): Noised {
  const N = batch.layout.images.length;
  const xt = new Float32Array(N * per);
  const t = new Int32Array(N);
  batch.layout.images.forEach((img, k) => {
    const x0 = batch.latents.subarray(k * per, (k + 1) * per);
    const out = xt.subarray(k * per, (k + 1) * per);
    if (!img.diffuse) {
      out.set(x0);
      return;
    }
    checkTimestep(img.t, k, schedule.T);
    t[k] = img.t;
    addNoise(x0, eps.subarray(k * per, (k + 1) * per), img.t, schedule, out);
  });
  return { xt, target: eps, t, time: new Float64Array(N) };
}

/**
 * Returns the flow inputs. The layout's integer timestep t (drawn from [0, cap), cap = T or the
 * captioning cap) becomes the continuous time τ = (t + u)/T with u ~ U[0, 1), so τ is uniform
 * on [0, cap/T); then x_τ = (1−τ)·x0 + τ·ε, the target is ε − x0 (also filled for clean images,
 * whose loss weight is 0), and the model is conditioned on flowTimestep(τ, T), the mapping the
 * flow sampler uses. Draws one u per diffusing image, in layout order.
 */
function flowNoise(
  batch: TransfusionBatch,
  eps: Float32Array,
  per: number,
  T: number,
  rng: Rng,
): Noised {
  const N = batch.layout.images.length;
  const xt = new Float32Array(N * per);
  const target = new Float32Array(N * per);
  const t = new Int32Array(N);
  const time = new Float64Array(N);
  batch.layout.images.forEach((img, k) => {
    const x0 = batch.latents.subarray(k * per, (k + 1) * per);
    const e = eps.subarray(k * per, (k + 1) * per);
    const out = xt.subarray(k * per, (k + 1) * per);
    flowVelocityTarget(x0, e, target.subarray(k * per, (k + 1) * per));
    if (!img.diffuse) {
      out.set(x0);
      return;
    }
    checkTimestep(img.t, k, T);
    time[k] = (img.t + rng.uniform()) / T;
    t[k] = flowTimestep(time[k]!, T);
    flowInterpolate(x0, e, time[k]!, out);
  });
  return { xt, target, t, time };
}

/** Throws unless image k's layout timestep is an integer in [0, T). */
function checkTimestep(t: number, k: number, T: number): void {
  if (!(Number.isInteger(t) && t >= 0 && t < T)) {
    throw new Error(`layout.images[${k}].t = ${t} is not an integer timestep in [0, ${T})`);
  }
}

/**
 * Returns the discrete-token model's loss on `batch`: the mean next-token cross-entropy over
 * every target, text and image codes alike (Chameleon's objective), with the mean over text
 * targets (`lm`) and over code targets (`image`) reported apart.
 */
function discreteLoss(model: Transfusion, batch: TransfusionBatch): LossParts {
  const { layout } = batch;
  const out = model.forward(layout, null, []);
  if (!out.textLogits) throw new Error("transfusionLoss: the batch has no targets");
  const firstCode = textVocab(model.config);
  const targets = out.textTargets;
  const perTarget = crossEntropy(out.textLogits, targets, "none");
  const n = targets.length;
  const weighted = (w: Float32Array) => sum(mul(perTarget, new Tensor(w, [n])));
  const total = weighted(new Float32Array(n).fill(1 / n));
  let codes = 0;
  for (const t of targets) if (t >= firstCode) codes++;
  const text = n - codes;
  // The mean over one kind of target: weight 1/count on its targets, 0 elsewhere.
  const meanOver = (count: number, isCode: boolean) =>
    count > 0
      ? weighted(Float32Array.from(targets, (t) => (t >= firstCode === isCode ? 1 / count : 0)))
      : null;
  return {
    total,
    lm: noGrad(() => meanOver(text, false)),
    image: noGrad(() => meanOver(codes, true)),
    textTargets: text,
    // Each image contributes one target per code (BOI predicts the first).
    images: codes / patchesPerImage(model.config),
  };
}

/** Returns the loss of `model` on `batch` and its parts (noise drawn from `rng`). */
export function transfusionLoss(
  model: Transfusion,
  batch: TransfusionBatch,
  schedule: NoiseSchedule,
  rng: Rng,
): LossParts {
  const c = model.config;
  if (isDiscrete(c)) return discreteLoss(model, batch);
  const { layout } = batch;
  const { xt, target, t } = noiseBatch(
    batch,
    [c.latentChannels, c.latentSize, c.latentSize],
    schedule,
    rng,
    c.objective,
  );
  const out = model.forward(layout, layout.images.length > 0 ? xt : null, t);
  const lm = out.textLogits ? crossEntropy(out.textLogits, out.textTargets) : null;
  let img: Tensor | null = null;
  const diffusing = layout.images.filter((i) => i.diffuse).length;
  if (out.imagePred && diffusing > 0) {
    const perImage = mseLoss(out.imagePred, target, "perSample");
    const w = new Float32Array(layout.images.length);
    layout.images.forEach((im, k) => {
      w[k] = im.diffuse ? 1 / diffusing : 0;
    });
    img = sum(mul(perImage, new Tensor(w, [w.length])));
  }
  let total: Tensor;
  if (lm && img) total = add(lm, scale(img, c.lambda));
  else if (lm) total = lm;
  else if (img) total = scale(img, c.lambda);
  else throw new Error("transfusionLoss: the batch has neither text targets nor diffusing images");
  return {
    total,
    lm,
    image: img,
    textTargets: out.textRows.length,
    images: diffusing,
  };
}
