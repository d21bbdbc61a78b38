// Walking strided index spaces (binary broadcasting, copyStrided, reduceSum): dimensions are
// simplified once per call so the inner loop runs over the longest possible contiguous run,
// and the outer runs can be split across threads.
#pragma once

#include <cstdint>

#include "kernels.h"

namespace tf {

// Simplifies the space for `nops` operands without changing the sequence of (element,
// operand position) pairs it visits in row-major order: drops size-1 dimensions and merges
// a dimension into the next inner one when every operand steps through them as one.
// Returns the number of elements (0 when some dimension is empty). Rank 0 becomes [1].
inline int64_t coalesce(StridedSpace& s, int nops) {
  int64_t total = 1;
  for (int d = 0; d < s.rank; d++) total *= s.shape[d];
  if (total == 0) {
    s.rank = 0;
    return 0;
  }
  int r = 0;
  for (int d = 0; d < s.rank; d++) {
    if (s.shape[d] == 1) continue;
    if (r > 0) {
      bool mergeable = true;
      for (int o = 0; o < nops; o++) {
        if (s.strides[o][r - 1] != s.strides[o][d] * s.shape[d]) mergeable = false;
      }
      if (mergeable) {
        s.shape[r - 1] *= s.shape[d];
        for (int o = 0; o < nops; o++) s.strides[o][r - 1] = s.strides[o][d];
        continue;
      }
    }
    s.shape[r] = s.shape[d];
    for (int o = 0; o < nops; o++) s.strides[o][r] = s.strides[o][d];
    r++;
  }
  if (r == 0) {
    s.shape[0] = 1;
    for (int o = 0; o < nops; o++) s.strides[o][0] = 0;
    r = 1;
  }
  s.rank = r;
  return total;
}

// Calls f(offsets) for the innermost runs [run_begin, run_end) of the space (row-major run
// order; run i starts at outer multi-index i). offsets[o] is operand o's position of the
// run's first element, including its base offset.
template <int NOPS, typename F>
inline void for_runs(const StridedSpace& s, int64_t run_begin, int64_t run_end, F&& f) {
  const int outer = s.rank - 1;
  int64_t idx[kMaxRank] = {};
  int64_t off[NOPS];
  for (int o = 0; o < NOPS; o++) off[o] = s.offset[o];
  // Decompose run_begin into the outer multi-index.
  int64_t rem = run_begin;
  for (int d = outer - 1; d >= 0; d--) {
    idx[d] = rem % s.shape[d];
    rem /= s.shape[d];
    for (int o = 0; o < NOPS; o++) off[o] += idx[d] * s.strides[o][d];
  }
  for (int64_t run = run_begin; run < run_end; run++) {
    f(static_cast<const int64_t*>(off));
    for (int d = outer - 1; d >= 0; d--) {
      for (int o = 0; o < NOPS; o++) off[o] += s.strides[o][d];
      if (++idx[d] < s.shape[d]) break;
      for (int o = 0; o < NOPS; o++) off[o] -= s.strides[o][d] * s.shape[d];
      idx[d] = 0;
    }
  }
}

// True when operand o never visits the same position twice (its strides describe disjoint
// elements), so the space may be split across threads without write races on it.
inline bool injective(const StridedSpace& s, int o) {
  // Sort dimensions by |stride|; each must step past everything the smaller ones cover.
  int order[kMaxRank];
  for (int d = 0; d < s.rank; d++) order[d] = d;
  auto mag = [&](int d) { return s.strides[o][d] < 0 ? -s.strides[o][d] : s.strides[o][d]; };
  for (int i = 1; i < s.rank; i++)
    for (int j = i; j > 0 && mag(order[j]) < mag(order[j - 1]); j--) {
      const int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  int64_t covered = 0;  // max distance reachable with the dimensions so far
  for (int i = 0; i < s.rank; i++) {
    const int d = order[i];
    if (s.shape[d] == 1) continue;
    if (mag(d) <= covered) return false;
    covered += mag(d) * (s.shape[d] - 1);
  }
  return true;
}

}  // namespace tf
