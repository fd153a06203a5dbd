// Question: how does metagrad compare with LibTorch (Debian's libtorch-dev 1.13) on the same gradient and the
// same Hessian-vector product? MLP 784-256-10, tanh, softmax cross-entropy, batch 128, double, one thread
// each (run with OMP_NUM_THREADS=1; LibTorch should use OpenBLAS: install libopenblas0-openmp).
// Goal: LibTorch / metagrad >= 1.0 on both. Each ratio alternates the two libraries within every iteration.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "alternating.hpp"
#include "mlp.hpp"
#include "threads.hpp"

namespace {

/// The same problem as LibTorch tensors (copied from metagrad's, so both see identical numbers).
struct TorchProblem {
  torch::Tensor x, labels;
  std::vector<torch::Tensor> params, direction;

  explicit TorchProblem(const bench::Problem& pb) {
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    auto from = [&](const metagrad::Tensor<double>& t) {
      std::vector<int64_t> shape;
      for (int i = 0; i < t.rank(); ++i) shape.push_back(t.shape()[i]);
      return torch::from_blob(const_cast<double*>(t.data()), shape, f64).clone();
    };
    x = from(pb.x);
    std::vector<int64_t> y(pb.labels.begin(), pb.labels.end());
    labels = torch::tensor(y, torch::TensorOptions().dtype(torch::kLong));
    for (const auto& p : pb.params) params.push_back(from(p).requires_grad_(true));
    for (const auto& v : pb.direction) direction.push_back(from(v));
  }

  torch::Tensor loss() const {
    const auto h = torch::tanh(torch::matmul(x, params[0]) + params[1]);
    return torch::nn::functional::cross_entropy(torch::matmul(h, params[2]) + params[3], labels);
  }
  std::vector<torch::Tensor> gradient() const { return torch::autograd::grad({loss()}, params); }
  std::vector<torch::Tensor> hvp() const {
    const auto g = torch::autograd::grad({loss()}, params, {}, /*retain_graph=*/true, /*create_graph=*/true);
    torch::Tensor g_dot_v = (g[0] * direction[0]).sum();
    for (std::size_t i = 1; i < g.size(); ++i) g_dot_v = g_dot_v + (g[i] * direction[i]).sum();
    return torch::autograd::grad({g_dot_v}, params);
  }
};

double max_diff(const std::vector<torch::Tensor>& a, const std::vector<metagrad::Tensor<double>>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto t = a[i].contiguous();
    for (metagrad::index_t j = 0; j < b[i].size(); ++j) d = std::max(d, std::abs(t.data_ptr<double>()[j] - b[i].data()[j]));
  }
  return d;
}

template <class Torch, class Ours>
void ratio(benchmark::State& state, Torch torch_fn, Ours ours_fn, double mismatch) {
  if (mismatch > 1e-10) state.SkipWithError("LibTorch and metagrad results differ");
  bench::time_alternately(state, "libtorch", torch_fn, "metagrad", ours_fn);
  state.counters["max_abs_diff"] = mismatch;
}

void BM_GradientLibTorchOverMetagrad(benchmark::State& state) {
  const bench::Problem pb;
  const TorchProblem tp(pb);
  bench::TapeModel model(pb);
  ratio(state, [&] { return tp.gradient(); }, [&] { return bench::tape_gradient(model, pb); },
        max_diff(tp.gradient(), bench::tape_gradient(model, pb)));
}

void BM_HvpLibTorchOverMetagrad(benchmark::State& state) {
  const bench::Problem pb;
  const TorchProblem tp(pb);
  bench::TapeModel model(pb);
  ratio(state, [&] { return tp.hvp(); }, [&] { return bench::tape_hvp(model, pb); },
        max_diff(tp.hvp(), bench::tape_hvp(model, pb)));
}

/// Context for the two above: the one large product of the forward pass, X·W1, alone.
void BM_MatmulLibTorchOverMetagrad(benchmark::State& state) {
  const bench::Problem pb;
  const TorchProblem tp(pb);
  const auto w1 = tp.params[0].detach();
  const auto ours = metagrad::matmul(pb.x, pb.params[0]);
  const auto theirs = torch::matmul(tp.x, w1).contiguous();
  double mismatch = 0;
  for (metagrad::index_t j = 0; j < ours.size(); ++j)
    mismatch = std::max(mismatch, std::abs(theirs.data_ptr<double>()[j] - ours.data()[j]));
  ratio(state, [&] { return torch::matmul(tp.x, w1); }, [&] { return metagrad::matmul(pb.x, pb.params[0]); }, mismatch);
}

}  // namespace

BENCHMARK(BM_MatmulLibTorchOverMetagrad)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_GradientLibTorchOverMetagrad)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_HvpLibTorchOverMetagrad)->Unit(benchmark::kMillisecond)->MinTime(3.0);

int main(int argc, char** argv) {
  torch::set_num_threads(bench::threads);
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("libtorch_threads", std::to_string(torch::get_num_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
