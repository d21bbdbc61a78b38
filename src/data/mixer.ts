/**
 * The training-data mixer (docs/RECIPE.md §5): builds each batch of packed sequences from image–caption
 * pairs and plain text. Caption first 80% of the time (the caption dropped 10% of those, for
 * guidance), image first 20% (its timestep capped at 500), and plain-text documents added until
 * corpus text and image–caption positions reach the configured ratio.
 */

import type { Rng } from "../tensor/rng.js";
import type { TransfusionBatch } from "./layout.js";
import { documentLength, type PackOptions, packDocuments, type TokenDocument } from "./pack.js";

export interface MixerOptions {
  seqLen: number;
  /** Rows (sequences) per batch. */
  rows: number;
  /** Probability that a pair is laid out caption → image (else image → caption). */
  captionFirst: number;
  /** Probability that a caption-first pair loses its caption (unconditional example). */
  captionDropout: number;
  /** Upper bound (exclusive) of t for image-first pairs; null for no cap. */
  noiseCap: number | null;
  /** Diffusion steps T; t is drawn uniformly from [0, T). */
  diffusionSteps: number;
  /**
   * Plain-text (corpus) positions per position of image–caption documents in a batch (1 = the
   * paper's 1:1 of text data to image–caption data; 0 = no plain text). Captions belong to the
   * image–caption side, so a small ratio still trains a real language model on the corpus.
   */
  textRatio: number;
  /** Longest plain-text document. */
  maxTextChunk: number;
}

export const DEFAULT_MIXER: Omit<MixerOptions, "seqLen" | "rows"> = {
  captionFirst: 0.8,
  captionDropout: 0.1,
  noiseCap: 500,
  diffusionSteps: 1000,
  textRatio: 1,
  maxTextChunk: 128,
};

/** A ready-made document (from a JSONL file): text runs and references to latents. */
export type DocumentTemplate = ReadonlyArray<{ text: readonly number[] } | { image: number }>;

export interface MixerSources {
  /** Token ids of each training caption; pair i uses latent i. */
  captions: readonly (readonly number[])[];
  /** Whole documents to draw from instead of caption pairs (their images index `latents`). */
  documents?: readonly DocumentTemplate[];
  /** Clean latents of the training images, [N, per] flattened (empty with `codes`). */
  latents: Float32Array;
  /** Numbers per latent (C·H·W), or code tokens per image with `codes`. */
  latentSize: number;
  /**
   * For the discrete-token model: the VQ code tokens of the training images, [N, per]
   * flattened; image segments then become runs of these tokens and the batch has no latents.
   */
  codes?: Int32Array;
  /** Tokenised plain-text corpus (optional). */
  text?: Int32Array;
}

/** Returns a caption-first or image-first document for pair `i` (and its image's t). */
export function pairDocument(
  i: number,
  caption: readonly number[],
  rng: Rng,
  opts: Omit<MixerOptions, "seqLen" | "rows">,
): TokenDocument {
  if (rng.uniform() < opts.captionFirst) {
    const tMax = opts.diffusionSteps;
    const t = rng.int(tMax);
    const dropped = rng.uniform() < opts.captionDropout;
    const image = { image: i, t, tMax };
    return { segments: dropped ? [image] : [{ text: caption }, image] };
  }
  const tMax = noiseCapOf(opts);
  return { segments: [{ image: i, t: rng.int(tMax), tMax }, { text: caption }] };
}

/** Returns the exclusive bound of t for captioning-like images: the noise cap, at most T. */
function noiseCapOf(opts: Pick<MixerOptions, "noiseCap" | "diffusionSteps">): number {
  return opts.noiseCap === null
    ? opts.diffusionSteps
    : Math.min(opts.noiseCap, opts.diffusionSteps);
}

/**
 * Returns a document from a template with a timestep per image. An image with text after it
 * and none before is captioning-like, so its t obeys the noise cap.
 */
export function templateDocument(
  tpl: DocumentTemplate,
  rng: Rng,
  opts: Omit<MixerOptions, "seqLen" | "rows">,
): TokenDocument {
  let textSeen = false;
  const cap = noiseCapOf(opts);
  const segments = tpl.map((s, i) => {
    if ("text" in s) {
      textSeen = true;
      return { text: s.text };
    }
    const textAfter = tpl.slice(i + 1).some((n) => "text" in n);
    const tMax = !textSeen && textAfter ? cap : opts.diffusionSteps;
    return { image: s.image, t: rng.int(tMax), tMax };
  });
  return { segments };
}

/** Returns one training batch drawn with `rng` (deterministic for a given rng state). */
export function mixBatch(
  sources: MixerSources,
  pack: Omit<PackOptions, "seqLen">,
  opts: MixerOptions,
  rng: Rng,
): TransfusionBatch {
  const templates = sources.documents;
  const n = templates ? templates.length : sources.captions.length;
  if (n === 0) throw new Error("mixBatch: no documents or image–caption pairs");
  const packOpts: PackOptions = { ...pack, seqLen: opts.seqLen };
  const docs: TokenDocument[] = [];
  // Corpus-text positions against positions of image–caption documents (captions included).
  let textPositions = 0;
  let pairPositions = 0;
  let row = 0;
  let fill = 0;
  const text = sources.text && sources.text.length > 1 ? sources.text : null;
  const place = (d: TokenDocument): number => {
    const len = documentLength(d, packOpts);
    if (len > opts.seqLen) return 0;
    if (fill + len > opts.seqLen) {
      if (row + 1 >= opts.rows) return 0;
      row++;
      fill = 0;
    }
    fill += len;
    docs.push(d);
    return len;
  };
  // Alternate between pairs and plain text, keeping text:image positions near the ratio.
  for (let guard = 0; guard < 10_000; guard++) {
    const wantText =
      text !== null && opts.textRatio > 0 && textPositions < opts.textRatio * pairPositions;
    if (wantText) {
      const room = opts.seqLen - fill - (pack.eodId === undefined ? 0 : 1);
      // Just enough text to meet the ratio (at least 8 tokens), fitting the current row if it can.
      const deficit = Math.ceil(opts.textRatio * pairPositions - textPositions);
      let len = Math.min(opts.maxTextChunk, text.length, Math.max(8, deficit));
      if (room >= 8) len = Math.min(len, room);
      const start = rng.int(text.length - len + 1);
      const d = { segments: [{ text: Array.from(text.subarray(start, start + len)) }] };
      const placed = place(d);
      if (!placed) break;
      textPositions += placed;
    } else {
      const i = rng.int(n);
      const d = templates
        ? templateDocument(templates[i]!, rng, opts)
        : pairDocument(i, sources.captions[i]!, rng, opts);
      const placed = place(d);
      if (!placed) break;
      pairPositions += placed;
    }
  }
  const per = sources.latentSize;
  if (sources.codes) {
    const codes = sources.codes;
    const asCodes = docs.map((d) => ({
      segments: d.segments.map((s) =>
        "image" in s
          ? { codes: Array.from(codes.subarray(s.image * per, (s.image + 1) * per)) }
          : s,
      ),
    }));
    return {
      layout: packDocuments(asCodes, packOpts, opts.rows).layout,
      latents: new Float32Array(0),
    };
  }
  const packed = packDocuments(docs, packOpts, opts.rows);
  const latents = new Float32Array(packed.imageSources.length * per);
  packed.imageSources.forEach((s, k) => {
    latents.set(sources.latents.subarray(s.latent * per, (s.latent + 1) * per), k * per);
  });
  return { layout: packed.layout, latents };
}
