// Question: what does recording on the tape cost, against the same gradient derived and written by hand?
// MLP 784-256-10, tanh, softmax cross-entropy, batch 128, double. Goal: tape / hand-written <= 1.25.
// The ratio benchmark alternates the two within each iteration, so both see the same machine noise.
#include <benchmark/benchmark.h>

#include "alternating.hpp"
#include "mlp.hpp"

namespace {

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
  bench::time_alternately(state, "tape", [&] { return bench::tape_gradient(model, pb); }, "hand",
                          [&] { return hand.gradient(); });
  state.counters["max_abs_diff"] = mismatch;
}

}  // namespace

BENCHMARK(BM_HandWrittenGradient)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TapeGradient)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TapeOverHandWritten)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_MAIN();
