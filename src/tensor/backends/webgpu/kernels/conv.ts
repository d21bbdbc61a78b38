/**
 * Convolution and upsampling on WebGPU: the im2col / col2im helpers, Backend.conv2d and
 * conv2dBackward built from them and the tiled gemm, and Backend.upsampleNearest / backward.
 *
 * The correspondence is the js reference's: for image n, col[n] is [R, P] with
 * R = Cin·kh·kw, P = Ho·Wo and col[n][(ci·kh + ky)·kw + kx, oy·Wo + ox] =
 * x[n, ci, oy·stride − pad + ky, ox·stride − pad + kx] (0 in the padding).
 * - im2col: one invocation per column-matrix entry of all N images at once, 64 per workgroup.
 * - col2im (im2col's adjoint): one invocation per image pixel that gathers the ≤ kh·kw column
 *   entries its windows produced (a gather, so no atomics), 64 per workgroup; overwrites.
 * - conv2d: im2col, then one batched gemm w [Cout, R] · col[n] → out[n] (w's batch stride 0).
 * - conv2dBackward: gw = Σ_n gy[n]·col[n]ᵀ as N gemms accumulating with beta = 1; gx: a
 *   batched gemm wᵀ·gy[n] → gcol[n], then col2im.
 * - upsampleNearest and its backward: one invocation per output element, 64 per workgroup.
 * The column matrices are scratch buffers, handed to rt.release once the work using them is
 * enqueued (destroyed after it is submitted).
 */

import type { Conv2dGeometry } from "../../backend.js";
import { type GpuKernel, grid, MAIN, Params, prelude, type WebGpuRuntime, WG } from "../device.js";
import { fill } from "./elementwise.js";
import { gemm, gemmBatched } from "./gemm.js";

/** The uniform fields of im2col and col2im: the geometry (without Cout) and the output size. */
const GEOMETRY = /* wgsl */ `
  N: u32, Cin: u32, H: u32, W: u32,
  kh: u32, kw: u32, stride: u32, pad: u32,
  Ho: u32, Wo: u32,
`;

const IM2COL = /* wgsl */ `
${prelude(GEOMETRY, "read x, read_write col")}

${MAIN} {
  let e = groupIndex(wid, nwg) * WG + li;
  let P = p.Ho * p.Wo;
  let R = p.Cin * p.kh * p.kw;
  if (e >= p.N * R * P) { return; }
  let n = e / (R * P);
  let row = (e / P) % R;
  let at = e % P;
  let kx = row % p.kw;
  let ky = (row / p.kw) % p.kh;
  let ci = row / (p.kw * p.kh);
  let iy = i32((at / p.Wo) * p.stride + ky) - i32(p.pad);
  let ix = i32((at % p.Wo) * p.stride + kx) - i32(p.pad);
  var v = 0.0;
  if (iy >= 0 && iy < i32(p.H) && ix >= 0 && ix < i32(p.W)) {
    v = x[((n * p.Cin + ci) * p.H + u32(iy)) * p.W + u32(ix)];
  }
  col[e] = v;
}
`;

const COL2IM = /* wgsl */ `
${prelude(GEOMETRY, "read col, read_write x")}

${MAIN} {
  let e = groupIndex(wid, nwg) * WG + li;
  if (e >= p.N * p.Cin * p.H * p.W) { return; }
  let ix = e % p.W;
  let iy = (e / p.W) % p.H;
  let ci = (e / (p.W * p.H)) % p.Cin;
  let n = e / (p.W * p.H * p.Cin);
  let P = p.Ho * p.Wo;
  let R = p.Cin * p.kh * p.kw;
  var acc = 0.0;
  for (var ky = 0u; ky < p.kh; ky++) {
    // Output row oy reads this pixel through tap ky when oy·stride = iy + pad − ky.
    let ty = i32(iy + p.pad) - i32(ky);
    if (ty < 0 || ty % i32(p.stride) != 0) { continue; }
    let oy = u32(ty) / p.stride;
    if (oy >= p.Ho) { continue; }
    for (var kx = 0u; kx < p.kw; kx++) {
      let tx = i32(ix + p.pad) - i32(kx);
      if (tx < 0 || tx % i32(p.stride) != 0) { continue; }
      let ox = u32(tx) / p.stride;
      if (ox >= p.Wo) { continue; }
      acc += col[(n * R + (ci * p.kh + ky) * p.kw + kx) * P + oy * p.Wo + ox];
    }
  }
  x[e] = acc;
}
`;

const UPSAMPLE = /* wgsl */ `
${prelude("NC: u32, H: u32, W: u32, f: u32", "read x, read_write out")}
${MAIN} {
  let e = groupIndex(wid, nwg) * WG + li;
  let Wo = p.W * p.f;
  let Ho = p.H * p.f;
  if (e >= p.NC * Ho * Wo) { return; }
  let ox = e % Wo;
  let oy = (e / Wo) % Ho;
  let c = e / (Wo * Ho);
  out[e] = x[(c * p.H + oy / p.f) * p.W + ox / p.f];
}
`;

const UPSAMPLE_BACKWARD = /* wgsl */ `
${prelude("NC: u32, H: u32, W: u32, f: u32", "read gy, read_write gx")}
${MAIN} {
  let e = groupIndex(wid, nwg) * WG + li;
  if (e >= p.NC * p.H * p.W) { return; }
  let j = e % p.W;
  let i = (e / p.W) % p.H;
  let c = e / (p.W * p.H);
  let Wo = p.W * p.f;
  var s = 0.0;
  for (var dy = 0u; dy < p.f; dy++) {
    let row = (c * p.H * p.f + i * p.f + dy) * Wo + j * p.f;
    for (var dx = 0u; dx < p.f; dx++) { s += gy[row + dx]; }
  }
  gx[e] = s;
}
`;

/** Returns the output size of a convolution along one axis. */
function outSize(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

/** Returns the uniforms of im2col/col2im, and R = Cin·kh·kw and P = Ho·Wo. */
function geometryParams(g: Conv2dGeometry) {
  const [N, Cin, H, W, , kh, kw, stride, pad] = g;
  const Ho = outSize(H, kh, stride, pad);
  const Wo = outSize(W, kw, stride, pad);
  const params = new Params();
  for (const x of [N, Cin, H, W, kh, kw, stride, pad, Ho, Wo]) params.u32(x);
  return { params, R: Cin * kh * kw, P: Ho * Wo };
}

/**
 * Writes col [N, Cin·kh·kw, Ho·Wo], the im2col matrices of the N images of x [N, Cin, H, W].
 */
export function im2col(rt: WebGpuRuntime, x: GPUBuffer, col: GPUBuffer, ...g: Conv2dGeometry) {
  const { params, R, P } = geometryParams(g);
  rt.dispatch(IM2COL, params, [x, col], grid((g[0] * R * P) / WG));
}

/** Writes gx [N, Cin, H, W] = col2im(gcol), the adjoint of im2col (overwrites gx). */
export function col2im(rt: WebGpuRuntime, gcol: GPUBuffer, gx: GPUBuffer, ...g: Conv2dGeometry) {
  const [N, Cin, H, W] = g;
  rt.dispatch(COL2IM, geometryParams(g).params, [gcol, gx], grid((N * Cin * H * W) / WG));
}

/** Backend.conv2d: out [N, Cout, Ho, Wo] = conv2d(x, w) with stride and zero padding. */
export const conv2d: GpuKernel<"conv2d"> = (rt, x, w, out, ...g) => {
  const [N, , , , Cout] = g;
  const { R, P } = geometryParams(g);
  const col = rt.alloc(N * R * P);
  im2col(rt, x, col, ...g);
  gemmBatched(rt, false, false, Cout, P, R, 1, w, 0, col, R * P, 0, out, Cout * P, N);
  rt.release(col);
};

/** Backend.conv2dBackward: writes gw (overwrites) and, when not null, gx. */
export const conv2dBackward: GpuKernel<"conv2dBackward"> = (rt, x, w, gy, gx, gw, ...g) => {
  const [N, , , , Cout] = g;
  const { R, P } = geometryParams(g);
  if (N === 0) fill(rt, gw, Cout * R, 0);
  const col = rt.alloc(N * R * P);
  im2col(rt, x, col, ...g);
  for (let n = 0; n < N; n++) {
    gemm(
      rt,
      false,
      true,
      Cout,
      R,
      P,
      1,
      gy,
      n * Cout * P,
      P,
      col,
      n * R * P,
      P,
      n ? 1 : 0,
      gw,
      0,
      R,
    );
  }
  rt.release(col);
  if (!gx) return;
  const gcol = rt.alloc(N * R * P);
  gemmBatched(rt, true, false, R, P, Cout, 1, w, 0, gy, Cout * P, 0, gcol, R * P, N);
  col2im(rt, gcol, gx, ...g);
  rt.release(gcol);
};

/** Backend.upsampleNearest: out [NC, H·f, W·f] repeats every pixel of x over an f×f block. */
export const upsampleNearest: GpuKernel<"upsampleNearest"> = (rt, x, out, NC, H, W, f) => {
  const params = new Params().u32(NC).u32(H).u32(W).u32(f);
  rt.dispatch(UPSAMPLE, params, [x, out], grid((NC * H * W * f * f) / WG));
};

/** Backend.upsampleNearestBackward: gx = Σ of gy over each f×f block (overwrites gx). */
export const upsampleNearestBackward: GpuKernel<"upsampleNearestBackward"> = (rt, gy, gx, ...g) => {
  const [NC, H, W, f] = g;
  const params = new Params().u32(NC).u32(H).u32(W).u32(f);
  rt.dispatch(UPSAMPLE_BACKWARD, params, [gy, gx], grid((NC * H * W) / WG));
};
