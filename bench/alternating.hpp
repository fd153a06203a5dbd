#pragma once
// Ratio benchmarks: two contenders timed alternately within every iteration, so both see the same machine noise.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

namespace bench {

/// Runs a then b in every iteration and sets the counters <a>_ms, <b>_ms and "<a>/<b>" (the ratio of total times).
template <class A, class B>
void time_alternately(benchmark::State& state, const std::string& a_name, A a, const std::string& b_name, B b) {
  using clock = std::chrono::steady_clock;
  double a_s = 0, b_s = 0;
  for (auto _ : state) {
    const auto t0 = clock::now();
    benchmark::DoNotOptimize(a());
    const auto t1 = clock::now();
    benchmark::DoNotOptimize(b());
    const auto t2 = clock::now();
    a_s += std::chrono::duration<double>(t1 - t0).count();
    b_s += std::chrono::duration<double>(t2 - t1).count();
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters[a_name + "_ms"] = 1e3 * a_s / n;
  state.counters[b_name + "_ms"] = 1e3 * b_s / n;
  state.counters[a_name + "/" + b_name] = a_s / b_s;
}

}  // namespace bench
