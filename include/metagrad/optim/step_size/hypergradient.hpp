#pragma once
// Hypergradient descent (Baydin et al., ICLR 2018): the step size learns online, at the cost of one dot product
// per step. With g_t the gradient and d_{t−1} the previous step's descent direction (θ_t = θ_{t−1} − α d_{t−1}):
//   additive:        α_t = α_{t−1} + β g_t·d_{t−1}
//   multiplicative:  α_t = α_{t−1} (1 + β cos(g_t, d_{t−1}))           (scale-free; α stays positive for β < 1)
// Step 1 leaves α₀ unchanged (d₀ = 0). Any update rule works: with SGD d = g (SGD-HD), with Nesterov
// d = g + μv (SGDN-HD), with Adam d = m̂/(√v̂ + ε) (Adam-HD) — the forms of PAPERS.md §1.
// Safeguards: α_t is clamped to [min_step_size, max_step_size]; "HD with decay" steps with
// γ_t = δ(t) α_t + (1 − δ(t)) α_∞, δ(t) = t^(−decay_power), when `limit_step_size` (α_∞) is set.
// A non-finite hypergradient stops with an error naming the step.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// Hypergradient descent's step size (Baydin et al. 2018): α learns online from g_t · d_{t−1}.
template <class T = double>
struct HypergradientStepSize {
  using value_type = T;                                   ///< The number type of α.
  T initial = T(1e-3);                                    ///< α₀
  T beta = T(1e-3);                                       ///< hypergradient step β
  bool multiplicative = false;                            ///< Multiplicative (cosine) form instead of additive.
  T min_step_size = -std::numeric_limits<T>::infinity();  ///< Lower clamp of α_t.
  T max_step_size = std::numeric_limits<T>::infinity();   ///< Upper clamp of α_t.
  std::optional<T> limit_step_size{};                     ///< α_∞ of HD with decay
  T decay_power = T(2);                                   ///< The power of δ(t) = t^(−decay_power) in HD with decay.

  /// α_{t−1}, the last direction and the step count.
  struct State {
    T step_size = T(0);                       ///< α_{t−1}
    ParamList<Tensor<T>> previous_direction;  ///< d_{t−1}; zeros before the first step
    std::int64_t steps = 0;                   ///< steps taken
    METAGRAD_FIELDS(step_size, previous_direction, steps)
  };
  static constexpr bool needs_direction = true;  ///< The policy needs the rule's direction d_t.

  /// α₀ and zero directions; throws value_error if min_step_size > max_step_size.
  State init(const ParamList<Tensor<T>>& params) const {
    if (!(min_step_size <= max_step_size))
      throw value_error("HypergradientStepSize: min_step_size exceeds max_step_size");
    return {initial, optim_detail::zeros_like_all(params), 0};
  }

  /// α_t (or γ_t with decay) for the step whose gradient is `grads`. Everything is checked and computed before
  /// `state` changes, so on an error it is left as it was.
  T begin_step(State& state, const ParamList<Tensor<T>>& grads) const {
    if (state.previous_direction.size() != grads.size())
      throw value_error("HypergradientStepSize: " + std::to_string(grads.size()) + " gradients, but the state holds " +
                        std::to_string(state.previous_direction.size()) + " directions (was it initialized for these parameters?)");
    for (std::size_t i = 0; i < grads.size(); ++i)
      if (!(grads[i].shape() == state.previous_direction[i].shape()))
        throw shape_error("HypergradientStepSize: gradient " + std::to_string(i) + " has shape " + grads[i].shape().str() +
                          ", the state's direction " + state.previous_direction[i].shape().str());
    T g_dot_d = 0, g_norm2 = 0, d_norm2 = 0;  // with d₀ = 0 the first step leaves α₀ unchanged
    for (std::size_t i = 0; i < grads.size(); ++i) {
      const auto g = grads[i].array().matrix();
      const auto d = state.previous_direction[i].array().matrix();
      g_dot_d += g.dot(d);
      if (multiplicative) {
        g_norm2 += g.squaredNorm();
        d_norm2 += d.squaredNorm();
      }
    }
    if (!std::isfinite(g_dot_d))
      throw training_error("HypergradientStepSize: the hypergradient g·d is " + std::to_string(g_dot_d) + " at step " +
                           std::to_string(state.steps) + " (a non-finite gradient?)");
    T alpha = state.step_size;
    if (multiplicative) {
      const T denominator = std::sqrt(g_norm2 * d_norm2);
      alpha *= 1 + beta * (denominator > 0 ? g_dot_d / denominator : T(0));
    } else {
      alpha += beta * g_dot_d;
    }
    state.step_size = std::clamp(alpha, min_step_size, max_step_size);
    ++state.steps;
    if (!limit_step_size) return state.step_size;
    const T delta = std::pow(static_cast<T>(state.steps), -decay_power);  // δ(1) = 1 on the first step
    return delta * state.step_size + (1 - delta) * *limit_step_size;
  }

  /// The learned step size α_t (before HD-with-decay's blending toward α_∞).
  T current(const State& state) const { return state.step_size; }

  /// Hands over the previous direction's memory once begin_step has used it.
  ParamList<Tensor<T>> take_direction(State& state) const { return std::move(state.previous_direction); }

  /// Keeps this step's direction for the next hypergradient.
  void end_step(State& state, ParamList<Tensor<T>> direction) const { state.previous_direction = std::move(direction); }
};

}  // namespace metagrad
