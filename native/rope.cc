// Rotary position embedding ("rotate half" layout), forward and inverse.
#include "kernels.h"
#include "pool.h"
#include "vecmath.h"

namespace tf {
namespace {

TF_CLONES void rope_rows(const float* x, float* out, const float* cos, const float* sin,
                         size_t r0, size_t r1, size_t H, size_t D, float sign) {
  const size_t half = D / 2;
  for (size_t r = r0; r < r1; r++) {
    const float* c = cos + r * half;
    const float* s = sin + r * half;
    for (size_t h = 0; h < H; h++) {
      const float* xi = x + (r * H + h) * D;
      float* o = out + (r * H + h) * D;
      // Both halves are read before either is written, so out may alias x.
      for (size_t i = 0; i < half; i++) {
        const float x1 = xi[i], x2 = xi[i + half], si = sign * s[i];
        o[i] = x1 * c[i] - x2 * si;
        o[i + half] = x2 * c[i] + x1 * si;
      }
    }
  }
}

}  // namespace

void rope(const float* x, float* out, const float* cos, const float* sin, size_t rows, size_t H,
          size_t D, bool inverse) {
  parallel_range(rows, rows < 2 ? 1 : parts_for(rows * H * D), 1, [&](size_t b, size_t e, int) {
    rope_rows(x, out, cos, sin, b, e, H, D, inverse ? -1.0f : 1.0f);
  });
}

}  // namespace tf
