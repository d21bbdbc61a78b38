// Elementwise kernels. Loops are written per op (the op is chosen once per call, not per
// element) in functions compiled for two instruction sets (TF_CLONES); large arrays are
// split across the pool in cache-line-aligned chunks. Outputs may alias inputs exactly
// (in-place ops), so no pointer is declared __restrict; GCC's runtime alias check still
// vectorises the exact-alias case.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels.h"
#include "pool.h"
#include "strided.h"
#include "vecmath.h"

namespace tf {
namespace {

// Transcendental ops cost ~10× a load/store, so they are worth splitting at smaller sizes.
size_t unary_work(int op, size_t n) {
  switch (op) {
    case kExp:
    case kLog:
    case kTanh:
    case kSigmoid:
    case kSilu:
    case kGelu:
      return n * 8;
    default:
      return n;
  }
}

TF_CLONES void unary_span(int op, const float* x, float* out, size_t n) {
  switch (op) {
    case kExp:
      for (size_t i = 0; i < n; i++) out[i] = exp_f(x[i]);
      break;
    case kLog:
      for (size_t i = 0; i < n; i++) out[i] = std::log(x[i]);
      break;
    case kSqrt:
      for (size_t i = 0; i < n; i++) out[i] = std::sqrt(x[i]);
      break;
    case kRsqrt:
      for (size_t i = 0; i < n; i++) out[i] = 1.0f / std::sqrt(x[i]);
      break;
    case kTanh:
      for (size_t i = 0; i < n; i++) out[i] = tanh_f(x[i]);
      break;
    case kSigmoid:
      for (size_t i = 0; i < n; i++) out[i] = sigmoid_f(x[i]);
      break;
    case kSilu:
      for (size_t i = 0; i < n; i++) out[i] = x[i] * sigmoid_f(x[i]);
      break;
    case kGelu:
      for (size_t i = 0; i < n; i++) out[i] = gelu_f(x[i]);
      break;
    case kRelu:
      // NaN is not > 0, so NaN maps to 0, as in the reference.
      for (size_t i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
      break;
    case kNeg:
      for (size_t i = 0; i < n; i++) out[i] = -x[i];
      break;
    case kAbs:
      for (size_t i = 0; i < n; i++) out[i] = std::fabs(x[i]);
      break;
    case kSquare:
      for (size_t i = 0; i < n; i++) out[i] = x[i] * x[i];
      break;
  }
}

TF_CLONES void unary_backward_span(int op, const float* x, const float* y,
                                   const float* gy, float* gx, size_t n) {
  switch (op) {
    case kExp:
      for (size_t i = 0; i < n; i++) gx[i] = gy[i] * y[i];
      break;
    case kLog:
      for (size_t i = 0; i < n; i++) gx[i] = gy[i] / x[i];
      break;
    case kSqrt:
      for (size_t i = 0; i < n; i++) gx[i] = (0.5f * gy[i]) / y[i];
      break;
    case kRsqrt:
      // d x^(−1/2) = −½·x^(−3/2) = −½·y³
      for (size_t i = 0; i < n; i++) gx[i] = -0.5f * gy[i] * y[i] * y[i] * y[i];
      break;
    case kTanh:
      for (size_t i = 0; i < n; i++) gx[i] = gy[i] * (1.0f - y[i] * y[i]);
      break;
    case kSigmoid:
      for (size_t i = 0; i < n; i++) gx[i] = gy[i] * y[i] * (1.0f - y[i]);
      break;
    case kSilu:
      // σ recomputed from x: y/x loses it at x = 0.
      for (size_t i = 0; i < n; i++) {
        const float s = sigmoid_f(x[i]);
        gx[i] = gy[i] * s * (1.0f + x[i] * (1.0f - s));
      }
      break;
    case kGelu:
      for (size_t i = 0; i < n; i++) gx[i] = gy[i] * gelu_grad_f(x[i]);
      break;
    case kRelu:
      // Loads hoisted out of the selects so the loops if-convert and vectorise.
      for (size_t i = 0; i < n; i++) {
        const float g = gy[i];
        gx[i] = x[i] > 0.0f ? g : 0.0f;
      }
      break;
    case kNeg:
      for (size_t i = 0; i < n; i++) gx[i] = -gy[i];
      break;
    case kAbs:
      // abs'(0) = 0, like the reference.
      for (size_t i = 0; i < n; i++) {
        const float g = gy[i];
        gx[i] = x[i] > 0.0f ? g : (x[i] < 0.0f ? -g : 0.0f);
      }
      break;
    case kSquare:
      for (size_t i = 0; i < n; i++) gx[i] = 2.0f * x[i] * gy[i];
      break;
  }
}

// Math.max / Math.min semantics: NaN if either is NaN, and max(+0, −0) = +0, min = −0.
TF_INLINE float js_max(float a, float b) {
  const float tie = bits_to_float(float_to_bits(a) & float_to_bits(b));
  const float r = a > b ? a : (b > a ? b : tie);
  return (a != a || b != b) ? a + b : r;
}
TF_INLINE float js_min(float a, float b) {
  const float tie = bits_to_float(float_to_bits(a) | float_to_bits(b));
  const float r = a < b ? a : (b < a ? b : tie);
  return (a != a || b != b) ? a + b : r;
}

template <int OP>
TF_INLINE float apply(float a, float b) {
  if constexpr (OP == kAdd) return a + b;
  if constexpr (OP == kSub) return a - b;
  if constexpr (OP == kMul) return a * b;
  if constexpr (OP == kDiv) return a / b;
  if constexpr (OP == kMax) return js_max(a, b);
  if constexpr (OP == kMin) return js_min(a, b);
}

// One inner run with the stride patterns that matter specialised, so the common cases
// (same shape, row-vector or scalar broadcast) are plain vectorisable loops.
template <int OP>
TF_INLINE void binary_run_op(const float* a, int64_t as, const float* b,
                             int64_t bs, float* out, int64_t n) {
  if (as == 1 && bs == 1) {
    for (int64_t i = 0; i < n; i++) out[i] = apply<OP>(a[i], b[i]);
  } else if (as == 1 && bs == 0) {
    const float bv = b[0];
    for (int64_t i = 0; i < n; i++) out[i] = apply<OP>(a[i], bv);
  } else if (as == 0 && bs == 1) {
    const float av = a[0];
    for (int64_t i = 0; i < n; i++) out[i] = apply<OP>(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; i++) out[i] = apply<OP>(a[i * as], b[i * bs]);
  }
}

TF_CLONES void binary_run(int op, const float* a, int64_t as, const float* b, int64_t bs,
                          float* out, int64_t n) {
  switch (op) {
    case kAdd: return binary_run_op<kAdd>(a, as, b, bs, out, n);
    case kSub: return binary_run_op<kSub>(a, as, b, bs, out, n);
    case kMul: return binary_run_op<kMul>(a, as, b, bs, out, n);
    case kDiv: return binary_run_op<kDiv>(a, as, b, bs, out, n);
    case kMax: return binary_run_op<kMax>(a, as, b, bs, out, n);
    case kMin: return binary_run_op<kMin>(a, as, b, bs, out, n);
  }
}

TF_CLONES void affine_span(const float* x, float* out, size_t n,
                           double alpha, double beta) {
  // In double, like the reference: alpha and beta are JS numbers, not floats.
  for (size_t i = 0; i < n; i++) out[i] = float(alpha * double(x[i]) + beta);
}

TF_CLONES void axpy_span(size_t n, double alpha, const float* x, float* y) {
  for (size_t i = 0; i < n; i++) y[i] = float(double(y[i]) + alpha * double(x[i]));
}

// Math.pow semantics differ from C pow in two cases: 1^NaN and (±1)^±∞ are NaN in JS.
double js_pow(double x, double p) {
  if (p != p) return p;
  if (std::fabs(x) == 1.0 && std::isinf(p)) return NAN;
  return std::pow(x, p);
}

TF_CLONES void pow_span(const float* x, float* out, size_t n, double p) {
  // Exact fast paths (the float results equal the correctly rounded double ones).
  if (p == 2.0) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] * x[i];
  } else if (p == 1.0) {
    for (size_t i = 0; i < n; i++) out[i] = x[i];
  } else if (p == 0.5) {
    // pow(−0, 0.5) = +0 but sqrt(−0) = −0; and pow(−∞, 0.5) = +∞, not NaN.
    for (size_t i = 0; i < n; i++) out[i] = x[i] == -__builtin_inff() ? __builtin_inff()
                                                                         : std::sqrt(x[i]) + 0.0f;
  } else {
    for (size_t i = 0; i < n; i++) out[i] = float(js_pow(double(x[i]), p));
  }
}

}  // namespace

void unary(int op, const float* x, float* out, size_t n) {
  parallel_range(n, parts_for(unary_work(op, n)), 16, [&](size_t b, size_t e, int) {
    unary_span(op, x + b, out + b, e - b);
  });
}

void unary_backward(int op, const float* x, const float* y, const float* gy, float* gx,
                    size_t n) {
  parallel_range(n, parts_for(unary_work(op, n)), 16, [&](size_t b, size_t e, int) {
    unary_backward_span(op, x + b, y + b, gy + b, gx + b, e - b);
  });
}

void binary(int op, const float* a, const float* b, float* out, const StridedSpace& space) {
  StridedSpace s = space;
  // Operand 2 is out, contiguous over the original shape.
  int64_t st = 1;
  for (int d = s.rank - 1; d >= 0; d--) {
    s.strides[2][d] = st;
    st *= s.shape[d];
  }
  const int64_t total = coalesce(s, 3);
  if (total == 0) return;
  const int inner = s.rank - 1;
  const int64_t n = s.shape[inner];
  const int64_t as = s.strides[0][inner], bs = s.strides[1][inner];
  const int64_t runs = total / n;
  const int parts = parts_for(size_t(total));
  if (runs >= parts * 4 || parts == 1) {
    // Many runs: split them across threads.
    parallel_range(size_t(runs), parts, 1, [&](size_t r0, size_t r1, int) {
      for_runs<3>(s, int64_t(r0), int64_t(r1), [&](const int64_t* off) {
        binary_run(op, a + off[0], as, b + off[1], bs, out + off[2], n);
      });
    });
  } else {
    // Few long runs: split each run.
    for_runs<3>(s, 0, runs, [&](const int64_t* off) {
      parallel_range(size_t(n), parts, 16, [&](size_t i0, size_t i1, int) {
        binary_run(op, a + off[0] + int64_t(i0) * as, as, b + off[1] + int64_t(i0) * bs, bs,
                   out + off[2] + int64_t(i0), int64_t(i1 - i0));
      });
    });
  }
}

void affine(const float* x, float* out, size_t n, double alpha, double beta) {
  parallel_range(n, parts_for(n), 16, [&](size_t b, size_t e, int) {
    affine_span(x + b, out + b, e - b, alpha, beta);
  });
}

void axpy(size_t n, double alpha, const float* x, float* y) {
  parallel_range(n, parts_for(n), 16, [&](size_t b, size_t e, int) {
    axpy_span(e - b, alpha, x + b, y + b);
  });
}

void fill(float* out, size_t n, float value) {
  parallel_range(n, parts_for(n, 4 * kParallelMinElements), 16, [&](size_t b, size_t e, int) {
    std::fill(out + b, out + e, value);
  });
}

void pow(const float* x, float* out, size_t n, double p) {
  const bool cheap = p == 2.0 || p == 1.0 || p == 0.5;
  parallel_range(n, parts_for(cheap ? n : n * 8), 16, [&](size_t b, size_t e, int) {
    pow_span(x + b, out + b, e - b, p);
  });
}

}  // namespace tf
