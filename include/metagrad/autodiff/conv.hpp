#pragma once
// conv2d and its two adjoints on Vars. Each one's backward rule is written with the other two, so a convolution is
// differentiated to any order (its HVP, or a metagradient through a CNN's training run).
#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/ops/conv.hpp"

namespace metagrad {

template <class T> Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Conv2dOptions& options = {});
template <class T>
Var<T> conv2d_input_grad(const Var<T>& g, const Var<T>& w, const Shape& input_shape, const Conv2dOptions& options = {});
template <class T>
Var<T> conv2d_weight_grad(const Var<T>& x, const Var<T>& g, const Shape& weight_shape, const Conv2dOptions& options = {});

namespace rules {

// y = conv2d(x, w): x̄ = conv2d_input_grad(ȳ, w), w̄ = conv2d_weight_grad(x, ȳ).
template <class T> struct Conv2d : Rule<T, Conv2d<T>> {
  Conv2dOptions options;
  explicit Conv2d(const Conv2dOptions& o) : options(o) {}
  const char* name() const override { return "conv2d"; }
  template <class C> void vjp(C& c) const {
    if (c.needs(0)) c.accumulate(0, conv2d_input_grad(c.grad(), c.input(1), c.value(0).shape(), options));
    if (c.needs(1)) c.accumulate(1, conv2d_weight_grad(c.input(0), c.grad(), c.value(1).shape(), options));
  }
};
// y = conv2d_input_grad(g, w), bilinear with ⟨y, u⟩ = ⟨g, conv2d(u, w)⟩: ḡ = conv2d(ȳ, w), w̄ = conv2d_weight_grad(ȳ, g).
template <class T> struct Conv2dInputGrad : Rule<T, Conv2dInputGrad<T>> {
  Conv2dOptions options;
  explicit Conv2dInputGrad(const Conv2dOptions& o) : options(o) {}
  const char* name() const override { return "conv2d_input_grad"; }
  template <class C> void vjp(C& c) const {
    if (c.needs(0)) c.accumulate(0, conv2d(c.grad(), c.input(1), options));
    if (c.needs(1)) c.accumulate(1, conv2d_weight_grad(c.grad(), c.input(0), c.value(1).shape(), options));
  }
};
// y = conv2d_weight_grad(x, g), bilinear with ⟨y, v⟩ = ⟨g, conv2d(x, v)⟩: x̄ = conv2d_input_grad(g, ȳ), ḡ = conv2d(x, ȳ).
template <class T> struct Conv2dWeightGrad : Rule<T, Conv2dWeightGrad<T>> {
  Conv2dOptions options;
  explicit Conv2dWeightGrad(const Conv2dOptions& o) : options(o) {}
  const char* name() const override { return "conv2d_weight_grad"; }
  template <class C> void vjp(C& c) const {
    if (c.needs(0)) c.accumulate(0, conv2d_input_grad(c.input(1), c.grad(), c.value(0).shape(), options));
    if (c.needs(1)) c.accumulate(1, conv2d(c.input(0), c.grad(), options));
  }
};

}  // namespace rules

/// The 2-D convolution of x [N, C, H, W] with w [O, C / groups, kh, kw], recorded (see the plain conv2d).
template <class T> Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Conv2dOptions& options) {
  return detail::common_tape("conv2d", x, w).record(conv2d(x.value(), w.value(), options), {x, w}, rules::Conv2d<T>(options));
}
/// conv2d of a constant input (a batch of images) with recorded weights.
template <class T> Var<T> conv2d(const Tensor<T>& x, const Var<T>& w, const Conv2dOptions& options = {}) {
  return conv2d(w.tape().constant(x), w, options);
}
/// conv2d of a recorded input with constant weights.
template <class T> Var<T> conv2d(const Var<T>& x, const Tensor<T>& w, const Conv2dOptions& options = {}) {
  return conv2d(x, x.tape().constant(w), options);
}

/// The transposed convolution (conv2d's adjoint in its input), recorded.
template <class T>
Var<T> conv2d_input_grad(const Var<T>& g, const Var<T>& w, const Shape& input_shape, const Conv2dOptions& options) {
  return detail::common_tape("conv2d_input_grad", g, w)
      .record(conv2d_input_grad(g.value(), w.value(), input_shape, options), {g, w}, rules::Conv2dInputGrad<T>(options));
}
/// conv2d's adjoint in its weight, recorded.
template <class T>
Var<T> conv2d_weight_grad(const Var<T>& x, const Var<T>& g, const Shape& weight_shape, const Conv2dOptions& options) {
  return detail::common_tape("conv2d_weight_grad", x, g)
      .record(conv2d_weight_grad(x.value(), g.value(), weight_shape, options), {x, g}, rules::Conv2dWeightGrad<T>(options));
}

}  // namespace metagrad
