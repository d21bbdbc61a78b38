/**
 * What `TransfusionPipeline`'s generation methods take and give: the image settings with their
 * defaults, the options of `generate`, and the parts it returns. Imports nothing from Node.
 */
import type { Image } from "../data/pixels.js";
import type { SamplerKind } from "../diffusion/config.js";
import type { TextSampling } from "./sampling.js";

export interface ImageOptions {
  sampler: SamplerKind;
  steps: number;
  /** Classifier-free guidance scale; null for none. */
  guidanceScale: number | null;
  seed: number;
  /**
   * Clip the predicted clean latent to ±x0Clip at every step (null: off). With the cosine
   * schedule ᾱ at the last training step is ~1e-9, so the first step divides the noise
   * prediction's error by √ᾱ; clipping bounds it (the latents are scaled to unit variance).
   */
  x0Clip: number | null;
  /** Stream index of the first sample (batched = one-by-one). */
  firstSample?: number;
  onImageStep?: (row: number, step: number, steps: number) => void;
  /**
   * Called while an image is denoised with the image the model currently predicts (its
   * clean-latent estimate x̂0, decoded by the VAE) every `previewEvery` steps and at the last
   * step; `step` counts from 1. Previews never change the result. Not called for a
   * discrete-token model, whose images are codes.
   */
  onPreview?: (row: number, step: number, steps: number, image: Image) => void;
  /** Steps between previews (default 1). */
  previewEvery?: number;
}

/**
 * Respaced DDPM with 100 of the 1000 training steps (the paper uses 250; 100 measured as good
 * on the demo model at 2.5× less cost), guidance 5 as in the paper's main comparison, and the
 * predicted clean latent clipped to ±3 (unit-variance latents).
 */
export const DEFAULT_IMAGE_OPTIONS: ImageOptions = {
  sampler: "ddpm",
  steps: 100,
  guidanceScale: 5,
  seed: 0,
  x0Clip: 3,
};

/** Options of `TransfusionPipeline.generate`: the image settings plus text sampling. */
export interface CompleteOptions extends Partial<ImageOptions> {
  /** How text tokens are chosen (default greedy). */
  sampling?: TextSampling;
  /** New text tokens at most, images not counted (default 64). */
  maxNewTokens?: number;
  /** Images at most (default 2); 0 never starts one. */
  maxImages?: number;
}

export interface GeneratedPart {
  text?: string;
  image?: Image;
}
