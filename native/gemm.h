// Matrix multiplication on top of single-threaded OpenBLAS sgemm, parallelised by the pool.
#pragma once

#include <cstddef>

namespace tf {

// Row-major C = alpha·op(A)·op(B) + beta·C on this thread only (one cblas_sgemm call, with
// the degenerate cases BLAS rejects handled here). Safe to call from inside pool tasks.
void gemm_serial(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                 int lda, const float* B, int ldb, float beta, float* C, int ldc);

// Same, split over the pool by output rows or columns when the product is large enough.
void gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);

// `batch` gemms with natural leading dimensions; matrix i of X starts at i·strideX.
void gemm_batched(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                  size_t strideA, const float* B, size_t strideB, float beta, float* C,
                  size_t strideC, int batch);

// Times n×n×n cblas_sgemm run by OpenBLAS's own threads (its default configuration), then
// restores single-threaded OpenBLAS; returns GFLOP/s. Used by benchmarks as the roofline.
double sgemm_direct_gflops(int n, int iters);

// Called once at load: makes OpenBLAS single-threaded (the pool owns the cores).
void blas_init();

}  // namespace tf
