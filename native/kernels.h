// Every kernel of the Backend contract (src/tensor/backends/backend.ts), as plain C++ on raw
// pointers. Arguments are already validated by the N-API glue (addon_*.cc); these functions
// trust their sizes. Semantics, including edge cases, match the js reference backend.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tf {

// ---- elementwise (elementwise.cc) ----
enum UnaryOp { kExp, kLog, kSqrt, kRsqrt, kTanh, kSigmoid, kSilu, kGelu, kRelu, kNeg, kAbs, kSquare,
               kUnaryOpCount };
enum BinaryOp { kAdd, kSub, kMul, kDiv, kMax, kMin, kBinaryOpCount };

void unary(int op, const float* x, float* out, size_t n);
void unary_backward(int op, const float* x, const float* y, const float* gy, float* gx, size_t n);
void affine(const float* x, float* out, size_t n, double alpha, double beta);
void axpy(size_t n, double alpha, const float* x, float* y);
void fill(float* out, size_t n, float value);
void pow(const float* x, float* out, size_t n, double p);

// A strided index space of rank ≤ 8 walked by up to three operands.
constexpr int kMaxRank = 8;
struct StridedSpace {
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[3][kMaxRank] = {};  // per operand, in elements
  int64_t offset[3] = {0, 0, 0};
};

// out (contiguous over the space) = a ∘ b; operands 0 and 1 of the space are a and b.
void binary(int op, const float* a, const float* b, float* out, const StridedSpace& space);

// ---- layout (layout.cc) ----
// Operand 0 is src, operand 1 is dst.
void copy_strided(const float* src, float* dst, const StridedSpace& space, bool accumulate);
// Operand 1 holds out's strides; x is contiguous over the space.
void reduce_sum(const float* x, float* out, size_t out_size, const StridedSpace& space);
double sum_squares(const float* x, size_t n);
void gather_rows(const float* table, const int32_t* idx, float* out, size_t rows, size_t dim);
void scatter_add_rows(const float* g_out, const int32_t* idx, float* g_table, size_t rows,
                      size_t dim);

// ---- softmax and losses (softmax.cc) ----
void softmax(const float* x, float* out, size_t rows, size_t cols, bool log);
void softmax_backward(const float* y, const float* gy, float* gx, size_t rows, size_t cols,
                      bool log);
void cross_entropy(const float* logits, const int32_t* targets, float* loss, float* lse,
                   size_t rows, size_t V);
void cross_entropy_backward(const float* logits, const int32_t* targets, const float* lse,
                            const float* g_loss, float* g_logits, size_t rows, size_t V);

// ---- normalisation (norms.cc) ----
void rmsnorm(const float* x, const float* w, float* out, float* rstd, size_t rows, size_t dim,
             float eps);
void rmsnorm_backward(const float* x, const float* w, const float* rstd, const float* gy,
                      float* gx, float* gw, size_t rows, size_t dim);
struct GroupNormShape {
  size_t N, G, channels, spatial;
};
void groupnorm(const float* x, const float* w, const float* b, float* out, float* mean,
               float* rstd, const GroupNormShape& s, float eps);
void groupnorm_backward(const float* x, const float* w, const float* mean, const float* rstd,
                        const float* gy, float* gx, float* gw, float* gb,
                        const GroupNormShape& s);

// ---- transformer kernels (rope.cc, attention.cc) ----
void rope(const float* x, float* out, const float* cos, const float* sin, size_t rows, size_t H,
          size_t D, bool inverse);
struct AttentionShape {
  int B, T, S, H, Hkv, D;
  float scale;
  bool causal;
};
void attention(const float* q, const float* k, const float* v, const uint8_t* mask, float* out,
               float* lse, const AttentionShape& s);
void attention_backward(const float* q, const float* k, const float* v, const uint8_t* mask,
                        const float* out, const float* lse, const float* g_out, float* gq,
                        float* gk, float* gv, const AttentionShape& s);

// ---- convolution (conv.cc) ----
struct ConvShape {
  int N, Cin, H, W, Cout, kh, kw, stride, pad;
  int Ho() const { return (H + 2 * pad - kh) / stride + 1; }
  int Wo() const { return (W + 2 * pad - kw) / stride + 1; }
};
void conv2d(const float* x, const float* w, float* out, const ConvShape& s);
void conv2d_backward(const float* x, const float* w, const float* gy, float* gx, float* gw,
                     const ConvShape& s);
void upsample_nearest(const float* x, float* out, size_t NC, size_t H, size_t W, size_t factor);
void upsample_nearest_backward(const float* gy, float* gx, size_t NC, size_t H, size_t W,
                               size_t factor);

// ---- optimiser (optim.cc) ----
struct AdamWParams {
  double lr, beta1, beta2, eps, weight_decay, bc1, bc2, grad_scale;
};
void adamw(float* p, const float* g, float* m, float* v, size_t n, const AdamWParams& h);

}  // namespace tf
