#pragma once
// Gradient preprocessing for a coordinatewise learned optimizer (Andrychowicz et al. 2016, appendix A): gradients
// span many orders of magnitude, so each coordinate enters the LSTM as two features of bounded size.
//   paper (p = 10):            |g| ≥ e^−p: (log|g| / p, sign g);   otherwise (−1, e^p · g)
//   published code (p = 5):    (max(log(|g| + ε) / p, −1), clamp(e^p · g, −1, 1))          ε: the type's epsilon
//   none:                      (g)
//   moments (p = 10):          the paper's two, and m_β / u for β = 0.5, 0.9, 0.99: momenta at three time scales,
//                              normalized by u = max(0.999 u, |g|) (AdaMax's normalizer: no bias correction, |m_β / u|
//                              ≤ 1.12); the optimizer keeps m_β and u per coordinate in its state
//   moments and raw (p = 10):  those five, and 10 · (g, m_0.5, m_0.9, m_0.99) unnormalized: with them the LSTM can
//                              follow the gradient's own scale, as momentum SGD does
// All forms are differentiable almost everywhere, on either carrier.
#include <cmath>
#include <limits>
#include <string>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/index.hpp"

namespace metagrad {

/// How the LSTM optimizer turns each gradient coordinate into its input features.
struct GradientPreprocessing {
  /// The feature sets; files store a kind as its number.
  enum Kind {
    none,                  ///< The raw gradient, one feature.
    log_and_sign,          ///< The paper's (log|g| / p, sign g), or (−1, e^p g) where |g| < e^−p.
    log_and_sign_clipped,  ///< The published code's form: both features clipped, no branch.
    log_and_sign_moments,  ///< log-and-sign of g plus features of its momenta: five features.
    moments_and_raw,       ///< log_and_sign_moments plus four raw, scaled inputs: nine features.
  };
  static constexpr int kinds = moments_and_raw + 1;  ///< files store a kind as its number, 0 … kinds − 1
  Kind kind = log_and_sign;                          ///< The feature set.
  double p = 10;                                     ///< The log scale p (positive).

  static GradientPreprocessing paper() { return {log_and_sign, 10}; }  ///< The paper's features (p = 10).
  /// The published code's features (p = 5).
  static GradientPreprocessing published_code() { return {log_and_sign_clipped, 5}; }
  /// log-and-sign plus momenta (p = 10).
  static GradientPreprocessing moments() { return {log_and_sign_moments, 10}; }
  /// moments plus raw inputs (p = 10).
  static GradientPreprocessing moments_and_raw_momenta() { return {moments_and_raw, 10}; }
  /// moments_and_raw: after the five moments features, features raw_column … raw_column + 3 are
  /// raw_scale · (g, m_0.5, m_0.9, m_0.99).
  static constexpr int raw_column = 5;
  static constexpr double raw_scale = 10;  ///< The scale of the raw inputs.
  /// Whether the features keep per-coordinate state.
  bool has_moments() const { return kind == log_and_sign_moments || kind == moments_and_raw; }
  /// Features per coordinate.
  int features() const { return kind == none ? 1 : kind == log_and_sign_moments ? 5 : kind == moments_and_raw ? 9 : 2; }
  /// Columns of per-coordinate state the features keep (m_0.5, m_0.9, m_0.99, u for the moments; none otherwise).
  index_t state_columns() const { return has_moments() ? 4 : 0; }
};

/// The features of gradient coordinates g (rank 1, [N]) as [N, features()], for the kinds without state (see
/// gradient_features for all kinds).
template <class C>
C preprocess_gradient(const C& g, const GradientPreprocessing& pre) {
  using T = typename C::value_type;
  if (g.shape().rank() != 1) throw shape_error("preprocess_gradient: a rank-1 vector of coordinates expected, got " + g.shape().str());
  if (!(pre.p > 0)) throw value_error("preprocess_gradient: p = " + std::to_string(pre.p) + " (positive expected)");
  if (pre.has_moments()) throw value_error("preprocess_gradient: the moments features keep state; use gradient_features");
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

/// The features of g [N] as [N, features()] and the per-coordinate state [N, state_columns()] after g, from the
/// state before it (the moments' momenta and normalizer; an empty [N, 0] for the other kinds).
template <class C>
std::pair<C, C> gradient_features(const C& g, const C& state, const GradientPreprocessing& pre) {
  using T = typename C::value_type;
  if (!pre.has_moments()) return {preprocess_gradient(g, pre), state};
  const index_t n = g.shape().rank() == 1 ? g.shape()[0] : -1;
  if (!(state.shape() == Shape{n, 4}))
    throw shape_error("gradient_features: state of shape " + state.shape().str() + " for gradient " + g.shape().str() + " (expected [N, 4])");
  Tensor<T> beta(Shape{3});
  beta.data()[0] = T(0.5), beta.data()[1] = T(0.9), beta.data()[2] = T(0.99);
  const Tensor<T> rest = T(1) - beta;
  const C column = reshape(g, Shape{n, 1});
  const C momenta = slice(state, 1, 0, 3) * beta + column * rest;
  const C magnitude = abs(column);
  const C normalizer = relu(slice(state, 1, 3, 1) * T(0.999) - magnitude) + magnitude;  // max(0.999 u, |g|)
  const C features = momenta / (normalizer + std::numeric_limits<T>::min());
  std::vector<C> all{preprocess_gradient(g, GradientPreprocessing{GradientPreprocessing::log_and_sign, pre.p}), features};
  if (pre.kind == GradientPreprocessing::moments_and_raw) all.push_back(concat(std::vector<C>{column, momenta}, 1) * T(GradientPreprocessing::raw_scale));
  return {concat(all, 1), concat(std::vector<C>{momenta, normalizer}, 1)};
}

}  // namespace metagrad
