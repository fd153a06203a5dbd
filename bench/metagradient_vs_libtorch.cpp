// Question: against LibTorch 1.13's way of taking a metagradient — create_graph through every training step, so the
// whole run's graph is kept — what does metagrad's checkpointed engine cost in time and memory?
// MLP 784-100-10 tanh, SGD, batch 128, double, one thread each (OMP_NUM_THREADS=1, OpenBLAS with the right core type:
// see the README); metagradient of the held-out loss with respect to the per-step learning-rate schedule.
// metagrad runs revolve with 100 checkpoint slots (64 MB of states). Goals at T = 400: peak memory ≤ 0.1× LibTorch's and time
// ≤ 1.25× LibTorch's, the same metagradient to 1e-10 relative. Also T = 2,000 (both) and T = 10,000 (metagrad only:
// LibTorch would need about 30 GB). Memory is the growth of the resident set's high-water mark over what the process
// held before the contender started (extra_MB).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "lr_schedule_run.hpp"
#include "memory.hpp"
#include "threads.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::int64_t checkpoint_slots = 100;

double resident_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

torch::Tensor to_torch(const metagrad::Tensor<double>& t) {
  std::vector<int64_t> shape;
  for (int i = 0; i < t.rank(); ++i) shape.push_back(t.shape()[i]);
  return torch::from_blob(const_cast<double*>(t.data()), shape, torch::TensorOptions().dtype(torch::kFloat64)).clone();
}

torch::Tensor to_torch(const metagrad::IndexVector& labels) {
  return torch::tensor(std::vector<int64_t>(labels.begin(), labels.end()), torch::TensorOptions().dtype(torch::kLong));
}

/// The same run in LibTorch, the way a PyTorch user takes this metagradient: one graph through all steps.
struct TorchRun {
  torch::Tensor inputs, labels, validation_inputs, validation_labels;
  std::vector<torch::Tensor> initial;
  const bench::LrScheduleRun& run;

  explicit TorchRun(const bench::LrScheduleRun& r)
      : inputs(to_torch(r.inputs)), labels(to_torch(r.labels)), validation_inputs(to_torch(r.validation_inputs)),
        validation_labels(to_torch(r.validation_labels)), run(r) {
    for (const auto& p : r.initial) initial.push_back(to_torch(p));
  }

  static torch::Tensor loss(const std::vector<torch::Tensor>& p, const torch::Tensor& x, const torch::Tensor& y) {
    return torch::nn::functional::cross_entropy(torch::matmul(torch::tanh(torch::matmul(x, p[0]) + p[1]), p[2]) + p[3], y);
  }

  std::pair<double, torch::Tensor> metagradient(const metagrad::Tensor<double>& schedule, std::int64_t steps) const {
    const torch::Tensor lr = to_torch(schedule).requires_grad_(true);
    std::vector<torch::Tensor> theta;
    for (const auto& p : initial) theta.push_back(p.clone().requires_grad_(true));
    for (std::int64_t t = 0; t < steps; ++t) {
      const metagrad::IndexVector rows = run.order.batch(t);
      const torch::Tensor index = to_torch(rows);
      const auto g = torch::autograd::grad({loss(theta, inputs.index_select(0, index), labels.index_select(0, index))}, theta,
                                           {}, /*retain_graph=*/true, /*create_graph=*/true);
      for (std::size_t i = 0; i < theta.size(); ++i) theta[i] = theta[i] - lr[t] * g[i];
    }
    const torch::Tensor objective = loss(theta, validation_inputs, validation_labels);
    return {objective.item<double>(), torch::autograd::grad({objective}, {lr})[0]};
  }
};

double relative_difference(const torch::Tensor& a, const metagrad::Tensor<double>& b) {
  double diff = 0, norm = 0;
  const torch::Tensor c = a.contiguous();
  for (metagrad::index_t j = 0; j < b.size(); ++j) {
    diff = std::max(diff, std::abs(c.data_ptr<double>()[j] - b.data()[j]));
    norm = std::max(norm, std::abs(b.data()[j]));
  }
  return diff / norm;
}

template <class F>
double timed(F f, double& extra_mb) {
  bench::reset_peak_memory();
  const double before = resident_mb();
  const auto t0 = clock_type::now();
  f();
  const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
  extra_mb = bench::peak_memory_mb() - before;
  return s;
}

void BM_MetagradientLibTorchOverMetagrad(benchmark::State& state) {
  const bench::LrScheduleRun run;
  const TorchRun torch_run(run);
  const std::int64_t steps = state.range(0);
  const metagrad::Tensor<double> schedule = metagrad::Tensor<double>::full({steps}, 0.05);
  const metagrad::Revolve policy{checkpoint_slots};
  double torch_s = 0, ours_s = 0, torch_mb = 0, ours_mb = 0, mismatch = 0;
  for (auto _ : state) {
    std::pair<double, torch::Tensor> theirs;
    metagrad::MetagradientResult<double, bench::LrScheduleRun::Meta<metagrad::Tensor<double>>> ours;
    torch_s += timed([&] { theirs = torch_run.metagradient(schedule, steps); }, torch_mb);
    ours_s += timed([&] { ours = metagrad::metagradient(run, {schedule}, steps, policy); }, ours_mb);
    mismatch = std::max(relative_difference(theirs.second, ours.gradient.lr_schedule), std::abs(theirs.first - ours.objective));
  }
  if (mismatch > 1e-10) state.SkipWithError("LibTorch and metagrad metagradients differ");
  const auto n = static_cast<double>(state.iterations());
  state.counters["libtorch_s"] = torch_s / n;
  state.counters["metagrad_s"] = ours_s / n;
  state.counters["metagrad/libtorch_time"] = ours_s / torch_s;
  state.counters["libtorch_extra_MB"] = torch_mb;
  state.counters["metagrad_extra_MB"] = ours_mb;
  state.counters["metagrad/libtorch_memory"] = ours_mb / torch_mb;
  state.counters["relative_diff"] = mismatch;
}

void BM_MetagradientAlone(benchmark::State& state) {
  const bench::LrScheduleRun run;
  const std::int64_t steps = state.range(0);
  const metagrad::Tensor<double> schedule = metagrad::Tensor<double>::full({steps}, 0.05);
  double s = 0, mb = 0;
  for (auto _ : state) s += timed([&] { benchmark::DoNotOptimize(metagrad::metagradient(run, {schedule}, steps, metagrad::Revolve{checkpoint_slots})); }, mb);
  state.counters["metagrad_s"] = s / static_cast<double>(state.iterations());
  state.counters["metagrad_extra_MB"] = mb;
}

}  // namespace

BENCHMARK(BM_MetagradientLibTorchOverMetagrad)->Arg(400)->Arg(2000)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_MetagradientAlone)->Arg(10000)->Unit(benchmark::kSecond)->Iterations(1);

int main(int argc, char** argv) {
  torch::set_num_threads(bench::threads);
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("libtorch_threads", std::to_string(torch::get_num_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
