// Question: does every broadcast pattern of rank <= 4, and every sum_to, run at memory bandwidth? Each pattern's
// binary op (a − b) and its adjoint (sum_to of the large operand to the small one's shape) is timed in double, one
// thread, about 8 M output elements, and reported as GB/s of memory traffic (output plus inputs read) and as a ratio to
// the same-shape subtraction, the bandwidth every pattern should reach (goal: >= 0.8 for the binary ops).
// Built against LibTorch (bench_broadcast_vs_libtorch, the bench preset with libtorch-dev installed), each pattern is
// also timed alternately with LibTorch's and the ratio LibTorch / metagrad printed (goal: >= 1.0).
#include <benchmark/benchmark.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "metagrad/metagrad.hpp"
#include "threads.hpp"
#ifdef METAGRAD_BENCH_WITH_LIBTORCH
#include <torch/torch.h>

#include "alternating.hpp"
#endif

namespace {

using metagrad::Shape;
using TD = metagrad::Tensor<double>;

struct Pattern {
  const char* name;
  Shape big, small;
};

// 8,388,608 output elements in every pattern.
const std::vector<Pattern> patterns = {
    {"[n,d] - [n,d]", {8192, 1024}, {8192, 1024}},
    {"[n,d] - []", {8192, 1024}, {}},
    {"[n,d] - [d]", {8192, 1024}, {1024}},
    {"[n,d] - [1,d]", {8192, 1024}, {1, 1024}},
    {"[n,d] - [n,1]", {8192, 1024}, {8192, 1}},
    {"[K,n,d] - [K,1,d]", {64, 2048, 64}, {64, 1, 64}},
    {"[K,n,d] - [1,n,d]", {64, 2048, 64}, {1, 2048, 64}},
    {"[K,n,d] - [K,n,1]", {64, 2048, 64}, {64, 2048, 1}},
    {"[K,n,d] - [K,1,1]", {64, 2048, 64}, {64, 1, 1}},
    {"[a,b,c,d] - [a,1,c,1]", {16, 32, 128, 128}, {16, 1, 128, 1}},
    {"[a,b,c,d] - [1,b,1,d]", {16, 32, 128, 128}, {1, 32, 1, 128}},
    {"[a,b,c,d] - [a,b,1,1]", {16, 32, 128, 128}, {16, 32, 1, 1}},
};

double seconds_of(const std::function<void()>& f, int repeats) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeats;
}

void BM_Broadcast(benchmark::State& state) {
  const Pattern& p = patterns[static_cast<std::size_t>(state.range(0))];
  const bool adjoint = state.range(1) != 0;
  const TD a = TD::random_normal(p.big, 1), b = TD::random_normal(p.small, 2);
  const TD reference_a = TD::random_normal(p.big, 3), reference_b = TD::random_normal(p.big, 4);
  const double bytes = 8.0 * (adjoint ? a.size() + b.size() : 2.0 * a.size() + b.size());
  double ours = 0, reference = 0;
  for (auto _ : state) {
    ours += seconds_of([&] { benchmark::DoNotOptimize(adjoint ? sum_to(a, p.small) : a - b); }, 1);
    reference += seconds_of([&] { benchmark::DoNotOptimize(reference_a - reference_b); }, 1);
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["GB/s"] = bytes * n / ours / 1e9;
  state.counters["vs_same_shape"] = (bytes / (ours / n)) / (3.0 * 8.0 * static_cast<double>(a.size()) / (reference / n));
  state.SetLabel(std::string(adjoint ? "sum_to " : "") + p.name);
}

// sum_to a trailing shape ([n, d] -> [d], every bias gradient) against the Eigen expression it replaced, which sums
// in the same order (the same bits) but reads x one packet-wide column at a time.
void BM_SumRowsOverEigen(benchmark::State& state) {
  const metagrad::index_t n = state.range(0), d = state.range(1);
  const TD x = TD::random_normal({n, d}, 1);
  const auto eigen = [&] {
    TD out = TD::uninitialized({d});
    out.array() = Eigen::Map<const Eigen::Array<double, Eigen::Dynamic, Eigen::Dynamic>>(x.data(), d, n).rowwise().sum();
    return out;
  };
  const auto ours = [&] { return sum_to(x, {d}); };
  if (!(ours() == eigen())) state.SkipWithError("sum_to and Eigen's rowwise sum differ");
  double ours_s = 0, eigen_s = 0;
  for (auto _ : state) {
    ours_s += seconds_of([&] { benchmark::DoNotOptimize(ours()); }, 1);
    eigen_s += seconds_of([&] { benchmark::DoNotOptimize(eigen()); }, 1);
  }
  state.counters["eigen/sum_to"] = eigen_s / ours_s;
  state.counters["GB/s"] = 8.0 * static_cast<double>(x.size()) * static_cast<double>(state.iterations()) / ours_s / 1e9;
}

#ifdef METAGRAD_BENCH_WITH_LIBTORCH
torch::Tensor to_torch(const TD& t) {
  std::vector<int64_t> shape;
  for (int i = 0; i < t.rank(); ++i) shape.push_back(t.shape()[i]);
  return torch::from_blob(const_cast<double*>(t.data()), shape, torch::TensorOptions().dtype(torch::kFloat64)).clone();
}

void BM_BroadcastLibTorchOverMetagrad(benchmark::State& state) {
  const Pattern& p = patterns[static_cast<std::size_t>(state.range(0))];
  const bool adjoint = state.range(1) != 0;
  const TD a = TD::random_normal(p.big, 1), b = TD::random_normal(p.small, 2);
  const torch::Tensor ta = to_torch(a), tb = to_torch(b);
  std::vector<int64_t> dims;  // sum_to in LibTorch: sum over the broadcast axes, keeping the small one's shape
  for (int i = 0; i < p.big.rank(); ++i) {
    const int j = i - (p.big.rank() - p.small.rank());
    if (j < 0 || (p.small[j] == 1 && p.big[i] != 1)) dims.push_back(i);
  }
  std::vector<int64_t> small_shape;
  for (int i = 0; i < p.small.rank(); ++i) small_shape.push_back(p.small[i]);
  const auto torch_sum_to = [&] { return dims.empty() ? ta.clone() : ta.sum(dims, /*keepdim=*/true).reshape(small_shape); };
  if (adjoint) {
    const TD ours = sum_to(a, p.small);
    const auto theirs = torch_sum_to().contiguous();
    double d = 0;
    for (metagrad::index_t i = 0; i < ours.size(); ++i) d = std::max(d, std::abs(ours.data()[i] - theirs.data_ptr<double>()[i]));
    state.counters["max_abs_diff"] = d;
    bench::time_alternately(state, "libtorch", torch_sum_to, "metagrad", [&] { return sum_to(a, p.small); });
  } else {
    bench::time_alternately(state, "libtorch", [&] { return ta - tb; }, "metagrad", [&] { return a - b; });
  }
  state.SetLabel(std::string(adjoint ? "sum_to " : "") + p.name);
}
#endif

void all_patterns(benchmark::internal::Benchmark* b) {
  for (int adjoint = 0; adjoint < 2; ++adjoint)
    for (std::size_t i = 0; i < patterns.size(); ++i) b->Args({static_cast<int64_t>(i), adjoint});
}

}  // namespace

BENCHMARK(BM_Broadcast)->Apply(all_patterns)->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_SumRowsOverEigen)
    ->Args({8192, 1024})
    ->Args({128, 256})
    ->Args({10000, 64})
    ->Args({100000, 10})
    ->Args({50000, 16})
    ->Args({50000, 24})
    ->Args({50000, 32})
    ->Unit(benchmark::kMicrosecond)->MinTime(0.5);
#ifdef METAGRAD_BENCH_WITH_LIBTORCH
BENCHMARK(BM_BroadcastLibTorchOverMetagrad)->Apply(all_patterns)->Unit(benchmark::kMillisecond)->MinTime(0.5);
#endif
BENCHMARK_MAIN();
