#pragma once
// The affine layer x·W + b, for any mix of carriers (a Tensor input with Var weights is the usual training case).
#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/linalg.hpp"

namespace metagrad {

/// x [batch, in] · W [in, out] + b [out] → [batch, out].
template <class X, class W, class B>
auto linear(const X& x, const W& w, const B& b) {
  return matmul(x, w) + b;
}

}  // namespace metagrad
