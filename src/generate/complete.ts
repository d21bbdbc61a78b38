/**
 * Completing a mixed document: text sampled token by token, an image drawn whenever the model
 * emits BOI. Unlike `TransfusionPipeline.generate`, every image setting is honoured,
 * classifier-free guidance included: the unconditional branch holds the prompt without its
 * text and then the same generated tokens, so guidance pulls each image towards the prompt.
 */
import type { Document } from "../data/documents.js";
import type { Segment } from "../data/pack.js";
import { createSampler } from "../diffusion/config.js";
import { cosineSchedule } from "../diffusion/schedule.js";
import { generateBatch } from "./generate.js";
import {
  DEFAULT_IMAGE_OPTIONS,
  type GeneratedPart,
  type ImageOptions,
  type TransfusionPipeline,
} from "./pipeline.js";
import { GREEDY, type TextSampling } from "./sampling.js";

export interface CompleteOptions extends Partial<ImageOptions> {
  /** How text tokens are chosen (default greedy). */
  sampling?: TextSampling;
  /** New text tokens at most, images not counted (default 64). */
  maxNewTokens?: number;
  /** Images at most (default 2); 0 never starts one. */
  maxImages?: number;
}

/**
 * Returns the continuation of `doc` as parts in order (text, or decoded images); the
 * document's own images are read as clean latents. Deterministic for a seed.
 */
export function completeDocument(
  p: TransfusionPipeline,
  doc: Document,
  options: CompleteOptions = {},
): GeneratedPart[] {
  const o = { ...DEFAULT_IMAGE_OPTIONS, ...options };
  const maxImages = options.maxImages ?? 2;
  if (!Number.isInteger(maxImages) || maxImages < 0)
    throw new Error(`completeDocument: maxImages must be an integer ≥ 0, got ${maxImages}`);
  const images = doc.parts.flatMap((part) => ("image" in part ? [part.image] : []));
  const prompt = p.imageSegments(images);
  let k = 0;
  const segments: Segment[] = doc.parts.map((part) =>
    "text" in part ? { text: p.tokenizer.encode(part.text) } : prompt.segments[k++]!,
  );
  // A flow model predicts velocity: only the flow sampler fits it (as in the pipeline).
  const kind = p.config.objective === "flow" ? "flow-euler" : o.sampler;
  const sampler = createSampler(
    { kind, steps: o.steps, x0Clip: o.x0Clip },
    cosineSchedule({ T: p.config.diffusionSteps }),
    p.config.objective,
  );
  const canDraw = p.hasImages && maxImages > 0;
  const rows = generateBatch(p.model, [{ segments }], prompt.latents, p.special, {
    sampling: options.sampling ?? GREEDY,
    maxNewTokens: options.maxNewTokens ?? 64,
    images: canDraw ? "allow" : "forbid",
    stopAfterImage: false,
    maxImages,
    sampler,
    guidanceScale: o.guidanceScale,
    seed: o.seed,
    ...(o.onImageStep ? { onImageStep: o.onImageStep } : {}),
  });
  const eod = p.special.eodId;
  return rows[0]!.parts.map((part) => {
    if ("text" in part) return { text: p.tokenizer.decode(part.text.filter((t) => t !== eod)) };
    const [image] = "latent" in part ? p.decodeLatents([part.latent]) : p.decodeCodes([part.codes]);
    return { image: image! };
  });
}
