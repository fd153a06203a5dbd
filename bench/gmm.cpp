// Question: on a public autodiff benchmark that nobody here wrote — the Gaussian mixture model objective of ADBench
// (microsoft/ADBench, src/cpp/shared/gmm.h; the same objective is in gradbench) — does metagrad's gradient keep up
// with LibTorch's, and does it cost about three objectives, as reverse mode should (goal: gradient / objective <= 3.5)?
// The objective is written the two ways a user would, once for both carriers: all K components batched ([K, n, d]
// tensors and a batched matrix product) and a loop over the components ([n, d] tensors, one product each), at
// d ∈ {2, 10, 64}, K ∈ {5, 25, 200}, n ∈ {1,000, 10,000}, double, one thread. Every run checks the objective against
// a plain loop (ADBench's algorithm). Built against LibTorch (bench_gmm_vs_libtorch, the bench preset with
// libtorch-dev installed), the same two layouts are timed alternately in LibTorch: LibTorch / metagrad for the
// gradient (goal: >= 1.0) and the objective, and the largest relative difference of the gradients.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "metagrad/metagrad.hpp"
#include "threads.hpp"
#ifdef METAGRAD_BENCH_WITH_LIBTORCH
#include <torch/torch.h>
#endif

namespace {

using metagrad::index_t;
using metagrad::Shape;
using TD = metagrad::Tensor<double>;
using VD = metagrad::Var<double>;

/// One problem: K components in d dimensions, n points; icf holds each component's log-diagonal of its inverse
/// covariance factor Q, then the strictly lower part of Q column by column (ADBench's layout).
struct Gmm {
  index_t d, k, n;
  TD alphas, means, icf, x;
  metagrad::IndexVector upper;  ///< flat positions in [K, d, d] of Qᵀ's strictly upper part, in icf's order
  double gamma = 1, m = 0;      ///< the Wishart prior's parameters (ADBench's)
};

Gmm make_gmm(index_t d, index_t k, index_t n) {
  Gmm g{d, k, n, TD::random_normal({k}, 1), TD::random_uniform({k, d}, 2, 0, 1),
        TD::random_uniform({k, d * (d + 1) / 2}, 3, 0, 1), TD::random_uniform({n, d}, 4, 0, 1), {}};
  for (index_t c = 0; c < k; ++c)
    for (index_t i = 0; i < d; ++i)
      for (index_t j = i + 1; j < d; ++j) g.upper.push_back((c * d + i) * d + j);  // Qᵀ[i, j] = Q[j, i]
  return g;
}

/// The terms that do not depend on the parameters: the Gaussians' normalization and the Wishart prior's.
double constant_terms(const Gmm& g) {
  const double dof = static_cast<double>(g.d) + g.m + 1, d = static_cast<double>(g.d);
  double log_gamma_d = 0.25 * d * (d - 1) * std::log(std::numbers::pi);  // the multivariate log-gamma of dof / 2
  for (index_t j = 1; j <= g.d; ++j) log_gamma_d += std::lgamma(0.5 * dof + 0.5 * static_cast<double>(1 - j));
  const double wishart = dof * d * (std::log(g.gamma) - 0.5 * std::log(2.0)) - log_gamma_d;
  return -static_cast<double>(g.n) * d * 0.5 * std::log(2 * std::numbers::pi) - static_cast<double>(g.k) * wishart;
}

/// The log-posterior, in metagrad's op vocabulary, on plain tensors or on a tape.
template <class V> V objective(const Gmm& g, const V& alphas, const V& means, const V& icf, bool batched) {
  const index_t d = g.d, k = g.k, n = g.n, lower = d * (d - 1) / 2;
  const V q = slice(icf, 1, 0, d), l = slice(icf, 1, d, lower);
  const V qdiag = exp(q), sum_q = sum(q, 1, true);
  const V qt = diag_embed(qdiag) + scatter_add(reshape(l, {k * lower}), g.upper, Shape{k, d, d});  // Qᵀ per component
  const V bias = reshape(alphas, {k, 1}) + sum_q;
  V lse;  // [n]: log Σ_k exp(α_k + Σ q_k − ½|Q_k (x − μ_k)|²) for each point
  if (batched) {
    const V centered = constant_like(alphas, g.x.reshape({1, n, d})) - reshape(means, {k, 1, d});  // [K, n, d]
    const V qx = matmul(centered, qt);
    lse = logsumexp(bias - 0.5 * sum(qx * qx, 2), 0);
  } else {
    const V x = constant_like(alphas, g.x);
    std::vector<V> columns;  // [n, 1] each
    for (index_t c = 0; c < k; ++c) {
      const V qx = matmul(x - slice(means, 0, c, 1), reshape(slice(qt, 0, c, 1), {d, d}));
      columns.push_back(slice(bias, 0, c, 1) - 0.5 * sum(qx * qx, 1, true));
    }
    lse = logsumexp(concat(columns, 1), 1);
  }
  const V frobenius = sum(qdiag * qdiag) + sum(l * l);
  return sum(lse) - static_cast<double>(n) * logsumexp(alphas, 0) + 0.5 * g.gamma * g.gamma * frobenius -
         g.m * sum(sum_q) + constant_terms(g);
}

std::vector<TD> gradient(const Gmm& g, bool batched) {
  metagrad::Tape<double> tape;
  const VD alphas = tape.variable(g.alphas), means = tape.variable(g.means), icf = tape.variable(g.icf);
  return grad(objective(g, alphas, means, icf, batched), {alphas, means, icf});
}

/// ADBench's algorithm as plain loops, point by point: the reference for the objective's value.
double plain_objective(const Gmm& g) {
  const index_t d = g.d, k = g.k, size = d * (d + 1) / 2;
  const double *alphas = g.alphas.data(), *icf = g.icf.data();
  std::vector<double> qx(static_cast<std::size_t>(d)), terms(static_cast<std::size_t>(k));
  const auto log_sum_exp = [](const double* v, index_t count) {
    double top = v[0], s = 0;
    for (index_t i = 1; i < count; ++i) top = std::max(top, v[i]);
    for (index_t i = 0; i < count; ++i) s += std::exp(v[i] - top);
    return std::log(s) + top;
  };
  double total = 0, prior = 0;
  for (index_t c = 0; c < k; ++c) {
    const double* f = icf + c * size;
    for (index_t i = 0; i < d; ++i) prior += 0.5 * g.gamma * g.gamma * std::exp(2 * f[i]) - g.m * f[i];
    for (index_t i = d; i < size; ++i) prior += 0.5 * g.gamma * g.gamma * f[i] * f[i];
  }
  for (index_t p = 0; p < g.n; ++p) {
    for (index_t c = 0; c < k; ++c) {
      const double *f = icf + c * size, *mu = g.means.data() + c * d, *x = g.x.data() + p * d;
      double sum_q = 0, squares = 0;
      for (index_t i = 0; i < d; ++i) qx[i] = std::exp(f[i]) * (x[i] - mu[i]), sum_q += f[i];
      for (index_t i = 0, at = d; i < d; ++i)
        for (index_t j = i + 1; j < d; ++j) qx[j] += f[at++] * (x[i] - mu[i]);
      for (index_t i = 0; i < d; ++i) squares += qx[i] * qx[i];
      terms[c] = alphas[c] + sum_q - 0.5 * squares;
    }
    total += log_sum_exp(terms.data(), k);
  }
  return total - static_cast<double>(g.n) * log_sum_exp(alphas, k) + prior + constant_terms(g);
}

double seconds(const auto& f) {
  const auto t0 = std::chrono::steady_clock::now();
  benchmark::DoNotOptimize(f());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

#ifdef METAGRAD_BENCH_WITH_LIBTORCH
torch::Tensor to_torch(const TD& t) {
  std::vector<int64_t> shape;
  for (int i = 0; i < t.rank(); ++i) shape.push_back(t.shape()[i]);
  return torch::from_blob(const_cast<double*>(t.data()), shape, torch::TensorOptions().dtype(torch::kFloat64)).clone();
}

/// The same objective in LibTorch, written as a LibTorch user would.
struct TorchGmm {
  const Gmm& g;
  torch::Tensor alphas = to_torch(g.alphas), means = to_torch(g.means), icf = to_torch(g.icf), x = to_torch(g.x);
  torch::Tensor upper = torch::tensor(std::vector<int64_t>(g.upper.begin(), g.upper.end()), torch::kLong);

  torch::Tensor objective(const torch::Tensor& a, const torch::Tensor& mu, const torch::Tensor& f, bool batched) const {
    const int64_t d = g.d, k = g.k, lower = d * (d - 1) / 2;
    const auto q = f.narrow(1, 0, d), l = f.narrow(1, d, lower);
    const auto qdiag = q.exp(), sum_q = q.sum(1, true);
    const auto qt = torch::diag_embed(qdiag) +
                    torch::zeros({k * d * d}, x.options()).index_add(0, upper, l.reshape({k * lower})).view({k, d, d});
    const auto bias = a.reshape({k, 1}) + sum_q;
    torch::Tensor lse;
    if (batched) {
      const auto qx = torch::matmul(x.unsqueeze(0) - mu.unsqueeze(1), qt);
      lse = torch::logsumexp(bias - 0.5 * (qx * qx).sum(2), 0);
    } else {
      std::vector<torch::Tensor> columns;
      for (int64_t c = 0; c < k; ++c) {
        const auto qx = torch::matmul(x - mu.narrow(0, c, 1), qt[c]);
        columns.push_back(bias.narrow(0, c, 1) - 0.5 * (qx * qx).sum(1, true));
      }
      lse = torch::logsumexp(torch::cat(columns, 1), 1);
    }
    return lse.sum() - static_cast<double>(g.n) * torch::logsumexp(a, 0) +
           0.5 * g.gamma * g.gamma * ((qdiag * qdiag).sum() + (l * l).sum()) - g.m * sum_q.sum() + constant_terms(g);
  }
  torch::Tensor value(bool batched) const {
    torch::NoGradGuard no_grad;
    return objective(alphas, means, icf, batched);
  }
  std::vector<torch::Tensor> gradient(bool batched) const {
    const auto a = alphas.clone().requires_grad_(), mu = means.clone().requires_grad_(), f = icf.clone().requires_grad_();
    return torch::autograd::grad({objective(a, mu, f, batched)}, {a, mu, f});
  }
};
#endif

void BM_Gmm(benchmark::State& state) {
  const bool batched = state.range(0) == 0;
  const Gmm g = make_gmm(state.range(1), state.range(2), state.range(3));
  const double reference = plain_objective(g);
  // One untimed run of each first: the first touch of fresh memory is not what a training loop pays.
  const double value = objective(g, g.alphas, g.means, g.icf, batched).item();
  const std::vector<TD> ours = gradient(g, batched);
  state.counters["objective_rel_diff"] = std::abs(value - reference) / std::abs(reference);
#ifdef METAGRAD_BENCH_WITH_LIBTORCH
  const TorchGmm t{g};
  const auto theirs = t.gradient(batched);
  (void)t.value(batched);
  double difference = 0;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    const auto c = theirs[i].contiguous();
    for (index_t j = 0; j < ours[i].size(); ++j) {
      const double a = ours[i].data()[j], b = c.data_ptr<double>()[j];
      difference = std::max(difference, std::abs(a - b) / std::max(1.0, std::abs(b)));
    }
  }
  state.counters["gradient_rel_diff"] = difference;
  double torch_objective = 0, torch_gradient = 0;
#endif
  double our_objective = 0, our_gradient = 0;
  for (auto _ : state) {
    our_objective += seconds([&] { return objective(g, g.alphas, g.means, g.icf, batched); });
    our_gradient += seconds([&] { return gradient(g, batched); });
#ifdef METAGRAD_BENCH_WITH_LIBTORCH
    torch_objective += seconds([&] { return t.value(batched); });
    torch_gradient += seconds([&] { return t.gradient(batched); });
#endif
  }
  const auto runs = static_cast<double>(state.iterations());
  state.counters["objective_ms"] = 1e3 * our_objective / runs;
  state.counters["gradient_ms"] = 1e3 * our_gradient / runs;
  state.counters["gradient/objective"] = our_gradient / our_objective;
#ifdef METAGRAD_BENCH_WITH_LIBTORCH
  state.counters["libtorch/metagrad_gradient"] = torch_gradient / our_gradient;
  state.counters["libtorch/metagrad_objective"] = torch_objective / our_objective;
  state.counters["libtorch_gradient/objective"] = torch_gradient / torch_objective;
#endif
  state.SetLabel(std::string(batched ? "batched" : "loop over K") + " d=" + std::to_string(g.d) + " K=" +
                 std::to_string(g.k) + " n=" + std::to_string(g.n));
}

void all_sizes(benchmark::internal::Benchmark* b) {
  for (int64_t layout : {0, 1})
    for (int64_t d : {2, 10, 64})
      for (int64_t k : {5, 25, 200})
        for (int64_t n : {1000, 10000}) b->Args({layout, d, k, n});
}

}  // namespace

BENCHMARK(BM_Gmm)->Apply(all_sizes)->Unit(benchmark::kMillisecond)->MinTime(0.3);

int main(int argc, char** argv) {
#ifdef METAGRAD_BENCH_WITH_LIBTORCH
  torch::set_num_threads(bench::threads);
  benchmark::AddCustomContext("libtorch_threads", std::to_string(torch::get_num_threads()));
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
