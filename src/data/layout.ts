/**
 * The sequence layout: where text and image patches sit in a batch of packed sequences.
 * data/ computes it once per batch; the model and the loss read it and never re-derive it.
 */

/** One image inside the batch. Its patches occupy positions [start, start + gridH·gridW). */
export interface ImageSpan {
  /** Row of the batch. */
  row: number;
  /** Position of the first patch (the BOI token sits at start − 1, EOI at start + n). */
  start: number;
  /** Patch grid (latent height/width divided by the patch size). */
  gridH: number;
  gridW: number;
  /** Diffusion timestep drawn for this image (integer in [0, T)). */
  t: number;
  /**
   * The exclusive bound t was drawn below: the noise cap for captioning-like images, else T.
   * Absent where no timestep was drawn (generation) or the drawer did not record it.
   */
  tMax?: number;
  /** Whether the diffusion loss is taken on this image (false for clean conditioning images). */
  diffuse: boolean;
}

/**
 * Returns the flat index (row·seqLen + start) of an image's first patch in its layout's [B·T]
 * arrays; its n patches follow at consecutive indices.
 */
export function firstPatchIndex(img: ImageSpan, seqLen: number): number {
  return img.row * seqLen + img.start;
}

export interface SequenceLayout {
  batch: number;
  seqLen: number;
  /** Token id per position ([B·T]); patch positions hold the padding id (unused). */
  tokens: Int32Array;
  /** Next-token target per position, −1 where no LM loss is taken (BOI, patches, padding). */
  textTargets: Int32Array;
  /** Document index per position within its row (−1 for padding); attention never crosses it. */
  docIds: Int32Array;
  /** RoPE position per position (restarts at 0 for each document). */
  positions: Int32Array;
  /** Images in row-major order of their start positions; image k's latent is latents[k]. */
  images: ImageSpan[];
}

export interface TransfusionBatch {
  layout: SequenceLayout;
  /** Clean latents [N, C, H, W] flattened, one per layout image, in order. */
  latents: Float32Array;
}
