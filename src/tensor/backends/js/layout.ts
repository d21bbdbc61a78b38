/**
 * Layout kernels of the js backend: strided copies, sum reductions and row gathers.
 */

import type { Backend } from "../backend.js";

/**
 * Calls `visit(p, q, run)` once per innermost run of the index space of `shape`, where p and
 * q are the positions of the run's first element in two strided operands (starting at pOffset
 * and qOffset) and `run` is the index of the run in row-major order. Shared by every kernel
 * that walks a strided index space, so they agree on rank-0 and empty shapes: rank 0 is one
 * element (a run of length 1) and any zero-length dimension means no runs at all.
 */
export function forEachRun(
  shape: readonly number[],
  pStrides: readonly number[],
  pOffset: number,
  qStrides: readonly number[],
  qOffset: number,
  visit: (p: number, q: number, run: number) => void,
): void {
  const rank = shape.length;
  for (let d = 0; d < rank; d++) if (shape[d]! <= 0) return;
  let runs = 1;
  for (let d = 0; d < rank - 1; d++) runs *= shape[d]!;
  const idx = new Int32Array(Math.max(rank - 1, 0));
  let p = pOffset;
  let q = qOffset;
  for (let run = 0; run < runs; run++) {
    visit(p, q, run);
    // Odometer over the outer dimensions: bump the last one, carry into earlier ones.
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]!++;
      p += pStrides[d]!;
      q += qStrides[d]!;
      if (idx[d]! < shape[d]!) break;
      p -= pStrides[d]! * shape[d]!;
      q -= qStrides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

/** Length of the innermost dimension of `shape` (1 for rank 0) and both operands' strides in it. */
export function innerRun(
  shape: readonly number[],
  pStrides: readonly number[],
  qStrides: readonly number[],
): [length: number, pStride: number, qStride: number] {
  const rank = shape.length;
  if (rank === 0) return [1, 0, 0];
  return [shape[rank - 1]!, pStrides[rank - 1]!, qStrides[rank - 1]!];
}

/** Returns the row-major strides of a contiguous array of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d]!;
  }
  return strides;
}

export const layoutKernels: Pick<
  Backend,
  "copyStrided" | "reduceSum" | "sumSquares" | "gatherRows" | "scatterAddRows"
> = {
  /** Copies (or with `accumulate`, adds) src into dst over a strided index space of `shape`. */
  copyStrided(src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape, accumulate) {
    const [n, ss, ds] = innerRun(shape, srcStrides, dstStrides);
    forEachRun(shape, srcStrides, srcOffset, dstStrides, dstOffset, (s, d) => {
      if (accumulate) for (let i = 0; i < n; i++) dst[d + i * ds] += src[s + i * ss]!;
      else for (let i = 0; i < n; i++) dst[d + i * ds] = src[s + i * ss]!;
    });
  },

  /**
   * Writes out[0..outSize) = Σ of the contiguous x over the dimensions where outStrides is 0.
   * Sums run in float64; every out entry is overwritten, so the caller need not zero it.
   */
  reduceSum(x, shape, out, outStrides, outSize) {
    const acc = new Float64Array(outSize);
    // x is contiguous, so its position is just run · n + i; only out's strides need walking.
    const xStrides = contiguousStrides(shape);
    const [n, , os] = innerRun(shape, xStrides, outStrides);
    forEachRun(shape, xStrides, 0, outStrides, 0, (xp, op) => {
      for (let i = 0; i < n; i++) acc[op + i * os] += x[xp + i]!;
    });
    for (let i = 0; i < outSize; i++) out[i] = acc[i]!;
  },

  /** Writes Σ x[i]² over i < n, accumulated in float64, to out[at]. */
  sumSquares(x, n, out, at) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i]! * x[i]!;
    out[at] = s;
  },

  /** Writes out[r, :] = table[idx[r], :] for r < rows (indices trusted). */
  gatherRows(table, idx, out, rows, dim) {
    for (let r = 0; r < rows; r++) {
      const src = idx[r]! * dim;
      out.set(table.subarray(src, src + dim), r * dim);
    }
  },

  /** Adds gOut[r, :] into gTable[idx[r], :] for r < rows; repeated indices add up. */
  scatterAddRows(gOut, idx, gTable, rows, dim) {
    for (let r = 0; r < rows; r++) {
      const dst = idx[r]! * dim;
      const src = r * dim;
      for (let c = 0; c < dim; c++) gTable[dst + c] += gOut[src + c]!;
    }
  },
};
