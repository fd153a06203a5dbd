// Question: what does the LSTM optimizer cost to apply, and how fast does meta-training run through the tape?
// Run: the learned-optimizer paper's MNIST task (MLP 784-20-10 sigmoid, batch 128, 15,910 parameters) on synthetic
// digits of the same shape, the paper's two-layer LSTM of 20 units, in double and in float, one thread.
// Goals (the issue's): applying the optimizer ≤ 1.0× the model's own forward+backward per step; meta-training ≥ 162
// optimizee steps per second (3× the 54/s of a reference PyTorch implementation on two threads).
// Counters: lstm_ms and model_ms (one step each, measured in the same loop), lstm/model; steps_per_s (optimizee steps
// differentiated through per second: one meta-update = a metagradient of a 20-step unroll and the optimizee's
// continuation, as meta_train does, with its checkpoint policy); for the paper's features and the two momentum feature kinds. Both are measured
// in the steady state meta_train runs in: after a warm-up whose allocations later steps reuse.
#include <benchmark/benchmark.h>

#include <chrono>
#include <metagrad/metagrad.hpp>
#include "noise_digits.hpp"
#include "threads.hpp"

namespace {

using namespace metagrad;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

template <class T>
const Dataset<T>& digits() { return bench::noise_digits<T>(); }

const GradientPreprocessing features[3] = {GradientPreprocessing::paper(), GradientPreprocessing::moments(),
                                           GradientPreprocessing::moments_and_raw_momenta()};
const char* feature_names[3] = {"paper's features", "momentum features", "momentum and raw features"};

template <class T>
void BM_ApplyLstmOverModel(benchmark::State& state) {
  const MnistMlpTask<T> task{&digits<T>()};
  const auto problem = task.sample(1);
  const auto optimizer = LstmOptimizer<Tensor<T>>::initial(20, 1, features[state.range(0)]);
  ParamList<Tensor<T>> params = task.initial_params(problem);
  auto lstm_state = optimizer.init(params);
  double lstm = 0, model = 0;
  std::int64_t step = 0;
  for (; step < 5; ++step) {  // warm-up: the first steps page-fault their memory in, later ones reuse it
    auto g = loss_and_gradient(params, [&](const std::vector<Var<T>>& p) { return task.loss(problem, p, step); }).second;
    std::tie(params, lstm_state) = metagrad::step(optimizer, std::move(params), g, std::move(lstm_state), T(1));
  }
  for (auto _ : state) {
    auto t0 = clock_type::now();
    auto [loss, g] = loss_and_gradient(params, [&](const std::vector<Var<T>>& p) { return task.loss(problem, p, step); });
    model += seconds_since(t0);
    t0 = clock_type::now();
    std::tie(params, lstm_state) = metagrad::step(optimizer, std::move(params), g, std::move(lstm_state), T(1));
    lstm += seconds_since(t0);
    ++step;
  }
  state.counters["lstm_ms"] = lstm / static_cast<double>(state.iterations()) * 1e3;
  state.counters["model_ms"] = model / static_cast<double>(state.iterations()) * 1e3;
  state.counters["lstm/model"] = lstm / model;
  state.SetLabel(feature_names[state.range(0)]);
}

template <class T, class Policy>
void BM_MetaTrainingThroughput(benchmark::State& state) {
  const MnistMlpTask<T> task{&digits<T>()};
  const auto architecture = LstmOptimizer<Tensor<T>>::initial(20, 1, features[state.range(0)]);
  const LstmOptimizerWeights<Tensor<T>> weights = architecture.weights;
  const std::int64_t unroll = 20;
  UnrollRun<MnistMlpTask<T>> run(task, task.sample(2), architecture, unroll);
  const auto meta_update = [&] {
    const auto mg = metagradient(run, weights, unroll, Policy{}, {.check_determinism = false, .step_loss_weights = run.step_loss_weights()});
    benchmark::DoNotOptimize(mg.gradient);
    run = run.next(mg);  // as meta_train continues: from the metagradient's final state, no second run
  };
  meta_update();  // warm-up: the first unroll page-faults its memory in, later ones reuse it (as in meta_train)
  std::int64_t steps = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = clock_type::now();
    meta_update();
    seconds += seconds_since(t0);
    steps += unroll;
  }
  state.counters["steps_per_s"] = static_cast<double>(steps) / seconds;
  state.SetLabel(feature_names[state.range(0)]);
}

}  // namespace

BENCHMARK_TEMPLATE(BM_ApplyLstmOverModel, double)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->Iterations(50);
BENCHMARK_TEMPLATE(BM_ApplyLstmOverModel, float)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->Iterations(50);
// RecordAll, as meta_train takes its metagradients; StoreAll computes every step twice (plainly, then on the tape).
BENCHMARK_TEMPLATE(BM_MetaTrainingThroughput, double, RecordAll)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK_TEMPLATE(BM_MetaTrainingThroughput, float, RecordAll)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK_TEMPLATE(BM_MetaTrainingThroughput, float, StoreAll)->Arg(0)->Unit(benchmark::kMillisecond)->Iterations(5);
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
