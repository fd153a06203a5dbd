// Question: what does a data-parallel training step cost on 1 rank and on 2, and what does the exchange cost?
// Run under MPI with two ranks: `mpirun -np 2 build/release/bench/bench_distributed` (one thread per rank; rank 0
// reports). Every iteration times, alternately, one rank computing the batch's gradient in one piece (whole), one rank
// computing all S virtual shards (one) and the two ranks computing S/2 each (two), on the MLP 784-256-10 (double)
// with an SGD update, for batch 128 and 1024 and S = 2 and 8. one/two is the speedup of the ranks, whole/two that
// over the unsharded step; same_bits that one rank and two end with the same parameters; bytes_per_step what each
// rank receives. Each shard's gradient is a full gradient, so S costs S gradients' worth of memory traffic.
// BM_MetagradientOneOverTwoRanks times bench_metagradient's lr-schedule metagradient on one rank and on two.
// BM_MetaTrainingOneOverTwoRanks times meta_train in one process against distributed::meta_train on two ranks.
// BM_AllGather measures the exchange's latency (α, at 8 bytes) and inverse bandwidth (β, at 2 MB) for the README's
// cost model.
#include <benchmark/benchmark.h>

#include <metagrad/distributed/distributed.hpp>

#include <chrono>
#include <optional>

#include "lr_schedule_run.hpp"
#include "mlp.hpp"
#include "noise_digits.hpp"

namespace {

using namespace metagrad;
using clock_type = std::chrono::steady_clock;

const distributed::Communicator& world() {
  static const distributed::Communicator communicator;
  return communicator;
}

/// One SGD step (step size 0.01) with the gradient over `plan`'s shards of the batch (x, labels).
template <class Communicator>
void sgd_step(ParamList<Tensor<double>>& params, const ShardPlan& plan, const Tensor<double>& x,
              const IndexVector& labels, const Communicator& communicator) {
  auto [loss, g] = sharded_loss_and_gradient(params, plan, [&](const ParamList<Var<double>>& p, const Shard& s) {
    const IndexVector y(labels.begin() + s.begin, labels.begin() + s.end);
    return bench::loss(p, slice(x, 0, s.begin, s.size()), y) * s.fraction();
  }, communicator);
  for (std::size_t i = 0; i < params.size(); ++i) params[i].array() -= 0.01 * g[i].array();
}

/// Times, in each iteration, rank 0 running whole() and then one(), and then every rank running all() together, and
/// reports the times, their ratios and the bytes each rank received per iteration (as the counter `bytes_name`).
template <class Whole, class One, class All>
void time_whole_one_all(benchmark::State& state, const char* bytes_name, Whole whole, One one, All all) {
  double whole_s = 0, one_s = 0, all_s = 0;
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    world().barrier();
    const auto start = clock_type::now();
    if (world().rank() == 0) whole();
    world().barrier();
    const auto t0 = clock_type::now();
    if (world().rank() == 0) one();
    world().barrier();
    const auto t1 = clock_type::now();
    const std::uint64_t before = world().bytes_received();
    all();
    const auto t2 = clock_type::now();
    bytes += world().bytes_received() - before;
    whole_s += std::chrono::duration<double>(t0 - start).count();
    one_s += std::chrono::duration<double>(t1 - t0).count();
    all_s += std::chrono::duration<double>(t2 - t1).count();
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["whole_ms"] = 1e3 * whole_s / n;
  state.counters["one_ms"] = 1e3 * one_s / n;
  state.counters["two_ms"] = 1e3 * all_s / n;
  state.counters["one/two"] = one_s / all_s;
  state.counters["whole/two"] = whole_s / all_s;
  state.counters[bytes_name] = static_cast<double>(bytes) / n;
}

void BM_TrainingStepOneOverTwoRanks(benchmark::State& state) {
  const index_t batch = state.range(0);
  const std::int64_t shards = state.range(1);
  const bench::Problem pb;
  const Tensor<double> x = Tensor<double>::random_normal({batch, bench::inputs}, 1);
  IndexVector labels;
  for (index_t i = 0; i < batch; ++i) labels.push_back(i % bench::classes);
  const ShardPlan plan(batch, shards);
  auto whole = pb.params, one_rank = pb.params, all_ranks = pb.params;
  time_whole_one_all(
      state, "bytes_per_step", [&] { sgd_step(whole, ShardPlan(batch, 1), x, labels, SingleProcess{}); },
      [&] { sgd_step(one_rank, plan, x, labels, SingleProcess{}); }, [&] { sgd_step(all_ranks, plan, x, labels, world()); });
  state.counters["ranks"] = world().size();
  if (world().rank() == 0) state.counters["same_bits"] = tree_hash(one_rank) == tree_hash(all_ranks);
}
BENCHMARK(BM_TrainingStepOneOverTwoRanks)->ArgsProduct({{128, 1024}, {2, 8}})->Iterations(40)->Unit(benchmark::kMillisecond);

/// Meta-training as in bench_threads (c): a meta-batch of 2 MNIST-MLP optimizees (noise digits), one unroll of 20
/// steps each, float, with the held-out evaluation of 2 optimizees before and after; one rank against two.
void BM_MetaTrainingOneOverTwoRanks(benchmark::State& state) {
  const MnistMlpTask<float> task{&bench::noise_digits<float>()};
  const auto initial = LstmOptimizer<Tensor<float>>::initial(20, 1, GradientPreprocessing::moments());
  const MetaTrainingOptions options{.optimizee_steps = 20, .unroll = 20, .meta_iterations = 1, .meta_batch = 2,
                                    .evaluate_every = 1, .evaluation_optimizees = 2};
  double one_s = 0, all_s = 0;
  bool same = true;
  for (auto _ : state) {
    world().barrier();
    const auto t0 = clock_type::now();
    std::optional<MetaTrainingResult<float>> one;
    if (world().rank() == 0) one = meta_train(task, initial, options);
    world().barrier();
    const auto t1 = clock_type::now();
    const auto all = distributed::meta_train(world(), task, initial, options);
    const auto t2 = clock_type::now();
    if (one) same = same && one->meta_losses == all.meta_losses && one->evaluations == all.evaluations;
    one_s += std::chrono::duration<double>(t1 - t0).count();
    all_s += std::chrono::duration<double>(t2 - t1).count();
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["one_ms"] = 1e3 * one_s / n;
  state.counters["two_ms"] = 1e3 * all_s / n;
  state.counters["one/two"] = one_s / all_s;
  state.counters["optimizee_steps"] = 20 * 2 + 2 * 2 * 20;
  if (world().rank() == 0) state.counters["same_bits"] = same;
}
BENCHMARK(BM_MetaTrainingOneOverTwoRanks)->Iterations(3)->Unit(benchmark::kMillisecond);

/// The lr-schedule metagradient of bench_metagradient (MLP 784-100-10, batch 128, 100 steps, Replay{4}) with each
/// batch's gradient over S shards: the whole-batch run (whole) and the sharded one (one) on one rank, against the
/// sharded one on two ranks (two), which share each step's shards and the shards' vector–Jacobian products.
void BM_MetagradientOneOverTwoRanks(benchmark::State& state) {
  const std::int64_t steps = 100;
  const Tensor<double> schedule = Tensor<double>::full({steps}, 0.05);
  bench::LrScheduleRun whole, one_rank;
  one_rank.shards = state.range(0);
  bench::LrScheduleRunOn<distributed::Communicator> ranks;
  ranks.shards = state.range(0), ranks.communicator = &world();
  std::optional<MetagradientResult<double, bench::LrScheduleRun::Meta<Tensor<double>>>> one;
  bool same = true;
  time_whole_one_all(
      state, "bytes_per_metagradient", [&] { benchmark::DoNotOptimize(metagradient(whole, {schedule}, steps, Replay{4})); },
      [&] { one = metagradient(one_rank, {schedule}, steps, Replay{4}); },
      [&] {
        const auto all = metagradient(ranks, {schedule}, steps, Replay{4});
        if (one) same = same && one->objective == all.objective && one->gradient.lr_schedule == all.gradient.lr_schedule;
      });
  if (world().rank() == 0) state.counters["same_bits"] = same;
}
BENCHMARK(BM_MetagradientOneOverTwoRanks)->ArgName("shards")->Arg(2)->Arg(8)->Iterations(3)->Unit(benchmark::kMillisecond);

/// The exchange alone: every rank contributes `bytes` to an all-gather.
void BM_AllGather(benchmark::State& state) {
  const auto count = static_cast<std::int64_t>(state.range(0) / 8);
  const std::vector<double> mine(static_cast<std::size_t>(count), 1.0);
  const std::vector<std::int64_t> counts(static_cast<std::size_t>(world().size()), count);
  std::vector<double> all(mine.size() * counts.size());
  world().barrier();
  for (auto _ : state) {
    world().all_gather(std::span<const double>(mine), std::span<const std::int64_t>(counts), std::span<double>(all));
    benchmark::DoNotOptimize(all.data());
  }
  state.counters["bytes_per_rank"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_AllGather)->Arg(8)->Arg(2 << 20)->Iterations(200)->Unit(benchmark::kMicrosecond);

/// Reports nothing: the ranks other than 0 run the same collectives silently.
struct SilentReporter : benchmark::BenchmarkReporter {
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  const distributed::Environment mpi(argc, argv);
  set_num_threads(1);
  benchmark::Initialize(&argc, argv);
  if (world().rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    SilentReporter silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
}
