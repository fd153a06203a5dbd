#pragma once
// Per-example losses and how to combine them. `cross_entropy(logits, labels)` (ops/nn.hpp) is the per-example
// classification loss; these add the regression one, data weights, and accuracy.
#include <string>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/reduce.hpp"
#include "metagrad/ops/nn.hpp"

namespace metagrad {

/// Σ_j (prediction − target)² per row, for [batch, n] inputs: shape [batch].
template <class P, class Y>
auto squared_error(const P& prediction, const Y& target) {
  if (prediction.shape().rank() != 2 || !(prediction.shape() == target.shape()))
    throw shape_error("squared_error: prediction " + prediction.shape().str() + " and target " + target.shape().str() +
                      " (equal [batch, n] shapes expected)");
  return sum(square(prediction - target), 1);
}

/// (1/n) Σ_i w_i ℓ_i for per-example losses ℓ [n] and weights w [n]: with w = 1 the mean loss, and with w a Var each
/// example's weight receives a gradient (data weighting by metagradients).
template <class L, class W>
auto weighted_mean(const L& losses, const W& weights) {
  if (losses.shape().rank() != 1 || !(losses.shape() == weights.shape()))
    throw shape_error("weighted_mean: losses " + losses.shape().str() + " and weights " + weights.shape().str() +
                      " (equal [n] shapes expected)");
  if (losses.shape()[0] == 0) throw value_error("weighted_mean: no examples (the mean of nothing has no value)");
  return sum(losses * weights) / static_cast<typename L::value_type>(losses.shape()[0]);
}

/// The fraction of rows whose largest logit is at the label (the first maximum on ties).
template <class T>
T accuracy(const Tensor<T>& logits, const IndexVector& labels) {
  detail::check_labels("accuracy", logits, labels);
  if (labels.empty()) throw value_error("accuracy: no examples");
  index_t correct = 0;
  for (index_t i = 0; i < logits.shape()[0]; ++i) {
    index_t k = 0;
    logits.matrix().row(i).maxCoeff(&k);
    correct += k == labels[static_cast<std::size_t>(i)];
  }
  return static_cast<T>(correct) / static_cast<T>(labels.size());
}

}  // namespace metagrad
