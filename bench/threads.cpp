// Question: how much faster is metagrad on two threads than on one, with the same bits? (a) The MLP 784-256-10
// gradient (tanh, softmax cross-entropy, double) at batch 128 and 1024, one thread and two timed alternately in one
// run; the counter one/two is the speedup (goal at batch 1024: >= 1.5 on a 2-core machine). Each run checks that the
// two gradients are the same bits (same_bits = 1).
#include <benchmark/benchmark.h>

#include "alternating.hpp"
#include "mlp.hpp"
#include "threads.hpp"

namespace {

using namespace metagrad;

void BM_MlpGradientOneOverTwoThreads(benchmark::State& state) {
  const index_t rows = state.range(0);
  const bench::Problem pb;
  const Tensor<double> x = Tensor<double>::random_normal({rows, bench::inputs}, 1);
  IndexVector labels;
  for (index_t i = 0; i < rows; ++i) labels.push_back(i % bench::classes);
  Tape<double> tape;
  std::vector<Var<double>> params;
  for (const auto& p : pb.params) params.push_back(tape.variable(p));
  const Var<double> input = tape.constant(x);
  const auto start = tape.mark();
  const auto gradient_on = [&](int threads) {
    set_num_threads(threads);
    auto g = grad(bench::loss(params, input, labels), params);
    tape.rewind(start);
    return g;
  };
  bool same = true;
  {
    const auto one = gradient_on(1), two = gradient_on(2);
    for (std::size_t i = 0; i < one.size(); ++i) same = same && one[i] == two[i];
  }
  bench::time_alternately(state, "one", [&] { return gradient_on(1); }, "two", [&] { return gradient_on(2); });
  state.counters["same_bits"] = same;
  set_num_threads(bench::threads);
}

}  // namespace

BENCHMARK(BM_MlpGradientOneOverTwoThreads)->Arg(128)->Arg(1024)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_MAIN();
