#pragma once
// The affine layers, for any mix of carriers (a Tensor input with Var weights is the usual training case): dense,
// x·W + b, and convolutional, conv2d(x, w) + b per output channel.
#include "metagrad/autodiff/conv.hpp"
#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/index.hpp"
#include "metagrad/autodiff/linalg.hpp"

namespace metagrad {

/// x [batch, in] · W [in, out] + b [out] → [batch, out].
template <class X, class W, class B>
auto linear(const X& x, const W& w, const B& b) {
  return matmul(x, w) + b;
}

/// conv2d(x [N, C, H, W], w [O, C / groups, kh, kw]) + b [O] on each output channel → [N, O, Ho, Wo].
template <class X, class W, class B>
auto conv2d_layer(const X& x, const W& w, const B& b, const Conv2dOptions& options = {}) {
  if (w.shape().rank() != 4 || !(b.shape() == Shape{w.shape()[0]}))
    throw shape_error("conv2d_layer: bias of shape " + b.shape().str() + " for weight " + w.shape().str() + " ([" +
                      std::to_string(w.shape()[0]) + "] expected: one per output channel)");
  return conv2d(x, w, options) + reshape(b, Shape{1, w.shape()[0], 1, 1});
}

}  // namespace metagrad
