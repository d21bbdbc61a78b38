// Thread pool: N−1 workers plus the calling thread, which always works too.
//
// Two choices matter on a small, possibly shared machine:
// - Workers spin briefly after a job, because kernels arrive back to back during training
//   and a futex wake-up costs more than a small kernel; after the spin window they sleep so
//   an idle process burns no CPU.
// - The caller never waits for a worker that has not started: tasks are claimed
//   dynamically, and once the caller has run out of tasks it closes the job to latecomers.
//   A worker that is asleep or descheduled therefore costs nothing; the caller only waits
//   for workers still inside a task.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "pool.h"

namespace tf {
namespace {

thread_local bool t_in_task = false;

// A polite busy-wait step: tells the core (and its hyperthread sibling) we are spinning.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// How long an idle worker polls for the next job before sleeping.
constexpr auto kSpinWindow = std::chrono::microseconds(200);

int configured_threads() {
  if (const char* env = std::getenv("TRANSFUSION_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 256) return int(v);
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : int(std::min(hc, 256u));
}

class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    for (int i = 1; i < threads_; i++) workers_.emplace_back([this, i] { worker_loop(i); });
  }

  int threads() const { return threads_; }

  void run(int ntasks, TaskFn fn) {
    if (ntasks <= 0) return;
    // Serial cases: one task (which may still parallelise inside), one thread, a nested
    // call, or another JS thread (a worker_thread with its own isolate) driving the pool.
    if (ntasks == 1 || threads_ == 1 || t_in_task) {
      for (int t = 0; t < ntasks; t++) fn(t, 0);
      return;
    }
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) {
      for (int t = 0; t < ntasks; t++) fn(t, 0);
      return;
    }
    fn_ = &fn;
    ntasks_ = ntasks;
    next_.store(0, std::memory_order_relaxed);
    {
      // Publishing under the mutex means a worker deciding to sleep cannot miss the job.
      std::lock_guard<std::mutex> lk(mu_);
      generation_++;
      state_.store(uint64_t(generation_) << 32, std::memory_order_release);
      if (sleepers_ > 0) cv_.notify_all();
    }
    t_in_task = true;
    drain(0);
    t_in_task = false;
    // No task is left: close the job, then wait for workers still running one (fn_ points
    // into our caller's frame, so nobody may touch it after we return).
    state_.fetch_or(kClosed, std::memory_order_acq_rel);
    for (int spins = 0; (state_.load(std::memory_order_acquire) & kActiveMask) != 0; spins++) {
      if (spins < 4096) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  // state_ = generation << 32 | kClosed | number of workers inside the job.
  static constexpr uint64_t kClosed = uint64_t(1) << 31;
  static constexpr uint64_t kActiveMask = kClosed - 1;

  void drain(int thread) {
    const TaskFn& fn = *fn_;
    const int n = ntasks_;
    for (int t; (t = next_.fetch_add(1, std::memory_order_relaxed)) < n;) fn(t, thread);
  }

  void worker_loop(int id) {
    t_in_task = true;
    uint32_t seen = 0;
    for (;;) {
      uint64_t st = wait_for_job(seen);
      if (stop_) return;
      seen = uint32_t(st >> 32);
      // Join the job unless the caller has already closed it.
      bool joined = false;
      while (!(st & kClosed) && uint32_t(st >> 32) == seen) {
        if (state_.compare_exchange_weak(st, st + 1, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
          joined = true;
          break;
        }
      }
      if (!joined) continue;
      drain(id);
      state_.fetch_sub(1, std::memory_order_release);
    }
  }

  // Returns the state once its generation differs from `seen` (or the pool stops).
  uint64_t wait_for_job(uint32_t seen) {
    auto changed = [&](uint64_t st) { return uint32_t(st >> 32) != seen || stop_; };
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0;; i++) {
      const uint64_t st = state_.load(std::memory_order_acquire);
      if (changed(st)) return st;
      cpu_relax();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > kSpinWindow) break;
    }
    std::unique_lock<std::mutex> lk(mu_);
    sleepers_++;
    cv_.wait(lk, [&] { return changed(state_.load(std::memory_order_acquire)); });
    sleepers_--;
    return state_.load(std::memory_order_acquire);
  }

  const int threads_;
  std::vector<std::thread> workers_;

  std::mutex busy_;  // held by the thread driving a parallel job
  std::mutex mu_;    // guards sleepers_ and the publication of a new generation
  std::condition_variable cv_;
  int sleepers_ = 0;
  uint32_t generation_ = 0;
  std::atomic<bool> stop_{false};  // never set: the pool lives as long as the process

  std::atomic<uint64_t> state_{0};
  const TaskFn* fn_ = nullptr;
  int ntasks_ = 0;
  std::atomic<int> next_{0};
};

Pool& pool() {
  // Never destroyed: joining threads from a static destructor at process exit can deadlock
  // when the exit happens on a thread other than the one that created the pool.
  static Pool* p = new Pool(configured_threads());
  return *p;
}

}  // namespace

int pool_threads() { return pool().threads(); }

bool in_parallel_region() { return t_in_task; }

void parallel_for(int ntasks, TaskFn fn) { pool().run(ntasks, fn); }

}  // namespace tf
