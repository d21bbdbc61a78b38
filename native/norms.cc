// RMSNorm and group normalisation (LayerNorm is one group). Statistics are accumulated in
// double, as in the reference. Weight gradients are sums over rows, so each slice of rows
// accumulates privately and the slices are added at the end in a fixed order (results do
// not depend on thread scheduling).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "pool.h"
#include "vecmath.h"

namespace tf {
namespace {

// Slice p of `count` equal slices of [0, len).
void slice(size_t len, int count, int p, size_t* b, size_t* e) {
  const size_t chunk = (len + count - 1) / count;
  *b = std::min(len, chunk * p);
  *e = std::min(len, *b + chunk);
}

// Per-call accumulators, `count` rows of `width` doubles, zeroed; storage belongs to the
// calling thread and is reused across calls.
double* zeroed_partials(int count, size_t width) {
  thread_local std::vector<double> scratch;
  if (scratch.size() < count * width) scratch.resize(count * width);
  std::fill(scratch.begin(), scratch.begin() + count * width, 0.0);
  return scratch.data();
}

// dst[c] += Σ_p partials[p][c], rounding once per entry.
void add_partials(float* dst, const double* partials, int count, size_t width) {
  for (size_t c = 0; c < width; c++) {
    double t = dst[c];
    for (int p = 0; p < count; p++) t += partials[p * width + c];
    dst[c] = float(t);
  }
}

TF_CLONES void rmsnorm_rows(const float* x, const float* w, float* out, float* rstd, size_t r0,
                            size_t r1, size_t dim, float eps) {
  for (size_t r = r0; r < r1; r++) {
    const float* xr = x + r * dim;
    const double s = 1.0 / std::sqrt(dot_f64(xr, xr, dim) / double(dim) + double(eps));
    rstd[r] = float(s);
    const float sf = float(s);
    float* o = out + r * dim;
    for (size_t c = 0; c < dim; c++) o[c] = xr[c] * sf * w[c];
  }
}

TF_CLONES void rmsnorm_backward_rows(const float* x, const float* w, const float* rstd,
                                     const float* gy, float* gx, double* gw_acc, size_t r0,
                                     size_t r1, size_t dim) {
  for (size_t r = r0; r < r1; r++) {
    const float* xr = x + r * dim;
    const float* g = gy + r * dim;
    float* o = gx + r * dim;
    const double s = rstd[r];
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t c = 0;
    for (; c + 8 <= dim; c += 8)
      for (int k = 0; k < 8; k++) lane[k] += double(g[c + k] * w[c + k]) * double(xr[c + k]);
    double u = 0;
    for (; c < dim; c++) u += double(g[c] * w[c]) * double(xr[c]);
    for (int k = 0; k < 8; k++) u += lane[k];
    // ∂/∂x_i = s·w_i·gy_i − s³·x_i·u/dim, since ∂s/∂x_i = −s³·x_i/dim. The two terms can
    // nearly cancel (small dim), so the difference is taken in double.
    const double kd = s * s * s * u / double(dim);
    for (c = 0; c < dim; c++) {
      o[c] = float(s * double(w[c] * g[c]) - kd * double(xr[c]));
      gw_acc[c] += double(g[c] * xr[c]) * s;
    }
  }
}

// Normalises one (n, g) group of M elements spanning `cpg` channels of `spatial` elements.
TF_CLONES void groupnorm_group(const float* x, const float* w, const float* b, float* out,
                               float* mean, float* rstd, size_t M, size_t c0, size_t cpg,
                               size_t spatial, float eps) {
  const double mu = sum_f64(x, M) / double(M);
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t e = 0;
  // Two passes: Σ(x − mean)² does not cancel the way Σx² − M·mean² does.
  for (; e + 8 <= M; e += 8)
    for (int k = 0; k < 8; k++) {
      const double d = double(x[e + k]) - mu;
      lane[k] += d * d;
    }
  double sq = 0;
  for (; e < M; e++) sq += (double(x[e]) - mu) * (double(x[e]) - mu);
  for (int k = 0; k < 8; k++) sq += lane[k];
  const double s = 1.0 / std::sqrt(sq / double(M) + double(eps));
  *mean = float(mu);
  *rstd = float(s);
  if (spatial == 1) {
    // LayerNorm layout: one element per channel.
    for (size_t c = 0; c < cpg; c++) {
      const double wc = w ? double(w[c0 + c]) : 1.0, bc = b ? double(b[c0 + c]) : 0.0;
      out[c] = float((double(x[c]) - mu) * s * wc + bc);
    }
    return;
  }
  for (size_t c = 0; c < cpg; c++) {
    const double ws = s * (w ? double(w[c0 + c]) : 1.0), bc = b ? double(b[c0 + c]) : 0.0;
    const float* xc = x + c * spatial;
    float* oc = out + c * spatial;
    for (size_t i = 0; i < spatial; i++) oc[i] = float((double(xc[i]) - mu) * ws + bc);
  }
}

// Backward of one group: gx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = gy·w[c],
// x̂ = (x − mean)·rstd from the saved (float) statistics; adds Σ gy·x̂ and Σ gy per channel
// into gw_acc / gb_acc.
TF_CLONES void groupnorm_backward_group(const float* x, const float* w, float muf, float sf,
                                        const float* gy, float* gx, double* gw_acc,
                                        double* gb_acc, size_t M, size_t c0, size_t cpg,
                                        size_t spatial) {
  const double mu = muf, s = sf;
  double sum_g = 0, sum_gx = 0;
  for (size_t c = 0; c < cpg; c++) {
    const double wc = w ? double(w[c0 + c]) : 1.0;
    const float* xc = x + c * spatial;
    const float* gc = gy + c * spatial;
    // Σ gy and Σ gy·x̂ over this channel's elements, in four lanes so the loop vectorises.
    double lg[4] = {0, 0, 0, 0}, lgx[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= spatial; i += 4)
      for (int k = 0; k < 4; k++) {
        lg[k] += double(gc[i + k]);
        lgx[k] += double(gc[i + k]) * ((double(xc[i + k]) - mu) * s);
      }
    double sg = 0, sgx = 0;
    for (; i < spatial; i++) {
      sg += double(gc[i]);
      sgx += double(gc[i]) * ((double(xc[i]) - mu) * s);
    }
    for (int k = 0; k < 4; k++) {
      sg += lg[k];
      sgx += lgx[k];
    }
    sum_g += wc * sg;
    sum_gx += wc * sgx;
    gw_acc[c0 + c] += sgx;
    gb_acc[c0 + c] += sg;
  }
  const double mean_g = sum_g / double(M), mean_gx = sum_gx / double(M);
  for (size_t c = 0; c < cpg; c++) {
    const double wc = w ? double(w[c0 + c]) : 1.0;
    const float* xc = x + c * spatial;
    const float* gc = gy + c * spatial;
    float* oc = gx + c * spatial;
    for (size_t i = 0; i < spatial; i++) {
      const double xhat = (double(xc[i]) - mu) * s;
      oc[i] = float(s * (double(gc[i]) * wc - mean_g - xhat * mean_gx));
    }
  }
}

}  // namespace

void rmsnorm(const float* x, const float* w, float* out, float* rstd, size_t rows, size_t dim,
             float eps) {
  parallel_range(rows, rows < 2 ? 1 : parts_for(rows * dim), 1, [&](size_t b, size_t e, int) {
    rmsnorm_rows(x, w, out, rstd, b, e, dim, eps);
  });
}

void rmsnorm_backward(const float* x, const float* w, const float* rstd, const float* gy,
                      float* gx, float* gw, size_t rows, size_t dim) {
  const int parts = rows < 2 ? 1 : parts_for(rows * dim);
  double* acc = zeroed_partials(parts, dim);
  parallel_for(parts, [&](int p, int) {
    size_t b, e;
    slice(rows, parts, p, &b, &e);
    rmsnorm_backward_rows(x, w, rstd, gy, gx, acc + p * dim, b, e, dim);
  });
  add_partials(gw, acc, parts, dim);
}

void groupnorm(const float* x, const float* w, const float* b, float* out, float* mean,
               float* rstd, const GroupNormShape& s, float eps) {
  const size_t groups = s.N * s.G, cpg = s.channels / s.G, M = cpg * s.spatial;
  parallel_range(groups, groups < 2 ? 1 : parts_for(groups * M), 1,
                 [&](size_t g0, size_t g1, int) {
                   for (size_t ng = g0; ng < g1; ng++) {
                     const size_t c0 = (ng % s.G) * cpg;
                     groupnorm_group(x + ng * M, w, b, out + ng * M, mean + ng, rstd + ng, M, c0,
                                     cpg, s.spatial, eps);
                   }
                 });
}

void groupnorm_backward(const float* x, const float* w, const float* mean, const float* rstd,
                        const float* gy, float* gx, float* gw, float* gb,
                        const GroupNormShape& s) {
  const size_t groups = s.N * s.G, cpg = s.channels / s.G, M = cpg * s.spatial;
  const int parts = groups < 2 ? 1 : parts_for(groups * M);
  // Layout per slice: [gw partial (channels) | gb partial (channels)].
  double* acc = zeroed_partials(parts, 2 * s.channels);
  parallel_for(parts, [&](int p, int) {
    size_t g0, g1;
    slice(groups, parts, p, &g0, &g1);
    double* gw_acc = acc + size_t(p) * 2 * s.channels;
    double* gb_acc = gw_acc + s.channels;
    for (size_t ng = g0; ng < g1; ng++) {
      const size_t c0 = (ng % s.G) * cpg;
      groupnorm_backward_group(x + ng * M, w, mean[ng], rstd[ng], gy + ng * M, gx + ng * M,
                               gw_acc, gb_acc, M, c0, cpg, s.spatial);
    }
  });
  if (gw) {
    for (size_t c = 0; c < s.channels; c++) {
      double t = gw[c];
      for (int p = 0; p < parts; p++) t += acc[size_t(p) * 2 * s.channels + c];
      gw[c] = float(t);
    }
  }
  if (gb) {
    for (size_t c = 0; c < s.channels; c++) {
      double t = gb[c];
      for (int p = 0; p < parts; p++) t += acc[size_t(p) * 2 * s.channels + s.channels + c];
      gb[c] = float(t);
    }
  }
}

}  // namespace tf
