/**
 * The held-out losses of a trained model, teacher-forced on held-out examples: the caption
 * NLL after a clean image (captioning) and the image loss at fixed timesteps and noise
 * (generation), so that models are compared on exactly the same inputs.
 */
import type { Example } from "../data/datasets/types.js";
import { documentLength, packDocuments, type TokenDocument } from "../data/pack.js";
import { cosineSchedule } from "../diffusion/schedule.js";
import type { TransfusionPipeline } from "../generate/pipeline.js";
import { isDiscrete, type TransfusionConfig, textVocab } from "../model/config.js";
import type { SequenceLayout } from "../model/layout.js";
import { readLossValues, transfusionLoss } from "../model/loss.js";
import { mixSeed, Rng } from "../tensor/rng.js";
import { noGrad, Tensor } from "../tensor/tensor.js";
import { textNats } from "./perplexity.js";

/**
 * Returns the flattened positions whose target is a text token: a discrete model's image codes
 * are targets in the layout too (BOI and each code predict the next code), but not text.
 */
export function textTargetRows(
  layout: SequenceLayout,
  c: Pick<TransfusionConfig, "vocab" | "imageCodes">,
): Int32Array {
  const firstCode = textVocab(c);
  const rows: number[] = [];
  layout.textTargets.forEach((t, i) => {
    if (t >= 0 && t < firstCode) rows.push(i);
  });
  return Int32Array.from(rows);
}

/** Returns the layout of `docs` (each ended by the end-of-document token) in rows as long as the longest. */
function packHeldOut(pipeline: TransfusionPipeline, docs: readonly TokenDocument[]) {
  const g = pipeline.config.latentSize / pipeline.config.patchSize;
  const sp = pipeline.special;
  const seqLen = Math.max(...docs.map((d) => documentLength(d, { gridH: g, gridW: g }) + 1));
  return packDocuments(docs, {
    seqLen,
    gridH: g,
    gridW: g,
    boiId: sp.boiId,
    eoiId: sp.eoiId,
    padId: sp.padId,
    eodId: sp.eodId,
  }).layout;
}

/**
 * Returns the mean cross-entropy (nats per token) of each example's caption, end of document
 * included, teacher-forced after its clean image (t = 0), as captioning sees it.
 */
export async function captionLoss(
  pipeline: TransfusionPipeline,
  examples: readonly Example[],
  batch = 25,
): Promise<number> {
  const c = pipeline.config;
  let nats = 0;
  let tokens = 0;
  for (let at = 0; at < examples.length; at += batch) {
    const chunk = examples.slice(at, at + batch);
    const images = await pipeline.imageSegments(chunk.map((e) => e.image));
    const docs: TokenDocument[] = chunk.map((e, i) => ({
      segments: [images.segments[i]!, { text: pipeline.tokenizer.encode(e.caption) }],
    }));
    const layout = packHeldOut(pipeline, docs);
    const xt = isDiscrete(c)
      ? null
      : new Tensor(images.latents, [chunk.length, c.latentChannels, c.latentSize, c.latentSize]);
    const r = await textNats(pipeline.model, layout, xt, new Array(chunk.length).fill(0), {
      skipImagePred: true,
      textRows: textTargetRows(layout, c),
    });
    nats += r.nats;
    tokens += r.tokens;
  }
  return tokens > 0 ? nats / tokens : Number.NaN;
}

/** Timesteps of the held-out image loss: the midpoints of ten equal slices of [0, 1000). */
export const IMAGE_LOSS_TIMESTEPS = [50, 150, 250, 350, 450, 550, 650, 750, 850, 950];

/**
 * Returns the held-out image loss of the pipeline's weights on caption-first examples: for
 * Transfusion the diffusion loss (noise-prediction MSE per latent element, or the flow target)
 * with example i noised at IMAGE_LOSS_TIMESTEPS[i mod 10] (scaled to the model's T) by a fixed
 * noise seed, so every model is scored on the same noisy latents; for the discrete-token model
 * the mean cross-entropy (nats) of each image's codes after its caption.
 */
export async function heldOutImageLoss(
  pipeline: TransfusionPipeline,
  examples: readonly Example[],
  batch = 25,
): Promise<number> {
  const c = pipeline.config;
  const schedule = cosineSchedule({ T: c.diffusionSteps });
  const rng = new Rng(mixSeed(2024, 0, 17));
  let total = 0;
  let count = 0;
  for (let at = 0; at < examples.length; at += batch) {
    const chunk = examples.slice(at, at + batch);
    const images = await pipeline.imageSegments(chunk.map((e) => e.image));
    const docs: TokenDocument[] = chunk.map((e, i) => {
      const step = IMAGE_LOSS_TIMESTEPS[(at + i) % IMAGE_LOSS_TIMESTEPS.length]!;
      const s = images.segments[i]!;
      const t = Math.floor((step * c.diffusionSteps) / 1000);
      return {
        segments: [{ text: pipeline.tokenizer.encode(e.caption) }, "image" in s ? { ...s, t } : s],
      };
    });
    const layout = packHeldOut(pipeline, docs);
    const parts = noGrad(() =>
      transfusionLoss(pipeline.model, { layout, latents: images.latents }, schedule, rng),
    );
    total += (await readLossValues(parts)).image * chunk.length;
    count += chunk.length;
  }
  return total / count;
}
