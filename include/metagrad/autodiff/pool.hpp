#pragma once
// max_pool2d, avg_pool2d and avg_pool2d's adjoint on Vars. Max pooling is a gather at the positions of the window
// maxima (its adjoint the scatter back), and average pooling and its adjoint are each other's backward rule, so both
// are differentiated to any order.
#include "metagrad/autodiff/index.hpp"
#include "metagrad/ops/pool.hpp"

namespace metagrad {

template <class T> Var<T> avg_pool2d(const Var<T>& x, const Pool2dOptions& options = {});
template <class T> Var<T> avg_pool2d_adjoint(const Var<T>& g, const Shape& input_shape, const Pool2dOptions& options = {});

namespace rules {
template <class T> struct AvgPool2d : Rule<T, AvgPool2d<T>> {
  Pool2dOptions options;
  explicit AvgPool2d(const Pool2dOptions& o) : options(o) {}
  const char* name() const override { return "avg_pool2d"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, avg_pool2d_adjoint(c.grad(), c.value(0).shape(), options)); }
};
template <class T> struct AvgPool2dAdjoint : Rule<T, AvgPool2dAdjoint<T>> {
  Pool2dOptions options;
  explicit AvgPool2dAdjoint(const Pool2dOptions& o) : options(o) {}
  const char* name() const override { return "avg_pool2d_adjoint"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, avg_pool2d(c.grad(), options)); }
};
}  // namespace rules

/// The maximum of each window, recorded as a gather: the gradient goes to the first maximum of each window.
template <class T> Var<T> max_pool2d(const Var<T>& x, const Pool2dOptions& options = {}) {
  const auto q = detail::PoolGeometry::of("max_pool2d", x.shape(), options);
  return reshape(take(x, max_pool2d_positions(x.value(), options)), q.output);
}
/// The mean of each window (padding counted as zeros), recorded.
template <class T> Var<T> avg_pool2d(const Var<T>& x, const Pool2dOptions& options) {
  return x.tape().record(avg_pool2d(x.value(), options), {x}, rules::AvgPool2d<T>(options));
}
/// avg_pool2d's adjoint, recorded.
template <class T> Var<T> avg_pool2d_adjoint(const Var<T>& g, const Shape& input_shape, const Pool2dOptions& options) {
  return g.tape().record(avg_pool2d_adjoint(g.value(), input_shape, options), {g}, rules::AvgPool2dAdjoint<T>(options));
}

}  // namespace metagrad
