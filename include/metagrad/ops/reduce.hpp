#pragma once
// Reductions on plain tensors: sum, mean, max and logsumexp over everything or along one axis.
#include <cmath>
#include <limits>

#include "metagrad/tensor/tensor.hpp"

namespace metagrad {
namespace detail {

/// Views x as (outer, n, inner) around `axis` and calls fn(lane, out_index) for every lane: an Eigen array map
/// of the n elements along the axis (strided when the axis is not the last).
template <class T, class Fn>
void for_each_lane(const Tensor<T>& x, int axis, Fn&& fn) {
  using Lane = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>, 0, Eigen::InnerStride<>>;
  if (x.size() == 0) return;  // no lanes (and no division by a zero extent below)
  const index_t n = x.shape()[axis], inner = x.shape().stride(axis), outer = x.size() / (n * inner);
  for (index_t o = 0; o < outer; ++o)
    for (index_t i = 0; i < inner; ++i)
      fn(Lane(x.data() + o * n * inner + i, n, Eigen::InnerStride<>(inner)), o * inner + i);
}

/// The same as for_each_lane, with a writable lane of an equal-shaped output.
template <class T, class Fn>
void for_each_lane_pair(const Tensor<T>& x, Tensor<T>& out, int axis, Fn&& fn) {
  using Lane = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>, 0, Eigen::InnerStride<>>;
  using OutLane = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>, 0, Eigen::InnerStride<>>;
  if (x.size() == 0) return;
  const index_t n = x.shape()[axis], inner = x.shape().stride(axis), outer = x.size() / (n * inner);
  for (index_t o = 0; o < outer; ++o)
    for (index_t i = 0; i < inner; ++i) {
      const index_t off = o * n * inner + i;
      fn(Lane(x.data() + off, n, Eigen::InnerStride<>(inner)), OutLane(out.data() + off, n, Eigen::InnerStride<>(inner)));
    }
}

template <class T, class Fn>
Tensor<T> reduce_axis(const char* op, const Tensor<T>& x, int axis, bool keepdims, Fn&& fn) {
  const int a = normalize_axis(op, axis, x.shape());
  if (x.shape()[a] == 0) throw shape_error(std::string(op) + ": cannot reduce an empty axis of " + x.shape().str());
  Tensor<T> out = Tensor<T>::uninitialized(x.shape().reduced(a, keepdims));
  T* o = out.data();
  for_each_lane(x, a, [&](const auto& lane, index_t k) { o[k] = fn(lane); });
  return out;
}

}  // namespace detail

/// The sum of all elements, as a rank-0 tensor.
template <class T> Tensor<T> sum(const Tensor<T>& x) { return Tensor<T>::scalar(x.array().sum()); }

/// The sum along one axis (negative axes count from the end).
template <class T> Tensor<T> sum(const Tensor<T>& x, int axis, bool keepdims = false) {
  const int a = normalize_axis("sum", axis, x.shape());
  if (x.size() == 0) return Tensor<T>::zeros(x.shape().reduced(a, keepdims));  // an empty sum is 0, as in NumPy
  if (a == x.rank() - 1) {  // contiguous rows: one vectorized Eigen reduction
    const index_t n = x.shape()[a];
    Tensor<T> out = Tensor<T>::uninitialized(x.shape().reduced(a, keepdims));
    out.array() = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>>(x.data(), n, x.size() / n)
                      .colwise()
                      .sum()
                      .transpose();
    return out;
  }
  if (a == 0) {  // a sum of contiguous rows (a bias's gradient): added column by column of the transposed view
    const index_t n = x.shape()[0];
    Tensor<T> out = Tensor<T>::uninitialized(x.shape().reduced(a, keepdims));
    out.array() = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>>(x.data(), x.size() / n, n).rowwise().sum();
    return out;
  }
  return detail::reduce_axis("sum", x, axis, keepdims, [](const auto& lane) { return lane.sum(); });
}

namespace detail {
/// The number of elements a mean divides by; an empty mean has no value (NumPy's NaN) and is an error here.
inline index_t mean_count(const char* op, const Shape& shape, int axis = -2) {
  const bool all = axis == -2;
  const index_t n = all ? shape.size() : shape[axis];
  if (n == 0)
    throw value_error(std::string(op) + ": " + (all ? "the tensor" : "axis " + std::to_string(axis) + " of the tensor") +
                      " of shape " + shape.str() + " is empty, and an empty mean has no value");
  return n;
}
}  // namespace detail

/// The mean of all elements; an empty tensor is a value_error.
template <class T> Tensor<T> mean(const Tensor<T>& x) {
  const index_t n = detail::mean_count("mean", x.shape());
  return Tensor<T>::scalar(x.array().sum() / static_cast<T>(n));
}
/// The mean along one axis; an empty axis is a value_error.
template <class T> Tensor<T> mean(const Tensor<T>& x, int axis, bool keepdims = false) {
  const int a = normalize_axis("mean", axis, x.shape());
  const index_t n = detail::mean_count("mean", x.shape(), a);
  Tensor<T> s = sum(x, a, keepdims);
  s.array() /= static_cast<T>(n);
  return s;
}

/// The largest element along one axis.
template <class T> Tensor<T> max(const Tensor<T>& x, int axis, bool keepdims = false) {
  return detail::reduce_axis("max", x, axis, keepdims, [](const auto& lane) { return lane.maxCoeff(); });
}

/// 1 at the first largest element of each lane along `axis`, 0 elsewhere (where max's gradient goes).
template <class T> Tensor<T> argmax_mask(const Tensor<T>& x, int axis) {
  const int a = normalize_axis("argmax_mask", axis, x.shape());
  Tensor<T> out(x.shape());
  detail::for_each_lane_pair(x, out, a, [](const auto& lane, auto out_lane) {
    index_t k;
    lane.maxCoeff(&k);
    out_lane(k) = T(1);
  });
  return out;
}

/// log Σ exp(x) along one axis, shifted by the maximum so that it never overflows.
template <class T> Tensor<T> logsumexp(const Tensor<T>& x, int axis, bool keepdims = false) {
  return detail::reduce_axis("logsumexp", x, axis, keepdims, [](const auto& lane) {
    const T m = lane.maxCoeff();
    if (!std::isfinite(m)) return m;
    return m + std::log((lane - m).exp().sum());
  });
}

}  // namespace metagrad
