// Question: what does an exact metagradient through a whole training run cost, in time against plain training of
// the same run and in memory, for each checkpoint policy and T ∈ {100, 1000, 10000}? And through a convolutional
// network's run of 1,000 steps (LeNet-5, revolve)?
// Run: MLP 784-100-10 tanh (or LeNet-5), SGD, batch 128, double, one thread (METAGRAD_BENCH_THREADS to change);
// metaparameter: the per-step learning rate.
// Goals: REPLAY and revolve within 1.25× of their own cost model — (replayed plain steps + T step-VJPs, each at the
// HVP/gradient cost of this model measured as the core benchmark does) plain steps — and T = 10,000 under 1 GB peak,
// memory flat in T apart from the stored states.
// Counters: train_ms (plain training), metagrad_ms, metagrad/train, hvp/gradient, model (the cost model in plain
// steps / T), vs_model (metagrad/train over model), replayed, stored_states, peak_MB (resident-set high-water mark of
// the metagradient alone), step_vjp/step (one step-VJP against one plain step, measured alone).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>

#include "lr_schedule_run.hpp"
#include "memory.hpp"
#include "threads.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

/// One step-VJP over one plain step: a metagradient of 11 steps less one of 1 step (store-all) is 10 replayed steps
/// and 10 step-VJPs; plain training of 11 steps less 1 step is 10 plain steps.
template <class Run>
double step_vjp_over_step(const Run& run) {
  const metagrad::MetagradientOptions unchecked{.check_determinism = false};
  const auto time = [&](auto f) {
    double best = 1e300;
    for (int k = 0; k < 5; ++k) {
      const auto t0 = clock_type::now();
      benchmark::DoNotOptimize(f());
      best = std::min(best, seconds_since(t0));
    }
    return best;
  };
  const auto schedule = [](std::int64_t steps) { return metagrad::Tensor<double>::full({steps}, 0.05); };
  const double steps = time([&] { return run.train(schedule(11), 11); }) - time([&] { return run.train(schedule(1), 1); });
  const double vjps = time([&] { return metagrad::metagradient(run, {schedule(11)}, 11, metagrad::StoreAll{}, unchecked); }) -
                      time([&] { return metagrad::metagradient(run, {schedule(1)}, 1, metagrad::StoreAll{}, unchecked); });
  return vjps / steps - 1;
}

/// The core benchmark's ratio for this run's model and batch: one Hessian-vector product (create_graph) over one
/// gradient, best of 20 each.
template <class Run>
double hvp_over_gradient(const Run& run) {
  using namespace metagrad;
  Tape<double> tape;
  std::vector<Var<double>> params;
  std::vector<Tensor<double>> direction;
  for (const auto& p : run.initial) params.push_back(tape.variable(p)), direction.push_back(Tensor<double>::ones(p.shape()));
  const Tensor<double> x = gather_rows(run.inputs, run.order.batch(0));
  const IndexVector y(run.labels.begin(), run.labels.begin() + run.batch);
  const auto start = tape.mark();
  const auto best = [&](auto f) {
    double s = 1e300;
    for (int k = 0; k < 20; ++k) {
      const auto t0 = clock_type::now();
      benchmark::DoNotOptimize(f(mean(cross_entropy(run.model.logits(params, x), y))));
      s = std::min(s, seconds_since(t0));
      tape.rewind(start);
    }
    return s;
  };
  return best([&](const Var<double>& loss) { return hvp(loss, params, direction); }) /
         best([&](const Var<double>& loss) { return grad(loss, params); });
}

template <class Run = bench::LrScheduleRun, class Policy>
void metagradient_cost(benchmark::State& state, Policy policy) {
  const Run run;
  const std::int64_t steps = state.range(0);
  const metagrad::Tensor<double> schedule = metagrad::Tensor<double>::full({steps}, 0.05);
  const metagrad::CheckpointPlan plan = metagrad::checkpoint_plan(policy, steps);
  const double vjp_cost = step_vjp_over_step(run), hvp_cost = hvp_over_gradient(run);
  double train_s = 0, metagrad_s = 0, peak = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    benchmark::DoNotOptimize(run.train(schedule, steps));
    train_s += seconds_since(t0);
    bench::reset_peak_memory();
    t0 = clock_type::now();
    benchmark::DoNotOptimize(metagrad::metagradient(run, {schedule}, steps, policy));
    metagrad_s += seconds_since(t0);
    peak = bench::peak_memory_mb();
  }
  const double ratio = metagrad_s / train_s;
  const double model = (static_cast<double>(plan.replayed_steps) + hvp_cost * static_cast<double>(steps)) / static_cast<double>(steps);
  const auto n = static_cast<double>(state.iterations());
  state.counters["train_ms"] = 1e3 * train_s / n;
  state.counters["metagrad_ms"] = 1e3 * metagrad_s / n;
  state.counters["metagrad/train"] = ratio;
  state.counters["step_vjp/step"] = vjp_cost;
  state.counters["hvp/gradient"] = hvp_cost;
  state.counters["model"] = model;
  state.counters["vs_model"] = ratio / model;
  state.counters["replayed"] = static_cast<double>(plan.replayed_steps);
  state.counters["stored_states"] = static_cast<double>(plan.stored_states);
  state.counters["peak_MB"] = peak;
}

void BM_StoreAll(benchmark::State& state) { metagradient_cost(state, metagrad::StoreAll{}); }
void BM_Replay4(benchmark::State& state) { metagradient_cost(state, metagrad::Replay{4}); }
/// Revolve with as many slots as REPLAY(4) stores at its peak: equal memory, fewer replays.
void BM_RevolveAtReplay4Memory(benchmark::State& state) {
  metagradient_cost(state, metagrad::Revolve{metagrad::checkpoint_plan(metagrad::Replay{4}, state.range(0)).stored_states});
}
/// A convolutional network's run (the goal: 1,000 steps in under 1 GB).
void BM_LeNetRevolve32(benchmark::State& state) { metagradient_cost<bench::LeNetLrScheduleRun>(state, metagrad::Revolve{32}); }

}  // namespace

BENCHMARK(BM_StoreAll)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Replay4)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_RevolveAtReplay4Memory)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_LeNetRevolve32)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_MAIN();
