// Question: how do metagrad's convolutional networks compare with LibTorch's (Debian's libtorch-dev 1.13) on the same
// gradient, and what does their Hessian-vector product cost? LeNet-5 (ReLU, max pooling) and a small ResNet (widths
// 16 and 32, one residual block per stage, batch norm before each ReLU) on MNIST-sized inputs [128, 1, 28, 28], softmax
// cross-entropy, in double precision (LibTorch's convolutions then run im2col and OpenBLAS) and in single precision
// (where LibTorch's run on oneDNN), METAGRAD_BENCH_THREADS threads each (default 1).
// Goals: LibTorch / metagrad >= 1.0 for each network's gradient at batch 128; metagrad's HVP <= 2.5x its gradient. A
// training step (gradient and SGD update) is timed beside them.
// Each ratio alternates the two contenders within every iteration.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <metagrad/metagrad.hpp>

#include "alternating.hpp"
#include "threads.hpp"

namespace {

using namespace metagrad;
constexpr index_t batch = 128;

template <class T>
torch::Tensor to_torch(const Tensor<T>& t) {
  std::vector<int64_t> shape;
  for (int i = 0; i < t.rank(); ++i) shape.push_back(t.shape()[i]);
  const auto dtype = std::is_same_v<T, double> ? torch::kFloat64 : torch::kFloat32;
  return torch::from_blob(const_cast<T*>(t.data()), shape, torch::TensorOptions().dtype(dtype)).clone();
}

/// The largest difference between the two results, relative to the largest magnitude of metagrad's.
template <class T>
double relative_difference(const std::vector<torch::Tensor>& a, const std::vector<Tensor<T>>& b) {
  double d = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto t = a[i].contiguous();
    for (index_t j = 0; j < b[i].size(); ++j) {
      d = std::max(d, std::abs(double(t.data_ptr<T>()[j]) - double(b[i].data()[j])));
      scale = std::max(scale, std::abs(double(b[i].data()[j])));
    }
  }
  return d / scale;
}

/// What counts as the same result: rounding differences only.
template <class T>
constexpr double agreement = std::is_same_v<T, double> ? 1e-10 : 1e-3;

/// A network's loss on one batch, for metagrad (a template over the carrier) and for LibTorch (the same layers).
template <class T>
struct LeNetProblem {
  using value_type = T;
  LeNet5<T> model;
  static const char* name() { return "LeNet-5"; }
  template <class P, class X> auto logits(const std::vector<P>& p, const X& x) const { return model.logits(p, x); }
  static torch::Tensor torch_logits(const std::vector<torch::Tensor>& p, const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    auto h = F::max_pool2d(torch::relu(F::conv2d(x, p[0], F::Conv2dFuncOptions().bias(p[1]).padding(2))), F::MaxPool2dFuncOptions(2));
    h = F::max_pool2d(torch::relu(F::conv2d(h, p[2], F::Conv2dFuncOptions().bias(p[3]))), F::MaxPool2dFuncOptions(2));
    auto d = torch::relu(torch::matmul(h.flatten(1), p[4]) + p[5]);
    d = torch::relu(torch::matmul(d, p[6]) + p[7]);
    return torch::matmul(d, p[8]) + p[9];
  }
};

template <class T>
struct ResNetProblem {
  using value_type = T;
  ResNet<T> model;  // widths {16, 32}, one block per stage, batch norm before the activation
  static const char* name() { return "ResNet"; }
  template <class P, class X> auto logits(const std::vector<P>& p, const X& x) const { return model.logits(p, x); }
  static torch::Tensor torch_logits(const std::vector<torch::Tensor>& p, const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    std::size_t k = 0;
    const auto unit = [&](const torch::Tensor& h, int64_t stride) {
      auto y = F::conv2d(h, p[k], F::Conv2dFuncOptions().stride(stride).padding(1));
      y = F::batch_norm(y, torch::Tensor(), torch::Tensor(), F::BatchNormFuncOptions().weight(p[k + 1]).bias(p[k + 2]).training(true));
      k += 3;
      return torch::relu(y);
    };
    auto h = unit(x, 1);
    h = h + unit(unit(h, 1), 1);
    h = unit(h, 2);
    h = h + unit(unit(h, 1), 1);
    return torch::matmul(h.mean({2, 3}), p[k]) + p[k + 1];
  }
};

template <class Problem>
struct Setup {
  using T = typename Problem::value_type;
  Problem problem;
  Tensor<T> x = Tensor<T>::random_uniform({batch, 1, 28, 28}, 1);
  IndexVector labels;
  std::vector<Tensor<T>> params = problem.model.init(2), direction;
  torch::Tensor tx = to_torch(x), tlabels;
  std::vector<torch::Tensor> tparams, tdirection;

  Setup() {
    std::vector<int64_t> y;
    for (index_t i = 0; i < batch; ++i) labels.push_back((i * 7) % 10), y.push_back((i * 7) % 10);
    tlabels = torch::tensor(y, torch::TensorOptions().dtype(torch::kLong));
    for (std::size_t i = 0; i < params.size(); ++i) {
      direction.push_back(Tensor<T>::random_normal(params[i].shape(), 10 + i));
      tparams.push_back(to_torch(params[i]).requires_grad_(true));
      tdirection.push_back(to_torch(direction[i]));
    }
  }
  template <class P> Var<T> loss(const std::vector<P>& p) const { return mean(cross_entropy(problem.logits(p, x), labels)); }
  torch::Tensor torch_loss() const {
    return torch::nn::functional::cross_entropy(Problem::torch_logits(tparams, tx), tlabels);
  }

  std::vector<Tensor<T>> gradient() const { return loss_and_gradient(params, [&](const auto& p) { return loss(p); }).second; }
  std::vector<Tensor<T>> hessian_vector_product() const {
    Tape<T> tape;
    std::vector<Var<T>> p;
    for (const auto& t : params) p.push_back(tape.variable(t));
    return hvp(loss(p), p, direction);
  }
  std::vector<torch::Tensor> torch_gradient() const { return torch::autograd::grad({torch_loss()}, tparams); }
  std::vector<torch::Tensor> torch_hvp() const {
    const auto g = torch::autograd::grad({torch_loss()}, tparams, {}, true, true);
    torch::Tensor g_dot_v = (g[0] * tdirection[0]).sum();
    for (std::size_t i = 1; i < g.size(); ++i) g_dot_v = g_dot_v + (g[i] * tdirection[i]).sum();
    return torch::autograd::grad({g_dot_v}, tparams);
  }
};

template <class Problem>
void BM_GradientLibTorchOverMetagrad(benchmark::State& state) {
  const Setup<Problem> s;
  const double mismatch = relative_difference(s.torch_gradient(), s.gradient());
  if (mismatch > agreement<typename Problem::value_type>) state.SkipWithError("LibTorch and metagrad gradients differ");
  bench::time_alternately(state, "libtorch", [&] { return s.torch_gradient(); }, "metagrad", [&] { return s.gradient(); });
  state.counters["relative_diff"] = mismatch;
}

template <class Problem>
void BM_HvpLibTorchOverMetagrad(benchmark::State& state) {
  const Setup<Problem> s;
  const double mismatch = relative_difference(s.torch_hvp(), s.hessian_vector_product());
  if (mismatch > agreement<typename Problem::value_type>)
    state.SkipWithError("LibTorch and metagrad Hessian-vector products differ");
  bench::time_alternately(state, "libtorch", [&] { return s.torch_hvp(); }, "metagrad",
                          [&] { return s.hessian_vector_product(); });
  state.counters["relative_diff"] = mismatch;
}

/// A training step on a batch: the gradient and a momentum-free SGD update of the parameters (metagrad's pure
/// `step`, LibTorch's in-place update without recording).
template <class Problem>
void BM_StepLibTorchOverMetagrad(benchmark::State& state) {
  using T = typename Problem::value_type;
  Setup<Problem> s;
  const T rate = T(0.01);
  s.gradient(), s.torch_gradient();  // memory paged in before the timing
  bench::time_alternately(
      state, "libtorch",
      [&] {
        const auto g = s.torch_gradient();
        torch::NoGradGuard no_grad;
        for (std::size_t i = 0; i < g.size(); ++i) s.tparams[i].sub_(g[i], rate);
        return g.size();
      },
      "metagrad",
      [&] {
        auto g = s.gradient();
        auto [params, sgd] = metagrad::step(Sgd<T>{}, std::move(s.params), g, SgdState<Tensor<T>>{}, rate);
        s.params = std::move(params);
        return g.size();
      });
}

/// metagrad's HVP over its own gradient (goal <= 2.5).
template <class Problem>
void BM_HvpOverGradient(benchmark::State& state) {
  const Setup<Problem> s;
  s.hessian_vector_product();  // the first one page-faults its memory in (a second each on the ResNet in double)
  bench::time_alternately(state, "hvp", [&] { return s.hessian_vector_product(); }, "gradient", [&] { return s.gradient(); });
}

}  // namespace

#define CNN_BENCHMARKS(Problem, name)                                                                                \
  BENCHMARK(BM_GradientLibTorchOverMetagrad<Problem>)->Name(name "/gradient/libtorch_over_metagrad")->Unit(benchmark::kMillisecond)->MinTime(3.0); \
  BENCHMARK(BM_HvpLibTorchOverMetagrad<Problem>)->Name(name "/hvp/libtorch_over_metagrad")->Unit(benchmark::kMillisecond)->MinTime(3.0);           \
  BENCHMARK(BM_StepLibTorchOverMetagrad<Problem>)->Name(name "/training_step/libtorch_over_metagrad")->Unit(benchmark::kMillisecond)->MinTime(3.0); \
  BENCHMARK(BM_HvpOverGradient<Problem>)->Name(name "/metagrad/hvp_over_gradient")->Unit(benchmark::kMillisecond)->MinTime(3.0)
CNN_BENCHMARKS(LeNetProblem<double>, "LeNet5<double>");
CNN_BENCHMARKS(ResNetProblem<double>, "ResNet<double>");
CNN_BENCHMARKS(LeNetProblem<float>, "LeNet5<float>");
CNN_BENCHMARKS(ResNetProblem<float>, "ResNet<float>");

int main(int argc, char** argv) {
  torch::set_num_threads(bench::threads);
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("libtorch_threads", std::to_string(torch::get_num_threads()));
  benchmark::AddCustomContext("libtorch_mkldnn", at::hasMKLDNN() ? "yes" : "no");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
