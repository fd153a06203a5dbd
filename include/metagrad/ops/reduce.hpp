#pragma once
// Reductions on plain tensors: sum, mean, max and logsumexp over everything or along one axis.
#include <cmath>
#include <limits>

#include "metagrad/ops/broadcast.hpp"

namespace metagrad {
namespace detail {

/// Views x as (outer, n, inner) around `axis` and calls fn(lane, out_index) for the lanes first … last − 1 (in
/// row-major order of the output): an Eigen array map of the n elements along the axis (strided when the axis is not
/// the last).
template <class T, class Fn>
void for_lanes(const Tensor<T>& x, int axis, index_t first, index_t last, Fn&& fn) {
  using Lane = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>, 0, Eigen::InnerStride<>>;
  const index_t n = x.shape()[axis], inner = x.shape().stride(axis);
  for (index_t k = first; k < last; ++k)
    fn(Lane(x.data() + k / inner * n * inner + k % inner, n, Eigen::InnerStride<>(inner)), k);
}

/// The same as for_lanes over every lane, with a writable lane of an equal-shaped output.
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

/// out[k] = fn(lane k) for every lane along the axis; the lanes are independent, so they are split over the threads.
template <class T, class Fn>
Tensor<T> reduce_axis(const char* op, const Tensor<T>& x, int axis, bool keepdims, Fn&& fn) {
  const int a = normalize_axis(op, axis, x.shape());
  if (x.shape()[a] == 0) throw shape_error(std::string(op) + ": cannot reduce an empty axis of " + x.shape().str());
  Tensor<T> out = Tensor<T>::uninitialized(x.shape().reduced(a, keepdims));
  T* o = out.data();
  for_parts(out.size(), x.shape()[a], [&](index_t first, index_t last) {
    for_lanes(x, a, first, last, [&](const auto& lane, index_t k) { o[k] = fn(lane); });
  });
  return out;
}

}  // namespace detail

/// The sum of all elements, as a rank-0 tensor.
template <class T> Tensor<T> sum(const Tensor<T>& x) { return Tensor<T>::scalar(detail::sum_all(x.data(), x.size())); }

/// The sum along one axis (negative axes count from the end).
template <class T> Tensor<T> sum(const Tensor<T>& x, int axis, bool keepdims = false) {
  const int a = normalize_axis("sum", axis, x.shape());
  if (x.size() == 0) return Tensor<T>::zeros(x.shape().reduced(a, keepdims));  // an empty sum is 0, as in NumPy
  if (a == x.rank() - 1 || a == 0) {  // contiguous rows: each row's sum, or the sum of the rows (a bias's gradient)
    const index_t n = x.shape()[a];
    Tensor<T> out = Tensor<T>::uninitialized(x.shape().reduced(a, keepdims));
    if (a == x.rank() - 1) detail::sum_each_row(x.data(), x.size() / n, n, out.data());
    else detail::sum_rows(x.data(), n, x.size() / n, out.data());
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
  return Tensor<T>::scalar(detail::sum_all(x.data(), x.size()) / static_cast<T>(n));
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
