#pragma once
// Neural-network ops on plain tensors: softmax, log_softmax, cross-entropy with integer labels, mse.
#include <string>
#include <vector>

#include "metagrad/ops/elementwise.hpp"
#include "metagrad/ops/reduce.hpp"

namespace metagrad {

/// exp(x) / Σ exp(x) along an axis (the last by default), computed with the maximum subtracted.
template <class T> Tensor<T> softmax(const Tensor<T>& x, int axis = -1) {
  Tensor<T> out = Tensor<T>::uninitialized(x.shape());
  detail::for_each_lane_pair(x, out, normalize_axis("softmax", axis, x.shape()), [](const auto& lane, auto o) {
    o = (lane - lane.maxCoeff()).exp();
    o /= o.sum();
  });
  return out;
}

/// x − logsumexp(x) along an axis (the last by default).
template <class T> Tensor<T> log_softmax(const Tensor<T>& x, int axis = -1) {
  Tensor<T> out = Tensor<T>::uninitialized(x.shape());
  detail::for_each_lane_pair(x, out, normalize_axis("log_softmax", axis, x.shape()), [](const auto& lane, auto o) {
    const T m = lane.maxCoeff();
    o = lane - (m + std::log((lane - m).exp().sum()));
  });
  return out;
}

namespace detail {
template <class T>
void check_labels(const char* op, const Tensor<T>& logits, const IndexVector& labels) {
  if (logits.rank() != 2)
    throw shape_error(std::string(op) + ": logits of rank 2 [batch, classes] expected, got " + logits.shape().str());
  if (static_cast<index_t>(labels.size()) != logits.shape()[0])
    throw shape_error(std::string(op) + ": " + std::to_string(labels.size()) + " labels for logits of shape " +
                      logits.shape().str());
  for (index_t y : labels)
    if (y < 0 || y >= logits.shape()[1])
      throw value_error(std::string(op) + ": label " + std::to_string(y) + " out of range [0, " +
                        std::to_string(logits.shape()[1]) + ")");
}
}  // namespace detail

/// One-hot rows: out[i, labels[i]] = 1, shaped like `logits`.
template <class T> Tensor<T> one_hot(const IndexVector& labels, index_t classes) {
  Tensor<T> out(Shape{static_cast<index_t>(labels.size()), classes});
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes)
      throw value_error("one_hot: label " + std::to_string(labels[i]) + " out of range [0, " + std::to_string(classes) + ")");
    out(static_cast<index_t>(i), labels[i]) = T(1);
  }
  return out;
}

/// Per-example cross-entropy −log softmax(logits)[i, labels[i]] for logits [batch, classes]; shape [batch].
/// Take `mean` of it for the usual loss, or weight it per example.
template <class T> Tensor<T> cross_entropy(const Tensor<T>& logits, const IndexVector& labels) {
  detail::check_labels("cross_entropy", logits, labels);
  Tensor<T> out = logsumexp(logits, 1);
  for (std::size_t i = 0; i < labels.size(); ++i) out.data()[i] -= logits(static_cast<index_t>(i), labels[i]);
  return out;
}

/// Mean squared error mean((a − b)²) over equal-shaped tensors, as a rank-0 tensor.
template <class T> Tensor<T> mse(const Tensor<T>& a, const Tensor<T>& b) {
  if (!(a.shape() == b.shape()))
    throw shape_error("mse: shapes " + a.shape().str() + " and " + b.shape().str() + " must be equal");
  const index_t n = detail::mean_count("mse", a.shape());
  return Tensor<T>::scalar((a.array() - b.array()).square().sum() / static_cast<T>(n));
}

}  // namespace metagrad
