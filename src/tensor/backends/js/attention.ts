/**
 * Transformer kernels of the js backend: rotary embeddings and scaled-dot-product attention.
 *
 * Attention loops over the query rows in lse order (batch, query head, position) and
 * materialises one row of scores at a time, so memory stays O(S) however long the sequence. Shapes follow AttentionShape:
 * q/out [B, T, H, D], k/v [B, S, Hkv, D], lse [B, H, T], mask [B, T, S].
 */

import type { AttentionShape, Backend } from "../backend.js";

/** Returns whether query i of batch b may attend to key j (mask, else causal, else all). */
function visible(
  mask: Uint8Array | null,
  shape: AttentionShape,
  b: number,
  i: number,
  j: number,
): boolean {
  if (mask) return mask[(b * shape.T + i) * shape.S + j] !== 0;
  if (shape.causal) return j <= i + shape.S - shape.T;
  return true;
}

/** Returns Σ_d a[ao + d] · b[bo + d] for d < D. */
function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) s += a[ao + d]! * b[bo + d]!;
  return s;
}

/**
 * Returns where query row li (its index in lse [B, H, T]: batch b, query head h, position i)
 * reads and writes: b and i, the row's offset qo in q, out and gOut, and the offset kv in k
 * and v of key 0 of the key/value head that h reads (key j is at kv + j·Hkv·D).
 */
function queryRow(
  shape: AttentionShape,
  li: number,
): [b: number, i: number, qo: number, kv: number] {
  const { T, S, H, Hkv, D } = shape;
  const i = li % T;
  const h = Math.floor(li / T) % H;
  const b = Math.floor(li / (T * H));
  const hk = Math.floor(h / (H / Hkv));
  return [b, i, ((b * T + i) * H + h) * D, (b * S * Hkv + hk) * D];
}

export const attentionKernels: Pick<Backend, "rope" | "attention" | "attentionBackward"> = {
  /**
   * Writes the rotary embedding of x [rows, H, D] ("rotate half": element i pairs with
   * i + D/2) using per-row tables cos/sin [rows, D/2]; `inverse` rotates by −angle. out may
   * alias x.
   */
  rope(x, out, cos, sin, rows, H, D, inverse) {
    const half = D / 2;
    const sign = inverse ? -1 : 1;
    for (let r = 0; r < rows; r++) {
      const t = r * half;
      for (let h = 0; h < H; h++) {
        const o = (r * H + h) * D;
        for (let i = 0; i < half; i++) {
          const c = cos[t + i]!;
          const s = sign * sin[t + i]!;
          // Both inputs are read before either output is written, so out may alias x.
          const x1 = x[o + i]!;
          const x2 = x[o + i + half]!;
          out[o + i] = x1 * c - x2 * s;
          out[o + i + half] = x2 * c + x1 * s;
        }
      }
    }
  },

  /**
   * Writes out = softmax(scale · q·kᵀ over visible keys) · v and lse = log Σ exp(scores) per
   * query row; a row with no visible key gets out 0 and lse −∞.
   */
  attention(q, k, v, mask, out, lse, shape) {
    const { B, T, S, H, Hkv, D, scale } = shape;
    const scores = new Float64Array(S);
    const acc = new Float64Array(D);
    for (let li = 0; li < B * H * T; li++) {
      const [b, i, qo, kv] = queryRow(shape, li);
      let max = Number.NEGATIVE_INFINITY;
      let seen = 0;
      for (let j = 0; j < S; j++) {
        if (!visible(mask, shape, b, i, j)) continue;
        const s = scale * dot(q, qo, k, kv + j * Hkv * D, D);
        scores[j] = s;
        if (s > max) max = s;
        seen++;
      }
      if (seen === 0) {
        out.fill(0, qo, qo + D);
        lse[li] = Number.NEGATIVE_INFINITY;
        continue;
      }
      // Subtracting the row max keeps every exp ≤ 1.
      acc.fill(0);
      let sum = 0;
      for (let j = 0; j < S; j++) {
        if (!visible(mask, shape, b, i, j)) continue;
        const p = Math.exp(scores[j]! - max);
        sum += p;
        const vo = kv + j * Hkv * D;
        for (let d = 0; d < D; d++) acc[d] += p * v[vo + d]!;
      }
      for (let d = 0; d < D; d++) out[qo + d] = acc[d]! / sum;
      lse[li] = max + Math.log(sum);
    }
  },

  /**
   * Writes gq, gk, gv of attention from the saved out and lse. With P = exp(scores − lse),
   * dP_j = gOut·v_j and δ = gOut·out, the score gradient is dS_j = P_j·(dP_j − δ); then
   * gq += scale·dS_j·k_j, gk_j += scale·dS_j·q, gv_j += P_j·gOut. Rows whose lse is −∞ (no
   * visible key) contribute nothing. gk/gv sum over query rows and over the query heads that
   * share a key/value head, in float64.
   */
  attentionBackward(q, k, v, mask, out, lse, gOut, gq, gk, gv, shape) {
    const { B, T, S, H, Hkv, D, scale } = shape;
    const kvSize = B * S * Hkv * D;
    const gkAcc = new Float64Array(kvSize);
    const gvAcc = new Float64Array(kvSize);
    const gqRow = new Float64Array(D);
    for (let li = 0; li < B * H * T; li++) {
      const [b, i, qo, kv] = queryRow(shape, li);
      const L = lse[li]!;
      gqRow.fill(0);
      if (L !== Number.NEGATIVE_INFINITY) {
        const delta = dot(gOut, qo, out, qo, D);
        for (let j = 0; j < S; j++) {
          if (!visible(mask, shape, b, i, j)) continue;
          const ko = kv + j * Hkv * D;
          const p = Math.exp(scale * dot(q, qo, k, ko, D) - L);
          const dS = p * (dot(gOut, qo, v, ko, D) - delta);
          for (let d = 0; d < D; d++) {
            gqRow[d] += scale * dS * k[ko + d]!;
            gkAcc[ko + d] += scale * dS * q[qo + d]!;
            gvAcc[ko + d] += p * gOut[qo + d]!;
          }
        }
      }
      for (let d = 0; d < D; d++) gq[qo + d] = gqRow[d]!;
    }
    for (let e = 0; e < kvSize; e++) {
      gk[e] = gkAcc[e]!;
      gv[e] = gvAcc[e]!;
    }
  },
};
