// quickstart: fit a small tanh network with plain gradient descent on the tape, then compute a Hessian-vector
// product of its loss and check it against finite differences of the gradient.
// Prints a few lines of progress and, last, one JSON line with the figures.
#include <metagrad/metagrad.hpp>

#include <cstdio>
#include <vector>

using namespace metagrad;
using T = double;

namespace {

struct Data {
  Tensor<T> x;
  IndexVector y;
};

/// 512 points in 4-D, labelled by the largest output of a random linear "teacher": separable, but not trivially.
Data make_data() {
  const Tensor<T> x = Tensor<T>::random_normal({512, 4}, 1);
  const Tensor<T> teacher = Tensor<T>::random_normal({4, 3}, 2);
  const Tensor<T> scores = matmul(x, teacher);
  IndexVector y(512);
  for (index_t i = 0; i < 512; ++i) scores.matrix().row(i).maxCoeff(&y[static_cast<std::size_t>(i)]);
  return {x, y};
}

/// The model is a pure function of its parameters, generic over the carrier (Tensor or Var): 4 inputs, 16 tanh
/// units, 3 classes.
const Mlp<T> model{{4, 16, 3}, Activation::tanh};

template <class P, class X>
auto logits(const std::vector<P>& p, const X& x) {
  return model.logits(p, x);
}

}  // namespace

int main() {
  const Data data = make_data();
  std::vector<Tensor<T>> params = model.init(/*seed=*/3);
  const double learning_rate = 0.5;
  const int steps = 300;

  Tape<T> tape;
  auto loss_and_grad = [&](const std::vector<Tensor<T>>& at) {
    const auto start = tape.mark();
    std::vector<Var<T>> vars;
    for (const auto& p : at) vars.push_back(tape.variable(p));
    const Var<T> loss = mean(cross_entropy(logits(vars, data.x), data.y));
    auto result = std::pair{loss.value().item(), grad(loss, vars)};
    tape.rewind(start);  // one step's nodes, reclaimed: the loop runs in constant memory
    return result;
  };

  const double initial_loss = loss_and_grad(params).first;
  double loss = initial_loss;
  for (int step = 1; step <= steps; ++step) {
    auto [value, g] = loss_and_grad(params);
    loss = value;
    for (std::size_t i = 0; i < params.size(); ++i) params[i].array() -= learning_rate * g[i].array();
    if (step % 100 == 0) std::printf("step %3d  loss %.4f\n", step, loss);
  }
  const double train_accuracy = accuracy(logits(params, data.x), data.y);  // plain tensors: no tape

  // Hessian-vector product at the trained parameters, against central differences of the gradient.
  std::vector<Tensor<T>> v;
  for (std::size_t i = 0; i < params.size(); ++i) v.push_back(Tensor<T>::random_normal(params[i].shape(), 10 + i));
  std::vector<Var<T>> vars;
  for (const auto& p : params) vars.push_back(tape.variable(p));
  const auto hv = hvp(mean(cross_entropy(logits(vars, data.x), data.y)), vars, v);
  const double h = 1e-5;
  std::vector<Tensor<T>> up = params, down = params;
  for (std::size_t i = 0; i < params.size(); ++i) {
    up[i].array() += h * v[i].array();
    down[i].array() -= h * v[i].array();
  }
  const auto g_up = loss_and_grad(up).second, g_down = loss_and_grad(down).second;
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto fd = (g_up[i].array() - g_down[i].array()) / (2 * h);
    err += (hv[i].array() - fd).square().sum();
    norm += hv[i].array().square().sum();
  }
  const double relative_error = std::sqrt(err / norm);
  std::printf("Hessian-vector product: |Hv| = %.4g, relative error against finite differences %.2e\n", std::sqrt(norm),
              relative_error);
  std::printf("{\"example\": \"quickstart\", \"steps\": %d, \"initial_loss\": %.6f, \"final_loss\": %.6f, "
              "\"train_accuracy\": %.4f, \"hvp_norm\": %.6g, \"hvp_relative_error\": %.3g}\n",
              steps, initial_loss, loss, train_accuracy, std::sqrt(norm), relative_error);
  return relative_error < 1e-6 && loss < initial_loss ? 0 : 1;
}
