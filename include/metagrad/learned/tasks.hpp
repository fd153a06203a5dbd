#pragma once
// Optimizee tasks for meta-training and evaluating learned optimizers (see meta_training.hpp for what a task is).
#include <cstdint>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/index.hpp"
#include "metagrad/autodiff/linalg.hpp"
#include "metagrad/autodiff/reduce.hpp"
#include "metagrad/optim/update_rule.hpp"
#include "metagrad/tensor/random.hpp"

namespace metagrad {

/// f(θ) = ‖Wθ − y‖² with W [d, d] and y [d] standard normal, fresh for every optimizee; θ₀ ~ N(0, 0.01²) (the
/// learned-optimizer paper's quadratics and its published code's initialization).
template <class T = double>
struct QuadraticTask {
  using value_type = T;
  index_t dimension = 10;

  struct Problem {
    Tensor<T> w, y, theta0;
  };

  Problem sample(std::uint64_t seed) const {
    SplitMix64 seeds(seed);
    return {Tensor<T>::random_normal({dimension, dimension}, seeds.next()), Tensor<T>::random_normal({dimension, 1}, seeds.next()),
            Tensor<T>::random_normal({dimension}, seeds.next(), 0, T(0.01))};
  }
  ParamList<Tensor<T>> initial_params(const Problem& problem) const { return {problem.theta0}; }

  template <class P>
  P loss(const Problem& problem, const std::vector<P>& params, std::int64_t) const {
    return sum(square(matmul(problem.w, reshape(params.at(0), Shape{dimension, 1})) - problem.y));
  }
};

}  // namespace metagrad
