/** Reading the sequence layout: the Transfusion mask, patch ownership, and validation. */
import { firstPatchIndex, type SequenceLayout } from "../data/layout.js";

export type { ImageSpan, SequenceLayout } from "../data/layout.js";

/** Returns, per position, the index of the image its patch belongs to, or −1 for text. */
export function patchOwner(layout: SequenceLayout): Int32Array {
  const owner = new Int32Array(layout.batch * layout.seqLen).fill(-1);
  layout.images.forEach((img, i) => {
    const base = firstPatchIndex(img, layout.seqLen);
    owner.fill(i, base, base + img.gridH * img.gridW);
  });
  return owner;
}

export type ImageAttention = "bidirectional" | "causal";

/**
 * Returns the Transfusion attention mask [B, T, T] (1 = may attend): causal everywhere,
 * bidirectional among patches of the same image (unless `imageAttention` is "causal"), never
 * across documents. A padding position attends only to itself so no row is empty.
 */
export function buildMask(
  layout: SequenceLayout,
  imageAttention: ImageAttention = "bidirectional",
): Uint8Array {
  const { batch: B, seqLen: T, docIds } = layout;
  const mask = new Uint8Array(B * T * T);
  for (let b = 0; b < B; b++) {
    const rowBase = b * T;
    for (let i = 0; i < T; i++) {
      const di = docIds[rowBase + i]!;
      const m = (b * T + i) * T;
      if (di < 0) {
        mask[m + i] = 1;
        continue;
      }
      // Documents are contiguous, so the causal part is a run ending at i.
      let j = i;
      while (j >= 0 && docIds[rowBase + j] === di) {
        mask[m + j] = 1;
        j--;
      }
    }
  }
  if (imageAttention === "bidirectional") {
    for (const img of layout.images) {
      const n = img.gridH * img.gridW;
      const base = firstPatchIndex(img, T);
      for (let i = 0; i < n; i++) {
        // Query row base + i may see the image's n key columns from img.start on.
        const m = (base + i) * T + img.start;
        mask.fill(1, m, m + n);
      }
    }
  }
  return mask;
}

/** Checks a layout's internal consistency; throws naming the field and index. */
export function validateLayout(
  layout: SequenceLayout,
  vocab: number,
  patchesPerImage?: number,
): void {
  const { batch: B, seqLen: T } = layout;
  const n = B * T;
  for (const [name, arr] of [
    ["tokens", layout.tokens],
    ["textTargets", layout.textTargets],
    ["docIds", layout.docIds],
    ["positions", layout.positions],
  ] as const) {
    if (arr.length !== n)
      throw new Error(`layout.${name} has ${arr.length} entries, expected ${n}`);
  }
  for (let i = 0; i < n; i++) {
    const tok = layout.tokens[i]!;
    if (tok < 0 || tok >= vocab)
      throw new Error(`layout.tokens[${i}] = ${tok} is outside [0, ${vocab})`);
    const tg = layout.textTargets[i]!;
    if (tg >= vocab || tg < -1) throw new Error(`layout.textTargets[${i}] = ${tg} is invalid`);
  }
  const owner = new Int32Array(n).fill(-1);
  layout.images.forEach((img, k) => {
    const count = img.gridH * img.gridW;
    if (patchesPerImage !== undefined && count !== patchesPerImage) {
      throw new Error(
        `layout.images[${k}] has ${count} patches, the model expects ${patchesPerImage}`,
      );
    }
    if (img.row < 0 || img.row >= B || img.start < 0 || img.start + count > T) {
      throw new Error(
        `layout.images[${k}] (row ${img.row}, start ${img.start}, ${count} patches) is out of range`,
      );
    }
    const base = firstPatchIndex(img, T);
    for (let p = 0; p < count; p++) {
      const pos = base + p;
      if (owner[pos] !== -1)
        throw new Error(`layout.images[${k}] overlaps image ${owner[pos]} at position ${pos}`);
      owner[pos] = k;
      if (layout.textTargets[pos] !== -1) {
        throw new Error(`layout.textTargets[${pos}] must be −1 at a patch position (image ${k})`);
      }
    }
  });
}
