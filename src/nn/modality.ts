/**
 * Routing rows by modality for modality-specific weights (Mixture-of-Transformers, Liang et al.
 * 2024): image rows go through their own q/k/v/o projections and MLP, text rows through the
 * shared ones, while attention itself runs over the whole mixed sequence. The weights live in
 * the blocks (nn/transformer.ts); this file only decides which rows meet which weights.
 */
import { gather, indexAdd, reshape } from "../tensor/ops/shape.js";
import { type Tensor, zeros } from "../tensor/tensor.js";

/** The flattened rows [B·T] of a sequence split by modality (ascending, together all rows). */
export interface ModalityRows {
  text: Int32Array;
  image: Int32Array;
}

/** Anything applied row-wise to [..., in] giving [..., out]: a Linear, an Mlp. */
export interface RowLayer {
  forward(x: Tensor): Tensor;
}

/** Returns the split of `count` rows into the listed image rows and the remaining text rows. */
export function modalityRows(count: number, imageRows: Int32Array): ModalityRows {
  const isImage = new Uint8Array(count);
  for (const r of imageRows) {
    if (!(r >= 0 && r < count))
      throw new Error(`modalityRows: image row ${r} is outside [0, ${count})`);
    isImage[r] = 1;
  }
  const text = new Int32Array(count - isImage.reduce((s, v) => s + v, 0));
  const image = new Int32Array(count - text.length);
  let ti = 0;
  let ii = 0;
  for (let r = 0; r < count; r++) {
    if (isImage[r]) image[ii++] = r;
    else text[ti++] = r;
  }
  return { text, image };
}

/**
 * Returns each of the `shared` layers applied to x [B, T, d] as [B, T, out]. When `image`
 * layers are given (one per shared layer), each row instead goes through its own modality's
 * layer; `rows` must then say which rows are patches (`where` names the caller in the error).
 */
export function perModality(
  x: Tensor,
  rows: ModalityRows | undefined,
  shared: readonly RowLayer[],
  image: readonly RowLayer[] | undefined,
  where: string,
): Tensor[] {
  if (!image) return shared.map((l) => l.forward(x));
  if (!rows)
    throw new Error(`${where}: modality-specific weights need the rows' modalities (modality)`);
  const [B, T, d] = x.shape as [number, number, number];
  const ys = byModality(
    reshape(x, [B * T, d]),
    rows,
    (h) => shared.map((l) => l.forward(h)),
    (h) => image.map((l) => l.forward(h)),
  );
  return ys.map((y) => reshape(y, [B, T, y.shape[1]!]));
}

/**
 * Returns the outputs of `onText` on the text rows of x [N, d] and of `onImage` on its image
 * rows, each output put back at its rows as [N, out]. Each modality's weights see only that
 * modality's rows (gather, apply, scatter), so the cost equals one shared layer's.
 */
export function byModality(
  x: Tensor,
  rows: ModalityRows,
  onText: (x: Tensor) => Tensor[],
  onImage: (x: Tensor) => Tensor[],
): Tensor[] {
  const N = x.shape[0]!;
  if (rows.text.length + rows.image.length !== N) {
    throw new Error(
      `byModality: ${rows.text.length} text + ${rows.image.length} image rows for ${N} rows`,
    );
  }
  if (rows.image.length === 0) return onText(x);
  if (rows.text.length === 0) return onImage(x);
  const fromText = onText(gather(x, rows.text));
  const fromImage = onImage(gather(x, rows.image));
  return fromText.map((t, i) => {
    const out = zeros([N, t.shape[1]!]);
    return indexAdd(indexAdd(out, rows.text, t), rows.image, fromImage[i]!);
  });
}
