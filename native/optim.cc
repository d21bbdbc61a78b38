// Fused AdamW step. Computed in double from the new (unrounded) moments, as the reference
// does; the kernel is memory-bound, so the wider arithmetic costs nothing measurable.
#include <cmath>

#include "kernels.h"
#include "pool.h"
#include "vecmath.h"

namespace tf {
namespace {

TF_CLONES void adamw_span(float* p, const float* g, float* m, float* v, size_t n,
                          const AdamWParams& h) {
  const double b1 = h.beta1, b2 = h.beta2, c1 = 1.0 - h.beta1, c2 = 1.0 - h.beta2;
  const double lr = h.lr, eps = h.eps, wd = h.weight_decay;
  // The bias corrections as multipliers: one division per element instead of three.
  const double inv_bc1 = 1.0 / h.bc1, inv_bc2 = 1.0 / h.bc2;
  const double gs = h.grad_scale;
  for (size_t i = 0; i < n; i++) {
    const double grad = double(g[i]) * gs;
    const double mi = b1 * double(m[i]) + c1 * grad;
    const double vi = b2 * double(v[i]) + c2 * grad * grad;
    m[i] = float(mi);
    v[i] = float(vi);
    const double pi = p[i];
    const double update = mi * inv_bc1 / (std::sqrt(vi * inv_bc2) + eps) + wd * pi;
    p[i] = float(pi - lr * update);
  }
}

}  // namespace

void adamw(float* p, const float* g, float* m, float* v, size_t n, const AdamWParams& h) {
  parallel_range(n, parts_for(n * 2), 16, [&](size_t b, size_t e, int) {
    adamw_span(p + b, g + b, m + b, v + b, e - b, h);
  });
}

}  // namespace tf
