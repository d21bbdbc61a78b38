/**
 * Matrix multiplication for the js backend.
 *
 * Sums are accumulated in float64 and rounded to float32 once, when C is written. The
 * transposes are handled by index arithmetic, one row of C at a time: the row of op(A) is
 * gathered (K numbers); when op(B) has contiguous rows (B not transposed) the row is built in
 * k-j order, adding scaled rows of B into a float64 row of C; when B is transposed its rows
 * are the columns of op(B), so each C entry is a contiguous dot product instead. No matrix
 * is copied.
 */

import type { Backend } from "../backend.js";

export const gemmKernels: Pick<Backend, "gemm" | "gemmBatched"> = {
  /**
   * Writes C = alpha · op(A) · op(B) + beta · C (row-major, see Backend.gemm).
   * As in BLAS, beta = 0 means C is not read (stale NaNs in C do not leak), and alpha = 0 or
   * K = 0 only scales C.
   */
  gemm(transA, transB, M, N, K, alpha, A, aOffset, lda, B, bOffset, ldb, beta, C, cOffset, ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha === 0) {
      scaleMatrix(C, cOffset, ldc, M, N, beta);
      return;
    }
    // op(A)[i, k] sits at aOffset + i·aRow + k·aCol.
    const aRow = transA ? 1 : lda;
    const aCol = transA ? lda : 1;
    const rowTimesB = transB ? rowViaDots : rowViaAxpy;
    const a = new Float64Array(K);
    const acc = new Float64Array(N);
    for (let i = 0; i < M; i++) {
      const ai = aOffset + i * aRow;
      for (let k = 0; k < K; k++) a[k] = A[ai + k * aCol]!;
      rowTimesB(a, B, bOffset, ldb, acc, N, K);
      storeRow(acc, alpha, beta, C, cOffset + i * ldc, N);
    }
  },

  /**
   * Runs `batch` gemms whose matrices start at i·stride in A, B and C (stride 0 reuses one
   * matrix); leading dimensions are those of the untransposed stored layouts.
   */
  gemmBatched(transA, transB, M, N, K, alpha, A, strideA, B, strideB, beta, C, strideC, batch) {
    const lda = transA ? M : K;
    const ldb = transB ? K : N;
    for (let i = 0; i < batch; i++) {
      const [a, b, c] = [i * strideA, i * strideB, i * strideC];
      gemmKernels.gemm(transA, transB, M, N, K, alpha, A, a, lda, B, b, ldb, beta, C, c, N);
    }
  },
};

/**
 * Writes acc[j] = Σ_k a[k] · op(B)[k, j] for j < N: row a (K numbers) of op(A) times op(B),
 * where B is stored from bOffset with row stride ldb.
 */
type RowTimesB = (
  a: Float64Array,
  B: Float32Array,
  bOffset: number,
  ldb: number,
  acc: Float64Array,
  N: number,
  K: number,
) => void;

/**
 * B stored K×N: adds scaled rows of B into acc, four rows per pass so each float64
 * accumulator entry is loaded and stored once per four multiply-adds.
 */
const rowViaAxpy: RowTimesB = (a, B, bOffset, ldb, acc, N, K) => {
  acc.fill(0);
  const K4 = K - (K % 4);
  let k = 0;
  for (; k < K4; k += 4) {
    const a0 = a[k]!;
    const a1 = a[k + 1]!;
    const a2 = a[k + 2]!;
    const a3 = a[k + 3]!;
    const b0 = bOffset + k * ldb;
    const b1 = b0 + ldb;
    const b2 = b1 + ldb;
    const b3 = b2 + ldb;
    for (let j = 0; j < N; j++) {
      acc[j] += a0 * B[b0 + j]! + a1 * B[b1 + j]! + a2 * B[b2 + j]! + a3 * B[b3 + j]!;
    }
  }
  for (; k < K; k++) {
    const ak = a[k]!;
    const b = bOffset + k * ldb;
    for (let j = 0; j < N; j++) acc[j] += ak * B[b + j]!;
  }
};

/**
 * B stored N×K: every acc entry is the dot product of a with a row of B, four B rows at a
 * time for independent accumulators.
 */
const rowViaDots: RowTimesB = (a, B, bOffset, ldb, acc, N, K) => {
  const N4 = N - (N % 4);
  let j = 0;
  for (; j < N4; j += 4) {
    const r0 = bOffset + j * ldb;
    const r1 = r0 + ldb;
    const r2 = r1 + ldb;
    const r3 = r2 + ldb;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let k = 0; k < K; k++) {
      const ak = a[k]!;
      s0 += ak * B[r0 + k]!;
      s1 += ak * B[r1 + k]!;
      s2 += ak * B[r2 + k]!;
      s3 += ak * B[r3 + k]!;
    }
    acc[j] = s0;
    acc[j + 1] = s1;
    acc[j + 2] = s2;
    acc[j + 3] = s3;
  }
  for (; j < N; j++) {
    const r = bOffset + j * ldb;
    let s = 0;
    for (let k = 0; k < K; k++) s += a[k]! * B[r + k]!;
    acc[j] = s;
  }
};

/** Writes C = beta · C, or zeros when beta = 0 (without reading C). */
function scaleMatrix(
  C: Float32Array,
  cOffset: number,
  ldc: number,
  M: number,
  N: number,
  beta: number,
): void {
  for (let i = 0; i < M; i++) {
    const row = cOffset + i * ldc;
    if (beta === 0) C.fill(0, row, row + N);
    else if (beta !== 1) for (let j = 0; j < N; j++) C[row + j] = beta * C[row + j];
  }
}

/** Writes one row of C = alpha · acc + beta · C, not reading C when beta = 0. */
function storeRow(
  acc: Float64Array,
  alpha: number,
  beta: number,
  C: Float32Array,
  c: number,
  N: number,
): void {
  if (beta === 0) {
    for (let j = 0; j < N; j++) C[c + j] = alpha * acc[j]!;
  } else {
    for (let j = 0; j < N; j++) C[c + j] = alpha * acc[j]! + beta * C[c + j]!;
  }
}
