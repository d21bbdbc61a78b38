/**
 * The Transfusion loss (SPEC.md §1): L = L_LM + λ·L_DDPM. L_LM is the mean cross-entropy over
 * text targets; L_DDPM is, per image, the mean squared error between predicted and true noise
 * over all latent elements, then the mean over the images that diffuse.
 */
import { addNoise } from "../diffusion/noise.js";
import type { NoiseSchedule } from "../diffusion/schedule.js";
import { add, mul, scale } from "../tensor/ops/elementwise.js";
import { crossEntropy, mseLoss } from "../tensor/ops/nn.js";
import { sum } from "../tensor/ops/reduce.js";
import type { Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import type { SequenceLayout } from "./layout.js";
import type { Transfusion } from "./transfusion.js";

export interface TransfusionBatch {
  layout: SequenceLayout;
  /** Clean latents [N, C, H, W] flattened, one per layout image, in order. */
  latents: Float32Array;
}

export interface LossParts {
  /** The differentiable total L_LM + λ·L_DDPM. */
  total: Tensor;
  lm: number;
  image: number;
  /** Text targets and diffusing images that contributed. */
  textTargets: number;
  images: number;
}

/**
 * Returns the x_t latents [N, C, H, W], the noise drawn, and timesteps for a batch: images that
 * diffuse are noised at their layout timestep; clean conditioning images keep x0 and t = 0.
 */
export function noiseBatch(
  batch: TransfusionBatch,
  latentShape: [number, number, number],
  schedule: NoiseSchedule,
  rng: Rng,
): { xt: Tensor; eps: Tensor; t: Int32Array } {
  const N = batch.layout.images.length;
  const per = latentShape[0] * latentShape[1] * latentShape[2];
  if (batch.latents.length !== N * per) {
    throw new Error(
      `batch.latents has ${batch.latents.length} values, expected ${N}×${per} for ${N} images`,
    );
  }
  const eps = new Float32Array(N * per);
  rng.fillNormal(eps);
  const xt = new Float32Array(N * per);
  const t = new Int32Array(N);
  batch.layout.images.forEach((img, k) => {
    const x0 = batch.latents.subarray(k * per, (k + 1) * per);
    if (img.diffuse) {
      t[k] = img.t;
      addNoise(
        x0,
        eps.subarray(k * per, (k + 1) * per),
        img.t,
        schedule,
        xt.subarray(k * per, (k + 1) * per),
      );
    } else {
      xt.set(x0, k * per);
    }
  });
  const shape = [N, ...latentShape];
  return { xt: new Tensor(xt, shape), eps: new Tensor(eps, shape), t };
}

/** Returns the loss of `model` on `batch` and its parts (noise drawn from `rng`). */
export function transfusionLoss(
  model: Transfusion,
  batch: TransfusionBatch,
  schedule: NoiseSchedule,
  rng: Rng,
): LossParts {
  const c = model.config;
  const { layout } = batch;
  const { xt, eps, t } = noiseBatch(
    batch,
    [c.latentChannels, c.latentSize, c.latentSize],
    schedule,
    rng,
  );
  const out = model.forward(layout, layout.images.length > 0 ? xt : null, t);
  let lm: Tensor | null = null;
  if (out.textLogits) {
    const targets = new Int32Array(out.textRows.length);
    out.textRows.forEach((row, i) => {
      targets[i] = layout.textTargets[row]!;
    });
    lm = crossEntropy(out.textLogits, targets);
  }
  let img: Tensor | null = null;
  const diffusing = layout.images.filter((i) => i.diffuse).length;
  if (out.imagePred && diffusing > 0) {
    const perImage = mseLoss(out.imagePred, eps, "perSample");
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
    lm: lm ? lm.item() : 0,
    image: img ? img.item() : 0,
    textTargets: out.textRows.length,
    images: diffusing,
  };
}
