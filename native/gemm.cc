// gemm: OpenBLAS is single-threaded and the pool splits the output into one slab per thread.
// Each slab is an independent sgemm on a sub-matrix, so no synchronisation is needed beyond
// the pool's join; the price is that each thread packs the shared operand once.
#include "gemm.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "blas.h"
#include "pool.h"

namespace tf {
namespace {

// Products smaller than this many multiply-adds stay on one thread (≈5 µs of sgemm).
constexpr double kParallelMinMacs = 1 << 18;

// Matrix-vector products at least this large go to sgemv (below, sgemm's overhead is
// no worse and its small-matrix path is sometimes better).
constexpr double kGemvMinMacs = 1 << 16;

// OpenBLAS's sgemm micro-kernels work on 16-row / 16-column panels; slab edges on panel
// boundaries avoid ragged panels in the middle of the matrix.
constexpr int kSlabAlign = 16;

CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }

}  // namespace

void blas_init() { openblas_set_num_threads(1); }

void gemm_serial(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                 int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    // BLAS semantics: beta = 0 overwrites without reading C.
    for (int i = 0; i < M; i++) {
      float* c = C + size_t(i) * ldc;
      if (beta == 0.0f) {
        std::fill(c, c + N, 0.0f);
      } else if (beta != 1.0f) {
        for (int j = 0; j < N; j++) c[j] *= beta;
      }
    }
    return;
  }
  // BLAS insists on ld ≥ number of stored columns even when a matrix has one row and the
  // leading dimension is never used; callers legitimately pass smaller values then.
  const int aCols = transA ? M : K, aRows = transA ? K : M;
  const int bCols = transB ? K : N, bRows = transB ? N : K;
  if (aRows == 1) lda = std::max(lda, aCols);
  if (bRows == 1) ldb = std::max(ldb, bCols);
  if (M == 1) ldc = std::max(ldc, N);
  // A single output row or column of a large product is a matrix-vector product: sgemm
  // would pack the whole matrix for one pass over it, sgemv streams it (2–3× faster when
  // generating one token at a time).
  if ((M == 1 || N == 1) && double(M) * N * K >= kGemvMinMacs) {
    if (beta == 0.0f) {  // BLAS sgemv may scale y by 0 (NaN stays NaN); gemm must not read C
      for (int i = 0; i < M; i++) std::fill(C + size_t(i) * ldc, C + size_t(i) * ldc + N, 0.0f);
    }
    if (M == 1) {
      // c (1×N) = a (1×K) · op(B): op(B)ᵀ·a, B stored K×N (transposed use) or N×K.
      const int inc_a = transA ? lda : 1;
      if (transB) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, inc_a, beta, C, 1);
      } else {
        cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, inc_a, beta, C, 1);
      }
    } else {
      // c (M×1, row stride ldc) = op(A) · b (K×1).
      const int inc_b = transB ? 1 : ldb;
      if (transA) {
        cblas_sgemv(CblasRowMajor, CblasTrans, K, M, alpha, A, lda, B, inc_b, beta, C, ldc);
      } else {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, M, K, alpha, A, lda, B, inc_b, beta, C, ldc);
      }
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, tr(transA), tr(transB), M, N, K, alpha, A, lda, B, ldb, beta, C,
              ldc);
}

void gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
  const int threads = pool_threads();
  const double macs = double(M) * N * std::max(K, 1);
  if (threads == 1 || macs < kParallelMinMacs || in_parallel_region() ||
      std::max(M, N) < 2 * kSlabAlign) {
    gemm_serial(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Split the longer output dimension so every slab stays reasonably square.
  if (M >= N) {
    parallel_range(size_t(M), threads, kSlabAlign, [&](size_t m0, size_t m1, int) {
      const float* a = transA ? A + m0 : A + m0 * size_t(lda);
      gemm_serial(transA, transB, int(m1 - m0), N, K, alpha, a, lda, B, ldb, beta,
                  C + m0 * size_t(ldc), ldc);
    });
  } else {
    parallel_range(size_t(N), threads, kSlabAlign, [&](size_t n0, size_t n1, int) {
      const float* b = transB ? B + n0 * size_t(ldb) : B + n0;
      gemm_serial(transA, transB, M, int(n1 - n0), K, alpha, A, lda, b, ldb, beta, C + n0,
                  ldc);
    });
  }
}

void gemm_batched(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                  size_t strideA, const float* B, size_t strideB, float beta, float* C,
                  size_t strideC, int batch) {
  if (batch <= 0) return;
  const int lda = transA ? M : K, ldb = transB ? K : N, ldc = N;
  const int threads = pool_threads();
  auto one = [&](int i, bool split) {
    const float* a = A + size_t(i) * strideA;
    const float* b = B + size_t(i) * strideB;
    float* c = C + size_t(i) * strideC;
    if (split) {
      gemm(transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
    } else {
      gemm_serial(transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
    }
  };
  // With strideC = 0 every product lands in the same C, so they must run in order.
  if (strideC == 0 && batch > 1) {
    for (int i = 0; i < batch; i++) one(i, true);
    return;
  }
  const double macs = double(M) * N * std::max(K, 1);
  // Over the batch when it fills the pool evenly (or the matrices are too small to split);
  // otherwise one matrix at a time, each split across the pool.
  const bool over_batch = batch % threads == 0 || batch >= 4 * threads || macs < kParallelMinMacs;
  if (over_batch && threads > 1 && macs * batch >= kParallelMinMacs) {
    parallel_for(batch, [&](int i, int) { one(i, false); });
  } else {
    for (int i = 0; i < batch; i++) one(i, true);
  }
}

double sgemm_direct_gflops(int n, int iters) {
  if (n <= 0 || iters <= 0) return 0.0;
  const size_t nn = size_t(n) * n;
  std::vector<float> a(nn), b(nn), c(nn);
  for (size_t i = 0; i < nn; i++) {
    a[i] = float(int(i * 7 % 13) - 6) * 0.01f;
    b[i] = float(int(i * 5 % 11) - 5) * 0.01f;
  }
  openblas_set_num_threads(openblas_get_num_procs());
  auto run = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                n, 0.0f, c.data(), n);
  };
  run();  // warm-up: OpenBLAS starts its threads and touches its buffers
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; i++) run();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  openblas_set_num_threads(1);
  return 2.0 * double(n) * n * n * iters / secs / 1e9;
}

}  // namespace tf
