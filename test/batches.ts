/**
 * Training batches shared by tests in Node and in the WebGPU test page: no Node imports.
 */
import { packDocuments, type TokenDocument } from "../src/data/pack.js";
import { makeConfig, type TransfusionConfig } from "../src/model/config.js";
import type { TransfusionBatch } from "../src/model/loss.js";
import type { Rng } from "../src/tensor/rng.js";

/**
 * Returns a tiny training batch for models with 4×4×4 latents and 2×2 patches: three documents
 * of 3 random text tokens and an image at a random timestep, in rows of 32; with `poison` the
 * first latent value is NaN (for the trainer's non-finite-step handling).
 */
export function tinyTrainBatch(_step: number, rng: Rng, poison = false): TransfusionBatch {
  const docs: TokenDocument[] = [];
  for (let d = 0; d < 3; d++) {
    docs.push({
      segments: [
        { text: Array.from({ length: 3 }, () => 4 + rng.int(20)) },
        { image: d, t: rng.int(1000) },
      ],
    });
  }
  const { layout } = packDocuments(docs, {
    seqLen: 32,
    gridH: 2,
    gridW: 2,
    boiId: 1,
    eoiId: 2,
    padId: 0,
    eodId: 3,
  });
  const latents = new Float32Array(layout.images.length * 64);
  rng.fillNormal(latents);
  if (poison) latents[0] = Number.NaN;
  return { layout, latents };
}

/**
 * The tests' tiny Transfusion config: width 32, 2 layers, vocabulary 24, 4×4×4 latents in 2×2
 * patches (the shapes tinyTrainBatch makes), with `over` on top.
 */
export function tinyConfig(over: Partial<TransfusionConfig> = {}): TransfusionConfig {
  return makeConfig("tiny", {
    vocab: 24,
    dim: 32,
    layers: 2,
    heads: 4,
    mlpHidden: 48,
    latentSize: 4,
    patchSize: 2,
    ...over,
  });
}
