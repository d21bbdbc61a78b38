/** Neural-network ops with fused kernels: softmax, losses, norms, rotary embedding, attention. */

import type { AttentionShape } from "../backends/backend.js";
import { backend } from "../backends/current.js";
import { alloc, allocHost } from "../pool.js";
import type { Rng } from "../rng.js";
import { type FloatStore, isHost } from "../storage.js";
import { accumulateGrad, empty, record, Tensor } from "../tensor.js";
import { mul, square, sub } from "./elementwise.js";
import { mean } from "./reduce.js";

function lastDim(x: Tensor, op: string): { rows: number; cols: number } {
  if (x.rank < 1) throw new Error(`${op}: needs rank ≥ 1`);
  const cols = x.shape[x.rank - 1]!;
  return { rows: cols === 0 ? 0 : x.size / cols, cols };
}

function softmaxImpl(x: Tensor, log: boolean): Tensor {
  const { rows, cols } = lastDim(x, "softmax");
  const out = empty(x.shape);
  backend().softmax(x.store, out.store, rows, cols, log);
  return record(log ? "logSoftmax" : "softmax", out, [x], (g) => {
    const gx = alloc(x.size, true);
    backend().softmaxBackward(out.store, g, gx, rows, cols, log);
    accumulateGrad(x, gx, true);
  });
}

/** Returns the softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  return softmaxImpl(x, false);
}

/** Returns the log-softmax over the last axis. */
export function logSoftmax(x: Tensor): Tensor {
  return softmaxImpl(x, true);
}

export type Reduction = "mean" | "sum" | "none";

/**
 * Returns the cross-entropy of logits [..., V] against integer targets (one per row; a target
 * below 0 is ignored). "mean" averages over the rows that are not ignored (0 when all are);
 * "none" returns the per-row losses (0 on ignored rows).
 */
export function crossEntropy(
  logits: Tensor,
  targets: Int32Array,
  reduction: Reduction = "mean",
): Tensor {
  const { rows, cols: V } = lastDim(logits, "crossEntropy");
  if (targets.length !== rows) {
    throw new Error(`crossEntropy: ${targets.length} targets for ${rows} rows of logits`);
  }
  let counted = 0;
  for (let i = 0; i < rows; i++) {
    const t = targets[i]!;
    if (t >= V) throw new Error(`crossEntropy: target ${t} at row ${i} is ≥ vocabulary ${V}`);
    if (t >= 0) counted++;
  }
  const be = backend();
  const losses = alloc(rows, true);
  const lse = alloc(rows, true);
  be.crossEntropy(logits.store, targets, losses, lse, rows, V);
  let out: Tensor;
  let weight: number;
  if (reduction === "none") {
    out = new Tensor(losses, logits.shape.slice(0, -1));
    weight = 1;
  } else {
    weight = reduction === "sum" ? 1 : counted > 0 ? 1 / counted : 0;
    out = new Tensor(weightedSum(losses, rows, weight), []);
  }
  return record("crossEntropy", out, [logits], (g) => {
    const gLoss = alloc(rows);
    if (reduction === "none") be.axpy(rows, 1, g, gLoss);
    else if (isHost(g) && isHost(gLoss)) gLoss.fill(g[0]! * weight);
    else {
      be.copyStrided(g, 0, [0], gLoss, 0, [1], [rows], false);
      be.affine(gLoss, gLoss, rows, weight, 0);
    }
    const gx = alloc(logits.size, true);
    backend().crossEntropyBackward(logits.store, targets, lse, gLoss, gx, rows, V);
    accumulateGrad(logits, gx, true);
  });
}

/**
 * Returns weight · Σ x[i] (i < n) as a one-element array where x lives: summed in double on
 * the host, by the backend's reduction on a device.
 */
function weightedSum(x: FloatStore, n: number, weight: number): FloatStore {
  if (isHost(x)) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i]!;
    return new Float32Array([s * weight]);
  }
  const be = backend();
  const sum = alloc(1);
  if (n > 0) be.reduceSum(x, [n], sum, [0], 1);
  const out = be.alloc(1);
  be.affine(sum, out, 1, weight, 0);
  return out;
}

/**
 * Returns the mean squared error. "perSample" gives one value per leading index (the mean
 * over every other axis), the reduction the recipe uses per image (docs/RECIPE.md §1).
 */
export function mseLoss(
  pred: Tensor,
  target: Tensor,
  reduction: "mean" | "perSample" = "mean",
): Tensor {
  if (pred.size !== target.size) {
    throw new Error(`mseLoss: [${pred.shape.join(", ")}] vs [${target.shape.join(", ")}]`);
  }
  const d2 = square(sub(pred, target));
  if (reduction === "mean") return mean(d2);
  const axes = pred.shape.map((_, i) => i).slice(1);
  return axes.length === 0 ? d2 : mean(d2, axes);
}

/** Returns RMSNorm of x over its last axis, scaled by w [dim]. */
export function rmsNorm(x: Tensor, w: Tensor, eps = 1e-5): Tensor {
  const { rows, cols } = lastDim(x, "rmsNorm");
  if (w.size !== cols) throw new Error(`rmsNorm: weight has ${w.size} entries, expected ${cols}`);
  const out = empty(x.shape);
  const rstd = alloc(rows, true);
  backend().rmsnorm(x.store, w.store, out.store, rstd, rows, cols, eps);
  return record("rmsNorm", out, [x, w], (g) => {
    const gx = alloc(x.size, true);
    const gw = alloc(cols);
    backend().rmsnormBackward(x.store, w.store, rstd, g, gx, gw, rows, cols);
    accumulateGrad(x, gx, true);
    accumulateGrad(w, gw, true);
  });
}

function groupNormImpl(
  op: string,
  x: Tensor,
  N: number,
  G: number,
  channels: number,
  spatial: number,
  w: Tensor | undefined,
  b: Tensor | undefined,
  eps: number,
): Tensor {
  if (w && w.size !== channels)
    throw new Error(`${op}: weight has ${w.size} entries, expected ${channels}`);
  if (b && b.size !== channels)
    throw new Error(`${op}: bias has ${b.size} entries, expected ${channels}`);
  const out = empty(x.shape);
  const meanBuf = alloc(N * G, true);
  const rstd = alloc(N * G, true);
  const wf = w ? w.store : null;
  const bf = b ? b.store : null;
  backend().groupnorm(x.store, wf, bf, out.store, meanBuf, rstd, N, G, channels, spatial, eps);
  const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
  return record(op, out, inputs, (g) => {
    const gx = alloc(x.size, true);
    const gw = w ? alloc(channels) : null;
    const gb = b ? alloc(channels) : null;
    backend().groupnormBackward(x.store, wf, meanBuf, rstd, g, gx, gw, gb, N, G, channels, spatial);
    accumulateGrad(x, gx, true);
    if (w && gw) accumulateGrad(w, gw, true);
    if (b && gb) accumulateGrad(b, gb, true);
  });
}

/** Returns LayerNorm of x over its last axis (optional affine w, b). */
export function layerNorm(x: Tensor, w?: Tensor, b?: Tensor, eps = 1e-5): Tensor {
  const { rows, cols } = lastDim(x, "layerNorm");
  return groupNormImpl("layerNorm", x, rows, 1, cols, 1, w, b, eps);
}

/** Returns GroupNorm of x [N, C, ...spatial] with `groups` groups (optional affine per C). */
export function groupNorm(x: Tensor, groups: number, w?: Tensor, b?: Tensor, eps = 1e-5): Tensor {
  if (x.rank < 2) throw new Error("groupNorm: x must be [N, C, ...]");
  const N = x.shape[0]!;
  const C = x.shape[1]!;
  if (C % groups !== 0)
    throw new Error(`groupNorm: ${C} channels are not divisible into ${groups} groups`);
  const spatial = x.size / (N * C);
  return groupNormImpl("groupNorm", x, N, groups, C, spatial, w, b, eps);
}

/**
 * Returns x [B, T, H, D] rotated by RoPE with tables cos/sin of shape [B·T, D/2] (or [T, D/2],
 * shared across the batch), in the rotate-half layout.
 */
export function rope(x: Tensor, cos: Float32Array, sin: Float32Array): Tensor {
  if (x.rank !== 4) throw new Error(`rope: x must be [B, T, H, D], got [${x.shape.join(", ")}]`);
  const [B, T, H, D] = x.shape as [number, number, number, number];
  if (D % 2 !== 0) throw new Error(`rope: head dimension ${D} must be even`);
  const half = D / 2;
  let c = cos;
  let s = sin;
  if (cos.length === T * half && B > 1) {
    c = allocHost(B * T * half);
    s = allocHost(B * T * half);
    for (let b = 0; b < B; b++) {
      c.set(cos, b * T * half);
      s.set(sin, b * T * half);
    }
  } else if (cos.length !== B * T * half || sin.length !== cos.length) {
    throw new Error(`rope: tables must be [${B * T}, ${half}] or [${T}, ${half}]`);
  }
  const out = empty(x.shape);
  backend().rope(x.store, out.store, c, s, B * T, H, D, false);
  return record("rope", out, [x], (g) => {
    const gx = alloc(x.size, true);
    backend().rope(g, gx, c, s, B * T, H, D, true);
    accumulateGrad(x, gx, true);
  });
}

/**
 * Returns RoPE tables cos/sin [positions.length, D/2] for positions and base θ. With
 * `columns` (2-D RoPE) the first half of the frequencies rotate with `positions` (the row) and
 * the second half with `columns`, each half spread over the same range of frequencies.
 */
export function ropeTables(
  positions: ArrayLike<number>,
  D: number,
  theta = 10000,
  columns?: ArrayLike<number>,
): { cos: Float32Array; sin: Float32Array } {
  const half = D / 2;
  const quarter = half / 2;
  const n = positions.length;
  // Not pooled: callers cache these tables across steps.
  const cos = new Float32Array(n * half);
  const sin = new Float32Array(n * half);
  for (let i = 0; i < half; i++) {
    const freq = columns ? theta ** (-(2 * (i % quarter)) / half) : theta ** (-(2 * i) / D);
    const pos = columns && i >= quarter ? columns : positions;
    for (let p = 0; p < n; p++) {
      const a = pos[p]! * freq;
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

export interface AttentionOptions {
  /** [B, T, S] with 1 = may attend. Overrides `causal`. */
  mask?: Uint8Array | null;
  /** Causal mask aligned to the end (ignored when a mask is given). */
  causal?: boolean;
  /** Score scale; 1/√D by default. */
  scale?: number;
}

/**
 * Returns softmax(q·kᵀ·scale + mask)·v for q [B, T, H, D] and k, v [B, S, Hkv, D], computed
 * by the fused kernel (no [T, S] score tensor is kept between forward and backward).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4)
    throw new Error("attention: q, k, v must be rank 4");
  const [B, T, H, D] = q.shape as [number, number, number, number];
  const [Bk, S, Hkv, Dk] = k.shape as [number, number, number, number];
  if (Bk !== B || Dk !== D || v.shape.join() !== k.shape.join()) {
    throw new Error(
      `attention: q [${q.shape}] k [${k.shape}] v [${v.shape}] are not [B,T,H,D], [B,S,Hkv,D], [B,S,Hkv,D]`,
    );
  }
  if (H % Hkv !== 0)
    throw new Error(`attention: ${H} query heads not divisible by ${Hkv} kv heads`);
  const mask = opts.mask ?? null;
  if (mask && mask.length !== B * T * S) {
    throw new Error(`attention: mask has ${mask.length} entries, expected B·T·S = ${B * T * S}`);
  }
  const shape: AttentionShape = {
    B,
    T,
    S,
    H,
    Hkv,
    D,
    scale: opts.scale ?? 1 / Math.sqrt(D),
    causal: opts.causal ?? false,
  };
  const out = empty(q.shape);
  const lse = alloc(B * H * T, true);
  backend().attention(q.store, k.store, v.store, mask, out.store, lse, shape);
  return record("attention", out, [q, k, v], (g) => {
    const gq = alloc(q.size, true);
    const gk = alloc(k.size, true);
    const gv = alloc(v.size, true);
    backend().attentionBackward(
      q.store,
      k.store,
      v.store,
      mask,
      out.store,
      lse,
      g,
      gq,
      gk,
      gv,
      shape,
    );
    accumulateGrad(q, gq, true);
    accumulateGrad(k, gk, true);
    accumulateGrad(v, gv, true);
  });
}

/** Returns x with elements zeroed with probability p and the rest scaled by 1/(1−p). */
export function dropout(x: Tensor, p: number, rng: Rng, training = true): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  const m = allocHost(x.size);
  const keep = 1 / (1 - p);
  for (let i = 0; i < m.length; i++) m[i] = rng.uniform() < p ? 0 : keep;
  return mul(x, new Tensor(m, x.shape));
}
