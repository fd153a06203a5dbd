// Question: what does a Hessian-vector product through create_graph cost, against one gradient?
// Same MLP as tape_overhead. Goal: HVP / gradient <= 3.0. Measured alternately within each iteration.
#include <benchmark/benchmark.h>

#include "alternating.hpp"
#include "mlp.hpp"
#include "threads.hpp"

namespace {

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
  bench::time_alternately(state, "hvp", [&] { return bench::tape_hvp(model, pb); }, "gradient",
                          [&] { return bench::tape_gradient(model, pb); });
}

}  // namespace

BENCHMARK(BM_Gradient)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HessianVectorProduct)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HvpOverGradient)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_MAIN();
