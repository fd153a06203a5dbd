// Question: what does a Hessian-vector product through create_graph cost, against one gradient?
// Same MLP as tape_overhead. Goal: HVP / gradient <= 3.0. Measured alternately within each iteration.
#include <benchmark/benchmark.h>

#include <chrono>

#include "mlp.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

void BM_Gradient(benchmark::State& state) {
  const bench::Problem pb;
  bench::TapeModel model(pb);
  for (auto _ : state) benchmark::DoNotOptimize(bench::tape_gradient(model, pb));
}

void BM_HessianVectorProduct(benchmark::State& state) {
  const bench::Problem pb;
  bench::TapeModel model(pb);
  for (auto _ : state) benchmark::DoNotOptimize(bench::tape_hvp(model, pb));
}

void BM_HvpOverGradient(benchmark::State& state) {
  const bench::Problem pb;
  bench::TapeModel model(pb);
  double grad_s = 0, hvp_s = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    benchmark::DoNotOptimize(bench::tape_gradient(model, pb));
    auto t1 = clock_type::now();
    benchmark::DoNotOptimize(bench::tape_hvp(model, pb));
    auto t2 = clock_type::now();
    grad_s += std::chrono::duration<double>(t1 - t0).count();
    hvp_s += std::chrono::duration<double>(t2 - t1).count();
  }
  state.counters["gradient_ms"] = 1e3 * grad_s / static_cast<double>(state.iterations());
  state.counters["hvp_ms"] = 1e3 * hvp_s / static_cast<double>(state.iterations());
  state.counters["hvp/gradient"] = hvp_s / grad_s;
}

}  // namespace

BENCHMARK(BM_Gradient)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HessianVectorProduct)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HvpOverGradient)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_MAIN();
