/**
 * Convolution and upsampling kernels of the js backend (NCHW).
 *
 * conv2d lowers each image to a column matrix (im2col) so the work runs in the gemm:
 * col[(ci·kh + ky)·kw + kx, oy·Wo + ox] = x[ci, oy·stride − pad + ky, ox·stride − pad + kx]
 * (zero outside the image), and then out[n] = w · col with w viewed as [Cout, Cin·kh·kw].
 * The backward runs the same correspondence the other way (col2im, im2col's adjoint).
 */

import type { Backend } from "../backend.js";
import { gemmKernels } from "./gemm.js";

const { gemm } = gemmKernels;

/** Returns the output size of a convolution along one axis. */
function outSize(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

/**
 * The im2col correspondence of one image: col is [R, P] with R = Cin·kh·kw, P = Ho·Wo, and
 * col[e] = image[source[e]] for the image [Cin, H, W], or 0 where source[e] is −1 (the
 * window lies in the zero padding).
 */
interface Im2col {
  source: Int32Array;
  R: number;
  P: number;
}

/** Returns the im2col correspondence of a kh×kw convolution of a [Cin, H, W] image. */
function im2colMap(
  Cin: number,
  H: number,
  W: number,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
): Im2col {
  const Ho = outSize(H, kh, stride, pad);
  const Wo = outSize(W, kw, stride, pad);
  const R = Cin * kh * kw;
  const P = Ho * Wo;
  const source = new Int32Array(R * P);
  let e = 0;
  for (let ci = 0; ci < Cin; ci++) {
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        for (let oy = 0; oy < Ho; oy++) {
          const iy = oy * stride - pad + ky;
          for (let ox = 0; ox < Wo; ox++, e++) {
            const ix = ox * stride - pad + kx;
            const inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
            source[e] = inside ? (ci * H + iy) * W + ix : -1;
          }
        }
      }
    }
  }
  return { source, R, P };
}

/** Writes col = the im2col matrix of the image that starts at x[xOffset]. */
function im2col(map: Im2col, x: Float32Array, xOffset: number, col: Float32Array): void {
  const { source } = map;
  for (let e = 0; e < source.length; e++) {
    const s = source[e]!;
    col[e] = s < 0 ? 0 : x[xOffset + s]!;
  }
}

/** Adds the column gradient gcol onto the image gradient acc [Cin, H, W] (col2im). */
function col2imAdd(map: Im2col, gcol: Float32Array, acc: Float64Array): void {
  const { source } = map;
  for (let e = 0; e < source.length; e++) {
    const s = source[e]!;
    if (s >= 0) acc[s] += gcol[e]!;
  }
}

export const convKernels: Pick<
  Backend,
  "conv2d" | "conv2dBackward" | "upsampleNearest" | "upsampleNearestBackward"
> = {
  /**
   * Writes out [N, Cout, Ho, Wo] = conv2d(x [N, Cin, H, W], w [Cout, Cin, kh, kw]) with the
   * given stride and zero padding, Ho = floor((H + 2·pad − kh)/stride) + 1 (likewise Wo).
   */
  conv2d(x, w, out, N, Cin, H, W, Cout, kh, kw, stride, pad) {
    const map = im2colMap(Cin, H, W, kh, kw, stride, pad);
    const { R, P } = map;
    const col = new Float32Array(R * P);
    for (let n = 0; n < N; n++) {
      im2col(map, x, n * Cin * H * W, col);
      gemm(false, false, Cout, P, R, 1, w, 0, R, col, 0, P, 0, out, n * Cout * P, P);
    }
  },

  /**
   * Writes gw (overwriting) = Σ_n gy[n] · col_nᵀ and, when gx is given, gx = col2im(wᵀ · gy[n]).
   * Sums across images and across overlapping windows are kept in float64 until the store.
   */
  conv2dBackward(x, w, gy, gx, gw, N, Cin, H, W, Cout, kh, kw, stride, pad) {
    const map = im2colMap(Cin, H, W, kh, kw, stride, pad);
    const { R, P } = map;
    const col = new Float32Array(R * P);
    const gwImage = new Float32Array(Cout * R);
    const gwAcc = new Float64Array(Cout * R);
    const gcol = gx ? new Float32Array(R * P) : null;
    const gxAcc = gx ? new Float64Array(Cin * H * W) : null;
    for (let n = 0; n < N; n++) {
      const gyOffset = n * Cout * P;
      im2col(map, x, n * Cin * H * W, col);
      gemm(false, true, Cout, R, P, 1, gy, gyOffset, P, col, 0, P, 0, gwImage, 0, R);
      for (let e = 0; e < Cout * R; e++) gwAcc[e] += gwImage[e]!;
      if (gx && gcol && gxAcc) {
        gemm(true, false, R, P, Cout, 1, w, 0, R, gy, gyOffset, P, 0, gcol, 0, P);
        gxAcc.fill(0);
        col2imAdd(map, gcol, gxAcc);
        const base = n * Cin * H * W;
        for (let e = 0; e < Cin * H * W; e++) gx[base + e] = gxAcc[e]!;
      }
    }
    for (let e = 0; e < Cout * R; e++) gw[e] = gwAcc[e]!;
  },

  /** Writes out [NC, H·f, W·f] with every pixel of x [NC, H, W] repeated over an f×f block. */
  upsampleNearest(x, out, NC, H, W, factor) {
    const Wo = W * factor;
    for (let c = 0; c < NC; c++) {
      for (let oy = 0; oy < H * factor; oy++) {
        const src = (c * H + Math.floor(oy / factor)) * W;
        const dst = (c * H * factor + oy) * Wo;
        for (let ox = 0; ox < Wo; ox++) out[dst + ox] = x[src + Math.floor(ox / factor)]!;
      }
    }
  },

  /** Writes gx[nc, i, j] = Σ of gy over the f×f block that pixel (i, j) was copied to. */
  upsampleNearestBackward(gy, gx, NC, H, W, factor) {
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
  },
};
