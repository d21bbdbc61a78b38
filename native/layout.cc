// Layout kernels: strided copies, sum reductions, row gathers. Spaces are coalesced first
// (strided.h) so that, e.g., a permutation that keeps the last dimension contiguous becomes
// a sequence of long memcpy-like runs.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "pool.h"
#include "strided.h"
#include "vecmath.h"

namespace tf {
namespace {

TF_CLONES void copy_run(const float* src, int64_t ss, float* dst, int64_t ds, int64_t n,
                        bool accumulate) {
  if (ss == 1 && ds == 1) {
    if (accumulate) {
      for (int64_t i = 0; i < n; i++) dst[i] += src[i];
    } else {
      std::memmove(dst, src, size_t(n) * sizeof(float));
    }
  } else if (accumulate) {
    for (int64_t i = 0; i < n; i++) dst[i * ds] += src[i * ss];
  } else {
    for (int64_t i = 0; i < n; i++) dst[i * ds] = src[i * ss];
  }
}

// A 2D copy where one side is contiguous along rows and the other along columns (a
// transpose): 32×32 tiles keep both sides' cache lines in use.
void copy_tiled(const float* src, int64_t ss_i, int64_t ss_j, float* dst, int64_t ds_i,
                int64_t ds_j, int64_t i0, int64_t i1, int64_t nj, bool accumulate) {
  constexpr int64_t kTile = 32;
  for (int64_t ib = i0; ib < i1; ib += kTile) {
    const int64_t ie = std::min(ib + kTile, i1);
    for (int64_t jb = 0; jb < nj; jb += kTile) {
      const int64_t je = std::min(jb + kTile, nj);
      for (int64_t i = ib; i < ie; i++) {
        copy_run(src + i * ss_i + jb * ss_j, ss_j, dst + i * ds_i + jb * ds_j, ds_j, je - jb,
                 accumulate);
      }
    }
  }
}

// [lowest, highest] element position an operand touches.
void extent(const StridedSpace& s, int o, int64_t* lo, int64_t* hi) {
  *lo = *hi = s.offset[o];
  for (int d = 0; d < s.rank; d++) {
    const int64_t span = s.strides[o][d] * (s.shape[d] - 1);
    if (span < 0) *lo += span; else *hi += span;
  }
}

}  // namespace

void copy_strided(const float* src, float* dst, const StridedSpace& space, bool accumulate) {
  StridedSpace s = space;
  const int64_t total = coalesce(s, 2);
  if (total == 0) return;
  const int inner = s.rank - 1;
  const int64_t n = s.shape[inner];
  const int64_t ss = s.strides[0][inner], ds = s.strides[1][inner];
  const int64_t runs = total / n;

  // Overlapping source and destination (the same buffer), or a destination written more
  // than once: the result depends on visiting order, so keep the reference's order exactly.
  int64_t slo, shi, dlo, dhi;
  extent(s, 0, &slo, &shi);
  extent(s, 1, &dlo, &dhi);
  const bool overlap = !(src + shi < dst + dlo || dst + dhi < src + slo);
  if (overlap || !injective(s, 1)) {
    for_runs<2>(s, 0, runs, [&](const int64_t* off) {
      const float* a = src + off[0];
      float* b = dst + off[1];
      for (int64_t i = 0; i < n; i++) b[i * ds] = accumulate ? b[i * ds] + a[i * ss] : a[i * ss];
    });
    return;
  }

  const int parts = parts_for(size_t(total));
  // Transpose-like: the inner dimension is strided on one side and the next one out is
  // contiguous on that side. Tile the last two dimensions.
  if (s.rank >= 2 && n >= 8 && s.shape[inner - 1] >= 8 &&
      ((ss != 1 && s.strides[0][inner - 1] == 1) || (ds != 1 && s.strides[1][inner - 1] == 1))) {
    const int64_t ni = s.shape[inner - 1];
    const int64_t planes = runs / ni;
    StridedSpace outer = s;  // the dimensions above the tiled plane
    outer.rank = s.rank - 1;
    outer.shape[outer.rank - 1] = 1;  // every "run" of `outer` is one plane
    constexpr int64_t kRowsPerTask = 32;
    const int64_t row_blocks = (ni + kRowsPerTask - 1) / kRowsPerTask;
    const int64_t tasks = planes * row_blocks;
    parallel_range(size_t(tasks), parts, 1, [&](size_t t0, size_t t1, int) {
      for (int64_t t = int64_t(t0); t < int64_t(t1); t++) {
        const int64_t plane = t / row_blocks, rb = t % row_blocks;
        for_runs<2>(outer, plane, plane + 1, [&](const int64_t* off) {
          copy_tiled(src + off[0], s.strides[0][inner - 1], ss, dst + off[1],
                     s.strides[1][inner - 1], ds, rb * kRowsPerTask,
                     std::min(ni, (rb + 1) * kRowsPerTask), n, accumulate);
        });
      }
    });
    return;
  }

  if (runs >= parts * 4 || parts == 1) {
    parallel_range(size_t(runs), parts, 1, [&](size_t r0, size_t r1, int) {
      for_runs<2>(s, int64_t(r0), int64_t(r1), [&](const int64_t* off) {
        copy_run(src + off[0], ss, dst + off[1], ds, n, accumulate);
      });
    });
  } else {
    for_runs<2>(s, 0, runs, [&](const int64_t* off) {
      parallel_range(size_t(n), parts, 16, [&](size_t i0, size_t i1, int) {
        copy_run(src + off[0] + int64_t(i0) * ss, ss, dst + off[1] + int64_t(i0) * ds, ds,
                 int64_t(i1 - i0), accumulate);
      });
    });
  }
}

namespace {

// Adds the runs [r0, r1) of x into the double accumulator acc (indexed by out position).
TF_CLONES void reduce_runs(const float* x, double* acc, const StridedSpace& s, int64_t r0,
                           int64_t r1) {
  const int inner = s.rank - 1;
  const int64_t n = s.shape[inner];
  const int64_t os = s.strides[1][inner];
  for_runs<2>(s, r0, r1, [&](const int64_t* off) {
    const float* xr = x + off[0];
    double* a = acc + off[1];
    if (os == 0) {
      a[0] += sum_f64(xr, size_t(n));
    } else if (os == 1) {
      for (int64_t i = 0; i < n; i++) a[i] += double(xr[i]);
    } else {
      for (int64_t i = 0; i < n; i++) a[i * os] += double(xr[i]);
    }
  });
}

TF_CLONES void store_sum(const double* const* partials, int count, float* out, size_t b,
                         size_t e) {
  for (size_t i = b; i < e; i++) {
    double t = 0;
    for (int p = 0; p < count; p++) t += partials[p][i];
    out[i] = float(t);
  }
}

}  // namespace

void reduce_sum(const float* x, float* out, size_t out_size, const StridedSpace& space) {
  // Sums are accumulated in double (as in the reference) in scratch owned by this call's
  // thread: one accumulator per slice when slices would otherwise write the same outputs.
  thread_local std::vector<double> scratch;
  StridedSpace s = space;
  int64_t st = 1;
  for (int d = s.rank - 1; d >= 0; d--) {
    s.strides[0][d] = st;
    st *= s.shape[d];
  }
  s.offset[0] = s.offset[1] = 0;
  const int64_t total = coalesce(s, 2);
  const int64_t n = total == 0 ? 1 : s.shape[s.rank - 1];
  const int64_t runs = total / n;
  int parts = parts_for(size_t(total));

  // How slices share the work: by the outermost dimension when it is kept in out (slices
  // then own disjoint outputs), else with a private accumulator per slice — unless out is so
  // large that combining the partials would cost more than the parallelism saves.
  const bool split_outer = parts > 1 && s.rank >= 2 && s.strides[1][0] != 0 &&
                           s.shape[0] >= parts && injective(s, 1);
  const bool full_reduce = parts > 1 && runs == 1 && s.strides[1][s.rank - 1] == 0;
  if (parts > 1 && !split_outer && !full_reduce &&
      (int64_t(out_size) * parts * 4 > total || runs < parts)) {
    parts = 1;
  }
  const int accs = (parts > 1 && !split_outer) ? parts : 1;
  if (scratch.size() < out_size * accs) scratch.resize(out_size * accs);
  double* partials[256];
  for (int p = 0; p < accs; p++) partials[p] = scratch.data() + out_size * p;
  std::fill(scratch.data(), scratch.data() + out_size * accs, 0.0);

  // Slices are fixed by index (not by whichever thread runs them), so results do not depend
  // on scheduling.
  auto slice = [](int64_t len, int count, int p, int64_t* b, int64_t* e) {
    const int64_t chunk = (len + count - 1) / count;
    *b = std::min(len, chunk * p);
    *e = std::min(len, *b + chunk);
  };
  if (total > 0) {
    if (full_reduce) {
      parallel_for(parts, [&](int p, int) {
        int64_t b, e;
        slice(n, parts, p, &b, &e);
        partials[p][0] = sum_f64(x + b, size_t(e - b));
      });
    } else if (split_outer) {
      const int64_t runs_per_outer = runs / s.shape[0];
      parallel_for(parts, [&](int p, int) {
        int64_t b, e;
        slice(s.shape[0], parts, p, &b, &e);
        reduce_runs(x, partials[0], s, b * runs_per_outer, e * runs_per_outer);
      });
    } else {
      parallel_for(parts, [&](int p, int) {
        int64_t b, e;
        slice(runs, parts, p, &b, &e);
        reduce_runs(x, partials[p], s, b, e);
      });
    }
  }
  parallel_range(out_size, parts_for(out_size * accs), 16, [&](size_t b, size_t e, int) {
    store_sum(partials, accs, out, b, e);
  });
}

double sum_squares(const float* x, size_t n) {
  double partial[256] = {};
  const int parts = parts_for(n);
  // Fixed slices per thread index keep the result independent of scheduling.
  const size_t chunk = (n + parts - 1) / parts;
  parallel_for(parts, [&](int p, int) {
    const size_t b = std::min(n, size_t(p) * chunk), e = std::min(n, b + chunk);
    partial[p] = dot_f64(x + b, x + b, e - b);
  });
  double s = 0;
  for (int p = 0; p < parts; p++) s += partial[p];
  return s;
}

void gather_rows(const float* table, const int32_t* idx, float* out, size_t rows, size_t dim) {
  parallel_range(rows, parts_for(rows * dim), 1, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; r++) {
      std::memcpy(out + r * dim, table + size_t(idx[r]) * dim, dim * sizeof(float));
    }
  });
}

void scatter_add_rows(const float* g_out, const int32_t* idx, float* g_table, size_t rows,
                      size_t dim) {
  // Repeated indices make rows collide, so threads split the columns instead: each owns a
  // column slice of every row and the row order of additions is the reference's.
  const int parts = dim >= 64 ? parts_for(rows * dim) : 1;
  parallel_range(dim, parts, 16, [&](size_t c0, size_t c1, int) {
    for (size_t r = 0; r < rows; r++) {
      const float* src = g_out + r * dim;
      float* dst = g_table + size_t(idx[r]) * dim;
      for (size_t c = c0; c < c1; c++) dst[c] += src[c];
    }
  });
}

}  // namespace tf
