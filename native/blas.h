// The few OpenBLAS entry points the addon uses, declared here rather than through <cblas.h>:
// distributions put that header in different places (Debian alone has one per OpenBLAS
// flavour), while the CBLAS ABI and these enum values are fixed by the CBLAS standard.
#pragma once

extern "C" {
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE transA,
                 enum CBLAS_TRANSPOSE transB, int M, int N, int K, float alpha, const float* A,
                 int lda, const float* B, int ldb, float beta, float* C, int ldc);
void cblas_sgemv(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE trans, int M, int N, float alpha,
                 const float* A, int lda, const float* x, int incx, float beta, float* y,
                 int incy);

// OpenBLAS extensions: the addon owns threading, so OpenBLAS runs with one thread.
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
int openblas_get_num_procs(void);
}
