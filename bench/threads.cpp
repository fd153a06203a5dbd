// Question: how much faster is metagrad on two threads than on one, with the same bits? One thread and two are timed
// alternately in one run; the counter one/two is the speedup, and each benchmark checks that the two results are the
// same bits (same_bits = 1). Goals on a 2-core machine:
//  (a) the MLP 784-256-10 gradient (tanh, softmax cross-entropy, double) at batch 128 and 1024: >= 1.5 at 1024;
//  (b) the lr-schedule metagradient of bench_metagradient (MLP 784-100-10, batch 128, 100 steps, Replay{4}): >= 1.6;
//      shards:0 computes each batch's gradient on one tape (threads split its products), shards:2 and 4 as the sum
//      over 2 or 4 virtual shards, one tape each, which the threads share (different bits from shards:0, the same on
//      one thread and two);
//  (c) meta-training throughput (meta_train, a meta-batch of 2 MNIST-MLP optimizees, one unroll of 20 steps each,
//      float, with the held-out evaluation of 2 optimizees before and after): >= 1.8;
//  (d) applying the learned optimizer (momentum features, 20 hidden units) to the MNIST MLP's 15,910 coordinates.
#include <benchmark/benchmark.h>

#include "alternating.hpp"
#include "lr_schedule_run.hpp"
#include "mlp.hpp"
#include "noise_digits.hpp"
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

/// Times f on one thread and on two, alternately, and checks that both give the same bits (compare(a, b) is true).
template <class F, class Compare>
void one_over_two(benchmark::State& state, F f, Compare compare) {
  const auto on = [&](int threads) {
    set_num_threads(threads);
    return f();
  };
  state.counters["same_bits"] = compare(on(1), on(2));
  bench::time_alternately(state, "one", [&] { return on(1); }, "two", [&] { return on(2); });
  set_num_threads(bench::threads);
}

void BM_LrScheduleMetagradientOneOverTwoThreads(benchmark::State& state) {
  bench::LrScheduleRun run;
  run.shards = state.range(0);
  const std::int64_t steps = 100;
  const Tensor<double> schedule = Tensor<double>::full({steps}, 0.05);
  one_over_two(
      state, [&] { return metagradient(run, {schedule}, steps, Replay{4}); },
      [](const auto& a, const auto& b) { return a.objective == b.objective && a.gradient.lr_schedule == b.gradient.lr_schedule; });
}

void BM_MetaTrainingOneOverTwoThreads(benchmark::State& state) {
  const MnistMlpTask<float> task{&bench::noise_digits<float>()};
  const auto initial = LstmOptimizer<Tensor<float>>::initial(20, 1, GradientPreprocessing::moments());
  const MetaTrainingOptions options{.optimizee_steps = 20, .unroll = 20, .meta_iterations = 1, .meta_batch = 2,
                                    .evaluate_every = 1, .evaluation_optimizees = 2};
  one_over_two(
      state, [&] { return meta_train(task, initial, options); },
      [](const auto& a, const auto& b) { return a.meta_losses == b.meta_losses && a.evaluations == b.evaluations; });
  state.counters["optimizee_steps"] = 20 * 2 + 2 * 2 * 20;  // differentiated, and evaluated before and after
}

void BM_ApplyLearnedOptimizerOneOverTwoThreads(benchmark::State& state) {
  const MnistMlpTask<double> task{&bench::noise_digits<double>()};
  const auto problem = task.sample(1);
  const auto optimizer = LstmOptimizer<Tensor<double>>::initial(20, 1, GradientPreprocessing::moments());
  const ParamList<Tensor<double>> params = task.initial_params(problem);
  const auto g = loss_and_gradient(params, [&](const std::vector<Var<double>>& p) { return task.loss(problem, p, 0); }).second;
  const auto lstm_state = optimizer.init(params);
  one_over_two(
      state, [&] { return metagrad::step(optimizer, params, g, lstm_state, 1.0).first; },
      [](const auto& a, const auto& b) { return a == b; });
}

}  // namespace

BENCHMARK(BM_MlpGradientOneOverTwoThreads)->Arg(128)->Arg(1024)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_LrScheduleMetagradientOneOverTwoThreads)->ArgName("shards")->Arg(0)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_MetaTrainingOneOverTwoThreads)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_ApplyLearnedOptimizerOneOverTwoThreads)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_MAIN();
