// Fused scaled-dot-product attention, forward and backward, flash-attention style: work is
// cut into blocks of query rows of one (batch, head); each block runs single-threaded sgemm
// over only the key columns some row of the block may see (from the mask or causality), so
// fully masked regions cost nothing. Blocks are spread over the pool.
//
// Layouts (see backend.ts): q/out/gq [B, T, H, D], k/v/gk/gv [B, S, Hkv, D], lse [B, H, T],
// mask [B, T, S]. Query head h reads key/value head h / (H / Hkv).
#include <algorithm>
#include <cmath>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "pool.h"
#include "vecmath.h"

namespace tf {
namespace {

constexpr int kBlockRows = 64;
constexpr float kNegInf = -__builtin_inff();

// The visible keys of every query row, as a half-open range [lo, hi) per (b, i): exact for
// causal and unmasked attention, the hull of the allowed keys for an arbitrary mask.
struct KeyRanges {
  const int32_t* lo;
  const int32_t* hi;
};

KeyRanges key_ranges(const uint8_t* mask, const AttentionShape& s) {
  thread_local std::vector<int32_t> storage;
  const size_t rows = size_t(s.B) * s.T;
  if (storage.size() < 2 * rows) storage.resize(2 * rows);
  int32_t* lo = storage.data();
  int32_t* hi = lo + rows;
  if (!mask) {
    for (size_t r = 0; r < rows; r++) {
      const int i = int(r % s.T);
      // Causal aligned to the end: query i sees keys j ≤ i + (S − T).
      const int end = s.causal ? std::clamp(i + s.S - s.T + 1, 0, s.S) : s.S;
      lo[r] = 0;
      hi[r] = end;
    }
    return {lo, hi};
  }
  parallel_range(rows, rows < 2 ? 1 : parts_for(rows * s.S / 4), 1, [&](size_t r0, size_t r1, int) {
    for (size_t r = r0; r < r1; r++) {
      const uint8_t* m = mask + r * s.S;
      int a = 0, z = s.S;
      while (a < s.S && m[a] == 0) a++;
      while (z > a && m[z - 1] == 0) z--;
      lo[r] = a;
      hi[r] = z;
    }
  });
  return {lo, hi};
}

// Scratch of the running thread (each pool thread has its own), grown on demand.
float* scratch(size_t n, int which) {
  thread_local std::vector<float> buf[2];
  if (buf[which].size() < n) buf[which].resize(n);
  return buf[which].data();
}

// One block: query rows [i0, i1) of (b, h), key columns [j0, j1) (the union of the rows'
// ranges). Row pointers below are already offset to (b, i0, h) / (b, j0, hk).
struct Block {
  int b, h, hk, i0, i1, j0, j1;
};

Block make_block(const AttentionShape& s, const KeyRanges& kr, int b, int h, int qb) {
  Block blk;
  blk.b = b;
  blk.h = h;
  blk.hk = h / (s.H / s.Hkv);
  blk.i0 = qb * kBlockRows;
  blk.i1 = std::min(s.T, blk.i0 + kBlockRows);
  blk.j0 = s.S;
  blk.j1 = 0;
  for (int i = blk.i0; i < blk.i1; i++) {
    const size_t r = size_t(b) * s.T + i;
    if (kr.lo[r] >= kr.hi[r]) continue;
    blk.j0 = std::min(blk.j0, kr.lo[r]);
    blk.j1 = std::max(blk.j1, kr.hi[r]);
  }
  if (blk.j0 >= blk.j1) blk.j0 = blk.j1 = 0;
  return blk;
}

// Within row `i` of a block's score matrix (columns j0.. of width nc), the visible columns
// as [a, z) relative to j0, with masked-out scores inside set to −inf.
TF_INLINE void visible_span(const AttentionShape& s, const uint8_t* mask, const KeyRanges& kr,
                            const Block& blk, int i, float* row, int* a, int* z) {
  const size_t r = size_t(blk.b) * s.T + i;
  *a = kr.lo[r] - blk.j0;
  *z = kr.hi[r] - blk.j0;
  if (*a >= *z) {
    *a = *z = 0;
    return;
  }
  if (mask) {
    const uint8_t* m = mask + r * s.S + blk.j0;
    for (int j = *a; j < *z; j++) {
      const float x = row[j];  // unconditional load, so the select vectorises
      row[j] = m[j] ? x : kNegInf;
    }
  }
}

TF_CLONES void forward_block(const float* q, const float* k, const float* v, const uint8_t* mask,
                             float* out, float* lse, const AttentionShape& s, const KeyRanges& kr,
                             const Block& blk) {
  const int rows = blk.i1 - blk.i0, nc = blk.j1 - blk.j0, D = s.D;
  const int ldq = s.H * D, ldk = s.Hkv * D;
  const float* qb = q + ((size_t(blk.b) * s.T + blk.i0) * s.H + blk.h) * D;
  const float* kb = k + ((size_t(blk.b) * s.S + blk.j0) * s.Hkv + blk.hk) * D;
  const float* vb = v + ((size_t(blk.b) * s.S + blk.j0) * s.Hkv + blk.hk) * D;
  float* ob = out + ((size_t(blk.b) * s.T + blk.i0) * s.H + blk.h) * D;
  float* lb = lse + (size_t(blk.b) * s.H + blk.h) * s.T + blk.i0;
  if (nc == 0) {
    for (int r = 0; r < rows; r++) {
      std::fill(ob + size_t(r) * ldq, ob + size_t(r) * ldq + D, 0.0f);
      lb[r] = kNegInf;
    }
    return;
  }
  // P = softmax(scale·Q·Kᵀ) over each row's visible keys, in place in the score block.
  float* P = scratch(size_t(rows) * nc, 0);
  gemm_serial(false, true, rows, nc, D, s.scale, qb, ldq, kb, ldk, 0.0f, P, nc);
  for (int r = 0; r < rows; r++) {
    float* row = P + size_t(r) * nc;
    int a, z;
    visible_span(s, mask, kr, blk, blk.i0 + r, row, &a, &z);
    const float max = max_f(row + a, size_t(z - a));
    if (max == kNegInf) {  // no visible key
      std::fill(row, row + nc, 0.0f);
      lb[r] = kNegInf;
      continue;
    }
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum = 0;
    int j = a;
    for (; j + 8 <= z; j += 8)
      for (int t = 0; t < 8; t++) {
        const float e = exp_f(row[j + t] - max);
        row[j + t] = e;
        lane[t] += double(e);
      }
    for (; j < z; j++) {
      const float e = exp_f(row[j] - max);
      row[j] = e;
      sum += double(e);
    }
    for (int t = 0; t < 8; t++) sum += lane[t];
    const float inv = float(1.0 / sum);
    for (j = a; j < z; j++) row[j] *= inv;
    std::fill(row, row + a, 0.0f);
    std::fill(row + z, row + nc, 0.0f);
    lb[r] = float(double(max) + std::log(sum));
  }
  // O = P·V.
  gemm_serial(false, false, rows, D, nc, 1.0f, P, nc, vb, ldk, 0.0f, ob, ldq);
}

// Backward of one block. gq rows are written; dK and dV of the block's key rows are added
// into gk_acc / gv_acc (laid out like gk, so the same offsets apply).
TF_CLONES void backward_block(const float* q, const float* k, const float* v, const uint8_t* mask,
                              const float* out, const float* lse, const float* g_out, float* gq,
                              float* gk_acc, float* gv_acc, const AttentionShape& s,
                              const KeyRanges& kr, const Block& blk) {
  const int rows = blk.i1 - blk.i0, nc = blk.j1 - blk.j0, D = s.D;
  const int ldq = s.H * D, ldk = s.Hkv * D;
  const size_t qoff = ((size_t(blk.b) * s.T + blk.i0) * s.H + blk.h) * D;
  const size_t koff = ((size_t(blk.b) * s.S + blk.j0) * s.Hkv + blk.hk) * D;
  const float* lb = lse + (size_t(blk.b) * s.H + blk.h) * s.T + blk.i0;
  if (nc == 0) {
    for (int r = 0; r < rows; r++) std::fill(gq + qoff + size_t(r) * ldq, gq + qoff + size_t(r) * ldq + D, 0.0f);
    return;
  }
  float* P = scratch(size_t(rows) * nc, 0);
  float* dS = scratch(size_t(rows) * nc, 1);
  // Recompute P = exp(scale·Q·Kᵀ − lse) from the saved log-sum-exp.
  gemm_serial(false, true, rows, nc, D, s.scale, q + qoff, ldq, k + koff, ldk, 0.0f, P, nc);
  // dP = dO·Vᵀ.
  gemm_serial(false, true, rows, nc, D, 1.0f, g_out + qoff, ldq, v + koff, ldk, 0.0f, dS, nc);
  for (int r = 0; r < rows; r++) {
    float* prow = P + size_t(r) * nc;
    float* drow = dS + size_t(r) * nc;
    int a, z;
    visible_span(s, mask, kr, blk, blk.i0 + r, prow, &a, &z);
    const float L = lb[r];
    if (L == kNegInf || a == z) {
      std::fill(prow, prow + nc, 0.0f);
      std::fill(drow, drow + nc, 0.0f);
      continue;
    }
    // δ = rowsum(dO ⊙ O); dS = P ⊙ (dP − δ).
    const float delta = float(dot_f64(g_out + qoff + size_t(r) * ldq, out + qoff + size_t(r) * ldq, size_t(D)));
    for (int j = a; j < z; j++) {
      const float p = exp_f(prow[j] - L);  // masked scores are −inf, so p = 0
      prow[j] = p;
      drow[j] = p * (drow[j] - delta);
    }
    std::fill(prow, prow + a, 0.0f);
    std::fill(prow + z, prow + nc, 0.0f);
    std::fill(drow, drow + a, 0.0f);
    std::fill(drow + z, drow + nc, 0.0f);
  }
  // dQ = scale·dS·K; dK += scale·dSᵀ·Q; dV += Pᵀ·dO.
  gemm_serial(false, false, rows, D, nc, s.scale, dS, nc, k + koff, ldk, 0.0f, gq + qoff, ldq);
  gemm_serial(true, false, nc, D, rows, s.scale, dS, nc, q + qoff, ldq, 1.0f, gk_acc + koff, ldk);
  gemm_serial(true, false, nc, D, rows, 1.0f, P, nc, g_out + qoff, ldq, 1.0f, gv_acc + koff, ldk);
}

// Zeroes the S rows of kv head (b, hk) in a [B, S, Hkv, D] array.
void zero_kv_head(float* x, const AttentionShape& s, int b, int hk) {
  for (int j = 0; j < s.S; j++) {
    float* row = x + ((size_t(b) * s.S + j) * s.Hkv + hk) * s.D;
    std::fill(row, row + s.D, 0.0f);
  }
}

}  // namespace

void attention(const float* q, const float* k, const float* v, const uint8_t* mask, float* out,
               float* lse, const AttentionShape& s) {
  if (s.B == 0 || s.T == 0 || s.H == 0) return;
  const KeyRanges kr = key_ranges(mask, s);
  const int qblocks = (s.T + kBlockRows - 1) / kBlockRows;
  const int heads = s.B * s.H;
  // Later query blocks see more keys under causality: hand them out first, so dynamic
  // scheduling ends on cheap blocks and the threads finish together.
  parallel_for(heads * qblocks, [&](int t, int) {
    const int qb = qblocks - 1 - t / heads, bh = t % heads;
    forward_block(q, k, v, mask, out, lse, s, kr, make_block(s, kr, bh / s.H, bh % s.H, qb));
  });
}

void attention_backward(const float* q, const float* k, const float* v, const uint8_t* mask,
                        const float* out, const float* lse, const float* g_out, float* gq,
                        float* gk, float* gv, const AttentionShape& s) {
  const size_t kv_size = size_t(s.B) * s.S * s.Hkv * s.D;
  if (s.B == 0 || s.T == 0 || s.H == 0) {
    std::fill(gk, gk + kv_size, 0.0f);
    std::fill(gv, gv + kv_size, 0.0f);
    return;
  }
  const KeyRanges kr = key_ranges(mask, s);
  const int qblocks = (s.T + kBlockRows - 1) / kBlockRows;
  const int group = s.H / s.Hkv;
  const int threads = in_parallel_region() ? 1 : pool_threads();
  const int kv_heads = s.B * s.Hkv;

  if (threads == 1 || kv_heads % threads == 0 || kv_heads >= 4 * threads) {
    // One task per (b, kv head): it alone writes that head's gk/gv rows, accumulating over
    // the query heads of its group and over query blocks in a fixed order. Race-free and
    // deterministic.
    parallel_for(kv_heads, [&](int t, int) {
      const int b = t / s.Hkv, hk = t % s.Hkv;
      zero_kv_head(gk, s, b, hk);
      zero_kv_head(gv, s, b, hk);
      for (int h = hk * group; h < (hk + 1) * group; h++)
        for (int qb = 0; qb < qblocks; qb++)
          backward_block(q, k, v, mask, out, lse, g_out, gq, gk, gv, s, kr,
                         make_block(s, kr, b, h, qb));
    });
    return;
  }
  // Too few kv heads to share out evenly: the (b, h, query block) items are dealt to fixed
  // slices, each accumulating dK/dV into its own zeroed copy; the copies are then summed in
  // a fixed order. Items go most expensive first (late query blocks see more keys) and are
  // dealt in snake order (0 1 1 0 0 1 …), which evens out the causal cost.
  thread_local std::vector<float> partial_storage;
  if (partial_storage.size() < 2 * kv_size * threads) partial_storage.resize(2 * kv_size * threads);
  float* const partial = partial_storage.data();
  const int heads = s.B * s.H, items = heads * qblocks;
  parallel_for(threads, [&](int p, int) {
    float* pk = partial + 2 * kv_size * p;
    float* pv = pk + kv_size;
    std::fill(pk, pk + 2 * kv_size, 0.0f);
    for (int t = 0; t < items; t++) {
      const int round = t / threads, pos = t % threads;
      if ((round % 2 == 0 ? pos : threads - 1 - pos) != p) continue;
      const int qb = qblocks - 1 - t / heads, bh = t % heads;
      backward_block(q, k, v, mask, out, lse, g_out, gq, pk, pv, s, kr,
                     make_block(s, kr, bh / s.H, bh % s.H, qb));
    }
  });
  parallel_range(kv_size, parts_for(kv_size * threads), 16, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; i++) {
      float tk = 0.0f, tv = 0.0f;
      for (int p = 0; p < threads; p++) {
        tk += partial[2 * kv_size * p + i];
        tv += partial[2 * kv_size * p + kv_size + i];
      }
      gk[i] = tk;
      gv[i] = tv;
    }
  });
}

}  // namespace tf
