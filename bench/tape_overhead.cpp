// Question: what does recording on the tape cost, against the same gradient derived and written by hand?
// MLP 784-256-10, tanh, softmax cross-entropy, batch 128, double. Goal: tape / hand-written <= 1.25.
// The ratio benchmark alternates the two within each iteration, so both see the same machine noise.
#include <benchmark/benchmark.h>

#include <chrono>

#include "mlp.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

void BM_HandWrittenGradient(benchmark::State& state) {
  const bench::Problem pb;
  bench::HandWritten hand(pb);
  for (auto _ : state) benchmark::DoNotOptimize(hand.gradient());
}

void BM_TapeGradient(benchmark::State& state) {
  const bench::Problem pb;
  bench::TapeModel model(pb);
  for (auto _ : state) benchmark::DoNotOptimize(bench::tape_gradient(model, pb));
}

void BM_TapeOverHandWritten(benchmark::State& state) {
  const bench::Problem pb;
  bench::HandWritten hand(pb);
  bench::TapeModel model(pb);
  // Same numbers first: the comparison is only meaningful if both compute the same gradient.
  hand.gradient();
  const auto g = bench::tape_gradient(model, pb);
  const double mismatch = (g[0].matrix() - hand.dw1()).cwiseAbs().maxCoeff();
  if (mismatch > 1e-12) state.SkipWithError("tape and hand-written gradients differ");
  double hand_s = 0, tape_s = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    benchmark::DoNotOptimize(hand.gradient());
    auto t1 = clock_type::now();
    benchmark::DoNotOptimize(bench::tape_gradient(model, pb));
    auto t2 = clock_type::now();
    hand_s += std::chrono::duration<double>(t1 - t0).count();
    tape_s += std::chrono::duration<double>(t2 - t1).count();
  }
  state.counters["hand_ms"] = 1e3 * hand_s / static_cast<double>(state.iterations());
  state.counters["tape_ms"] = 1e3 * tape_s / static_cast<double>(state.iterations());
  state.counters["tape/hand"] = tape_s / hand_s;
  state.counters["max_abs_diff"] = mismatch;
}

}  // namespace

BENCHMARK(BM_HandWrittenGradient)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TapeGradient)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TapeOverHandWritten)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_MAIN();
