#pragma once
// Numpy-style broadcasting for Tensor<T>: binary kernels, broadcast_to and its adjoint sum_to.
// Common layouts (equal shapes, a scalar, a trailing vector over rows, one value per row) take vectorized
// Eigen paths; anything else takes a general strided loop.
#include <array>
#include <string>

#include "metagrad/tensor/tensor.hpp"

namespace metagrad {
namespace detail {

/// Calls fn(out_offset, a_offset, b_offset) for every element of `out`, where a and b broadcast to out.
template <class Fn>
void for_each_broadcast(const Shape& out, const Shape& a, const Shape& b, Fn&& fn) {
  constexpr int R = Shape::max_rank;
  std::array<index_t, R> dims{}, sa{}, sb{};
  for (int i = 0; i < R; ++i) {
    const int io = i - (R - out.rank()), ia = i - (R - a.rank()), ib = i - (R - b.rank());
    dims[i] = io >= 0 ? out[io] : 1;
    sa[i] = (ia >= 0 && a[ia] != 1) ? a.stride(ia) : 0;
    sb[i] = (ib >= 0 && b[ib] != 1) ? b.stride(ib) : 0;
  }
  index_t o = 0;
  for (index_t i0 = 0; i0 < dims[0]; ++i0)
    for (index_t i1 = 0; i1 < dims[1]; ++i1)
      for (index_t i2 = 0; i2 < dims[2]; ++i2)
        for (index_t i3 = 0; i3 < dims[3]; ++i3)
          fn(o++, i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3], i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3]);
}

/// True when `small` equals the trailing axes of `big` (a bias-like vector broadcast over rows).
inline bool is_suffix(const Shape& small, const Shape& big) {
  if (small.rank() > big.rank() || small.rank() == 0) return false;
  for (int i = 1; i <= small.rank(); ++i)
    if (small[small.rank() - i] != big[big.rank() - i]) return false;
  return true;
}

/// True when `small` is `big` with its last extent set to 1 (one value per row).
inline bool is_row_constant(const Shape& small, const Shape& big) {
  if (small.rank() != big.rank() || big.rank() == 0 || small[small.rank() - 1] != 1) return false;
  for (int i = 0; i + 1 < big.rank(); ++i)
    if (small[i] != big[i]) return false;
  return true;
}

/// out = f(a, b) with broadcasting; f is a generic callable valid on Eigen arrays, on scalars and on mixes.
template <class T, class F>
Tensor<T> broadcast_binary(const char* op, const Tensor<T>& a, const Tensor<T>& b, F f) {
  if (a.shape() == b.shape()) {
    Tensor<T> out = Tensor<T>::uninitialized(a.shape());
    out.array() = f(a.array(), b.array());
    return out;
  }
  const Shape shape = broadcast_shapes(op, a.shape(), b.shape());
  Tensor<T> out = Tensor<T>::uninitialized(shape);
  const index_t n = out.size();
  if (b.size() == 1 && a.shape() == shape) {
    out.array() = f(a.array(), b.data()[0]);
  } else if (a.size() == 1 && b.shape() == shape) {
    out.array() = f(a.data()[0], b.array());
  } else if (a.shape() == shape && is_suffix(b.shape(), shape)) {
    const index_t d = b.size();
    for (index_t r = 0; r < n; r += d) out.array().segment(r, d) = f(a.array().segment(r, d), b.array());
  } else if (b.shape() == shape && is_suffix(a.shape(), shape)) {
    const index_t d = a.size();
    for (index_t r = 0; r < n; r += d) out.array().segment(r, d) = f(a.array(), b.array().segment(r, d));
  } else if (a.shape() == shape && is_row_constant(b.shape(), shape)) {
    const index_t d = shape[shape.rank() - 1];
    for (index_t r = 0; r < n / d; ++r) out.array().segment(r * d, d) = f(a.array().segment(r * d, d), b.data()[r]);
  } else {
    T* o = out.data();
    const T *pa = a.data(), *pb = b.data();
    for_each_broadcast(shape, a.shape(), b.shape(), [&](index_t io, index_t ia, index_t ib) { o[io] = f(pa[ia], pb[ib]); });
  }
  return out;
}

}  // namespace detail

/// Repeats x along broadcast axes to `shape` (numpy rules).
template <class T>
Tensor<T> broadcast_to(Tensor<T> x, const Shape& shape) {
  if (!(broadcast_shapes("broadcast_to", x.shape(), shape) == shape))
    throw shape_error("broadcast_to: shape " + x.shape().str() + " cannot be broadcast to " + shape.str());
  if (x.shape() == shape) return x;
  Tensor<T> out = Tensor<T>::uninitialized(shape);
  T* o = out.data();
  const T* px = x.data();
  detail::for_each_broadcast(shape, shape, x.shape(), [&](index_t io, index_t, index_t ix) { o[io] = px[ix]; });
  return out;
}

/// Sums x over the axes along which `shape` was broadcast to x's shape: the adjoint of broadcast_to.
template <class T>
Tensor<T> sum_to(Tensor<T> x, const Shape& shape) {
  if (!(broadcast_shapes("sum_to", shape, x.shape()) == x.shape()))
    throw shape_error("sum_to: shape " + x.shape().str() + " cannot be summed to " + shape.str() +
                      " (the target must broadcast to the source)");
  if (x.shape() == shape) return x;
  Tensor<T> out = Tensor<T>::uninitialized(shape);
  if (shape.size() == 1) {
    out.data()[0] = x.array().sum();
  } else if (detail::is_suffix(shape, x.shape())) {
    const index_t d = shape.size();
    out.array() = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>>(x.data(), d, x.size() / d)
                      .rowwise()
                      .sum();
  } else if (detail::is_row_constant(shape, x.shape())) {
    const index_t d = x.shape()[x.rank() - 1];
    out.array() = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>>(x.data(), d, x.size() / d)
                      .colwise()
                      .sum()
                      .transpose();
  } else {
    out.array().setZero();
    T* o = out.data();
    const T* px = x.data();
    detail::for_each_broadcast(x.shape(), x.shape(), shape, [&](index_t ix, index_t, index_t io) { o[io] += px[ix]; });
  }
  return out;
}

}  // namespace metagrad
