/**
 * The training-data mixer (docs/RECIPE.md §5): builds each batch of packed sequences from image–caption
 * pairs and plain text. Caption first 80% of the time (the caption dropped 10% of those, for
 * guidance), image first 20% (its timestep capped at 500), and plain-text documents added until
 * corpus text and image–caption positions reach the configured ratio.
 */

import type { Rng } from "../tensor/rng.js";
import type { TransfusionBatch } from "./layout.js";
import { documentLength, type PackOptions, packRows, type TokenDocument } from "./pack.js";

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
  /**
   * How long plain-text documents are. "whole": every one is `maxTextChunk` tokens (at most a
   * row); when it does not fit the current row, image–caption pairs fill that row and the text
   * opens the next, so the language model trains at every position of a row. "filler" (runs
   * saved before the field existed): just long enough to meet the ratio, often 20–30 tokens,
   * which leaves later positions untrained for text.
   */
  textDocuments: "whole" | "filler";
}

export const DEFAULT_MIXER: Omit<MixerOptions, "seqLen" | "rows"> = {
  captionFirst: 0.8,
  captionDropout: 0.1,
  noiseCap: 500,
  diffusionSteps: 1000,
  textRatio: 1,
  maxTextChunk: 128,
  textDocuments: "whole",
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
  const text = sources.text && sources.text.length > 1 ? sources.text : null;
  const nextPair = (): TokenDocument => {
    const i = rng.int(n);
    return templates
      ? templateDocument(templates[i]!, rng, opts)
      : pairDocument(i, sources.captions[i]!, rng, opts);
  };
  const textDocument = (len: number): TokenDocument => {
    const start = rng.int(text!.length - len + 1);
    return { segments: [{ text: Array.from(text!.subarray(start, start + len)) }] };
  };
  const rowsOf =
    opts.textDocuments === "whole"
      ? wholeTextRows(opts, packOpts, text?.length ?? 0, nextPair, textDocument, rng)
      : fillerTextRows(opts, packOpts, text?.length ?? 0, nextPair, textDocument);
  return finishBatch(sources, packOpts, opts.rows, rowsOf);
}

/**
 * Rows under textDocuments "whole": a share r/(1+r) of the rows (r the ratio; rounded up or
 * down at random so that the expectation is exact) are text rows, which hold corpus documents
 * of maxTextChunk tokens until full (the last one shorter, at least 8 tokens); the others
 * hold image–caption documents until the next does not fit. Both kinds fill a row nearly
 * whole, so positions follow the ratio, and the language model trains at every position.
 */
function wholeTextRows(
  opts: MixerOptions,
  pack: PackOptions,
  textLength: number,
  nextPair: () => TokenDocument,
  textDocument: (len: number) => TokenDocument,
  rng: Rng,
): TokenDocument[][] {
  const T = opts.seqLen;
  const eod = pack.eodId === undefined ? 0 : 1;
  const pText = textLength > 0 && opts.textRatio > 0 ? opts.textRatio / (1 + opts.textRatio) : 0;
  const textRows = Math.floor(pText * opts.rows + rng.uniform());
  const rows: TokenDocument[][] = [];
  for (let r = 0; r < opts.rows; r++) {
    const row: TokenDocument[] = [];
    let fill = 0;
    if (r < textRows) {
      while (T - fill - eod >= 8) {
        const len = Math.min(opts.maxTextChunk, textLength, T - fill - eod);
        row.push(textDocument(len));
        fill += len + eod;
      }
    } else {
      for (let guard = 0; guard < 10_000; guard++) {
        const d = nextPair();
        const len = documentLength(d, pack);
        if (fill + len > T) break;
        row.push(d);
        fill += len;
      }
    }
    rows.push(row);
  }
  return rows;
}

/**
 * Rows under textDocuments "filler" (runs saved before the field existed): pairs and plain text
 * alternate, each text document just long enough to meet the ratio (at least 8 tokens, fitting
 * the current row if it can), packed greedily in order.
 */
function fillerTextRows(
  opts: MixerOptions,
  pack: PackOptions,
  textLength: number,
  nextPair: () => TokenDocument,
  textDocument: (len: number) => TokenDocument,
): TokenDocument[][] {
  const rows: TokenDocument[][] = [[]];
  // Corpus-text positions against positions of image–caption documents (captions included).
  let textPositions = 0;
  let pairPositions = 0;
  let fill = 0;
  const place = (d: TokenDocument): number => {
    const len = documentLength(d, pack);
    if (len > opts.seqLen) return 0;
    if (fill + len > opts.seqLen) {
      if (rows.length >= opts.rows) return 0;
      rows.push([]);
      fill = 0;
    }
    fill += len;
    rows[rows.length - 1]!.push(d);
    return len;
  };
  for (let guard = 0; guard < 10_000; guard++) {
    const wantText =
      textLength > 1 && opts.textRatio > 0 && textPositions < opts.textRatio * pairPositions;
    if (wantText) {
      const room = opts.seqLen - fill - (pack.eodId === undefined ? 0 : 1);
      const deficit = Math.ceil(opts.textRatio * pairPositions - textPositions);
      let len = Math.min(opts.maxTextChunk, textLength, Math.max(8, deficit));
      if (room >= 8) len = Math.min(len, room);
      const placed = place(textDocument(len));
      if (!placed) break;
      textPositions += placed;
    } else {
      const placed = place(nextPair());
      if (!placed) break;
      pairPositions += placed;
    }
  }
  return rows;
}

/** Returns the batch of documents assigned to rows: the layout and the latents (or codes). */
function finishBatch(
  sources: MixerSources,
  packOpts: PackOptions,
  rows: number,
  rowsOf: TokenDocument[][],
): TransfusionBatch {
  const per = sources.latentSize;
  if (sources.codes) {
    const codes = sources.codes;
    const asCodes = rowsOf.map((row) =>
      row.map((d) => ({
        segments: d.segments.map((s) =>
          "image" in s
            ? { codes: Array.from(codes.subarray(s.image * per, (s.image + 1) * per)) }
            : s,
        ),
      })),
    );
    return {
      layout: packRows(asCodes, packOpts, rows).layout,
      latents: new Float32Array(0),
    };
  }
  const packed = packRows(rowsOf, packOpts, rows);
  const latents = new Float32Array(packed.imageSources.length * per);
  packed.imageSources.forEach((s, k) => {
    latents.set(sources.latents.subarray(s.latent * per, (s.latent + 1) * per), k * per);
  });
  return { layout: packed.layout, latents };
}
