/**
 * Matrix multiplication on WebGPU: Backend.gemm and Backend.gemmBatched with the contract's
 * arguments (transposes, element offsets, leading dimensions, alpha/beta), on GPUBuffers.
 *
 * Tiling: a workgroup of 16×16 invocations computes a 16×16 tile of C, one element per
 * invocation, stepping through K in slabs of 16: each slab of op(A) (16×16) and op(B) (16×16)
 * is loaded into workgroup memory once (one element per invocation, zero outside the matrix,
 * so odd sizes need no special path) and then read 16 times from there. 16×16 = 256
 * invocations is the largest workgroup every WebGPU device must support, and the two tiles
 * take 2 KiB of the guaranteed 16 KiB of workgroup memory. The transposes only change the
 * index arithmetic of the tile loads; no matrix is copied. Sums accumulate in float32 (the
 * js reference uses float64; the error grows like √K, as with BLAS).
 * Batched products put the batch index on the grid's z dimension (≤ 65535).
 */

import { type GpuArgs, type GpuKernel, Params, prelude, type WebGpuRuntime } from "../device.js";

const TILE = 16;

const GEMM = /* wgsl */ `
const TILE: u32 = ${TILE}u;

${prelude(
  `
  M: u32, N: u32, K: u32, transA: u32,
  transB: u32, aOffset: u32, lda: u32, bOffset: u32,
  ldb: u32, cOffset: u32, ldc: u32, strideA: u32,
  strideB: u32, strideC: u32, alpha: f32, beta: f32,
`,
  "read A, read B, read_write C",
)}

var<workgroup> tileA: array<array<f32, TILE>, TILE>;
var<workgroup> tileB: array<array<f32, TILE>, TILE>;

// op(A)[i, k] of matrix "batch", or 0 outside op(A).
fn loadA(batch: u32, i: u32, k: u32) -> f32 {
  if (i >= p.M || k >= p.K) { return 0.0; }
  let base = p.aOffset + batch * p.strideA;
  if (p.transA != 0u) { return A[base + k * p.lda + i]; }
  return A[base + i * p.lda + k];
}

// op(B)[k, j] of matrix "batch", or 0 outside op(B).
fn loadB(batch: u32, k: u32, j: u32) -> f32 {
  if (k >= p.K || j >= p.N) { return 0.0; }
  let base = p.bOffset + batch * p.strideB;
  if (p.transB != 0u) { return B[base + j * p.ldb + k]; }
  return B[base + k * p.ldb + j];
}

@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let batch = wid.z;
  let i = wid.y * TILE + lid.y;
  let j = wid.x * TILE + lid.x;
  var acc = 0.0;
  // alpha = 0 or K = 0 skip the product (as BLAS does: A and B are not read).
  if (p.alpha != 0.0) {
    let slabs = (p.K + TILE - 1u) / TILE;
    for (var s = 0u; s < slabs; s++) {
      let k0 = s * TILE;
      tileA[lid.y][lid.x] = loadA(batch, wid.y * TILE + lid.y, k0 + lid.x);
      tileB[lid.y][lid.x] = loadB(batch, k0 + lid.y, wid.x * TILE + lid.x);
      workgroupBarrier();
      for (var k = 0u; k < TILE; k++) {
        acc += tileA[lid.y][k] * tileB[k][lid.x];
      }
      workgroupBarrier();
    }
  }
  if (i < p.M && j < p.N) {
    let c = p.cOffset + batch * p.strideC + i * p.ldc + j;
    // beta = 0 does not read C, so stale NaNs in C do not leak.
    if (p.beta == 0.0) {
      C[c] = p.alpha * acc;
    } else {
      C[c] = p.alpha * acc + p.beta * C[c];
    }
  }
}
`;

/**
 * Enqueues C = alpha · op(A) · op(B) + beta · C (the arguments of Backend.gemm) for `batch`
 * matrices, matrix i of A, B, C starting at i·stride past the offset.
 */
function run(
  rt: WebGpuRuntime,
  args: GpuArgs<"gemm">,
  [strideA, strideB, strideC, batch]: [number, number, number, number],
): void {
  const [transA, transB, M, N, K, alpha, A, aOffset, lda, B, bOffset, ldb, beta, C, cOffset, ldc] =
    args;
  if (M <= 0 || N <= 0 || batch <= 0) return;
  const params = new Params()
    .u32(M)
    .u32(N)
    .u32(Math.max(K, 0))
    .u32(transA ? 1 : 0)
    .u32(transB ? 1 : 0)
    .u32(aOffset)
    .u32(lda)
    .u32(bOffset)
    .u32(ldb)
    .u32(cOffset)
    .u32(ldc)
    .u32(strideA)
    .u32(strideB)
    .u32(strideC)
    .f32(K > 0 ? alpha : 0)
    .f32(beta);
  rt.dispatch(GEMM, params, [A, B, C], [Math.ceil(N / TILE), Math.ceil(M / TILE), batch]);
}

/** Backend.gemm on GPUBuffers: C = alpha · op(A) · op(B) + beta · C, row-major with offsets. */
export const gemm: GpuKernel<"gemm"> = (rt, ...args) => run(rt, args, [0, 0, 0, 1]);

/**
 * Backend.gemmBatched on GPUBuffers: matrix i of A, B, C starts at i·stride (0 reuses one
 * matrix); leading dimensions are those of the untransposed stored layouts.
 */
export const gemmBatched: GpuKernel<"gemmBatched"> = (rt, ...args) => {
  const [transA, transB, M, N, K, alpha, A, strideA, B, strideB, beta, C, strideC, batch] = args;
  const lda = transA ? M : K;
  const ldb = transB ? K : N;
  const product: GpuArgs<"gemm"> = [
    transA,
    transB,
    M,
    N,
    K,
    alpha,
    A,
    0,
    lda,
    B,
    0,
    ldb,
    beta,
    C,
    0,
    N,
  ];
  run(rt, product, [strideA, strideB, strideC, batch]);
};
