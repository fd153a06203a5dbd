#pragma once
// Indexing and layout ops on plain tensors: reshape, row gather and its adjoint, gather along any axis and its
// adjoint, gather at flat positions and its adjoint, slice and its adjoint (pad), concatenation, stop_gradient.
#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/tensor/tensor.hpp"

namespace metagrad {

/// x under another shape of equal size, without a copy.
template <class T> Tensor<T> reshape(Tensor<T> x, const Shape& shape) { return std::move(x).reshape(shape); }

/// The shape without `axis`, which must have extent 1 (squeeze's shape).
inline Shape squeezed(const Shape& shape, int axis) {
  const int a = normalize_axis("squeeze", axis, shape);
  if (shape[a] != 1)
    throw shape_error("squeeze: axis " + std::to_string(axis) + " of " + shape.str() + " has extent " +
                      std::to_string(shape[a]) + ", not 1");
  return shape.reduced(a, false);
}
/// The shape with an axis of extent 1 inserted before `axis` (unsqueeze's shape); axis −1 appends it.
inline Shape unsqueezed(const Shape& shape, int axis) {
  const int r = shape.rank(), a = axis < 0 ? axis + r + 1 : axis;
  if (a < 0 || a > r)
    throw value_error("unsqueeze: axis " + std::to_string(axis) + " is out of range for a new axis of " + shape.str());
  if (r == Shape::max_rank) throw shape_error("unsqueeze: " + shape.str() + " already has the largest rank, 4");
  return shape.inserted(a);
}
/// x without its axis `axis` of extent 1 (a reshape: moved, not copied, from an rvalue; a view on a tape).
template <class T> Tensor<T> squeeze(Tensor<T> x, int axis) { return std::move(x).reshape(squeezed(x.shape(), axis)); }
/// x with a new axis of extent 1 before `axis` (a reshape: moved, not copied, from an rvalue; a view on a tape).
template <class T> Tensor<T> unsqueeze(Tensor<T> x, int axis) {
  return std::move(x).reshape(unsqueezed(x.shape(), axis));
}

/// x [N, …] as a matrix [N, the rest], on either carrier.
template <class X>
auto flatten(const X& x) {
  const Shape& s = x.shape();
  if (s.rank() < 1) throw shape_error("flatten: a tensor with a batch axis expected, got " + s.str());
  return reshape(x, Shape{s[0], s[0] == 0 ? 0 : s.size() / s[0]});
}

namespace detail {
/// Checks that every index lies in [0, extent).
inline void check_indices(const char* op, const IndexVector& indices, index_t extent, const char* what) {
  for (const index_t i : indices)
    if (i < 0 || i >= extent)
      throw value_error(std::string(op) + ": index " + std::to_string(i) + " out of range for " +
                        std::to_string(extent) + " " + what);
}
/// x viewed as [outer, extent of axis, inner] around `axis`: its outer and inner sizes.
inline std::pair<index_t, index_t> around_axis(const Shape& shape, int axis) {
  index_t outer = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  return {outer, shape.stride(axis)};
}
/// index_select after its checks.
template <class T> Tensor<T> select_slabs(const Tensor<T>& x, int axis, const IndexVector& indices) {
  const auto [outer, inner] = around_axis(x.shape(), axis);
  const index_t n = x.shape()[axis], m = static_cast<index_t>(indices.size());
  Tensor<T> out = Tensor<T>::uninitialized(x.shape().with_extent(axis, m));
  for (index_t o = 0; o < outer; ++o)
    for (index_t j = 0; j < m; ++j)
      std::copy_n(x.data() + (o * n + indices[static_cast<std::size_t>(j)]) * inner, inner,
                  out.data() + (o * m + j) * inner);
  return out;
}
/// index_add after its checks.
template <class T> Tensor<T> add_slabs(const Tensor<T>& x, int axis, const IndexVector& indices, index_t extent) {
  const auto [outer, inner] = around_axis(x.shape(), axis);
  const index_t m = x.shape()[axis];
  Tensor<T> out = Tensor<T>::zeros(x.shape().with_extent(axis, extent));
  for (index_t o = 0; o < outer; ++o)
    for (index_t j = 0; j < m; ++j)
      out.array().segment((o * extent + indices[static_cast<std::size_t>(j)]) * inner, inner) +=
          x.array().segment((o * m + j) * inner, inner);
  return out;
}
}  // namespace detail

/// The slabs x[…, indices[j], …] along `axis`, in order (NumPy's take along an axis, PyTorch's index_select).
/// Indices may repeat. Its adjoint is index_add.
template <class T> Tensor<T> index_select(const Tensor<T>& x, int axis, const IndexVector& indices) {
  const int a = normalize_axis("index_select", axis, x.shape());
  detail::check_indices("index_select", indices, x.shape()[a], "slabs");
  return detail::select_slabs(x, a, indices);
}

/// The adjoint of index_select: a tensor with `extent` slabs along `axis` where slab indices[j] accumulates x's
/// slab j.
template <class T> Tensor<T> index_add(const Tensor<T>& x, int axis, const IndexVector& indices, index_t extent) {
  const int a = normalize_axis("index_add", axis, x.shape());
  if (x.shape()[a] != static_cast<index_t>(indices.size()))
    throw shape_error("index_add: " + std::to_string(indices.size()) + " indices for " + std::to_string(x.shape()[a]) +
                      " slabs along axis " + std::to_string(a) + " of " + x.shape().str());
  if (extent < 0) throw value_error("index_add: negative extent " + std::to_string(extent));
  detail::check_indices("index_add", indices, extent, "slabs");
  return detail::add_slabs(x, a, indices, extent);
}

/// Rows x[indices[0]], x[indices[1]], … (index_select along axis 0): minibatch selection. Indices may repeat.
template <class T> Tensor<T> gather_rows(const Tensor<T>& x, const IndexVector& indices) {
  if (x.rank() < 1) throw shape_error("gather_rows: tensor of rank >= 1 expected, got " + x.shape().str());
  detail::check_indices("gather_rows", indices, x.shape()[0], "rows");
  return detail::select_slabs(x, 0, indices);
}

/// The adjoint of gather_rows (index_add along axis 0): a tensor of `rows` rows where row indices[i] accumulates x[i].
template <class T> Tensor<T> scatter_add_rows(const Tensor<T>& x, const IndexVector& indices, index_t rows) {
  if (x.rank() < 1 || x.shape()[0] != static_cast<index_t>(indices.size()))
    throw shape_error("scatter_add_rows: " + std::to_string(indices.size()) + " indices for a tensor of shape " +
                      x.shape().str());
  if (rows < 0) throw value_error("scatter_add_rows: negative row count " + std::to_string(rows));
  detail::check_indices("scatter_add_rows", indices, rows, "rows");
  return detail::add_slabs(x, 0, indices, rows);
}

/// The elements of x at flat (row-major) positions, as a rank-1 tensor [positions]. Its adjoint is scatter_add.
template <class T> Tensor<T> take(const Tensor<T>& x, const IndexVector& positions) {
  detail::check_indices("take", positions, x.size(), "elements");
  Tensor<T> out = Tensor<T>::uninitialized(Shape{static_cast<index_t>(positions.size())});
  for (std::size_t k = 0; k < positions.size(); ++k) out.data()[k] = x.data()[positions[k]];
  return out;
}

/// A tensor of `shape`, zero except that flat position positions[k] accumulates values[k] (values rank 1): scatter to
/// arbitrary positions, e.g. a vector into a triangular matrix. The adjoint of take.
template <class T> Tensor<T> scatter_add(const Tensor<T>& values, const IndexVector& positions, const Shape& shape) {
  if (!(values.shape() == Shape{static_cast<index_t>(positions.size())}))
    throw shape_error("scatter_add: values of shape " + values.shape().str() + " for " +
                      std::to_string(positions.size()) + " positions (one value per position expected)");
  detail::check_indices("scatter_add", positions, shape.size(), "elements");
  Tensor<T> out = Tensor<T>::zeros(shape);
  for (std::size_t k = 0; k < positions.size(); ++k) out.data()[positions[k]] += values.data()[k];
  return out;
}

namespace detail {
/// Copies `count` consecutive slabs along `axis` between two tensors that agree on every other axis:
/// dst[..., dst_start + j, ...] = src[..., src_start + j, ...].
template <class T>
void copy_slabs(const Tensor<T>& src, index_t src_start, Tensor<T>& dst, index_t dst_start, int axis, index_t count) {
  if (src.size() == 0 || count == 0) return;
  const index_t inner = src.shape().stride(axis);
  const index_t outer = src.size() / (src.shape()[axis] * inner);
  const auto bytes = static_cast<std::size_t>(count * inner) * sizeof(T);
  for (index_t o = 0; o < outer; ++o)  // runs may be short (a slice of each row): memcpy, not an Eigen segment each
    std::memcpy(dst.data() + (o * dst.shape()[axis] + dst_start) * inner,
                src.data() + (o * src.shape()[axis] + src_start) * inner, bytes);
}
/// Adds src into the slabs [dst_start, dst_start + src's extent) along `axis` of dst, which agrees with src on every
/// other axis.
template <class T>
void add_slabs(const Tensor<T>& src, Tensor<T>& dst, index_t dst_start, int axis) {
  if (src.size() == 0) return;
  const index_t inner = src.shape().stride(axis), count = src.shape()[axis] * inner;
  const index_t outer = src.size() / count;
  for (index_t o = 0; o < outer; ++o)
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(dst.data() + (o * dst.shape()[axis] + dst_start) * inner, count) +=
        Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(src.data() + o * count, count);
}
}  // namespace detail

/// Elements start … start+length−1 along `axis`.
template <class T> Tensor<T> slice(const Tensor<T>& x, int axis, index_t start, index_t length) {
  const int a = normalize_axis("slice", axis, x.shape());
  if (start < 0 || length < 0 || start + length > x.shape()[a])
    throw value_error("slice: range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                      ") out of bounds for axis " + std::to_string(axis) + " of shape " + x.shape().str());
  const Shape shape = x.shape().with_extent(a, length);
  Tensor<T> out = Tensor<T>::uninitialized(shape);
  detail::copy_slabs(x, start, out, 0, a, length);
  return out;
}

/// Zero padding along `axis`: `before` zeros, then x, then `after` zeros (the adjoint of slice).
template <class T> Tensor<T> pad(const Tensor<T>& x, int axis, index_t before, index_t after) {
  const int a = normalize_axis("pad", axis, x.shape());
  if (before < 0 || after < 0)
    throw value_error("pad: negative padding (" + std::to_string(before) + ", " + std::to_string(after) + ")");
  const Shape shape = x.shape().with_extent(a, x.shape()[a] + before + after);
  Tensor<T> out(shape);
  detail::copy_slabs(x, 0, out, before, a, x.shape()[a]);
  return out;
}

namespace detail {
/// concat of the tensors the pointers name (the Var version joins node values in place, without copying them first).
template <class T> Tensor<T> concat_of(const std::vector<const Tensor<T>*>& xs, int axis) {
  if (xs.empty()) throw value_error("concat: at least one tensor expected");
  const int a = normalize_axis("concat", axis, xs[0]->shape());
  const Shape others = xs[0]->shape().with_extent(a, 0);
  index_t extent = 0;
  for (const Tensor<T>* x : xs) {
    if (!(x->shape().with_extent(a, 0) == others))
      throw shape_error("concat: shape " + x->shape().str() + " does not match " + xs[0]->shape().str() +
                        " outside axis " + std::to_string(axis));
    extent += x->shape()[a];
  }
  Tensor<T> out = Tensor<T>::uninitialized(others.with_extent(a, extent));
  index_t at = 0;
  for (const Tensor<T>* x : xs) {
    detail::copy_slabs(*x, 0, out, at, a, x->shape()[a]);
    at += x->shape()[a];
  }
  return out;
}
}  // namespace detail

/// Joins tensors along `axis`; all other extents must agree.
template <class T> Tensor<T> concat(const std::vector<Tensor<T>>& xs, int axis) {
  std::vector<const Tensor<T>*> pointers;
  for (const auto& x : xs) pointers.push_back(&x);
  return detail::concat_of(pointers, axis);
}

/// Joins tensors along axis.
template <class T> Tensor<T> concat(std::initializer_list<Tensor<T>> xs, int axis) {
  return concat(std::vector<Tensor<T>>(xs), axis);
}

/// The identity on plain tensors; on a tape it cuts the gradient.
template <class T> Tensor<T> stop_gradient(const Tensor<T>& x) { return x; }

}  // namespace metagrad
