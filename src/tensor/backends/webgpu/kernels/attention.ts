/**
 * Transformer kernels on WebGPU: Backend.rope and Backend.attention / attentionBackward
 * (scaled-dot-product attention with the Transfusion mask), on GPUBuffers.
 *
 * Layouts as in AttentionShape: q/out [B, T, H, D], k/v [B, S, Hkv, D], lse [B, H, T]; the
 * mask [B, T, S] is the contract's Uint8Array uploaded as is (its bytes packed four to a u32
 * word, read back with shifts), 1 = may attend; without a mask `causal` aligns query i with
 * keys j ≤ i + S − T.
 *
 * - rope: one invocation per rotated pair, 64 per workgroup; an in-place variant binds one
 *   buffer when x and out are the same (WebGPU forbids binding a buffer twice when written).
 * - attention: one workgroup of 64 invocations per query row (lse order). Keys are taken in
 *   blocks of 64: each invocation scores one key (a D-long dot product), the block's maximum
 *   and sum are tree-reduced, and the running (online) softmax rescales the output
 *   accumulator, of which each invocation owns the dimensions d ≡ its index (mod 64) — at
 *   most 4, so D ≤ 256. Memory is O(64) per row whatever S is, and no score matrix is stored.
 * - attentionBackward: three dispatches. First (lse, δ = gOut·out) per query row into one
 *   scratch buffer (one workgroup per row); then, per query row, key blocks of 64 as in the
 *   forward give dS_j = P_j·(gOut·v_j − δ) and gq = scale·Σ dS_j·k_j; then one workgroup per
 *   key row (b, j, kv head) takes the query rows of the heads that share it in blocks of 64,
 *   recomputing P and dS, to give gk = scale·Σ dS·q and gv = Σ P·gOut without atomics. Rows
 *   whose lse is −∞ (no visible key) contribute nothing. Packing lse and δ together keeps
 *   every dispatch within the 8 storage buffers per shader stage all devices support.
 * Sums are float32 (js: float64).
 */

import type { AttentionShape } from "../../backend.js";
import { type GpuKernel, grid, MAIN, Params, prelude, WG } from "../device.js";
import { ROW_WGSL } from "./rows.js";

/** Largest head dimension the attention kernels support (4 dimensions per invocation). */
export const MAX_HEAD_DIM = 4 * WG;

const ROPE = (inPlace: boolean) => /* wgsl */ `
${ROW_WGSL}
${prelude(
  "n: u32, H: u32, D: u32, sign: f32",
  `read cosT, read sinT, ${inPlace ? "" : "read x, "}read_write out`,
)}

${MAIN} {
  let e = groupIndex(wid, nwg) * WG + li;
  if (e >= p.n) { return; }
  let half = p.D / 2u;
  let i = e % half;
  let rh = e / half; // r·H + h
  let r = rh / p.H;
  let o = rh * p.D;
  let c = cosT[r * half + i];
  let s = p.sign * sinT[r * half + i];
  let x1 = ${inPlace ? "out" : "x"}[o + i];
  let x2 = ${inPlace ? "out" : "x"}[o + i + half];
  out[o + i] = x1 * c - x2 * s;
  out[o + i + half] = x2 * c + x1 * s;
}
`;

/**
 * The prelude of the attention kernels, whose bindings are the geometry (p.rows is the number
 * of rows, query or key, that get a workgroup), q, k, v, the mask and then `outputs`.
 */
const attentionPrelude = (outputs: string) =>
  prelude(
    `
  B: u32, T: u32, S: u32, H: u32,
  Hkv: u32, D: u32, causal: u32, hasMask: u32,
  scale: f32, ninf: f32, rows: u32,
`,
    `read q, read k, read v, read mask: u32, ${outputs}`,
  );

/** WGSL helpers of the attention kernels (forward and backward). */
const ATTENTION_COMMON = /* wgsl */ `
${ROW_WGSL}

const PER: u32 = 4u; // output dimensions per invocation: D ≤ 4·WG

fn visible(b: u32, i: u32, j: u32) -> bool {
  if (p.hasMask != 0u) {
    let idx = (b * p.T + i) * p.S + j;
    return ((mask[idx >> 2u] >> ((idx & 3u) * 8u)) & 0xffu) != 0u;
  }
  if (p.causal != 0u) { return i32(j) <= i32(i) + i32(p.S) - i32(p.T); }
  return true;
}

// Offsets of query row qr (lse order b, h, i): in q/out/gOut, and of key 0 of its kv head.
struct Row { b: u32, i: u32, qo: u32, kv: u32 }
fn queryRow(qr: u32) -> Row {
  let i = qr % p.T;
  let h = (qr / p.T) % p.H;
  let b = qr / (p.T * p.H);
  let hk = h / (p.H / p.Hkv);
  return Row(b, i, ((b * p.T + i) * p.H + h) * p.D, (b * p.S * p.Hkv + hk) * p.D);
}

// q·k of the query row at offset qo and the key row at offset ko (unscaled).
fn score(qo: u32, ko: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < p.D; d++) { s += q[qo + d] * k[ko + d]; }
  return s;
}

var<workgroup> blockW: array<f32, WG>;
`;

/** WGSL helpers of the attention backward kernels (which bind gOut). */
const ATTENTION_BACKWARD_COMMON = /* wgsl */ `
${ATTENTION_COMMON}
// gOut·v of the query row at offset qo and the value row at offset ko.
fn gradDot(qo: u32, ko: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < p.D; d++) { s += gOut[qo + d] * v[ko + d]; }
  return s;
}
`;

const ATTENTION = /* wgsl */ `
${ATTENTION_COMMON}
${attentionPrelude("read_write out, read_write lse")}

${MAIN} {
  let qr = min(groupIndex(wid, nwg), p.rows - 1u);
  let row = queryRow(qr);
  let kStride = p.Hkv * p.D;
  var m = LOWEST;
  var l = 0.0;
  var acc = array<f32, PER>(0.0, 0.0, 0.0, 0.0);
  for (var j0 = 0u; j0 < p.S; j0 += WG) {
    let j = j0 + li;
    let vis = j < p.S && visible(row.b, row.i, j);
    var s = 0.0;
    if (vis) { s = score(row.qo, row.kv + j * kStride) * p.scale; }
    let mNew = max(m, rowMax(li, select(LOWEST, s, vis)));
    let pj = select(0.0, exp(s - mNew), vis);
    blockW[li] = pj;
    let corr = exp(m - mNew);
    l = l * corr + rowSum(li, pj); // rowSum's barriers also publish blockW
    let n = min(WG, p.S - j0);
    for (var t = 0u; t < PER; t++) {
      let d = li + t * WG;
      if (d < p.D) {
        var a = acc[t] * corr;
        for (var jj = 0u; jj < n; jj++) { a += blockW[jj] * v[row.kv + (j0 + jj) * kStride + d]; }
        acc[t] = a;
      }
    }
    m = mNew;
    workgroupBarrier();
  }
  if (groupIndex(wid, nwg) >= p.rows) { return; }
  for (var t = 0u; t < PER; t++) {
    let d = li + t * WG;
    if (d < p.D) { out[row.qo + d] = select(acc[t] / l, 0.0, l == 0.0); }
  }
  if (li == 0u) { lse[qr] = select(m + log(l), p.ninf, l == 0.0); }
}
`;

const ATTENTION_BACKWARD_STATS = /* wgsl */ `
${ROW_WGSL}
${prelude(
  "rows: u32, D: u32, T: u32, H: u32",
  "read out, read gOut, read lse, read_write stats: vec2<f32>",
)}

// stats[qr] = (lse, δ = gOut·out) of query row qr (lse order b, h, i; out is [B, T, H, D]).
${MAIN} {
  let qr = min(groupIndex(wid, nwg), p.rows - 1u);
  let i = qr % p.T;
  let h = (qr / p.T) % p.H;
  let b = qr / (p.T * p.H);
  let qo = ((b * p.T + i) * p.H + h) * p.D;
  var dd = 0.0;
  for (var d = li; d < p.D; d += WG) { dd += gOut[qo + d] * out[qo + d]; }
  let dl = rowSum(li, dd);
  if (li == 0u && groupIndex(wid, nwg) < p.rows) { stats[qr] = vec2<f32>(lse[qr], dl); }
}
`;

const ATTENTION_BACKWARD_Q = /* wgsl */ `
${ATTENTION_BACKWARD_COMMON}
${attentionPrelude("read gOut, read stats: vec2<f32>, read_write gq")}

${MAIN} {
  let qr = min(groupIndex(wid, nwg), p.rows - 1u);
  let row = queryRow(qr);
  let kStride = p.Hkv * p.D;
  let L = stats[qr].x;
  let dl = stats[qr].y;
  let live = L != p.ninf;
  var acc = array<f32, PER>(0.0, 0.0, 0.0, 0.0);
  for (var j0 = 0u; j0 < p.S; j0 += WG) {
    let j = j0 + li;
    var dS = 0.0;
    if (live && j < p.S && visible(row.b, row.i, j)) {
      let ko = row.kv + j * kStride;
      dS = exp(p.scale * score(row.qo, ko) - L) * (gradDot(row.qo, ko) - dl);
    }
    blockW[li] = dS;
    workgroupBarrier();
    let n = min(WG, p.S - j0);
    for (var t = 0u; t < PER; t++) {
      let d = li + t * WG;
      if (d < p.D) {
        for (var jj = 0u; jj < n; jj++) { acc[t] += blockW[jj] * k[row.kv + (j0 + jj) * kStride + d]; }
      }
    }
    workgroupBarrier();
  }
  if (groupIndex(wid, nwg) >= p.rows) { return; }
  for (var t = 0u; t < PER; t++) {
    let d = li + t * WG;
    if (d < p.D) { gq[row.qo + d] = p.scale * acc[t]; }
  }
}
`;

const ATTENTION_BACKWARD_KV = /* wgsl */ `
${ATTENTION_BACKWARD_COMMON}
${attentionPrelude("read gOut, read stats: vec2<f32>, read_write gk, read_write gv")}

var<workgroup> blockS: array<f32, WG>;
var<workgroup> blockQ: array<u32, WG>;

// One workgroup per key row kr = (b·S + j)·Hkv + hk; p.rows is B·S·Hkv here.
${MAIN} {
  let kr = min(groupIndex(wid, nwg), p.rows - 1u);
  let hk = kr % p.Hkv;
  let j = (kr / p.Hkv) % p.S;
  let b = kr / (p.Hkv * p.S);
  let ko = kr * p.D;
  let G = p.H / p.Hkv;
  let Q = G * p.T; // query rows (shared heads × positions) that may read this key
  var accK = array<f32, PER>(0.0, 0.0, 0.0, 0.0);
  var accV = array<f32, PER>(0.0, 0.0, 0.0, 0.0);
  for (var u0 = 0u; u0 < Q; u0 += WG) {
    let u = u0 + li;
    let h = hk * G + u / p.T;
    let i = u % p.T;
    let qr = (b * p.H + h) * p.T + i;
    let qo = ((b * p.T + i) * p.H + h) * p.D;
    var pj = 0.0;
    var dS = 0.0;
    if (u < Q && visible(b, i, j) && stats[qr].x != p.ninf) {
      pj = exp(p.scale * score(qo, ko) - stats[qr].x);
      dS = pj * (gradDot(qo, ko) - stats[qr].y);
    }
    blockW[li] = pj;
    blockS[li] = dS;
    blockQ[li] = select(0u, qo, u < Q);
    workgroupBarrier();
    let n = min(WG, Q - u0);
    for (var t = 0u; t < PER; t++) {
      let d = li + t * WG;
      if (d < p.D) {
        for (var uu = 0u; uu < n; uu++) {
          accK[t] += blockS[uu] * q[blockQ[uu] + d];
          accV[t] += blockW[uu] * gOut[blockQ[uu] + d];
        }
      }
    }
    workgroupBarrier();
  }
  if (groupIndex(wid, nwg) >= p.rows) { return; }
  for (var t = 0u; t < PER; t++) {
    let d = li + t * WG;
    if (d < p.D) {
      gk[ko + d] = p.scale * accK[t];
      gv[ko + d] = accV[t];
    }
  }
}
`;

/** Backend.rope: rotary embedding of x [rows, H, D] ("rotate half"); out may be x itself. */
export const rope: GpuKernel<"rope"> = (rt, x, out, cos, sin, rows, H, D, inverse) => {
  const n = (rows * H * D) / 2;
  if (n <= 0) return;
  const params = new Params()
    .u32(n)
    .u32(H)
    .u32(D)
    .f32(inverse ? -1 : 1);
  const inPlace = x === out;
  const bufs = inPlace ? [cos, sin, out] : [cos, sin, x, out];
  rt.dispatch(ROPE(inPlace), params, bufs, grid(n / WG));
};

function attentionParams(shape: AttentionShape, hasMask: boolean, rows: number): Params {
  const { B, T, S, H, Hkv, D, scale, causal } = shape;
  if (D > MAX_HEAD_DIM) throw new Error(`webgpu attention: head dim ${D} > ${MAX_HEAD_DIM}`);
  return new Params()
    .u32(B)
    .u32(T)
    .u32(S)
    .u32(H)
    .u32(Hkv)
    .u32(D)
    .u32(causal ? 1 : 0)
    .u32(hasMask ? 1 : 0)
    .f32(scale)
    .f32(Number.NEGATIVE_INFINITY)
    .u32(rows);
}

/**
 * Backend.attention: out = softmax(scale·q·kᵀ over visible keys)·v and lse per query row.
 * `mask` is the [B, T, S] Uint8Array's bytes in a buffer (rt.upload(mask)), or null.
 */
export const attention: GpuKernel<"attention"> = (rt, q, k, v, mask, out, lse, shape) => {
  const rows = shape.B * shape.H * shape.T;
  if (rows <= 0) return;
  const params = attentionParams(shape, mask !== null, rows);
  rt.dispatch(ATTENTION, params, [q, k, v, mask ?? rt.none(), out, lse], grid(rows));
};

/** Backend.attentionBackward from the saved out and lse: writes gq, gk and gv. */
export const attentionBackward: GpuKernel<"attentionBackward"> = (rt, q, k, v, mask, ...rest) => {
  const [out, lse, gOut, gq, gk, gv, shape] = rest;
  const { B, T, S, H, Hkv, D } = shape;
  const m = mask ?? rt.none();
  const qRows = B * H * T;
  const kRows = B * S * Hkv;
  // (lse, δ) per query row: one buffer for both keeps every dispatch within the 8 storage
  // buffers per stage that every device supports.
  const stats = rt.alloc(2 * qRows);
  if (qRows > 0) {
    const ps = new Params().u32(qRows).u32(D).u32(T).u32(H);
    rt.dispatch(ATTENTION_BACKWARD_STATS, ps, [out, gOut, lse, stats], grid(qRows));
    const params = attentionParams(shape, mask !== null, qRows);
    rt.dispatch(ATTENTION_BACKWARD_Q, params, [q, k, v, m, gOut, stats, gq], grid(qRows));
  }
  if (kRows > 0) {
    const params = attentionParams(shape, mask !== null, kRows);
    rt.dispatch(ATTENTION_BACKWARD_KV, params, [q, k, v, m, gOut, stats, gk, gv], grid(kRows));
  }
  rt.release(stats);
};
