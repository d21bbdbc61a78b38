/**
 * Normalisation on WebGPU: Backend.rmsnorm, rmsnormBackward, groupnorm (LayerNorm is one
 * group) and groupnormBackward, on GPUBuffers.
 *
 * Row statistics: one workgroup of 64 invocations per row (RMSNorm) or per (sample, group)
 * (GroupNorm), tree-reduced in workgroup memory (rows.ts); GroupNorm's variance takes two
 * passes, Σ(x − mean)², as the js reference does. Weight/bias gradients sum over rows, which
 * would need float atomics if the row workgroups did it, so a second dispatch gives one
 * invocation per channel (64 per workgroup) that walks the rows in order and accumulates into
 * gw/gb. Optional operands (w, b, gw, gb null) are bound to a placeholder and switched off by
 * flags. Sums are float32 (js: float64).
 */

import { type GpuKernel, grid, MAIN, Params, prelude, WG } from "../device.js";
import { ROW_WGSL } from "./rows.js";

const RMSNORM = /* wgsl */ `
${ROW_WGSL}
${prelude("rows: u32, dim: u32, eps: f32", "read x, read w, read_write out, read_write rstd")}

${MAIN} {
  let r = groupIndex(wid, nwg);
  let o = r * p.dim;
  var ss = 0.0;
  for (var c = li; c < p.dim; c += WG) { ss += x[o + c] * x[o + c]; }
  let s = 1.0 / sqrt(rowSum(li, ss) / f32(p.dim) + p.eps);
  if (r >= p.rows) { return; }
  if (li == 0u) { rstd[r] = s; }
  for (var c = li; c < p.dim; c += WG) { out[o + c] = x[o + c] * s * w[c]; }
}
`;

const RMSNORM_BACKWARD_X = /* wgsl */ `
${ROW_WGSL}
${prelude("rows: u32, dim: u32", "read x, read w, read rstd, read gy, read_write gx")}

// ∂/∂x_i = s·w_i·gy_i − s³·x_i·u/dim with u = Σ gy·w·x (see the js kernel).
${MAIN} {
  let r = groupIndex(wid, nwg);
  let o = r * p.dim;
  var u = 0.0;
  for (var c = li; c < p.dim; c += WG) { u += gy[o + c] * w[c] * x[o + c]; }
  u = rowSum(li, u);
  if (r >= p.rows) { return; }
  let s = rstd[r];
  let k = s * s * s * u / f32(p.dim);
  for (var c = li; c < p.dim; c += WG) { gx[o + c] = s * w[c] * gy[o + c] - k * x[o + c]; }
}
`;

const RMSNORM_BACKWARD_W = /* wgsl */ `
${ROW_WGSL}
${prelude("rows: u32, dim: u32", "read x, read rstd, read gy, read_write gw")}

${MAIN} {
  let c = groupIndex(wid, nwg) * WG + li;
  if (c >= p.dim) { return; }
  var acc = 0.0;
  for (var r = 0u; r < p.rows; r++) { acc += gy[r * p.dim + c] * x[r * p.dim + c] * rstd[r]; }
  gw[c] += acc;
}
`;

const GROUPNORM = /* wgsl */ `
${ROW_WGSL}
${prelude(
  "groups: u32, G: u32, M: u32, spatial: u32, eps: f32, hasW: u32, hasB: u32",
  "read x, read w, read b, read_write out, read_write mean, read_write rstd",
)}

${MAIN} {
  let ng = groupIndex(wid, nwg);
  let start = ng * p.M;
  let first = (ng % p.G) * p.M; // the group's first element within its sample
  var s = 0.0;
  for (var e = li; e < p.M; e += WG) { s += x[start + e]; }
  let mu = rowSum(li, s) / f32(p.M);
  var sq = 0.0;
  for (var e = li; e < p.M; e += WG) { let d = x[start + e] - mu; sq += d * d; }
  let rs = 1.0 / sqrt(rowSum(li, sq) / f32(p.M) + p.eps);
  if (ng >= p.groups) { return; }
  if (li == 0u) { mean[ng] = mu; rstd[ng] = rs; }
  for (var e = li; e < p.M; e += WG) {
    let c = (first + e) / p.spatial;
    var v = (x[start + e] - mu) * rs;
    if (p.hasW != 0u) { v *= w[c]; }
    if (p.hasB != 0u) { v += b[c]; }
    out[start + e] = v;
  }
}
`;

const GROUPNORM_BACKWARD_X = /* wgsl */ `
${ROW_WGSL}
${prelude(
  "groups: u32, G: u32, M: u32, spatial: u32, hasW: u32",
  "read x, read w, read mean, read rstd, read gy, read_write gx",
)}

fn weight(c: u32) -> f32 { if (p.hasW != 0u) { return w[c]; } return 1.0; }

// gx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ·x̂)), ĝ = gy·w[c], x̂ = (x − mean)·rstd.
${MAIN} {
  let ng = groupIndex(wid, nwg);
  let start = ng * p.M;
  let first = (ng % p.G) * p.M;
  let mu = mean[ng];
  let rs = rstd[ng];
  var sg = 0.0;
  var sgx = 0.0;
  for (var e = li; e < p.M; e += WG) {
    let c = (first + e) / p.spatial;
    let g = gy[start + e] * weight(c);
    sg += g;
    sgx += g * (x[start + e] - mu) * rs;
  }
  let meanG = rowSum(li, sg) / f32(p.M);
  let meanGX = rowSum(li, sgx) / f32(p.M);
  if (ng >= p.groups) { return; }
  for (var e = li; e < p.M; e += WG) {
    let c = (first + e) / p.spatial;
    let g = gy[start + e] * weight(c);
    gx[start + e] = rs * (g - meanG - (x[start + e] - mu) * rs * meanGX);
  }
}
`;

const GROUPNORM_BACKWARD_WB = /* wgsl */ `
${ROW_WGSL}
${prelude(
  "N: u32, G: u32, M: u32, spatial: u32, channels: u32, hasGW: u32, hasGB: u32",
  "read x, read mean, read rstd, read gy, read_write gw, read_write gb",
)}

// One invocation per channel c: Σ over samples and the channel's spatial run of gy·x̂ and gy.
${MAIN} {
  let c = groupIndex(wid, nwg) * WG + li;
  if (c >= p.channels) { return; }
  let g = (c * p.spatial) / p.M;
  var aw = 0.0;
  var ab = 0.0;
  for (var n = 0u; n < p.N; n++) {
    let ng = n * p.G + g;
    let mu = mean[ng];
    let rs = rstd[ng];
    let base = (n * p.channels + c) * p.spatial;
    for (var s = 0u; s < p.spatial; s++) {
      let gyv = gy[base + s];
      aw += gyv * (x[base + s] - mu) * rs;
      ab += gyv;
    }
  }
  if (p.hasGW != 0u) { gw[c] += aw; }
  if (p.hasGB != 0u) { gb[c] += ab; }
}
`;

/** Backend.rmsnorm: out = x · rstd · w over the last dim, rstd saved per row. */
export const rmsnorm: GpuKernel<"rmsnorm"> = (rt, x, w, out, rstd, rows, dim, eps) => {
  if (rows <= 0) return;
  const params = new Params().u32(rows).u32(dim).f32(eps);
  rt.dispatch(RMSNORM, params, [x, w, out, rstd], grid(rows));
};

/** Backend.rmsnormBackward: writes gx, accumulates into gw. */
export const rmsnormBackward: GpuKernel<"rmsnormBackward"> = (
  rt,
  x,
  w,
  rstd,
  gy,
  gx,
  gw,
  ...rd
) => {
  const [rows, dim] = rd;
  if (rows <= 0) return;
  const params = new Params().u32(rows).u32(dim);
  rt.dispatch(RMSNORM_BACKWARD_X, params, [x, w, rstd, gy, gx], grid(rows));
  rt.dispatch(RMSNORM_BACKWARD_W, params, [x, rstd, gy, gw], grid(dim / WG));
};

/**
 * Backend.groupnorm: x viewed as [N, G, M], M = channels·spatial/G; w/b (channels entries,
 * each over a run of `spatial` elements) may be null; mean and rstd saved per (n, g).
 */
export const groupnorm: GpuKernel<"groupnorm"> = (rt, x, w, b, out, mean, rstd, ...geometry) => {
  const [N, G, channels, spatial, eps] = geometry;
  if (N * G <= 0) return;
  const M = (channels * spatial) / G;
  const params = new Params()
    .u32(N * G)
    .u32(G)
    .u32(M)
    .u32(spatial)
    .f32(eps)
    .u32(w ? 1 : 0)
    .u32(b ? 1 : 0);
  const bufs = [x, w ?? rt.none(), b ?? rt.none(), out, mean, rstd];
  rt.dispatch(GROUPNORM, params, bufs, grid(N * G));
};

/** Backend.groupnormBackward: writes gx; accumulates into gw and gb when given. */
export const groupnormBackward: GpuKernel<"groupnormBackward"> = (rt, ...args) => {
  const [x, w, mean, rstd, gy, gx, gw, gb, N, G, channels, spatial] = args;
  if (N * G <= 0) return;
  const M = (channels * spatial) / G;
  const px = new Params()
    .u32(N * G)
    .u32(G)
    .u32(M)
    .u32(spatial)
    .u32(w ? 1 : 0);
  const bx = [x, w ?? rt.none(), mean, rstd, gy, gx];
  rt.dispatch(GROUPNORM_BACKWARD_X, px, bx, grid(N * G));
  if (!gw && !gb) return;
  const pw = new Params()
    .u32(N)
    .u32(G)
    .u32(M)
    .u32(spatial)
    .u32(channels)
    .u32(gw ? 1 : 0)
    .u32(gb ? 1 : 0);
  const bw = [x, mean, rstd, gy, gw ?? rt.none(), gb ?? rt.none()];
  rt.dispatch(GROUPNORM_BACKWARD_WB, pw, bw, grid(channels / WG));
};
