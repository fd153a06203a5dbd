#pragma once
// Gradient preprocessing for a coordinatewise learned optimizer (Andrychowicz et al. 2016, appendix A): gradients
// span many orders of magnitude, so each coordinate enters the LSTM as two features of bounded size.
//   paper (p = 10):            |g| ≥ e^−p: (log|g| / p, sign g);   otherwise (−1, e^p · g)
//   published code (p = 5):    (max(log(|g| + ε) / p, −1), clamp(e^p · g, −1, 1))          ε: the type's epsilon
//   none:                      (g)
// Both log-and-sign forms are differentiable almost everywhere, on either carrier.
#include <cmath>
#include <limits>
#include <string>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/index.hpp"

namespace metagrad {

struct GradientPreprocessing {
  enum Kind { none, log_and_sign, log_and_sign_clipped };
  Kind kind = log_and_sign;
  double p = 10;

  static GradientPreprocessing paper() { return {log_and_sign, 10}; }
  static GradientPreprocessing published_code() { return {log_and_sign_clipped, 5}; }
  int features() const { return kind == none ? 1 : 2; }
};

/// The features of gradient coordinates g (rank 1, [N]) as [N, features()].
template <class C>
C preprocess_gradient(const C& g, const GradientPreprocessing& pre) {
  using T = typename C::value_type;
  if (g.shape().rank() != 1) throw shape_error("preprocess_gradient: a rank-1 vector of coordinates expected, got " + g.shape().str());
  if (!(pre.p > 0)) throw value_error("preprocess_gradient: p = " + std::to_string(pre.p) + " (positive expected)");
  const index_t n = g.shape()[0];
  const auto column = [&](const C& x) { return reshape(x, Shape{n, 1}); };
  if (pre.kind == GradientPreprocessing::none) return column(g);
  const T p = static_cast<T>(pre.p), scale = std::exp(p);
  if (pre.kind == GradientPreprocessing::log_and_sign_clipped) {
    const C log_feature = clamp(log(abs(g) + std::numeric_limits<T>::epsilon()) / p, T(-1), std::numeric_limits<T>::infinity());
    return concat(std::vector<C>{column(log_feature), column(clamp(g * scale, T(-1), T(1)))}, 1);
  }
  // The paper's form: a constant mask picks the branch of each coordinate (the branches meet continuously).
  const T threshold = std::exp(-p);
  Tensor<T> large(Shape{n}), sign_of(Shape{n});
  const Tensor<T>& values = [&]() -> const Tensor<T>& {
    if constexpr (std::is_same_v<C, Tensor<T>>) return g;
    else return g.value();
  }();
  for (index_t i = 0; i < n; ++i) {
    const T v = values.data()[i];
    large.data()[i] = std::abs(v) >= threshold ? T(1) : T(0);
    sign_of.data()[i] = static_cast<T>((v > 0) - (v < 0));
  }
  const Tensor<T> small = T(1) - large;
  const C log_feature = large * (log(clamp(abs(g), threshold, std::numeric_limits<T>::infinity())) / p) - small;
  const C sign_feature = large * sign_of + small * (g * scale);
  return concat(std::vector<C>{column(log_feature), column(sign_feature)}, 1);
}

}  // namespace metagrad
