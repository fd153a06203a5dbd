#pragma once
// Heavy-ball momentum, PyTorch's convention: v' = μ v + g, d = v' (no dampening; v starts at 0).
// Nesterov momentum (nesterov.hpp) is the same rule with the other direction.
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// Momentum's state: the velocity of each parameter.
template <class C>
struct MomentumState {
  ParamList<C> velocity;  ///< One tensor per parameter.
  METAGRAD_FIELDS(velocity)
};

/// Heavy-ball (nesterov = false) and Nesterov (true) momentum: one rule, two directions.
template <class S, bool nesterov>
struct MomentumRule {
  Hyper<S> momentum = 0.9;  ///< μ

  template <class C>
  using State = MomentumState<C>;  ///< The velocity, one tensor per parameter.

  template <class C>
  State<C> init(const ParamList<C>& params) const {  ///< Zero velocity.
    return {optim_detail::zeros_like_all(params)};
  }

  /// v' = μ v + g; d = v', or g + μ v' for Nesterov.
  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads,
                                             State<C> state) const {
    optim_detail::check_lists(nesterov ? "Nesterov" : "Momentum", params, grads, state.velocity.size());
    ParamList<C> d;
    for (std::size_t i = 0; i < params.size(); ++i) {
      state.velocity[i] = momentum * state.velocity[i] + grads[i];
      d.push_back(nesterov ? grads[i] + momentum * state.velocity[i] : state.velocity[i]);
    }
    return {std::move(d), std::move(state)};
  }
};

template <class S = double>
using Momentum = MomentumRule<S, false>;  ///< Heavy-ball momentum: d = v' = μ v + g.

}  // namespace metagrad
