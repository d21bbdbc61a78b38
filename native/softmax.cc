// Row softmax, log-softmax and cross-entropy. Each row subtracts its maximum before
// exponentiating (no overflow) and sums in double; rows are split across the pool.
#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "pool.h"
#include "vecmath.h"

namespace tf {
namespace {

// e_i = exp(x_i − max) written to out, returns Σ e_i in double.
TF_INLINE double exp_shifted(const float* x, float* out, size_t n, float max) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; k++) {
      const float e = exp_f(x[i + k] - max);
      out[i + k] = e;
      lane[k] += double(e);
    }
  }
  double s = 0;
  for (; i < n; i++) {
    const float e = exp_f(x[i] - max);
    out[i] = e;
    s += double(e);
  }
  for (int k = 0; k < 8; k++) s += lane[k];
  return s;
}

// Σ exp(x_i − max) in double, without storing the exponentials.
TF_INLINE double sum_exp_shifted(const float* x, size_t n, float max) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) lane[k] += double(exp_f(x[i + k] - max));
  double s = 0;
  for (; i < n; i++) s += double(exp_f(x[i] - max));
  for (int k = 0; k < 8; k++) s += lane[k];
  return s;
}

// log Σ exp(x_i) over a row, computed stably (NaN for rows of −inf or with +inf/NaN).
TF_INLINE double log_sum_exp(const float* x, size_t n) {
  const float max = max_f(x, n);
  return double(max) + std::log(sum_exp_shifted(x, n, max));
}

TF_CLONES void softmax_rows(const float* x, float* out, size_t r0, size_t r1, size_t cols,
                            bool log) {
  for (size_t r = r0; r < r1; r++) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    if (log) {
      const double lse = log_sum_exp(xr, cols);
      for (size_t c = 0; c < cols; c++) o[c] = float(double(xr[c]) - lse);
    } else {
      const float max = max_f(xr, cols);
      const double sum = exp_shifted(xr, o, cols, max);
      const float inv = float(1.0 / sum);
      for (size_t c = 0; c < cols; c++) o[c] *= inv;
    }
  }
}

TF_CLONES void softmax_backward_rows(const float* y, const float* gy, float* gx, size_t r0,
                                     size_t r1, size_t cols, bool log) {
  for (size_t r = r0; r < r1; r++) {
    const float* yr = y + r * cols;
    const float* g = gy + r * cols;
    float* o = gx + r * cols;
    if (log) {
      const double sum = sum_f64(g, cols);
      for (size_t c = 0; c < cols; c++) o[c] = float(double(g[c]) - double(exp_f(yr[c])) * sum);
    } else {
      const double dot = dot_f64(g, yr, cols);
      for (size_t c = 0; c < cols; c++) o[c] = float(double(yr[c]) * (double(g[c]) - dot));
    }
  }
}

TF_CLONES void cross_entropy_rows(const float* logits, const int32_t* targets, float* loss,
                                  float* lse, size_t r0, size_t r1, size_t V) {
  for (size_t r = r0; r < r1; r++) {
    const int32_t t = targets[r];
    if (t < 0) {
      loss[r] = 0.0f;
      lse[r] = 0.0f;
      continue;
    }
    const float* x = logits + r * V;
    const double l = log_sum_exp(x, V);
    loss[r] = float(l - double(x[t]));
    lse[r] = float(l);
  }
}

TF_CLONES void cross_entropy_backward_rows(const float* logits, const int32_t* targets,
                                           const float* lse, const float* g_loss, float* g,
                                           size_t r0, size_t r1, size_t V) {
  for (size_t r = r0; r < r1; r++) {
    float* o = g + r * V;
    const int32_t t = targets[r];
    if (t < 0) {
      std::fill(o, o + V, 0.0f);
      continue;
    }
    const float* x = logits + r * V;
    const float gl = g_loss[r], l = lse[r];
    for (size_t c = 0; c < V; c++) o[c] = gl * exp_f(x[c] - l);
    o[t] = gl * (exp_f(x[t] - l) - 1.0f);
  }
}

// Rows per part: exp-heavy rows are worth splitting at a few thousand elements.
int row_parts(size_t rows, size_t cols) { return rows < 2 ? 1 : parts_for(rows * cols * 8); }

}  // namespace

void softmax(const float* x, float* out, size_t rows, size_t cols, bool log) {
  parallel_range(rows, row_parts(rows, cols), 1, [&](size_t b, size_t e, int) {
    softmax_rows(x, out, b, e, cols, log);
  });
}

void softmax_backward(const float* y, const float* gy, float* gx, size_t rows, size_t cols,
                      bool log) {
  parallel_range(rows, row_parts(rows, cols), 1, [&](size_t b, size_t e, int) {
    softmax_backward_rows(y, gy, gx, b, e, cols, log);
  });
}

void cross_entropy(const float* logits, const int32_t* targets, float* loss, float* lse,
                   size_t rows, size_t V) {
  parallel_range(rows, row_parts(rows, V), 1, [&](size_t b, size_t e, int) {
    cross_entropy_rows(logits, targets, loss, lse, b, e, V);
  });
}

void cross_entropy_backward(const float* logits, const int32_t* targets, const float* lse,
                            const float* g_loss, float* g_logits, size_t rows, size_t V) {
  parallel_range(rows, row_parts(rows, V), 1, [&](size_t b, size_t e, int) {
    cross_entropy_backward_rows(logits, targets, lse, g_loss, g_logits, b, e, V);
  });
}

}  // namespace tf
