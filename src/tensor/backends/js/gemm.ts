/**
 * Matrix multiplication for the js backend.
 *
 * Sums are accumulated in float64 and rounded to float32 once, when C is written. The
 * transposes are handled by index arithmetic: when op(B) has contiguous rows (B not
 * transposed) the product runs in i-k-j order, adding scaled rows of B into a float64 row of
 * C; when B is transposed its rows are the columns of op(B), so each C entry is a contiguous
 * dot product instead. Neither path copies a matrix; the transposed-A case gathers one row
 * of op(A) (K numbers) at a time.
 */

/**
 * Writes C = alpha · op(A) · op(B) + beta · C (row-major, see Backend.gemm).
 * As in BLAS, beta = 0 means C is not read (stale NaNs in C do not leak), and alpha = 0 or
 * K = 0 only scales C.
 */
export function gemm(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: Float32Array,
  aOffset: number,
  lda: number,
  B: Float32Array,
  bOffset: number,
  ldb: number,
  beta: number,
  C: Float32Array,
  cOffset: number,
  ldc: number,
): void {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha === 0) {
    scaleMatrix(C, cOffset, ldc, M, N, beta);
    return;
  }
  // op(A)[i, k] sits at aOffset + i·aRow + k·aCol.
  const aRow = transA ? 1 : lda;
  const aCol = transA ? lda : 1;
  if (transB) {
    gemmDotRows(M, N, K, alpha, A, aOffset, aRow, aCol, B, bOffset, ldb, beta, C, cOffset, ldc);
  } else {
    gemmAxpyRows(M, N, K, alpha, A, aOffset, aRow, aCol, B, bOffset, ldb, beta, C, cOffset, ldc);
  }
}

/**
 * Runs `batch` gemms whose matrices start at i·stride in A, B and C (stride 0 reuses one
 * matrix); leading dimensions are those of the untransposed stored layouts.
 */
export function gemmBatched(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: Float32Array,
  strideA: number,
  B: Float32Array,
  strideB: number,
  beta: number,
  C: Float32Array,
  strideC: number,
  batch: number,
): void {
  const lda = transA ? M : K;
  const ldb = transB ? K : N;
  for (let i = 0; i < batch; i++) {
    gemm(
      transA,
      transB,
      M,
      N,
      K,
      alpha,
      A,
      i * strideA,
      lda,
      B,
      i * strideB,
      ldb,
      beta,
      C,
      i * strideC,
      N,
    );
  }
}

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

/**
 * C = alpha · op(A) · B + beta · C with B stored K×N: i-k-j order, four rows of B per pass
 * so each float64 accumulator entry is loaded and stored once per four multiply-adds.
 */
function gemmAxpyRows(
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: Float32Array,
  aOffset: number,
  aRow: number,
  aCol: number,
  B: Float32Array,
  bOffset: number,
  ldb: number,
  beta: number,
  C: Float32Array,
  cOffset: number,
  ldc: number,
): void {
  const acc = new Float64Array(N);
  const K4 = K - (K % 4);
  for (let i = 0; i < M; i++) {
    acc.fill(0);
    const ai = aOffset + i * aRow;
    let k = 0;
    for (; k < K4; k += 4) {
      const a0 = A[ai + k * aCol]!;
      const a1 = A[ai + (k + 1) * aCol]!;
      const a2 = A[ai + (k + 2) * aCol]!;
      const a3 = A[ai + (k + 3) * aCol]!;
      const b0 = bOffset + k * ldb;
      const b1 = b0 + ldb;
      const b2 = b1 + ldb;
      const b3 = b2 + ldb;
      for (let j = 0; j < N; j++) {
        acc[j] += a0 * B[b0 + j]! + a1 * B[b1 + j]! + a2 * B[b2 + j]! + a3 * B[b3 + j]!;
      }
    }
    for (; k < K; k++) {
      const a = A[ai + k * aCol]!;
      const b = bOffset + k * ldb;
      for (let j = 0; j < N; j++) acc[j] += a * B[b + j]!;
    }
    storeRow(acc, alpha, beta, C, cOffset + i * ldc, N);
  }
}

/**
 * C = alpha · op(A) · Bᵀ + beta · C with B stored N×K: every C entry is a dot product of a
 * row of op(A) with a row of B, four B rows at a time for independent accumulators.
 */
function gemmDotRows(
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: Float32Array,
  aOffset: number,
  aRow: number,
  aCol: number,
  B: Float32Array,
  bOffset: number,
  ldb: number,
  beta: number,
  C: Float32Array,
  cOffset: number,
  ldc: number,
): void {
  const aRowBuf = new Float64Array(K);
  const acc = new Float64Array(N);
  const N4 = N - (N % 4);
  for (let i = 0; i < M; i++) {
    const ai = aOffset + i * aRow;
    for (let k = 0; k < K; k++) aRowBuf[k] = A[ai + k * aCol]!;
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
        const a = aRowBuf[k]!;
        s0 += a * B[r0 + k]!;
        s1 += a * B[r1 + k]!;
        s2 += a * B[r2 + k]!;
        s3 += a * B[r3 + k]!;
      }
      acc[j] = s0;
      acc[j + 1] = s1;
      acc[j + 2] = s2;
      acc[j + 3] = s3;
    }
    for (; j < N; j++) {
      const r = bOffset + j * ldb;
      let s = 0;
      for (let k = 0; k < K; k++) s += aRowBuf[k]! * B[r + k]!;
      acc[j] = s;
    }
    storeRow(acc, alpha, beta, C, cOffset + i * ldc, N);
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
