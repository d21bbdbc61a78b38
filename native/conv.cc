// 2D convolution (NCHW) lowered to sgemm through im2col, and nearest-neighbour upsampling.
// Images are spread over the pool when there are enough of them (each thread then runs
// single-threaded sgemm on its own column buffer); otherwise one image at a time with the
// lowering and the gemm each split across the pool.
#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "pool.h"
#include "vecmath.h"

namespace tf {
namespace {

// The column buffer of the calling thread, grown on demand and kept for later calls.
float* thread_buffer(size_t n, int which) {
  thread_local std::vector<float> buf[2];
  if (buf[which].size() < n) buf[which].resize(n);
  return buf[which].data();
}

bool is_pointwise(const ConvShape& s) {
  return s.kh == 1 && s.kw == 1 && s.stride == 1 && s.pad == 0;
}

// Output columns ox whose input column ox·stride − pad + kx lies inside [0, W).
void valid_columns(const ConvShape& s, int kx, int Wo, int* lo, int* hi) {
  const int first = s.pad - kx;  // ix = ox·stride − first
  *lo = first <= 0 ? 0 : (first + s.stride - 1) / s.stride;
  const int last = s.W - 1 + first;  // largest ox·stride allowed
  *hi = last < 0 ? 0 : std::min(Wo, last / s.stride + 1);
  if (*lo > *hi) *lo = *hi;
}

// Rows [r0, r1) of the column matrix of one image: col[(ci·kh + ky)·kw + kx, oy·Wo + ox] =
// x[ci, oy·stride − pad + ky, ox·stride − pad + kx], zero outside the image.
void im2col_rows(const float* xn, float* col, const ConvShape& s, int r0, int r1) {
  const int Ho = s.Ho(), Wo = s.Wo();
  const size_t P = size_t(Ho) * Wo;
  for (int r = r0; r < r1; r++) {
    const int kx = r % s.kw, ky = (r / s.kw) % s.kh, ci = r / (s.kw * s.kh);
    const float* xc = xn + size_t(ci) * s.H * s.W;
    float* row = col + size_t(r) * P;
    int lo, hi;
    valid_columns(s, kx, Wo, &lo, &hi);
    for (int oy = 0; oy < Ho; oy++) {
      float* o = row + size_t(oy) * Wo;
      const int iy = oy * s.stride - s.pad + ky;
      if (iy < 0 || iy >= s.H) {
        std::fill(o, o + Wo, 0.0f);
        continue;
      }
      const float* xr = xc + size_t(iy) * s.W - s.pad + kx;  // xr[ox·stride] = x[iy, ix]
      std::fill(o, o + lo, 0.0f);
      if (s.stride == 1) {
        std::memcpy(o + lo, xr + lo, size_t(hi - lo) * sizeof(float));
      } else {
        for (int ox = lo; ox < hi; ox++) o[ox] = xr[ox * s.stride];
      }
      std::fill(o + hi, o + Wo, 0.0f);
    }
  }
}

// Input channels [c0, c1) of one image's gradient from the column gradient (im2col's
// adjoint): gxn is overwritten. Channels own disjoint outputs, so they can run in parallel.
void col2im_channels(const float* gcol, float* gxn, const ConvShape& s, int c0, int c1) {
  const int Ho = s.Ho(), Wo = s.Wo();
  const size_t P = size_t(Ho) * Wo;
  std::fill(gxn + size_t(c0) * s.H * s.W, gxn + size_t(c1) * s.H * s.W, 0.0f);
  for (int ci = c0; ci < c1; ci++) {
    float* gc = gxn + size_t(ci) * s.H * s.W;
    for (int ky = 0; ky < s.kh; ky++) {
      for (int kx = 0; kx < s.kw; kx++) {
        const float* row = gcol + size_t((ci * s.kh + ky) * s.kw + kx) * P;
        int lo, hi;
        valid_columns(s, kx, Wo, &lo, &hi);
        for (int oy = 0; oy < Ho; oy++) {
          const int iy = oy * s.stride - s.pad + ky;
          if (iy < 0 || iy >= s.H) continue;
          const float* g = row + size_t(oy) * Wo;
          float* xr = gc + size_t(iy) * s.W - s.pad + kx;
          if (s.stride == 1) {
            for (int ox = lo; ox < hi; ox++) xr[ox] += g[ox];
          } else {
            for (int ox = lo; ox < hi; ox++) xr[ox * s.stride] += g[ox];
          }
        }
      }
    }
  }
}

// Whether to give each thread whole images (true) or split each image's work (false).
bool images_in_parallel(const ConvShape& s) {
  const int threads = pool_threads();
  return threads > 1 && s.N >= threads && !in_parallel_region();
}

}  // namespace

void conv2d(const float* x, const float* w, float* out, const ConvShape& s) {
  const int Ho = s.Ho(), Wo = s.Wo(), P = Ho * Wo, R = s.Cin * s.kh * s.kw;
  const size_t x_img = size_t(s.Cin) * s.H * s.W, out_img = size_t(s.Cout) * P;
  const bool pointwise = is_pointwise(s);
  if (images_in_parallel(s)) {
    parallel_for(s.N, [&](int n, int) {
      const float* xn = x + n * x_img;
      const float* col = xn;
      if (!pointwise) {
        float* buf = thread_buffer(size_t(R) * P, 0);
        im2col_rows(xn, buf, s, 0, R);
        col = buf;
      }
      gemm_serial(false, false, s.Cout, P, R, 1.0f, w, R, col, P, 0.0f, out + n * out_img, P);
    });
    return;
  }
  for (int n = 0; n < s.N; n++) {
    const float* xn = x + n * x_img;
    const float* col = xn;
    if (!pointwise) {
      float* buf = thread_buffer(size_t(R) * P, 0);
      parallel_range(size_t(R), parts_for(size_t(R) * P), 1, [&](size_t r0, size_t r1, int) {
        im2col_rows(xn, buf, s, int(r0), int(r1));
      });
      col = buf;
    }
    gemm(false, false, s.Cout, P, R, 1.0f, w, R, col, P, 0.0f, out + n * out_img, P);
  }
}

void conv2d_backward(const float* x, const float* w, const float* gy, float* gx, float* gw,
                     const ConvShape& s) {
  const int Ho = s.Ho(), Wo = s.Wo(), P = Ho * Wo, R = s.Cin * s.kh * s.kw;
  const size_t x_img = size_t(s.Cin) * s.H * s.W, gy_img = size_t(s.Cout) * P;
  const size_t gw_size = size_t(s.Cout) * R;
  const bool pointwise = is_pointwise(s);

  // One image: adds gy_n·col_nᵀ into the gw accumulator `acc` (beta selects overwrite on
  // the first image) and writes gx_n. `split` spreads the image's own work over the pool.
  auto image = [&](int n, float* acc, float beta, bool split) {
    const float* xn = x + n * x_img;
    const float* gyn = gy + n * gy_img;
    const float* col = xn;
    if (!pointwise) {
      float* buf = thread_buffer(size_t(R) * P, 0);
      parallel_range(size_t(R), split ? parts_for(size_t(R) * P) : 1, 1,
                     [&](size_t r0, size_t r1, int) { im2col_rows(xn, buf, s, int(r0), int(r1)); });
      col = buf;
    }
    auto mm = split ? gemm : gemm_serial;
    mm(false, true, s.Cout, R, P, 1.0f, gyn, P, col, P, beta, acc, R);
    if (!gx) return;
    float* gxn = gx + n * x_img;
    if (pointwise) {
      mm(true, false, R, P, s.Cout, 1.0f, w, R, gyn, P, 0.0f, gxn, P);
      return;
    }
    float* gcol = thread_buffer(size_t(R) * P, 1);
    mm(true, false, R, P, s.Cout, 1.0f, w, R, gyn, P, 0.0f, gcol, P);
    parallel_range(size_t(s.Cin), split ? parts_for(size_t(R) * P) : 1, 1,
                   [&](size_t c0, size_t c1, int) { col2im_channels(gcol, gxn, s, int(c0), int(c1)); });
  };

  if (s.N == 0) {
    std::fill(gw, gw + gw_size, 0.0f);
    return;
  }
  if (!images_in_parallel(s)) {
    for (int n = 0; n < s.N; n++) image(n, gw, n == 0 ? 0.0f : 1.0f, true);
    return;
  }
  // Fixed slices of images, each with its own gw accumulator (slice 0 writes gw directly);
  // the accumulators are added in slice order, so the result does not depend on scheduling.
  const int parts = pool_threads();
  // (A thread_local named inside a task would resolve to the worker's own instance, so the
  // caller's buffer is passed by pointer.)
  thread_local std::vector<float> partial_storage;
  if (partial_storage.size() < gw_size * (parts - 1)) partial_storage.resize(gw_size * (parts - 1));
  float* const partial = partial_storage.data();
  const int per = (s.N + parts - 1) / parts;
  parallel_for(parts, [&](int p, int) {
    float* acc = p == 0 ? gw : partial + gw_size * (p - 1);
    const int n0 = std::min(s.N, p * per), n1 = std::min(s.N, n0 + per);
    if (n0 == n1) std::fill(acc, acc + gw_size, 0.0f);
    for (int n = n0; n < n1; n++) image(n, acc, n == n0 ? 0.0f : 1.0f, false);
  });
  for (int p = 1; p < parts; p++) {
    const float* acc = partial + gw_size * (p - 1);
    for (size_t i = 0; i < gw_size; i++) gw[i] += acc[i];
  }
}

namespace {

TF_CLONES void upsample_rows(const float* x, float* out, size_t r0, size_t r1, size_t W,
                             size_t f) {
  const size_t Wo = W * f;
  for (size_t r = r0; r < r1; r++) {  // r indexes input rows over NC·H
    const float* xr = x + r * W;
    float* o = out + r * f * Wo;
    for (size_t j = 0; j < W; j++)
      for (size_t d = 0; d < f; d++) o[j * f + d] = xr[j];
    for (size_t d = 1; d < f; d++) std::memcpy(o + d * Wo, o, Wo * sizeof(float));
  }
}

TF_CLONES void upsample_backward_rows(const float* gy, float* gx, size_t r0, size_t r1, size_t W,
                                      size_t f) {
  const size_t Wo = W * f;
  for (size_t r = r0; r < r1; r++) {
    const float* g = gy + r * f * Wo;
    float* o = gx + r * W;
    for (size_t j = 0; j < W; j++) {
      double s = 0;
      for (size_t dy = 0; dy < f; dy++)
        for (size_t dx = 0; dx < f; dx++) s += double(g[dy * Wo + j * f + dx]);
      o[j] = float(s);
    }
  }
}

}  // namespace

void upsample_nearest(const float* x, float* out, size_t NC, size_t H, size_t W, size_t factor) {
  const size_t rows = NC * H;
  parallel_range(rows, parts_for(rows * W * factor * factor), 1, [&](size_t b, size_t e, int) {
    upsample_rows(x, out, b, e, W, factor);
  });
}

void upsample_nearest_backward(const float* gy, float* gx, size_t NC, size_t H, size_t W,
                               size_t factor) {
  const size_t rows = NC * H;
  parallel_range(rows, parts_for(rows * W * factor * factor), 1, [&](size_t b, size_t e, int) {
    upsample_backward_rows(gy, gx, b, e, W, factor);
  });
}

}  // namespace tf
