/**
 * Convolution and upsampling kernels of the js backend (NCHW).
 *
 * conv2d lowers each image to a column matrix (im2col) so the work runs in the gemm:
 * col[(ci·kh + ky)·kw + kx, oy·Wo + ox] = x[ci, oy·stride − pad + ky, ox·stride − pad + kx]
 * (zero outside the image), and then out[n] = w · col with w viewed as [Cout, Cin·kh·kw].
 */

import { gemm } from "./gemm.js";

/** Returns the output size of a convolution along one axis. */
function outSize(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

/** Writes the im2col matrix of image n of x into col [Cin·kh·kw, Ho·Wo]. */
function im2col(
  x: Float32Array,
  n: number,
  col: Float32Array,
  Cin: number,
  H: number,
  W: number,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
  Ho: number,
  Wo: number,
): void {
  let r = 0;
  for (let ci = 0; ci < Cin; ci++) {
    const xc = (n * Cin + ci) * H * W;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, r++) {
        const rowStart = r * Ho * Wo;
        for (let oy = 0; oy < Ho; oy++) {
          const iy = oy * stride - pad + ky;
          const o = rowStart + oy * Wo;
          if (iy < 0 || iy >= H) {
            col.fill(0, o, o + Wo);
            continue;
          }
          for (let ox = 0; ox < Wo; ox++) {
            const ix = ox * stride - pad + kx;
            col[o + ox] = ix >= 0 && ix < W ? x[xc + iy * W + ix]! : 0;
          }
        }
      }
    }
  }
}

/** Adds the column-gradient gcol back onto the image gradient acc [Cin, H, W] (im2col's adjoint). */
function col2imAdd(
  gcol: Float32Array,
  acc: Float64Array,
  Cin: number,
  H: number,
  W: number,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
  Ho: number,
  Wo: number,
): void {
  let r = 0;
  for (let ci = 0; ci < Cin; ci++) {
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, r++) {
        for (let oy = 0; oy < Ho; oy++) {
          const iy = oy * stride - pad + ky;
          if (iy < 0 || iy >= H) continue;
          const o = (r * Ho + oy) * Wo;
          for (let ox = 0; ox < Wo; ox++) {
            const ix = ox * stride - pad + kx;
            if (ix >= 0 && ix < W) acc[(ci * H + iy) * W + ix] += gcol[o + ox]!;
          }
        }
      }
    }
  }
}

/**
 * Writes out [N, Cout, Ho, Wo] = conv2d(x [N, Cin, H, W], w [Cout, Cin, kh, kw]) with the
 * given stride and zero padding, Ho = floor((H + 2·pad − kh)/stride) + 1 (likewise Wo).
 */
export function conv2d(
  x: Float32Array,
  w: Float32Array,
  out: Float32Array,
  N: number,
  Cin: number,
  H: number,
  W: number,
  Cout: number,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
): void {
  const Ho = outSize(H, kh, stride, pad);
  const Wo = outSize(W, kw, stride, pad);
  const P = Ho * Wo;
  const R = Cin * kh * kw;
  const col = new Float32Array(R * P);
  for (let n = 0; n < N; n++) {
    im2col(x, n, col, Cin, H, W, kh, kw, stride, pad, Ho, Wo);
    gemm(false, false, Cout, P, R, 1, w, 0, R, col, 0, P, 0, out, n * Cout * P, P);
  }
}

/**
 * Writes gw (overwriting) = Σ_n gy[n] · col_nᵀ and, when gx is given, gx = col2im(wᵀ · gy[n]).
 * Sums across images and across overlapping windows are kept in float64 until the store.
 */
export function conv2dBackward(
  x: Float32Array,
  w: Float32Array,
  gy: Float32Array,
  gx: Float32Array | null,
  gw: Float32Array,
  N: number,
  Cin: number,
  H: number,
  W: number,
  Cout: number,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
): void {
  const Ho = outSize(H, kh, stride, pad);
  const Wo = outSize(W, kw, stride, pad);
  const P = Ho * Wo;
  const R = Cin * kh * kw;
  const col = new Float32Array(R * P);
  const gwImage = new Float32Array(Cout * R);
  const gwAcc = new Float64Array(Cout * R);
  const gcol = gx ? new Float32Array(R * P) : null;
  const gxAcc = gx ? new Float64Array(Cin * H * W) : null;
  for (let n = 0; n < N; n++) {
    const gyOffset = n * Cout * P;
    im2col(x, n, col, Cin, H, W, kh, kw, stride, pad, Ho, Wo);
    gemm(false, true, Cout, R, P, 1, gy, gyOffset, P, col, 0, P, 0, gwImage, 0, R);
    for (let e = 0; e < Cout * R; e++) gwAcc[e] += gwImage[e]!;
    if (gx && gcol && gxAcc) {
      gemm(true, false, R, P, Cout, 1, w, 0, R, gy, gyOffset, P, 0, gcol, 0, P);
      gxAcc.fill(0);
      col2imAdd(gcol, gxAcc, Cin, H, W, kh, kw, stride, pad, Ho, Wo);
      const base = n * Cin * H * W;
      for (let e = 0; e < Cin * H * W; e++) gx[base + e] = gxAcc[e]!;
    }
  }
  for (let e = 0; e < Cout * R; e++) gw[e] = gwAcc[e]!;
}

/** Writes out [NC, H·f, W·f] with every pixel of x [NC, H, W] repeated over an f×f block. */
export function upsampleNearest(
  x: Float32Array,
  out: Float32Array,
  NC: number,
  H: number,
  W: number,
  factor: number,
): void {
  const Wo = W * factor;
  for (let c = 0; c < NC; c++) {
    for (let oy = 0; oy < H * factor; oy++) {
      const src = (c * H + Math.floor(oy / factor)) * W;
      const dst = (c * H * factor + oy) * Wo;
      for (let ox = 0; ox < Wo; ox++) out[dst + ox] = x[src + Math.floor(ox / factor)]!;
    }
  }
}

/** Writes gx[nc, i, j] = Σ of gy over the f×f block that pixel (i, j) was copied to. */
export function upsampleNearestBackward(
  gy: Float32Array,
  gx: Float32Array,
  NC: number,
  H: number,
  W: number,
  factor: number,
): void {
  const Wo = W * factor;
  for (let c = 0; c < NC; c++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        let s = 0;
        for (let dy = 0; dy < factor; dy++) {
          const row = (c * H * factor + i * factor + dy) * Wo + j * factor;
          for (let dx = 0; dx < factor; dx++) s += gy[row + dx]!;
        }
        gx[(c * H + i) * W + j] = s;
      }
    }
  }
}
