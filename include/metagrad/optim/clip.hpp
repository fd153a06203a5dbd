#pragma once
// Gradient clipping as rules (Optax's clip_by_global_norm and clip): put one first in a chain,
// chain(ClipByGlobalNorm<>{.max_norm = 1}, Adam<>{}, ConstantStepSize<>{1e-3}).
#include <cmath>
#include <string>
#include <utility>

#include "metagrad/autodiff/reduce.hpp"
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// g · min(1, max_norm / ‖g‖) with ‖g‖ the norm of all gradients together, so the direction of the whole update is
/// kept. Differentiable on a tape (in g and in max_norm) wherever ‖g‖ ≠ max_norm.
template <class S = double>
struct ClipByGlobalNorm {
  Hyper<S> max_norm = 1;  ///< The largest global norm let through; must be positive.

  template <class C>
  using State = NoState<C>;  ///< No state.

  /// Checks max_norm; no state to make.
  template <class C>
  State<C> init(const ParamList<C>&) const {
    check();
    return {};
  }

  /// The clipped gradients; throws value_error unless max_norm > 0.
  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads, State<C> state) const {
    optim_detail::check_lists("ClipByGlobalNorm", params, grads, params.size());
    check();
    using T = typename C::value_type;
    const auto limit = static_cast<T>(optim_detail::value_of(max_norm));
    if constexpr (optim_detail::is_plain_tensor<C>) {
      T norm = 0;
      for (const auto& g : grads) norm += g.array().square().sum();
      norm = std::sqrt(norm);
      if (!(norm > limit)) return {grads, state};
      ParamList<C> d = grads;
      for (auto& g : d) g.array() *= limit / norm;
      return {std::move(d), state};
    } else {
      if (grads.empty()) return {grads, state};
      C squares = sum(square(grads[0]));
      for (std::size_t i = 1; i < grads.size(); ++i) squares = squares + sum(square(grads[i]));
      const C norm = sqrt(squares);
      if (!(norm.value().item() > limit)) return {grads, state};
      const C scale = max_norm / norm;
      ParamList<C> d;
      for (const auto& g : grads) d.push_back(g * scale);
      return {std::move(d), state};
    }
  }

 private:
  void check() const {
    if (!(optim_detail::value_of(max_norm) > 0))
      throw value_error("ClipByGlobalNorm: max_norm = " + std::to_string(optim_detail::value_of(max_norm)) + " (positive expected)");
  }
};

/// Every gradient entry clamped to [−limit, limit]. Differentiable in g on a tape (1 inside, 0 where clamped).
template <class T = double>
struct ClipByValue {
  T limit = 1;  ///< The largest magnitude let through; must be positive.

  template <class C>
  using State = NoState<C>;  ///< No state.

  /// Checks limit; no state to make.
  template <class C>
  State<C> init(const ParamList<C>&) const {
    check();
    return {};
  }

  /// The clamped gradients; throws value_error unless limit > 0.
  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads, State<C> state) const {
    optim_detail::check_lists("ClipByValue", params, grads, params.size());
    check();
    ParamList<C> d;
    for (const auto& g : grads) d.push_back(clamp(g, -limit, limit));
    return {std::move(d), state};
  }

 private:
  void check() const {
    if (!(limit > 0)) throw value_error("ClipByValue: limit = " + std::to_string(limit) + " (positive expected)");
  }
};

}  // namespace metagrad
