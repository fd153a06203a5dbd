#pragma once
// sum, mean and max on Vars, with their backward rules (logsumexp lives with softmax in nn.hpp).
#include "metagrad/autodiff/index.hpp"
#include "metagrad/ops/reduce.hpp"

namespace metagrad {
namespace rules {

/// The gradient of a reduction along `axis`, spread back over the input's shape.
template <class C>
auto spread(const C& g, const Shape& input, int axis, bool keepdims) {
  return broadcast_to(keepdims ? g : reshape(g, input.reduced(axis, true)), input);
}

template <class T> struct Sum : Rule<T, Sum<T>> {
  const char* name() const override { return "sum"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, broadcast_to(c.grad(), c.value(0).shape())); }
};
template <class T> struct SumAxis : Rule<T, SumAxis<T>> {
  int axis;
  bool keepdims;
  SumAxis(int a, bool k) : axis(a), keepdims(k) {}
  const char* name() const override { return "sum"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, spread(c.grad(), c.value(0).shape(), axis, keepdims)); }
};
template <class T> struct MaxAxis : Rule<T, MaxAxis<T>> {  // the gradient goes to the first maximum of each lane
  int axis;
  bool keepdims;
  MaxAxis(int a, bool k) : axis(a), keepdims(k) {}
  const char* name() const override { return "max"; }
  template <class C> void vjp(C& c) const {
    c.accumulate(0, spread(c.grad(), c.value(0).shape(), axis, keepdims) * c.constant(argmax_mask(c.value(0), axis)));
  }
};
}  // namespace rules

/// The sum of all elements, recorded.
template <class T> Var<T> sum(const Var<T>& x) { return x.tape().record(sum(x.value()), {x}, rules::Sum<T>{}); }
/// The sum along one axis, recorded.
template <class T> Var<T> sum(const Var<T>& x, int axis, bool keepdims = false) {
  const int a = normalize_axis("sum", axis, x.shape());
  return x.tape().record(sum(x.value(), a, keepdims), {x}, rules::SumAxis<T>(a, keepdims));
}
/// The mean of all elements, recorded.
template <class T> Var<T> mean(const Var<T>& x) { return sum(x) * (T(1) / static_cast<T>(detail::mean_count("mean", x.shape()))); }
/// The mean along one axis, recorded.
template <class T> Var<T> mean(const Var<T>& x, int axis, bool keepdims = false) {
  const int a = normalize_axis("mean", axis, x.shape());
  return sum(x, a, keepdims) * (T(1) / static_cast<T>(detail::mean_count("mean", x.shape(), a)));
}
/// The largest element along one axis, recorded (the gradient goes to the first maximum).
template <class T> Var<T> max(const Var<T>& x, int axis, bool keepdims = false) {
  const int a = normalize_axis("max", axis, x.shape());
  return x.tape().record(max(x.value(), a, keepdims), {x}, rules::MaxAxis<T>(a, keepdims));
}
}  // namespace metagrad
