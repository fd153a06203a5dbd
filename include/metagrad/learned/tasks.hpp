#pragma once
// Optimizee tasks for meta-training and evaluating learned optimizers (see meta_training.hpp for what a task is).
#include <cstdint>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/index.hpp"
#include "metagrad/autodiff/linalg.hpp"
#include "metagrad/autodiff/nn.hpp"
#include "metagrad/autodiff/reduce.hpp"
#include "metagrad/data/batches.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/nn/mlp.hpp"
#include "metagrad/optim/update_rule.hpp"
#include "metagrad/tensor/random.hpp"

namespace metagrad {

/// f(θ) = ‖Wθ − y‖² with W [d, d] and y [d] standard normal, fresh for every optimizee; θ₀ ~ N(0, 0.01²) (the
/// learned-optimizer paper's quadratics and its published code's initialization).
template <class T = double>
struct QuadraticTask {
  using value_type = T;    ///< the number type
  index_t dimension = 10;  ///< d

  /// One optimizee: its W, y and θ₀.
  struct Problem {
    Tensor<T> w;       ///< W, [d, d].
    Tensor<T> y;       ///< y, [d, 1]
    Tensor<T> theta0;  ///< θ₀, [d]
  };

  /// A fresh W, y and θ₀ from seed.
  Problem sample(std::uint64_t seed) const {
    SplitMix64 seeds(seed);
    return {Tensor<T>::random_normal({dimension, dimension}, seeds.next()), Tensor<T>::random_normal({dimension, 1}, seeds.next()),
            Tensor<T>::random_normal({dimension}, seeds.next(), 0, T(0.01))};
  }
  ParamList<Tensor<T>> initial_params(const Problem& problem) const { return {problem.theta0}; }  ///< θ₀

  /// f(θ) = ‖Wθ − y‖², on either carrier (the step does not matter).
  template <class P>
  P loss(const Problem& problem, const std::vector<P>& params, std::int64_t) const {
    return sum(square(matmul(problem.w, reshape(params.at(0), Shape{dimension, 1})) - problem.y));
  }
};

/// The learned-optimizer paper's MNIST task: an MLP (by default one hidden layer of 20 sigmoid units) trained with
/// cross-entropy on minibatches of 128 training digits. Every optimizee has its own initialization and minibatch
/// order, both drawn from its seed; `model` can be changed for the paper's transfer cases (40 units, two layers, ReLU).
template <class T = double>
struct MnistMlpTask {
  using value_type = T;                              ///< The number type.
  const Dataset<T>* data = nullptr;                  ///< The training digits; must outlive the task.
  Mlp<T> model{{784, 20, 10}, Activation::sigmoid};  ///< The optimizee's network.
  index_t batch_size = 128;                          ///< Examples per minibatch.

  /// One optimizee: the seed of its initialization and minibatch order.
  struct Problem {
    std::uint64_t seed;  ///< Seeds the initialization and the minibatch order.
  };

  Problem sample(std::uint64_t seed) const { return {seed}; }  ///< The optimizee of this seed.
  /// The MLP's initialization from the optimizee's seed.
  ParamList<Tensor<T>> initial_params(const Problem& problem) const { return model.init(problem.seed); }

  /// The loss on step `step`'s minibatch.
  template <class P>
  P loss(const Problem& problem, const std::vector<P>& params, std::int64_t step) const {
    if (!data) throw value_error("MnistMlpTask: no dataset");
    const IndexVector rows = BatchOrder(data->size(), batch_size, problem.seed ^ 0x5DEECE66Dull).batch(step);
    const Dataset<T> batch = data->batch(rows);
    return mean(cross_entropy(model.logits(params, batch.inputs), batch.labels));
  }

  /// The loss over the whole dataset (for evaluation).
  T full_loss(const ParamList<Tensor<T>>& params) const {
    return mean(cross_entropy(model.logits(params, data->inputs), data->labels)).item();
  }
};

}  // namespace metagrad
