/**
 * Packing token documents into fixed-length rows and computing the sequence layout the model
 * reads: token ids, LM targets, document ids, RoPE positions and image spans.
 */
import type { ImageSpan, SequenceLayout } from "./layout.js";

/** A document after tokenisation: text runs and image slots in order. */
export type Segment =
  | { text: readonly number[] }
  /**
   * An image of the discrete-token model: its VQ code tokens, laid out between BOI and EOI as
   * ordinary tokens. Each position predicts the next code; the last code predicts nothing, since
   * EOI follows every image and generation appends it, as for Transfusion images.
   */
  | { codes: readonly number[] }
  | {
      /** Index of the image's latent in the caller's list. */
      image: number;
      /** Diffusion timestep for this image. */
      t: number;
      /** The exclusive bound t was drawn below (the noise cap, or T), when known. */
      tMax?: number;
      /** Whether this image is noised and gets the diffusion loss (default true). */
      diffuse?: boolean;
    };

export interface TokenDocument {
  segments: readonly Segment[];
}

export interface PackOptions {
  seqLen: number;
  /** Patch grid of every image (latent side / patch size). */
  gridH: number;
  gridW: number;
  boiId: number;
  eoiId: number;
  padId: number;
  /** Appended to each document when given (end of document, itself a text target). */
  eodId?: number;
}

/** A packed batch: the layout plus, per layout image, the caller's latent index and timestep. */
export interface PackedBatch {
  layout: SequenceLayout;
  imageSources: Array<{ latent: number; t: number; diffuse: boolean }>;
}

/** Returns the number of positions a document takes (text, BOI + patches + EOI, EOD). */
export function documentLength(
  doc: TokenDocument,
  opts: Pick<PackOptions, "gridH" | "gridW" | "eodId">,
): number {
  let n = opts.eodId === undefined ? 0 : 1;
  for (const s of doc.segments) {
    if ("text" in s) n += s.text.length;
    else if ("codes" in s) n += s.codes.length + 2;
    else n += opts.gridH * opts.gridW + 2;
  }
  return n;
}

/**
 * Returns rows of documents packed greedily in order (a document never straddles two rows) and
 * their layout. Throws, naming the document, if one is longer than a row.
 */
export function packDocuments(
  docs: readonly TokenDocument[],
  opts: PackOptions,
  rows?: number,
): PackedBatch {
  const T = opts.seqLen;
  const rowsOf: TokenDocument[][] = [];
  let fill = T;
  docs.forEach((d, i) => {
    const len = documentLength(d, opts);
    if (len > T) throw new Error(`document ${i} needs ${len} positions but a row holds ${T}`);
    if (rowsOf.length === 0 || fill + len > T) {
      rowsOf.push([]);
      fill = 0;
    }
    rowsOf[rowsOf.length - 1]!.push(d);
    fill += len;
  });
  return packRows(rowsOf, opts, rows);
}

/**
 * Returns the layout of documents already assigned to rows (`rowsOf[r]` fills row r from its
 * start, the rest padding), with `rows` rows (default: one per entry). Throws, naming the row,
 * if a row's documents are longer than seqLen.
 */
export function packRows(
  rowsOf: readonly (readonly TokenDocument[])[],
  opts: PackOptions,
  rows?: number,
): PackedBatch {
  const T = opts.seqLen;
  const n = opts.gridH * opts.gridW;
  rowsOf.forEach((docs, r) => {
    const len = docs.reduce((sum, d) => sum + documentLength(d, opts), 0);
    if (len > T) throw new Error(`row ${r} needs ${len} positions but a row holds ${T}`);
  });
  const B = rows ?? rowsOf.length;
  if (rowsOf.length > B) throw new Error(`documents need ${rowsOf.length} rows, only ${B} allowed`);
  const tokens = new Int32Array(B * T).fill(opts.padId);
  const isPatch = new Uint8Array(B * T);
  // The last code of a discrete image: its next position is the EOI that generation appends.
  const lastCode = new Uint8Array(B * T);
  const docIds = new Int32Array(B * T).fill(-1);
  const positions = new Int32Array(B * T);
  const images: ImageSpan[] = [];
  const imageSources: PackedBatch["imageSources"] = [];
  rowsOf.forEach((rowDocs, row) => {
    let p = row * T;
    rowDocs.forEach((doc, di) => {
      let pos = 0;
      const put = (tok: number, patch: boolean) => {
        tokens[p] = tok;
        isPatch[p] = patch ? 1 : 0;
        docIds[p] = di;
        positions[p] = pos++;
        p++;
      };
      for (const s of doc.segments) {
        if ("text" in s) {
          for (const tok of s.text) put(tok, false);
        } else if ("codes" in s) {
          put(opts.boiId, false);
          for (const tok of s.codes) put(tok, false);
          if (s.codes.length > 0) lastCode[p - 1] = 1;
          put(opts.eoiId, false);
        } else {
          put(opts.boiId, false);
          images.push({
            row,
            start: p - row * T,
            gridH: opts.gridH,
            gridW: opts.gridW,
            t: s.t,
            ...(s.tMax === undefined ? {} : { tMax: s.tMax }),
            diffuse: s.diffuse ?? true,
          });
          imageSources.push({ latent: s.image, t: s.t, diffuse: s.diffuse ?? true });
          for (let k = 0; k < n; k++) put(opts.padId, true);
          put(opts.eoiId, false);
        }
      }
      if (opts.eodId !== undefined) put(opts.eodId, false);
    });
  });
  const textTargets = new Int32Array(B * T).fill(-1);
  for (let i = 0; i < B * T - 1; i++) {
    // A text position predicts the next position when both are text of the same document.
    // BOI predicts a patch and patches predict nothing, so neither gets an LM target.
    if (
      docIds[i]! >= 0 &&
      !lastCode[i] &&
      (i + 1) % T !== 0 &&
      docIds[i + 1] === docIds[i] &&
      !isPatch[i] &&
      !isPatch[i + 1]
    ) {
      textTargets[i] = tokens[i + 1]!;
    }
  }
  return {
    layout: { batch: B, seqLen: T, tokens, textTargets, docIds, positions, images },
    imageSources,
  };
}
