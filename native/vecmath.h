// Scalar math written so GCC can vectorise loops that call it: no libm calls, no branches
// (both sides are computed and blended). Accuracy is within a few float ulps of the
// correctly rounded result, with IEEE overflow, underflow and NaN behaviour.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

// Compile hot loops twice, for baseline x86-64 (SSE2) and for x86-64-v3 (AVX2 + FMA); the
// loader picks one per machine through an ifunc. The binary stays portable to any x86-64.
// (Build with -DTF_NO_CLONES to test the baseline code on an AVX2 machine.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(TF_NO_CLONES)
#define TF_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define TF_CLONES
#endif

#define TF_INLINE static inline __attribute__((always_inline))

namespace tf {

TF_INLINE float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
TF_INLINE uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// e^x. Range reduction x = n·ln2 + r with |r| ≤ ln2/2, then the degree-7 Taylor polynomial
// of e^r (truncation error < 6e-9 relative), then scaling by 2^n done as two multiplications
// by 2^(n/2) so results in the subnormal range round correctly instead of flushing.
TF_INLINE float exp_f(float x) {
  // Beyond these bounds the result is 0 or +inf anyway; clamping keeps n in int range.
  float xc = x < -104.0f ? -104.0f : x;
  xc = xc > 89.0f ? 89.0f : xc;
  // Round x/ln2 to the nearest integer with the 1.5·2^23 trick (exact under IEEE rounding).
  const float shifter = 12582912.0f;
  const float n = (xc * 1.44269504088896341f + shifter) - shifter;
  // ln2 split in a head with few significant bits (n·head is exact) and a tail.
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t ni = int32_t(n);
  const int32_t n1 = ni >> 1;
  const int32_t n2 = ni - n1;
  const float s1 = bits_to_float(uint32_t(n1 + 127) << 23);
  const float s2 = bits_to_float(uint32_t(n2 + 127) << 23);
  const float e = (p * s1) * s2;
  return x != x ? x + x : e;  // NaN in, NaN out
}

// 1 / (1 + e^-x); exact limits 0 and 1, no cancellation for negative x.
TF_INLINE float sigmoid_f(float x) { return 1.0f / (1.0f + exp_f(-x)); }

// tanh(x). Near 0 the odd Taylor series through x^13 (error < 3e-9 relative for
// |x| < 0.4); elsewhere 1 − 2/(e^{2|x|} + 1), whose cancellation costs at most ~2 bits there.
TF_INLINE float tanh_f(float x) {
  const uint32_t sign = float_to_bits(x) & 0x80000000u;
  const float ax = bits_to_float(float_to_bits(x) & 0x7fffffffu);
  const float z = ax * ax;
  float p = 21844.0f / 6081075.0f;
  p = p * z - 1382.0f / 155925.0f;
  p = p * z + 62.0f / 2835.0f;
  p = p * z - 17.0f / 315.0f;
  p = p * z + 2.0f / 15.0f;
  p = p * z - 1.0f / 3.0f;
  const float small = ax + ax * z * p;
  const float large = 1.0f - 2.0f / (exp_f(2.0f * ax) + 1.0f);
  const float t = ax < 0.4f ? small : large;  // NaN falls through to `large`, stays NaN
  return bits_to_float(float_to_bits(t) | sign);
}

// The tanh-approximation GELU, 0.5·x·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³),
// evaluated as x·σ(2u) (the same function) so large negative x does not cancel to zero.
constexpr float kGeluK = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluCubic = 0.044715f;

TF_INLINE float gelu_f(float x) {
  const float u = kGeluK * (x + kGeluCubic * x * x * x);
  return x * sigmoid_f(2.0f * u);
}

// d GELU/dx = 0.5(1 + t) + 0.5·x·(1 − t²)·k·(1 + 3c·x²), with 0.5(1 + t) = s = σ(2u) and
// 1 − t² = 4s(1 − s).
TF_INLINE float gelu_grad_f(float x) {
  const float u = kGeluK * (x + kGeluCubic * x * x * x);
  const float s = sigmoid_f(2.0f * u);
  return s + 2.0f * x * s * (1.0f - s) * kGeluK * (1.0f + 3.0f * kGeluCubic * x * x);
}

// Σ x[i] in double, eight independent lanes so the loop vectorises without reassociation
// licence from the compiler.
TF_INLINE double sum_f64(const float* x, size_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) lane[k] += double(x[i + k]);
  double s = 0;
  for (; i < n; i++) s += double(x[i]);
  for (int k = 0; k < 8; k++) s += lane[k];
  return s;
}

// Σ a[i]·b[i] in double (products of floats are exact in double).
TF_INLINE double dot_f64(const float* a, const float* b, size_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) lane[k] += double(a[i + k]) * double(b[i + k]);
  double s = 0;
  for (; i < n; i++) s += double(a[i]) * double(b[i]);
  for (int k = 0; k < 8; k++) s += lane[k];
  return s;
}

// max over x[0..n), ignoring NaN like a `x > m` scan does; −inf for n = 0. Written with
// GCC vector extensions: the compiler will not turn a NaN-aware select reduction into
// maxps by itself, but `v > m ? v : m` on vectors is exactly maxps(v, m).
typedef float f32x8 __attribute__((vector_size(32)));

TF_INLINE float max_f(const float* x, size_t n) {
  const float ninf = -__builtin_inff();
  f32x8 m = {ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    f32x8 v;
    std::memcpy(&v, x + i, sizeof v);
    m = v > m ? v : m;
  }
  float r = ninf;
  for (; i < n; i++) r = x[i] > r ? x[i] : r;
  for (int k = 0; k < 8; k++) r = m[k] > r ? m[k] : r;
  return r;
}

}  // namespace tf
