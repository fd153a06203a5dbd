// Question: what does recording on the tape cost, against the same gradient derived and written by hand?
// MLP 784-256-10, tanh, softmax cross-entropy, batch 128, double. Goal: tape / hand-written <= 1.25.
// The ratio benchmark alternates the two within each iteration, so both see the same machine noise.
// Second question: what do reshape, a contiguous slice and stop_gradient cost on the tape now that they record views
// of their input instead of copies? BM_ViewsOverCopies alternates them with the copying recordings they replaced.
#include <benchmark/benchmark.h>

#include "alternating.hpp"
#include "mlp.hpp"
#include "threads.hpp"

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

void BM_ViewsOverCopies(benchmark::State& state) {
  using metagrad::rules::Reshape, metagrad::rules::Slice;
  metagrad::Tape<double> tape;
  const auto x = tape.variable(metagrad::Tensor<double>::random_normal({1000, 1000}, 1));  // 8 MB
  const auto start = tape.mark();
  const auto views = [&] {
    const double first = reshape(x, {1000000}).value()(0) + slice(x, 0, 100, 500).value()(0, 0) +
                         stop_gradient(x).value()(0, 0);
    tape.rewind(start);
    return first;
  };
  const auto copies = [&] {  // what the three recorded before they became views
    const double first = tape.record(x.value().reshape({1000000}), {x}, Reshape<double>{}).value()(0) +
                         tape.record(slice(x.value(), 0, 100, 500), {x}, Slice<double>(0, 100)).value()(0, 0) +
                         tape.constant(x.value()).value()(0, 0);
    tape.rewind(start);
    return first;
  };
  if (views() != copies()) state.SkipWithError("views and copies differ");
  bench::time_alternately(state, "views", views, "copies", copies);
}

}  // namespace

BENCHMARK(BM_ViewsOverCopies)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HandWrittenGradient)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TapeGradient)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TapeOverHandWritten)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_MAIN();
