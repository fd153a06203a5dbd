// Question: is metagrad's Adam step as fast as a hand-written Eigen Adam loop? One step on 1M parameters (one
// tensor, double), the gradient given. Goal: metagrad / hand-written <= 1.1.
#include <metagrad/metagrad.hpp>

#include "alternating.hpp"
#include "threads.hpp"

namespace {

using metagrad::Tensor;
constexpr metagrad::index_t n = 1 << 20;

/// The textbook loop, written directly with Eigen arrays: one fused expression per quantity, in place.
struct HandWrittenAdam {
  Eigen::ArrayXd m = Eigen::ArrayXd::Zero(n), v = Eigen::ArrayXd::Zero(n);
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8, lr = 1e-3;
  int t = 0;
  void step(Eigen::ArrayXd& p, const Eigen::ArrayXd& g) {
    ++t;
    m = beta1 * m + (1 - beta1) * g;
    v = beta2 * v + (1 - beta2) * g.square();
    const double c1 = 1 - std::pow(beta1, t), c2 = 1 - std::pow(beta2, t);
    p -= lr * (m / c1) / ((v / c2).sqrt() + epsilon);
  }
};

void BM_MetagradAdamOverHandWritten(benchmark::State& state) {
  const Tensor<double> g = Tensor<double>::random_normal({n}, 2);
  metagrad::ParamList<Tensor<double>> params = {Tensor<double>::random_normal({n}, 1)};
  const metagrad::Adam<> adam;
  auto adam_state = adam.init(params);
  Eigen::ArrayXd p_hand = params[0].array(), g_hand = g.array();
  HandWrittenAdam hand;
  const metagrad::ParamList<Tensor<double>> grads = {g};
  bench::time_alternately(
      state, "metagrad",
      [&] {
        std::tie(params, adam_state) = metagrad::step(adam, std::move(params), grads, std::move(adam_state), 1e-3);
        return params[0].data()[0];
      },
      "hand",
      [&] {
        hand.step(p_hand, g_hand);
        return p_hand[0];
      });
  state.counters["max_abs_diff"] = (params[0].array() - p_hand).abs().maxCoeff();
}

}  // namespace

BENCHMARK(BM_MetagradAdamOverHandWritten)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_MAIN();
