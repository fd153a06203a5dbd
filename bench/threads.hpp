#pragma once
// The thread count of every benchmark, set before main by including this header: METAGRAD_BENCH_THREADS (default 1,
// so that figures compare one thread with one thread), for metagrad and, where it runs beside it, LibTorch.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include <metagrad/threads.hpp>

namespace bench {

inline int threads_from_environment() {
  const char* text = std::getenv("METAGRAD_BENCH_THREADS");
  return text && *text ? std::atoi(text) : 1;
}

/// metagrad's thread count in every benchmark (reported in the context as metagrad_threads).
inline const int threads = [] {
  metagrad::set_num_threads(threads_from_environment());
  benchmark::AddCustomContext("metagrad_threads", std::to_string(metagrad::num_threads()));
  return metagrad::num_threads();
}();

}  // namespace bench
