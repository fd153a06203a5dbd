#pragma once
// reshape, squeeze, unsqueeze, gather_rows, scatter_add_rows, index_select, index_add, take, scatter_add, slice, pad,
// concat and stop_gradient on Vars, with their backward rules.
#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/ops/index.hpp"

namespace metagrad {

template <class T> Var<T> gather_rows(const Var<T>& x, const IndexVector& indices);
template <class T> Var<T> scatter_add_rows(const Var<T>& x, const IndexVector& indices, index_t rows);
template <class T> Var<T> slice(const Var<T>& x, int axis, index_t start, index_t length);
template <class T> Var<T> pad(const Var<T>& x, int axis, index_t before, index_t after);
template <class T> Var<T> index_select(const Var<T>& x, int axis, const IndexVector& indices);
template <class T> Var<T> index_add(const Var<T>& x, int axis, const IndexVector& indices, index_t extent);
template <class T> Var<T> take(const Var<T>& x, const IndexVector& positions);
template <class T> Var<T> scatter_add(const Var<T>& values, const IndexVector& positions, const Shape& shape);

namespace rules {

template <class T> struct Reshape : Rule<T, Reshape<T>> {
  const char* name() const override { return "reshape"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, reshape(c.release_grad(), c.value(0).shape())); }
};
template <class T> struct IndexSelect : Rule<T, IndexSelect<T>> {
  int axis;
  IndexVector indices;
  IndexSelect(int a, IndexVector i) : axis(a), indices(std::move(i)) {}
  const char* name() const override { return "index_select"; }
  template <class C> void vjp(C& c) const {
    c.accumulate(0, index_add(c.grad(), axis, indices, c.value(0).shape()[axis]));
  }
};
template <class T> struct IndexAdd : Rule<T, IndexAdd<T>> {
  int axis;
  IndexVector indices;
  IndexAdd(int a, IndexVector i) : axis(a), indices(std::move(i)) {}
  const char* name() const override { return "index_add"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, index_select(c.grad(), axis, indices)); }
};
template <class T> struct Take : Rule<T, Take<T>> {
  IndexVector positions;
  explicit Take(IndexVector p) : positions(std::move(p)) {}
  const char* name() const override { return "take"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, scatter_add(c.grad(), positions, c.value(0).shape())); }
};
template <class T> struct ScatterAdd : Rule<T, ScatterAdd<T>> {
  IndexVector positions;
  explicit ScatterAdd(IndexVector p) : positions(std::move(p)) {}
  const char* name() const override { return "scatter_add"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, take(c.grad(), positions)); }
};
template <class T> struct Slice : Rule<T, Slice<T>> {
  int axis;
  index_t start;
  Slice(int a, index_t s) : axis(a), start(s) {}
  const char* name() const override { return "slice"; }
  template <class C> void vjp(C& c) const {
    if constexpr (std::is_same_v<typename C::carrier, Tensor<T>>) {
      c.accumulate_slice(0, axis, start, c.grad());
    } else {
      const index_t n = c.value(0).shape()[axis], length = c.output().shape()[axis];
      c.accumulate(0, pad(c.grad(), axis, start, n - start - length));
    }
  }
};
template <class T> struct Pad : Rule<T, Pad<T>> {
  int axis;
  index_t before;
  Pad(int a, index_t b) : axis(a), before(b) {}
  const char* name() const override { return "pad"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, slice(c.grad(), axis, before, c.value(0).shape()[axis])); }
};
template <class T> struct Concat : Rule<T, Concat<T>> {
  int axis;
  explicit Concat(int a) : axis(a) {}
  const char* name() const override { return "concat"; }
  template <class C> void vjp(C& c) const {
    index_t at = 0;
    for (int k = 0; k < c.inputs(); ++k) {
      const index_t n = c.value(k).shape()[axis];
      if (c.needs(k)) c.accumulate(k, slice(c.grad(), axis, at, n));
      at += n;
    }
  }
};

}  // namespace rules

/// x under another shape of equal size, recorded as a view of x's storage (no copy).
template <class T> Var<T> reshape(const Var<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  if (shape.size() == x.shape().size())
    if (auto view = x.tape().record_view(x, 0, shape, rules::Reshape<T>{})) return *view;
  return x.tape().record(x.value().reshape(shape), {x}, rules::Reshape<T>{});  // empty, or Tensor::reshape's error
}
/// x without its axis `axis` of extent 1, recorded as a view.
template <class T> Var<T> squeeze(const Var<T>& x, int axis) { return reshape(x, squeezed(x.shape(), axis)); }
/// x with a new axis of extent 1 before `axis` (−1 appends it), recorded as a view.
template <class T> Var<T> unsqueeze(const Var<T>& x, int axis) { return reshape(x, unsqueezed(x.shape(), axis)); }
/// Rows x[indices[i]] along axis 0, recorded (as index_select; its backward is scatter_add_rows).
template <class T> Var<T> gather_rows(const Var<T>& x, const IndexVector& indices) {
  return x.tape().record(gather_rows(x.value(), indices), {x}, rules::IndexSelect<T>(0, indices));
}
/// The adjoint of gather_rows, recorded (as index_add): rows rows where row indices[i] accumulates x[i].
template <class T> Var<T> scatter_add_rows(const Var<T>& x, const IndexVector& indices, index_t rows) {
  return x.tape().record(scatter_add_rows(x.value(), indices, rows), {x}, rules::IndexAdd<T>(0, indices));
}
/// The slabs x[…, indices[j], …] along axis, recorded (its backward is index_add).
template <class T> Var<T> index_select(const Var<T>& x, int axis, const IndexVector& indices) {
  const int a = normalize_axis("index_select", axis, x.shape());
  return x.tape().record(index_select(x.value(), a, indices), {x}, rules::IndexSelect<T>(a, indices));
}
/// The adjoint of index_select, recorded: extent slabs along axis where slab indices[j] accumulates x's slab j.
template <class T> Var<T> index_add(const Var<T>& x, int axis, const IndexVector& indices, index_t extent) {
  const int a = normalize_axis("index_add", axis, x.shape());
  return x.tape().record(index_add(x.value(), a, indices, extent), {x}, rules::IndexAdd<T>(a, indices));
}
/// The elements of x at flat positions, as a rank-1 Var, recorded (its backward is scatter_add).
template <class T> Var<T> take(const Var<T>& x, const IndexVector& positions) {
  return x.tape().record(take(x.value(), positions), {x}, rules::Take<T>(positions));
}
/// A Var of shape, zero except that flat position positions[k] accumulates values[k], recorded (its backward is take).
template <class T> Var<T> scatter_add(const Var<T>& values, const IndexVector& positions, const Shape& shape) {
  return values.tape().record(scatter_add(values.value(), positions, shape), {values}, rules::ScatterAdd<T>(positions));
}
/// Elements start … start+length−1 along axis, recorded; a view of x's storage when they are one contiguous range
/// (every axis before `axis` has extent 1).
template <class T> Var<T> slice(const Var<T>& x, int axis, index_t start, index_t length) {
  const int a = normalize_axis("slice", axis, x.shape());
  const Shape& s = x.shape();
  if (start >= 0 && length >= 0 && start + length <= s[a] && s.size() == s.stride(a) * s[a])  // one contiguous range
    if (auto view = x.tape().record_view(x, start * s.stride(a), s.with_extent(a, length), rules::Slice<T>(a, start)))
      return *view;
  return x.tape().record(slice(x.value(), a, start, length), {x}, rules::Slice<T>(a, start));
}
/// Zero padding along axis, recorded.
template <class T> Var<T> pad(const Var<T>& x, int axis, index_t before, index_t after) {
  const int a = normalize_axis("pad", axis, x.shape());
  return x.tape().record(pad(x.value(), a, before, after), {x}, rules::Pad<T>(a, before));
}
/// Joins Vars of one tape along axis, recorded.
template <class T> Var<T> concat(const std::vector<Var<T>>& xs, int axis) {
  if (xs.empty()) throw value_error("concat: at least one tensor expected");
  std::vector<const Tensor<T>*> values;  // the nodes' own values: nothing is recorded while they are read
  for (const auto& x : xs) {
    xs[0].tape().check(x, "concat");
    values.push_back(&x.value());
  }
  const int a = normalize_axis("concat", axis, xs[0].shape());
  return xs[0].tape().record(detail::concat_of(values, a), xs, rules::Concat<T>(a));
}
/// Joins Vars of one tape along axis, recorded.
template <class T> Var<T> concat(std::initializer_list<Var<T>> xs, int axis) {
  return concat(std::vector<Var<T>>(xs), axis);
}
/// The same value, recorded as a constant: no gradient flows through it (a view of x's storage, without a copy).
template <class T> Var<T> stop_gradient(const Var<T>& x) {
  x.tape().check(x, "stop_gradient");  // (the view below is recorded under reshape's name)
  if (auto view = x.tape().record_view(x, 0, x.shape(), rules::Reshape<T>{}, false)) return *view;
  return x.tape().constant(x.value());
}

}  // namespace metagrad
