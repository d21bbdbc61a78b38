// N-API glue, part 2: bindings of the softmax/loss, normalisation, transformer,
// convolution and optimiser kernels (see addon.cc for conventions).
#include <node_api.h>

#include "kernels.h"
#include "napi_args.h"

namespace tf {
namespace {

// Targets must be < V (negative means "ignore"); checked here so no row reads past V.
void check_targets(const Args& a, const View<int32_t>& t, int64_t rows, int64_t V) {
  for (int64_t r = 0; r < rows; r++) {
    if (t.data[r] >= V) {
      a.fail_arg("targets", "holds " + std::to_string(t.data[r]) + " at row " + std::to_string(r) +
                                ", not below V = " + std::to_string(V));
    }
  }
}

TF_BINDING(Softmax) {
  Args a(env, info, "softmax", 5);
  const View<float> x = a.f32(0, "x"), out = a.f32(1, "out");
  const int64_t rows = a.integer(2, "rows"), cols = a.integer(3, "cols");
  const bool log = a.boolean(4, "log");
  a.need(x, a.mul(rows, cols), "x");
  a.need(out, a.mul(rows, cols), "out");
  softmax(x.data, out.data, size_t(rows), size_t(cols), log);
  return nullptr;
}

TF_BINDING(SoftmaxBackward) {
  Args a(env, info, "softmaxBackward", 6);
  const View<float> y = a.f32(0, "y"), gy = a.f32(1, "gy"), gx = a.f32(2, "gx");
  const int64_t rows = a.integer(3, "rows"), cols = a.integer(4, "cols");
  const bool log = a.boolean(5, "log");
  const uint64_t n = a.mul(rows, cols);
  a.need(y, n, "y");
  a.need(gy, n, "gy");
  a.need(gx, n, "gx");
  softmax_backward(y.data, gy.data, gx.data, size_t(rows), size_t(cols), log);
  return nullptr;
}

TF_BINDING(CrossEntropy) {
  Args a(env, info, "crossEntropy", 6);
  const View<float> logits = a.f32(0, "logits");
  const View<int32_t> targets = a.i32(1, "targets");
  const View<float> loss = a.f32(2, "loss"), lse = a.f32(3, "lse");
  const int64_t rows = a.integer(4, "rows"), V = a.integer(5, "V");
  a.need(logits, a.mul(rows, V), "logits");
  a.need(targets, rows, "targets");
  a.need(loss, rows, "loss");
  a.need(lse, rows, "lse");
  check_targets(a, targets, rows, V);
  cross_entropy(logits.data, targets.data, loss.data, lse.data, size_t(rows), size_t(V));
  return nullptr;
}

TF_BINDING(CrossEntropyBackward) {
  Args a(env, info, "crossEntropyBackward", 7);
  const View<float> logits = a.f32(0, "logits");
  const View<int32_t> targets = a.i32(1, "targets");
  const View<float> lse = a.f32(2, "lse"), g_loss = a.f32(3, "gLoss"), g = a.f32(4, "gLogits");
  const int64_t rows = a.integer(5, "rows"), V = a.integer(6, "V");
  a.need(logits, a.mul(rows, V), "logits");
  a.need(g, a.mul(rows, V), "gLogits");
  a.need(targets, rows, "targets");
  a.need(lse, rows, "lse");
  a.need(g_loss, rows, "gLoss");
  check_targets(a, targets, rows, V);
  cross_entropy_backward(logits.data, targets.data, lse.data, g_loss.data, g.data, size_t(rows),
                         size_t(V));
  return nullptr;
}

TF_BINDING(RmsNorm) {
  Args a(env, info, "rmsnorm", 7);
  const View<float> x = a.f32(0, "x"), w = a.f32(1, "w"), out = a.f32(2, "out"), rstd = a.f32(3, "rstd");
  const int64_t rows = a.integer(4, "rows"), dim = a.integer(5, "dim");
  const double eps = a.number(6, "eps");
  a.need(x, a.mul(rows, dim), "x");
  a.need(out, a.mul(rows, dim), "out");
  a.need(w, dim, "w");
  a.need(rstd, rows, "rstd");
  rmsnorm(x.data, w.data, out.data, rstd.data, size_t(rows), size_t(dim), float(eps));
  return nullptr;
}

TF_BINDING(RmsNormBackward) {
  Args a(env, info, "rmsnormBackward", 8);
  const View<float> x = a.f32(0, "x"), w = a.f32(1, "w"), rstd = a.f32(2, "rstd"),
                    gy = a.f32(3, "gy"), gx = a.f32(4, "gx"), gw = a.f32(5, "gw");
  const int64_t rows = a.integer(6, "rows"), dim = a.integer(7, "dim");
  const uint64_t n = a.mul(rows, dim);
  a.need(x, n, "x");
  a.need(gy, n, "gy");
  a.need(gx, n, "gx");
  a.need(w, dim, "w");
  a.need(gw, dim, "gw");
  a.need(rstd, rows, "rstd");
  rmsnorm_backward(x.data, w.data, rstd.data, gy.data, gx.data, gw.data, size_t(rows), size_t(dim));
  return nullptr;
}

// Reads N, G, channels, spatial at argument `at` and checks the grouping.
GroupNormShape group_shape(const Args& a, size_t at) {
  GroupNormShape s;
  s.N = size_t(a.integer(at, "N"));
  s.G = size_t(a.integer(at + 1, "G", 1));
  s.channels = size_t(a.integer(at + 2, "channels"));
  s.spatial = size_t(a.integer(at + 3, "spatial"));
  if (s.channels % s.G != 0) a.fail_arg("G", "must divide channels");
  return s;
}

TF_BINDING(GroupNorm) {
  Args a(env, info, "groupnorm", 11);
  const View<float> x = a.f32(0, "x"), w = a.f32_or_null(1, "w"), b = a.f32_or_null(2, "b"),
                    out = a.f32(3, "out"), mean = a.f32(4, "mean"), rstd = a.f32(5, "rstd");
  const GroupNormShape s = group_shape(a, 6);
  const double eps = a.number(10, "eps");
  const uint64_t n = a.mul(s.N, s.channels, s.spatial);
  a.need(x, n, "x");
  a.need(out, n, "out");
  if (w.data) a.need(w, s.channels, "w");
  if (b.data) a.need(b, s.channels, "b");
  a.need(mean, a.mul(s.N, s.G), "mean");
  a.need(rstd, a.mul(s.N, s.G), "rstd");
  groupnorm(x.data, w.data, b.data, out.data, mean.data, rstd.data, s, float(eps));
  return nullptr;
}

TF_BINDING(GroupNormBackward) {
  Args a(env, info, "groupnormBackward", 12);
  const View<float> x = a.f32(0, "x"), w = a.f32_or_null(1, "w"), mean = a.f32(2, "mean"),
                    rstd = a.f32(3, "rstd"), gy = a.f32(4, "gy"), gx = a.f32(5, "gx"),
                    gw = a.f32_or_null(6, "gw"), gb = a.f32_or_null(7, "gb");
  const GroupNormShape s = group_shape(a, 8);
  const uint64_t n = a.mul(s.N, s.channels, s.spatial);
  a.need(x, n, "x");
  a.need(gy, n, "gy");
  a.need(gx, n, "gx");
  if (w.data) a.need(w, s.channels, "w");
  if (gw.data) a.need(gw, s.channels, "gw");
  if (gb.data) a.need(gb, s.channels, "gb");
  a.need(mean, a.mul(s.N, s.G), "mean");
  a.need(rstd, a.mul(s.N, s.G), "rstd");
  groupnorm_backward(x.data, w.data, mean.data, rstd.data, gy.data, gx.data, gw.data, gb.data, s);
  return nullptr;
}

TF_BINDING(Rope) {
  Args a(env, info, "rope", 8);
  const View<float> x = a.f32(0, "x"), out = a.f32(1, "out"), cos = a.f32(2, "cos"), sin = a.f32(3, "sin");
  const int64_t rows = a.integer(4, "rows"), H = a.integer(5, "H"), D = a.integer(6, "D");
  const bool inverse = a.boolean(7, "inverse");
  if (D % 2 != 0) a.fail_arg("D", "must be even");
  const uint64_t n = a.mul(rows, H, D);
  a.need(x, n, "x");
  a.need(out, n, "out");
  a.need(cos, a.mul(rows, D / 2), "cos");
  a.need(sin, a.mul(rows, D / 2), "sin");
  rope(x.data, out.data, cos.data, sin.data, size_t(rows), size_t(H), size_t(D), inverse);
  return nullptr;
}

// Reads the attention geometry at argument `at` (B, T, S, H, Hkv, D, scale, causal).
AttentionShape attention_shape(const Args& a, size_t at) {
  AttentionShape s;
  s.B = int(a.integer(at, "B"));
  s.T = int(a.integer(at + 1, "T"));
  s.S = int(a.integer(at + 2, "S"));
  s.H = int(a.integer(at + 3, "H"));
  s.Hkv = int(a.integer(at + 4, "Hkv", 1));
  s.D = int(a.integer(at + 5, "D"));
  s.scale = float(a.number(at + 6, "scale"));
  s.causal = a.boolean(at + 7, "causal");
  if (s.H % s.Hkv != 0) a.fail_arg("Hkv", "must divide H");
  // Row strides H·D and Hkv·D are passed to sgemm as ints.
  if (a.mul(s.H, s.D) > INT32_MAX) a.fail_arg("D", "gives a row stride H·D beyond 2^31");
  return s;
}

void check_attention_arrays(const Args& a, const AttentionShape& s, const View<float>& q,
                            const View<float>& k, const View<float>& v, const View<uint8_t>& mask,
                            const View<float>& out, const View<float>& lse) {
  const uint64_t qn = a.mul(s.B, s.T, s.H, s.D), kn = a.mul(s.B, s.S, s.Hkv, s.D);
  a.need(q, qn, "q");
  a.need(out, qn, "out");
  a.need(k, kn, "k");
  a.need(v, kn, "v");
  a.need(lse, a.mul(s.B, s.H, s.T), "lse");
  if (mask.data) a.need(mask, a.mul(s.B, s.T, s.S), "mask");
}

TF_BINDING(Attention) {
  Args a(env, info, "attention", 14);
  const View<float> q = a.f32(0, "q"), k = a.f32(1, "k"), v = a.f32(2, "v");
  const View<uint8_t> mask = a.u8_or_null(3, "mask");
  const View<float> out = a.f32(4, "out"), lse = a.f32(5, "lse");
  const AttentionShape s = attention_shape(a, 6);
  check_attention_arrays(a, s, q, k, v, mask, out, lse);
  attention(q.data, k.data, v.data, mask.data, out.data, lse.data, s);
  return nullptr;
}

TF_BINDING(AttentionBackward) {
  Args a(env, info, "attentionBackward", 18);
  const View<float> q = a.f32(0, "q"), k = a.f32(1, "k"), v = a.f32(2, "v");
  const View<uint8_t> mask = a.u8_or_null(3, "mask");
  const View<float> out = a.f32(4, "out"), lse = a.f32(5, "lse"), g_out = a.f32(6, "gOut"),
                    gq = a.f32(7, "gq"), gk = a.f32(8, "gk"), gv = a.f32(9, "gv");
  const AttentionShape s = attention_shape(a, 10);
  check_attention_arrays(a, s, q, k, v, mask, out, lse);
  const uint64_t qn = a.mul(s.B, s.T, s.H, s.D), kn = a.mul(s.B, s.S, s.Hkv, s.D);
  a.need(g_out, qn, "gOut");
  a.need(gq, qn, "gq");
  a.need(gk, kn, "gk");
  a.need(gv, kn, "gv");
  attention_backward(q.data, k.data, v.data, mask.data, out.data, lse.data, g_out.data, gq.data,
                     gk.data, gv.data, s);
  return nullptr;
}

// Reads N, Cin, H, W, Cout, kh, kw, stride, pad at argument `at` and checks the geometry.
ConvShape conv_shape(const Args& a, size_t at) {
  ConvShape s;
  s.N = int(a.integer(at, "N"));
  s.Cin = int(a.integer(at + 1, "Cin"));
  s.H = int(a.integer(at + 2, "H"));
  s.W = int(a.integer(at + 3, "W"));
  s.Cout = int(a.integer(at + 4, "Cout"));
  s.kh = int(a.integer(at + 5, "kh", 1));
  s.kw = int(a.integer(at + 6, "kw", 1));
  s.stride = int(a.integer(at + 7, "stride", 1));
  s.pad = int(a.integer(at + 8, "pad", 0, 1 << 20));
  if (int64_t(s.H) + 2 * s.pad > INT32_MAX || int64_t(s.W) + 2 * s.pad > INT32_MAX) {
    a.fail("the padded image is too large");
  }
  if (int64_t(s.H) + 2 * s.pad < s.kh || int64_t(s.W) + 2 * s.pad < s.kw) {
    a.fail("the kernel is larger than the padded image");
  }
  // Column matrices and their gemms index with ints.
  const uint64_t P = a.mul(s.Ho(), s.Wo()), R = a.mul(s.Cin, s.kh, s.kw);
  if (a.mul(P, R) > INT32_MAX || a.mul(s.Cout, R) > INT32_MAX || a.mul(s.Cout, P) > INT32_MAX) {
    a.fail("the convolution is too large (im2col needs over 2^31 elements)");
  }
  return s;
}

TF_BINDING(Conv2d) {
  Args a(env, info, "conv2d", 12);
  const View<float> x = a.f32(0, "x"), w = a.f32(1, "w"), out = a.f32(2, "out");
  const ConvShape s = conv_shape(a, 3);
  a.need(x, a.mul(s.N, s.Cin, s.H, s.W), "x");
  a.need(w, a.mul(s.Cout, s.Cin, s.kh, s.kw), "w");
  a.need(out, a.mul(s.N, s.Cout, s.Ho(), s.Wo()), "out");
  conv2d(x.data, w.data, out.data, s);
  return nullptr;
}

TF_BINDING(Conv2dBackward) {
  Args a(env, info, "conv2dBackward", 14);
  const View<float> x = a.f32(0, "x"), w = a.f32(1, "w"), gy = a.f32(2, "gy"),
                    gx = a.f32_or_null(3, "gx"), gw = a.f32(4, "gw");
  const ConvShape s = conv_shape(a, 5);
  a.need(x, a.mul(s.N, s.Cin, s.H, s.W), "x");
  if (gx.data) a.need(gx, a.mul(s.N, s.Cin, s.H, s.W), "gx");
  a.need(w, a.mul(s.Cout, s.Cin, s.kh, s.kw), "w");
  a.need(gw, a.mul(s.Cout, s.Cin, s.kh, s.kw), "gw");
  a.need(gy, a.mul(s.N, s.Cout, s.Ho(), s.Wo()), "gy");
  conv2d_backward(x.data, w.data, gy.data, gx.data, gw.data, s);
  return nullptr;
}

TF_BINDING(UpsampleNearest) {
  Args a(env, info, "upsampleNearest", 6);
  const View<float> x = a.f32(0, "x"), out = a.f32(1, "out");
  const int64_t NC = a.integer(2, "NC"), H = a.integer(3, "H"), W = a.integer(4, "W"),
                f = a.integer(5, "factor", 1);
  a.need(x, a.mul(NC, H, W), "x");
  a.need(out, a.mul(a.mul(NC, H, W), f, f), "out");
  upsample_nearest(x.data, out.data, size_t(NC), size_t(H), size_t(W), size_t(f));
  return nullptr;
}

TF_BINDING(UpsampleNearestBackward) {
  Args a(env, info, "upsampleNearestBackward", 6);
  const View<float> gy = a.f32(0, "gy"), gx = a.f32(1, "gx");
  const int64_t NC = a.integer(2, "NC"), H = a.integer(3, "H"), W = a.integer(4, "W"),
                f = a.integer(5, "factor", 1);
  a.need(gx, a.mul(NC, H, W), "gx");
  a.need(gy, a.mul(a.mul(NC, H, W), f, f), "gy");
  upsample_nearest_backward(gy.data, gx.data, size_t(NC), size_t(H), size_t(W), size_t(f));
  return nullptr;
}

TF_BINDING(AdamW) {
  Args a(env, info, "adamw", 13);
  const View<float> p = a.f32(0, "p"), g = a.f32(1, "g"), m = a.f32(2, "m"), v = a.f32(3, "v");
  const int64_t n = a.integer(4, "n", 0, INT64_C(1) << 53);
  AdamWParams h;
  h.lr = a.number(5, "lr");
  h.beta1 = a.number(6, "beta1");
  h.beta2 = a.number(7, "beta2");
  h.eps = a.number(8, "eps");
  h.weight_decay = a.number(9, "weightDecay");
  h.bc1 = a.number(10, "bc1");
  h.bc2 = a.number(11, "bc2");
  h.grad_scale = a.number(12, "gradScale");
  a.need(p, n, "p");
  a.need(g, n, "g");
  a.need(m, n, "m");
  a.need(v, n, "v");
  adamw(p.data, g.data, m.data, v.data, size_t(n), h);
  return nullptr;
}

}  // namespace

void register_nn_bindings(napi_env env, napi_value exports) {
  export_function(env, exports, "softmax", Softmax);
  export_function(env, exports, "softmaxBackward", SoftmaxBackward);
  export_function(env, exports, "crossEntropy", CrossEntropy);
  export_function(env, exports, "crossEntropyBackward", CrossEntropyBackward);
  export_function(env, exports, "rmsnorm", RmsNorm);
  export_function(env, exports, "rmsnormBackward", RmsNormBackward);
  export_function(env, exports, "groupnorm", GroupNorm);
  export_function(env, exports, "groupnormBackward", GroupNormBackward);
  export_function(env, exports, "rope", Rope);
  export_function(env, exports, "attention", Attention);
  export_function(env, exports, "attentionBackward", AttentionBackward);
  export_function(env, exports, "conv2d", Conv2d);
  export_function(env, exports, "conv2dBackward", Conv2dBackward);
  export_function(env, exports, "upsampleNearest", UpsampleNearest);
  export_function(env, exports, "upsampleNearestBackward", UpsampleNearestBackward);
  export_function(env, exports, "adamw", AdamW);
}

}  // namespace tf
