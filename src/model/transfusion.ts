/**
 * The Transfusion model: one Llama-style transformer over a sequence that mixes text tokens and
 * image patches (the layout below). Text positions get a next-token head; patch positions get the patch decoder,
 * aligned (position i predicts the noise of patch i — or, with the flow objective, its velocity).
 * With `modalitySpecific` the blocks route patch rows through their own weights. With
 * `imageCodes` > 0 the same transformer is the discrete-token baseline: images arrive as code
 * tokens and everything is predicted by the one head.
 */

import { firstPatchIndex } from "../data/layout.js";
import { Embedding, Linear, RMSNorm } from "../nn/layers.js";
import { type ModalityRows, modalityRows } from "../nn/modality.js";
import { Module } from "../nn/module.js";
import { Block } from "../nn/transformer.js";
import { mul } from "../tensor/ops/elementwise.js";
import { ropeTables } from "../tensor/ops/nn.js";
import { gather, indexAdd, reshape } from "../tensor/ops/shape.js";
import type { Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { isDiscrete, patchesPerImage, type TransfusionConfig } from "./config.js";
import { makePatchCodec, type PatchCodec } from "./encoders.js";
import { buildMask, type SequenceLayout } from "./layout.js";

/*
 * The sequence layout the model reads (src/data/layout.ts; data/pack.ts computes it): B rows of
 * T positions, every per-position array flattened to [B·T] (index row·T + i). One row holding
 * the text "a cat" and a 2×2-patch image, then end-of-document and padding:
 *
 *   i             0    1    2    3   4   5   6   7    8    9
 *   tokens        a    cat  BOI  ·   ·   ·   ·   EOI  EOD  pad
 *   textTargets   cat  BOI  −1   −1  −1  −1  −1  EOD  −1   −1
 *   docIds        0    0    0    0   0   0   0   0    0    −1
 *   positions     0    1    2    3   4   5   6   7    8    0
 *   images        [{ row: 0, start: 3, gridH: 2, gridW: 2, t, diffuse }]
 *
 * - textTargets: the next token wherever an LM loss is taken, −1 elsewhere: BOI (its successor
 *   is a patch), the patches, a document's last position and padding.
 * - row, start: an image's batch row and the position of its first patch; its n patches sit at
 *   flat indices firstPatchIndex(img, T) + 0…n−1, and their token ids are unused padding.
 * - positions: RoPE positions, restarting at 0 with each document; a patch counts as a token.
 * - docIds: each position's document within its row (−1 for padding); attention never crosses
 *   documents (model/layout.ts builds the mask).
 */

export interface TransfusionOutput {
  /** Logits [R, vocab] at the R positions listed in `textRows`. */
  textLogits: Tensor | null;
  /** Flattened positions (row·T + i) whose logits were computed. */
  textRows: Int32Array;
  /** The layout's next-token target at each of `textRows` (−1 at a row without one). */
  textTargets: Int32Array;
  /** The decoder's prediction [N, C, H, W] for each image of the layout, in order. */
  imagePred: Tensor | null;
}

export interface ForwardOptions {
  /** Positions whose text logits to compute; default: those with a text target. */
  textRows?: Int32Array;
  /** Skip the image decoder (e.g. while sampling text). */
  skipImagePred?: boolean;
}

export class Transfusion extends Module {
  readonly embed: Embedding;
  /** The patch codec; null for the discrete-token model, whose images are ordinary tokens. */
  readonly imageCodec: PatchCodec | null;
  readonly layers: Block[] = [];
  readonly norm: RMSNorm;
  readonly head: Linear;

  constructor(
    readonly config: TransfusionConfig,
    rng: Rng,
  ) {
    super();
    const c = config;
    this.embed = this.child("embed", new Embedding(c.vocab, c.dim, rng));
    this.imageCodec = isDiscrete(c) ? null : this.child("image_codec", makePatchCodec(c, rng));
    for (let i = 0; i < c.layers; i++) {
      this.layers.push(
        this.child(
          `layers.${i}`,
          new Block(
            {
              dim: c.dim,
              heads: c.heads,
              mlpHidden: c.mlpHidden,
              mlp: "swiglu",
              norm: "rms",
              layers: c.layers,
              modalitySpecific: c.modalitySpecific,
            },
            rng,
          ),
        ),
      );
    }
    this.norm = this.child("norm", new RMSNorm(c.dim));
    this.head = this.child("head", new Linear(c.dim, c.vocab, rng, { std: 0.02 }));
  }

  /**
   * Returns the text logits (with their rows and targets) and image predictions for a batch laid
   * out by `layout`, with noisy latents xt [N, C, H, W] (one per layout image) at integer
   * timesteps t.
   */
  forward(
    layout: SequenceLayout,
    xt: Tensor | null,
    t: ArrayLike<number>,
    opts: ForwardOptions = {},
  ): TransfusionOutput {
    const c = this.config;
    const { batch: B, seqLen: T } = layout;
    const nImages = layout.images.length;
    if (nImages > 0 && (!xt || xt.shape[0] !== nImages)) {
      throw new Error(
        `Transfusion.forward: ${nImages} images in the layout but latents for ${xt ? xt.shape[0] : 0}`,
      );
    }
    const { x, patchIdx, skips } = this.embedInputs(layout, xt, t);
    const { cos, sin } = this.ropeTables(layout);
    const mask = buildMask(layout, c.imageAttention);
    const modality = this.modalityOf(B * T, patchIdx);
    let h = reshape(x, [B, T, c.dim]);
    for (const block of this.layers) h = block.forward(h, { cos, sin, mask, modality });
    const hn = reshape(this.norm.forward(h), [B * T, c.dim]);

    const textRows = opts.textRows ?? rowsWithTargets(layout.textTargets);
    const textTargets = Int32Array.from(textRows, (r) => layout.textTargets[r]!);
    const textLogits = textRows.length > 0 ? this.head.forward(gather(hn, textRows)) : null;
    const imagePred =
      nImages > 0 && !opts.skipImagePred
        ? this.requireImageCodec().decode(gather(hn, patchIdx), nImages, skips)
        : null;
    return { textLogits, textRows, textTargets, imagePred };
  }

  /**
   * Returns the input embeddings [B·T, dim] of a layout: token embeddings at text positions and
   * the patch codec's embeddings of xt (at timesteps t) at patch positions, with the flattened
   * patch positions in image order and the codec's skips for the decoder.
   */
  embedInputs(
    layout: SequenceLayout,
    xt: Tensor | null,
    t: ArrayLike<number>,
  ): { x: Tensor; patchIdx: Int32Array; skips: Tensor[] } {
    const x = this.embed.forward(layout.tokens);
    if (layout.images.length === 0 || !xt) return { x, patchIdx: new Int32Array(0), skips: [] };
    const patchIdx = patchIndices(layout, patchesPerImage(this.config));
    const enc = this.requireImageCodec().encode(xt, t);
    return { x: replaceRows(x, patchIdx, enc.tokens), patchIdx, skips: enc.skips };
  }

  /** Returns RoPE tables [B·T, D/2] for the layout (1-D, or 2-D over each image's patch grid). */
  ropeTables(layout: SequenceLayout): { cos: Float32Array; sin: Float32Array } {
    const rowPos = Float64Array.from(layout.positions);
    const colPos = Float64Array.from(layout.positions);
    for (const img of layout.images) {
      const base = firstPatchIndex(img, layout.seqLen);
      const n = img.gridH * img.gridW;
      placePatchPositions(this.config, layout.positions[base]!, img.gridW, n, rowPos, colPos, base);
    }
    return ropeTablesFor(this.config, rowPos, colPos);
  }

  /**
   * Returns the rows' modalities for modality-specific blocks (`imageRows` are the patch rows of
   * `count` flattened rows), or undefined for the shared-weight model, which needs none.
   */
  modalityOf(count: number, imageRows: Int32Array): ModalityRows | undefined {
    return this.config.modalitySpecific ? modalityRows(count, imageRows) : undefined;
  }

  /** Returns the patch codec; throws for the discrete-token model, which has none. */
  requireImageCodec(): PatchCodec {
    if (!this.imageCodec) {
      throw new Error(
        "Transfusion: a discrete-token model has no patch codec; its images are code tokens",
      );
    }
    return this.imageCodec;
  }
}

/** Returns the flat positions whose next-token target is set (≥ 0), ascending. */
function rowsWithTargets(textTargets: Int32Array): Int32Array {
  const rows: number[] = [];
  textTargets.forEach((target, i) => {
    if (target >= 0) rows.push(i);
  });
  return Int32Array.from(rows);
}

/** Returns the flat positions of every image's n patches, image after image. */
function patchIndices(layout: SequenceLayout, n: number): Int32Array {
  const idx = new Int32Array(layout.images.length * n);
  layout.images.forEach((img, k) => {
    const base = firstPatchIndex(img, layout.seqLen);
    for (let p = 0; p < n; p++) idx[k * n + p] = base + p;
  });
  return idx;
}

/**
 * Returns x [N, d] with the listed rows replaced by the rows of src [rows.length, d]. The tape has
 * no overwrite op, so the rows are multiplied by 0 (which also stops their gradient into x, the
 * padding tokens' embedding) and src is added there.
 */
function replaceRows(x: Tensor, rows: Int32Array, src: Tensor): Tensor {
  const keep = new Float32Array(x.shape[0]!).fill(1);
  for (const r of rows) keep[r] = 0;
  return indexAdd(mul(x, new Tensor(keep, [keep.length, 1])), rows, src);
}

/**
 * Writes the RoPE positions of one image's n patches (grid `gridW` wide, the first patch at
 * sequence position p0) into rowPos/colPos from index `at`: p0 + i for both with 1-D RoPE, or
 * (p0 + r, p0 + c) for the patch in row r, column c with 2-D RoPE. Training and the decoding
 * cache place patches by this one rule.
 */
export function placePatchPositions(
  config: Pick<TransfusionConfig, "patchRope">,
  p0: number,
  gridW: number,
  n: number,
  rowPos: Float64Array,
  colPos: Float64Array,
  at: number,
): void {
  const twoD = config.patchRope === "2d";
  for (let i = 0; i < n; i++) {
    rowPos[at + i] = p0 + (twoD ? Math.floor(i / gridW) : i);
    colPos[at + i] = p0 + (twoD ? i % gridW : i);
  }
}

/**
 * Returns RoPE tables [n, D/2] for positions given as (row, column) pairs. With 1-D RoPE only
 * `rowPos` is used; with 2-D RoPE the first half of the frequencies rotate with the row and the
 * second half with the column (text positions pass the same value for both).
 */
export function ropeTablesFor(
  config: TransfusionConfig,
  rowPos: ArrayLike<number>,
  colPos: ArrayLike<number>,
): { cos: Float32Array; sin: Float32Array } {
  const D = config.dim / config.heads;
  return ropeTables(rowPos, D, config.ropeTheta, config.patchRope === "2d" ? colPos : undefined);
}
