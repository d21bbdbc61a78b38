// N-API glue, part 1: module setup, and the bindings of the dense, elementwise and layout
// kernels. Each binding parses and validates its arguments (napi_args.h), then calls the
// kernel. Argument order follows the Backend interface, except where native.ts packs
// shapes and strides into one Float64Array (documented there).
#include <node_api.h>

#include "gemm.h"
#include "kernels.h"
#include "napi_args.h"
#include "pool.h"

namespace tf {

void register_nn_bindings(napi_env env, napi_value exports);  // addon_nn.cc

void export_function(napi_env env, napi_value exports, const char* name, napi_callback fn) {
  napi_value f;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, nullptr, &f);
  napi_set_named_property(env, exports, name, f);
}

void Args::strided_space(const View<double>& packed, size_t at, int nops,
                         const char* const* ops, StridedSpace* s) const {
  if (packed.length <= at) fail_arg("dims", "is too short");
  const double r = packed.data[at];
  if (!(r == std::floor(r)) || r < 0 || r > kMaxRank) {
    fail_arg("shape", "must have rank 0.." + std::to_string(kMaxRank));
  }
  s->rank = int(r);
  need(packed, at + 1 + size_t(s->rank) * (1 + nops), "dims");
  const double* p = packed.data + at + 1;
  constexpr double kMaxExtent = 9007199254740991.0;  // 2^53 − 1
  for (int d = 0; d < s->rank; d++) {
    const double v = p[d];
    if (!(v == std::floor(v)) || v < 0 || v > kMaxExtent) fail_arg("shape", "must hold non-negative integers");
    s->shape[d] = int64_t(v);
  }
  for (int o = 0; o < nops; o++) {
    for (int d = 0; d < s->rank; d++) {
      const double v = p[s->rank * (1 + o) + d];
      if (!(v == std::floor(v)) || std::fabs(v) > kMaxExtent) fail_arg(ops[o], "must hold integers");
      s->strides[o][d] = int64_t(v);
    }
  }
}

void Args::check_span(const StridedSpace& s, int o, size_t length, const char* name) const {
  __int128 lo = s.offset[o], hi = s.offset[o];
  for (int d = 0; d < s.rank; d++) {
    if (s.shape[d] == 0) return;  // nothing is visited
    const __int128 span = __int128(s.strides[o][d]) * (s.shape[d] - 1);
    if (span < 0) lo += span; else hi += span;
  }
  if (lo < 0 || hi >= __int128(length)) {
    fail_arg(name, "is too small for the given offset, shape and strides (reaches element " +
                       std::to_string(int64_t(lo < 0 ? lo : hi)) + ", length " + std::to_string(length) + ")");
  }
}

namespace {

// Elements in a shape, throwing on overflow.
uint64_t elements(const Args& a, const StridedSpace& s) {
  uint64_t n = 1;
  for (int d = 0; d < s.rank; d++) n = a.mul(n, uint64_t(s.shape[d]));
  return n;
}

// Checks one stored matrix of `rows`×`cols` (row stride ld) starting at `offset`.
void check_matrix(const Args& a, const View<float>& m, uint64_t offset, uint64_t rows,
                  uint64_t cols, uint64_t ld, const char* name, const char* ld_name) {
  if (rows == 0 || cols == 0) return;
  if (rows > 1 && ld < cols) {
    a.fail_arg(ld_name, "must be at least " + std::to_string(cols) + " (the stored row length)");
  }
  a.need(m, offset + a.mul(rows - 1, ld) + cols, name);
}

TF_BINDING(Gemm) {
  Args a(env, info, "gemm", 16);
  const bool ta = a.boolean(0, "transA"), tb = a.boolean(1, "transB");
  const int64_t M = a.integer(2, "M"), N = a.integer(3, "N"), K = a.integer(4, "K");
  const double alpha = a.number(5, "alpha");
  const View<float> A = a.f32(6, "A");
  const int64_t aOff = a.integer(7, "aOffset", 0, INT64_C(1) << 53), lda = a.integer(8, "lda");
  const View<float> B = a.f32(9, "B");
  const int64_t bOff = a.integer(10, "bOffset", 0, INT64_C(1) << 53), ldb = a.integer(11, "ldb");
  const double beta = a.number(12, "beta");
  const View<float> C = a.f32(13, "C");
  const int64_t cOff = a.integer(14, "cOffset", 0, INT64_C(1) << 53), ldc = a.integer(15, "ldc");
  if (M == 0 || N == 0) return nullptr;
  if (K > 0 && alpha != 0) {
    check_matrix(a, A, aOff, ta ? K : M, ta ? M : K, lda, "A", "lda");
    check_matrix(a, B, bOff, tb ? N : K, tb ? K : N, ldb, "B", "ldb");
  }
  check_matrix(a, C, cOff, M, N, ldc, "C", "ldc");
  gemm(ta, tb, int(M), int(N), int(K), float(alpha), A.data + aOff, int(lda), B.data + bOff,
       int(ldb), float(beta), C.data + cOff, int(ldc));
  return nullptr;
}

TF_BINDING(GemmBatched) {
  Args a(env, info, "gemmBatched", 14);
  const bool ta = a.boolean(0, "transA"), tb = a.boolean(1, "transB");
  const int64_t M = a.integer(2, "M"), N = a.integer(3, "N"), K = a.integer(4, "K");
  const double alpha = a.number(5, "alpha");
  const View<float> A = a.f32(6, "A");
  const int64_t sA = a.integer(7, "strideA", 0, INT64_C(1) << 53);
  const View<float> B = a.f32(8, "B");
  const int64_t sB = a.integer(9, "strideB", 0, INT64_C(1) << 53);
  const double beta = a.number(10, "beta");
  const View<float> C = a.f32(11, "C");
  const int64_t sC = a.integer(12, "strideC", 0, INT64_C(1) << 53);
  const int64_t batch = a.integer(13, "batch");
  if (batch == 0 || M == 0 || N == 0) return nullptr;
  // Each operand: the last matrix must end inside the array.
  if (K > 0 && alpha != 0) {
    a.need(A, a.mul(batch - 1, sA) + a.mul(M, K), "A");
    a.need(B, a.mul(batch - 1, sB) + a.mul(K, N), "B");
  }
  a.need(C, a.mul(batch - 1, sC) + a.mul(M, N), "C");
  gemm_batched(ta, tb, int(M), int(N), int(K), float(alpha), A.data, size_t(sA), B.data,
               size_t(sB), float(beta), C.data, size_t(sC), int(batch));
  return nullptr;
}

TF_BINDING(Unary) {
  Args a(env, info, "unary", 4);
  const int64_t op = a.integer(0, "op", 0, kUnaryOpCount - 1);
  const View<float> x = a.f32(1, "x"), out = a.f32(2, "out");
  const int64_t n = a.integer(3, "n", 0, INT64_C(1) << 53);
  a.need(x, n, "x");
  a.need(out, n, "out");
  unary(int(op), x.data, out.data, size_t(n));
  return nullptr;
}

TF_BINDING(UnaryBackward) {
  Args a(env, info, "unaryBackward", 6);
  const int64_t op = a.integer(0, "op", 0, kUnaryOpCount - 1);
  const View<float> x = a.f32(1, "x"), y = a.f32(2, "y"), gy = a.f32(3, "gy"), gx = a.f32(4, "gx");
  const int64_t n = a.integer(5, "n", 0, INT64_C(1) << 53);
  a.need(x, n, "x");
  a.need(y, n, "y");
  a.need(gy, n, "gy");
  a.need(gx, n, "gx");
  unary_backward(int(op), x.data, y.data, gy.data, gx.data, size_t(n));
  return nullptr;
}

// binary(op, a, b, out, dims) with dims = [rank, shape…, aStrides…, bStrides…].
TF_BINDING(Binary) {
  Args a(env, info, "binary", 5);
  const int64_t op = a.integer(0, "op", 0, kBinaryOpCount - 1);
  const View<float> x = a.f32(1, "a"), y = a.f32(2, "b"), out = a.f32(3, "out");
  static const char* const kOps[] = {"aStrides", "bStrides"};
  StridedSpace s;
  a.strided_space(a.f64(4, "dims"), 0, 2, kOps, &s);
  const uint64_t total = elements(a, s);
  if (total == 0) return nullptr;
  a.check_span(s, 0, x.length, "a");
  a.check_span(s, 1, y.length, "b");
  a.need(out, total, "out");
  binary(int(op), x.data, y.data, out.data, s);
  return nullptr;
}

TF_BINDING(Affine) {
  Args a(env, info, "affine", 5);
  const View<float> x = a.f32(0, "x"), out = a.f32(1, "out");
  const int64_t n = a.integer(2, "n", 0, INT64_C(1) << 53);
  const double alpha = a.number(3, "alpha"), beta = a.number(4, "beta");
  a.need(x, n, "x");
  a.need(out, n, "out");
  affine(x.data, out.data, size_t(n), alpha, beta);
  return nullptr;
}

TF_BINDING(Axpy) {
  Args a(env, info, "axpy", 4);
  const int64_t n = a.integer(0, "n", 0, INT64_C(1) << 53);
  const double alpha = a.number(1, "alpha");
  const View<float> x = a.f32(2, "x"), y = a.f32(3, "y");
  a.need(x, n, "x");
  a.need(y, n, "y");
  axpy(size_t(n), alpha, x.data, y.data);
  return nullptr;
}

TF_BINDING(Fill) {
  Args a(env, info, "fill", 3);
  const View<float> out = a.f32(0, "out");
  const int64_t n = a.integer(1, "n", 0, INT64_C(1) << 53);
  const double value = a.number(2, "value");
  a.need(out, n, "out");
  fill(out.data, size_t(n), float(value));
  return nullptr;
}

TF_BINDING(Pow) {
  Args a(env, info, "pow", 4);
  const View<float> x = a.f32(0, "x"), out = a.f32(1, "out");
  const int64_t n = a.integer(2, "n", 0, INT64_C(1) << 53);
  const double p = a.number(3, "p");
  a.need(x, n, "x");
  a.need(out, n, "out");
  pow(x.data, out.data, size_t(n), p);
  return nullptr;
}

// copyStrided(src, dst, dims, accumulate) with
// dims = [srcOffset, dstOffset, rank, shape…, srcStrides…, dstStrides…].
TF_BINDING(CopyStrided) {
  Args a(env, info, "copyStrided", 4);
  const View<float> src = a.f32(0, "src"), dst = a.f32(1, "dst");
  const View<double> dims = a.f64(2, "dims");
  const bool accumulate = a.boolean(3, "accumulate");
  static const char* const kOps[] = {"srcStrides", "dstStrides"};
  a.need(dims, 2, "dims");
  StridedSpace s;
  a.strided_space(dims, 2, 2, kOps, &s);
  for (int o = 0; o < 2; o++) {
    const double off = dims.data[o];
    if (!(off == std::floor(off)) || off < 0 || off > 9007199254740991.0) {
      a.fail_arg(o == 0 ? "srcOffset" : "dstOffset", "must be a non-negative integer");
    }
    s.offset[o] = int64_t(off);
  }
  if (elements(a, s) == 0) return nullptr;
  a.check_span(s, 0, src.length, "src");
  a.check_span(s, 1, dst.length, "dst");
  copy_strided(src.data, dst.data, s, accumulate);
  return nullptr;
}

// reduceSum(x, out, outSize, dims) with dims = [rank, shape…, outStrides…].
TF_BINDING(ReduceSum) {
  Args a(env, info, "reduceSum", 4);
  const View<float> x = a.f32(0, "x"), out = a.f32(1, "out");
  const int64_t out_size = a.integer(2, "outSize", 0, INT64_C(1) << 53);
  // Operand 0 (x) is contiguous and filled in by the kernel; only out's strides are packed.
  static const char* const kOps[] = {"outStrides"};
  StridedSpace packed;
  a.strided_space(a.f64(3, "dims"), 0, 1, kOps, &packed);
  StridedSpace s = packed;
  for (int d = 0; d < s.rank; d++) s.strides[1][d] = packed.strides[0][d];
  a.need(out, out_size, "out");
  const uint64_t total = elements(a, s);
  a.need(x, total, "x");
  if (total > 0) a.check_span(s, 1, size_t(out_size), "outStrides (against outSize)");
  reduce_sum(x.data, out.data, size_t(out_size), s);
  return nullptr;
}

TF_BINDING(SumSquares) {
  Args a(env, info, "sumSquares", 2);
  const View<float> x = a.f32(0, "x");
  const int64_t n = a.integer(1, "n", 0, INT64_C(1) << 53);
  a.need(x, n, "x");
  napi_value result;
  napi_create_double(env, sum_squares(x.data, size_t(n)), &result);
  return result;
}

// Checks every index against the table's row count (cheap next to the row copies).
void check_indices(const Args& a, const View<int32_t>& idx, int64_t rows, size_t table_rows) {
  for (int64_t r = 0; r < rows; r++) {
    if (idx.data[r] < 0 || size_t(idx.data[r]) >= table_rows) {
      a.fail_arg("idx", "holds " + std::to_string(idx.data[r]) + " at " + std::to_string(r) +
                            ", outside the table's " + std::to_string(table_rows) + " rows");
    }
  }
}

TF_BINDING(GatherRows) {
  Args a(env, info, "gatherRows", 5);
  const View<float> table = a.f32(0, "table");
  const View<int32_t> idx = a.i32(1, "idx");
  const View<float> out = a.f32(2, "out");
  const int64_t rows = a.integer(3, "rows"), dim = a.integer(4, "dim");
  a.need(idx, rows, "idx");
  a.need(out, a.mul(rows, dim), "out");
  if (dim == 0) return nullptr;
  check_indices(a, idx, rows, table.length / size_t(dim));
  gather_rows(table.data, idx.data, out.data, size_t(rows), size_t(dim));
  return nullptr;
}

TF_BINDING(ScatterAddRows) {
  Args a(env, info, "scatterAddRows", 5);
  const View<float> g_out = a.f32(0, "gOut");
  const View<int32_t> idx = a.i32(1, "idx");
  const View<float> g_table = a.f32(2, "gTable");
  const int64_t rows = a.integer(3, "rows"), dim = a.integer(4, "dim");
  a.need(idx, rows, "idx");
  a.need(g_out, a.mul(rows, dim), "gOut");
  if (dim == 0) return nullptr;
  check_indices(a, idx, rows, g_table.length / size_t(dim));
  scatter_add_rows(g_out.data, idx.data, g_table.data, size_t(rows), size_t(dim));
  return nullptr;
}

TF_BINDING(Threads) {
  Args a(env, info, "threads", 0);
  napi_value result;
  napi_create_int32(env, pool_threads(), &result);
  return result;
}

TF_BINDING(SgemmDirectGflops) {
  Args a(env, info, "sgemmDirectGflops", 2);
  const int64_t n = a.integer(0, "n", 1, 16384), iters = a.integer(1, "iters", 1, 1000000);
  napi_value result;
  napi_create_double(env, sgemm_direct_gflops(int(n), int(iters)), &result);
  return result;
}

}  // namespace
}  // namespace tf

NAPI_MODULE_INIT() {
  tf::blas_init();
  tf::pool_threads();  // start the workers now rather than inside the first kernel
  using namespace tf;
  export_function(env, exports, "gemm", Gemm);
  export_function(env, exports, "gemmBatched", GemmBatched);
  export_function(env, exports, "unary", Unary);
  export_function(env, exports, "unaryBackward", UnaryBackward);
  export_function(env, exports, "binary", Binary);
  export_function(env, exports, "affine", Affine);
  export_function(env, exports, "axpy", Axpy);
  export_function(env, exports, "fill", Fill);
  export_function(env, exports, "pow", Pow);
  export_function(env, exports, "copyStrided", CopyStrided);
  export_function(env, exports, "reduceSum", ReduceSum);
  export_function(env, exports, "sumSquares", SumSquares);
  export_function(env, exports, "gatherRows", GatherRows);
  export_function(env, exports, "scatterAddRows", ScatterAddRows);
  export_function(env, exports, "threads", Threads);
  export_function(env, exports, "sgemmDirectGflops", SgemmDirectGflops);
  register_nn_bindings(env, exports);
  return exports;
}
