// The addon's one thread pool. Every parallel kernel runs through it, and OpenBLAS is kept
// single-threaded (see blas.h), so the machine's cores are never oversubscribed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace tf {

// A non-owning reference to a callable `void(int task, int thread)`. Avoids std::function's
// possible heap allocation on every kernel call.
class TaskFn {
 public:
  template <typename F>
  TaskFn(const F& f)  // NOLINT: implicit on purpose, so lambdas pass straight through
      : obj_(&f), call_([](const void* o, int task, int thread) {
          (*static_cast<const F*>(o))(task, thread);
        }) {}
  void operator()(int task, int thread) const { call_(obj_, task, thread); }

 private:
  const void* obj_;
  void (*call_)(const void*, int, int);
};

// Total threads kernels may use, the calling thread included (≥ 1).
int pool_threads();

// Runs fn(task, thread) for every task in [0, ntasks) and returns when all are done. Tasks are
// claimed dynamically, so uneven tasks balance themselves. `thread` is in [0, pool_threads())
// and is unique among concurrently running tasks: use it to index per-thread scratch.
// The calling thread works too. Nested calls (from inside a task) and calls made while another
// JS thread holds the pool run serially on the caller with thread = 0. Hence the rule: scratch
// that persists across calls is `thread_local`; slots indexed by `thread` live in storage the
// calling kernel owns for the duration of its call.
void parallel_for(int ntasks, TaskFn fn);

// Splits [0, n) into about `parts` contiguous chunks aligned to `align` and runs
// fn(begin, end, thread) on each, in parallel. Runs inline when parts ≤ 1.
template <typename F>
void parallel_range(size_t n, int parts, size_t align, const F& fn) {
  if (n == 0) return;
  if (parts <= 1) {
    fn(size_t(0), n, 0);
    return;
  }
  size_t chunk = (n + parts - 1) / parts;
  if (align > 1) chunk = (chunk + align - 1) / align * align;
  const int tasks = int((n + chunk - 1) / chunk);
  parallel_for(tasks, [&](int t, int thread) {
    const size_t b = size_t(t) * chunk;
    const size_t e = b + chunk < n ? b + chunk : n;
    fn(b, e, thread);
  });
}

// Work below this many elements runs on one thread: waking the pool costs a few microseconds,
// more than the work itself.
constexpr size_t kParallelMinElements = 32768;

// How many parts to split `work` elements into: 1 when small, else the pool size.
inline int parts_for(size_t work, size_t min_per_part = kParallelMinElements) {
  if (work < min_per_part) return 1;
  const int t = pool_threads();
  const size_t by_work = work / (min_per_part / 2);
  return int(by_work < size_t(t) ? (by_work < 1 ? 1 : by_work) : size_t(t));
}

// True while the current thread is running a pool task (so kernels must not parallelise again).
bool in_parallel_region();

}  // namespace tf
