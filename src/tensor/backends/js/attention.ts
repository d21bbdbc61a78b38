/**
 * Transformer kernels of the js backend: rotary embeddings and scaled-dot-product attention.
 *
 * Attention loops over (batch, query head, query row) and materialises one row of scores at
 * a time, so memory stays O(S) however long the sequence. Shapes follow AttentionShape:
 * q/out [B, T, H, D], k/v [B, S, Hkv, D], lse [B, H, T], mask [B, T, S].
 */

import type { AttentionShape } from "../backend.js";

/**
 * Writes the rotary embedding of x [rows, H, D] ("rotate half": element i pairs with i + D/2)
 * using per-row tables cos/sin [rows, D/2]; `inverse` rotates by −angle. out may alias x.
 */
export function rope(
  x: Float32Array,
  out: Float32Array,
  cos: Float32Array,
  sin: Float32Array,
  rows: number,
  H: number,
  D: number,
  inverse: boolean,
): void {
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
}

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
 * Writes out = softmax(scale · q·kᵀ over visible keys) · v and lse = log Σ exp(scores) per
 * query row; a row with no visible key gets out 0 and lse −∞.
 */
export function attention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Uint8Array | null,
  out: Float32Array,
  lse: Float32Array,
  shape: AttentionShape,
): void {
  const { B, T, S, H, Hkv, D, scale } = shape;
  const group = H / Hkv;
  const scores = new Float64Array(S);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const qo = ((b * T + i) * H + h) * D;
        const li = (b * H + h) * T + i;
        let max = Number.NEGATIVE_INFINITY;
        let seen = 0;
        for (let j = 0; j < S; j++) {
          if (!visible(mask, shape, b, i, j)) continue;
          const s = scale * dot(q, qo, k, ((b * S + j) * Hkv + hk) * D, D);
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
          const vo = ((b * S + j) * Hkv + hk) * D;
          for (let d = 0; d < D; d++) acc[d] += p * v[vo + d]!;
        }
        for (let d = 0; d < D; d++) out[qo + d] = acc[d]! / sum;
        lse[li] = max + Math.log(sum);
      }
    }
  }
}

/**
 * Writes gq, gk, gv of attention from the saved out and lse. With P = exp(scores − lse),
 * dP_j = gOut·v_j and δ = gOut·out, the score gradient is dS_j = P_j·(dP_j − δ); then
 * gq += scale·dS_j·k_j, gk_j += scale·dS_j·q, gv_j += P_j·gOut. Rows whose lse is −∞ (no
 * visible key) contribute nothing. gk/gv sum over query rows and over the query heads that
 * share a key/value head, in float64.
 */
export function attentionBackward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Uint8Array | null,
  out: Float32Array,
  lse: Float32Array,
  gOut: Float32Array,
  gq: Float32Array,
  gk: Float32Array,
  gv: Float32Array,
  shape: AttentionShape,
): void {
  const { B, T, S, H, Hkv, D, scale } = shape;
  const group = H / Hkv;
  const kvSize = B * S * Hkv * D;
  const gkAcc = new Float64Array(kvSize);
  const gvAcc = new Float64Array(kvSize);
  const gqRow = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const qo = ((b * T + i) * H + h) * D;
        const L = lse[(b * H + h) * T + i]!;
        gqRow.fill(0);
        if (L !== Number.NEGATIVE_INFINITY) {
          const delta = dot(gOut, qo, out, qo, D);
          for (let j = 0; j < S; j++) {
            if (!visible(mask, shape, b, i, j)) continue;
            const ko = ((b * S + j) * Hkv + hk) * D;
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
    }
  }
  for (let e = 0; e < kvSize; e++) {
    gk[e] = gkAcc[e]!;
    gv[e] = gvAcc[e]!;
  }
}
