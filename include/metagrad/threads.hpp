#pragma once
// The library's threads: one pool, shared by every op that splits its work, sized by set_num_threads (default: the
// environment variable METAGRAD_NUM_THREADS, else the machine's hardware threads).
//
// Work is split into tasks whose results do not depend on which thread runs them or how many there are: each task
// writes its own part of the output, and any sum across tasks is taken afterwards in task order. So the bits of every
// result are the same on any number of threads.
//
// Nesting: parallel_for called from inside a task, or while another thread of the program is using the pool, runs its
// tasks in the calling thread, one after another. It never waits for the pool and never starts more threads, so a
// program that runs metagrad from several threads of its own neither deadlocks nor oversubscribes beyond its own
// threads plus num_threads() − 1 workers (call set_num_threads(1) if it parallelizes over all cores itself).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metagrad/error.hpp"
#include "metagrad/tensor/buffer.hpp"

namespace metagrad {
namespace detail {

/// The threads a program may use by default: METAGRAD_NUM_THREADS when set, else the hardware's.
inline int default_num_threads() {
  if (const char* text = std::getenv("METAGRAD_NUM_THREADS"); text && *text) {
    char* end = nullptr;
    const long n = std::strtol(text, &end, 10);
    if (*end != '\0' || n < 1 || n > 4096)
      throw value_error(std::string("METAGRAD_NUM_THREADS is \"") + text + "\": a whole number from 1 to 4096 expected");
    return static_cast<int>(n);
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

/// Tells the core that this thread is waiting in a loop (so a sibling hyperthread gets its resources).
inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// How long a thread polls for the next job, or for the end of its own, before it sleeps on a condition variable: a
/// futex wake-up takes tens of microseconds, as long as half of a mid-sized product.
constexpr int spin_rounds = 4000;

/// True in a thread while it runs a pool's task (so nested parallel_for calls run serially).
inline bool& inside_task() {
  thread_local bool inside = false;
  return inside;
}

/// A fixed set of worker threads that run the tasks 0 … count − 1 of one job at a time, with the caller.
class ThreadPool {
 public:
  /// Touches the buffer counters first, so that they outlive the pool: its workers' caches release into them on exit.
  ThreadPool() : threads_(default_num_threads()) { (void)memory::detail::counters(); }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  int size() const { return threads_.load(std::memory_order_relaxed); }

  /// Sets the thread count. Workers are started on the first job that wants them and kept (idle) when the count drops.
  void resize(int n) {
    if (n < 1 || n > 4096)
      throw value_error("set_num_threads: " + std::to_string(n) + " threads requested, 1 to 4096 expected");
    if (inside_task()) throw value_error("set_num_threads: called from inside a parallel task");
    std::lock_guard use(in_use_);  // not while another thread's job runs
    threads_ = n;
  }

  /// Runs task(i) for every i in [0, count), on the workers and the calling thread; returns when all are done. Every
  /// task runs even when one throws; then the exception of the lowest-numbered task that threw is rethrown (the same
  /// one on any number of threads).
  void run(std::int64_t count, const std::function<void(std::int64_t)>& task) {
    std::unique_lock use(in_use_, std::defer_lock);
    if (count <= 1 || size() == 1 || inside_task() || !use.try_lock()) return run_serially(count, task);
    start_workers();
    Job job{&task, count};
    {
      std::lock_guard lock(mutex_);
      job_ = &job;
      open_seats_ = static_cast<int>(std::min<std::int64_t>(count, size()) - 1);
      ++generation_;
    }
    wake_.notify_all();
    work_on(job);
    for (int i = 0; i < spin_rounds && job.workers_inside.load(std::memory_order_acquire) > 0; ++i) spin_pause();
    std::unique_lock lock(mutex_);
    open_seats_ = 0;  // every task has been taken: a worker that wakes only now stays out
    done_.wait(lock, [&] { return job.workers_inside == 0; });
    job_ = nullptr;
    if (job.failure) std::rethrow_exception(job.failure);
  }

 private:
  struct Job {
    Job(const std::function<void(std::int64_t)>* t, std::int64_t n) : task(t), count(n) {}
    const std::function<void(std::int64_t)>* task;
    std::int64_t count;
    std::atomic<std::int64_t> next{0};
    std::atomic<int> workers_inside{0};  ///< changed under the pool's mutex; read without it while waiting
    std::exception_ptr failure;
    std::int64_t failed_task = -1;
    std::mutex failure_mutex;
  };

  static void run_serially(std::int64_t count, const std::function<void(std::int64_t)>& task) {
    const bool was_inside = inside_task();
    inside_task() = true;
    std::exception_ptr failure;
    for (std::int64_t i = 0; i < count; ++i) try {
        task(i);
      } catch (...) {
        if (!failure) failure = std::current_exception();
      }
    inside_task() = was_inside;
    if (failure) std::rethrow_exception(failure);
  }

  /// Takes tasks from the job until none is left.
  static void work_on(Job& job) {
    inside_task() = true;
    for (std::int64_t i; (i = job.next.fetch_add(1, std::memory_order_relaxed)) < job.count;) {
      try {
        (*job.task)(i);
      } catch (...) {
        std::lock_guard lock(job.failure_mutex);
        if (job.failed_task < 0 || i < job.failed_task) job.failure = std::current_exception(), job.failed_task = i;
      }
    }
    inside_task() = false;
  }

  void start_workers() {
    const auto wanted = static_cast<std::size_t>(size() - 1);
    while (workers_.size() < wanted) workers_.emplace_back([this] { worker_loop(); });
  }

  void worker_loop() {
    std::uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
      lock.unlock();  // poll for a while before sleeping: back-to-back jobs then start without a wake-up
      for (int i = 0; i < spin_rounds && generation_.load(std::memory_order_acquire) == seen; ++i)
        spin_pause();
      lock.lock();
      wake_.wait(lock, [&] {
        if (stopping_) return true;
        if (generation_ == seen) return false;
        if (open_seats_ > 0) return true;
        seen = generation_;  // a job that wants no more workers: poll for the next one after it
        return false;
      });
      if (stopping_) return;
      seen = generation_;
      --open_seats_;
      Job& job = *job_;
      ++job.workers_inside;
      lock.unlock();
      work_on(job);
      lock.lock();
      if (--job.workers_inside == 0) done_.notify_one();
    }
  }

  std::atomic<int> threads_;
  std::mutex in_use_;  ///< held by the thread whose job the pool runs
  std::mutex mutex_;   ///< guards the fields below
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  Job* job_ = nullptr;
  std::atomic<std::uint64_t> generation_{0};  ///< jobs posted; changed under the mutex, polled without it
  int open_seats_ = 0;  ///< workers the current job still takes
  bool stopping_ = false;
};

inline ThreadPool& thread_pool() {
  static ThreadPool pool;
  return pool;
}

}  // namespace detail

/// Sets how many threads metagrad's ops use (the calling thread and n − 1 workers). Results are the same bits on any
/// number. Throws value_error for n outside [1, 4096] or when called from inside a parallel task.
inline void set_num_threads(int n) { detail::thread_pool().resize(n); }

/// How many threads metagrad's ops use.
inline int num_threads() { return detail::thread_pool().size(); }

/// Runs task(i) for i = 0 … count − 1 on metagrad's threads (serially when nested; see threads.hpp) and returns when
/// all have ended; every task runs, and the exception of the lowest-numbered task that threw is rethrown. Tasks must
/// write disjoint outputs.
template <class Task>
void parallel_for(std::int64_t count, Task&& task) {
  if (count <= 0) return;
  const std::function<void(std::int64_t)> f = std::ref(task);
  detail::thread_pool().run(count, f);
}

}  // namespace metagrad
