#pragma once
// Nesterov momentum, in the form of PyTorch and of the hypergradient paper (SGDN):
// v' = μ v + g, d = g + μ v'.
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

template <class S = double>
struct Nesterov {
  S momentum = S(0.9);
  S weight_decay = S(0);

  template <class C>
  struct State {
    ParamList<C> velocity;
    template <class F> void fields(F&& f) { f("velocity", velocity); }
    template <class F> void fields(F&& f) const { f("velocity", velocity); }
  };

  template <class C>
  State<C> init(const ParamList<C>& params) const {
    return {optim_detail::zeros_like_all(params)};
  }

  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads,
                                             State<C> state) const {
    optim_detail::check_lists("Nesterov", params, grads, state.velocity.size());
    ParamList<C> d;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const C g = optim_detail::with_weight_decay(grads[i], params[i], weight_decay);
      state.velocity[i] = momentum * state.velocity[i] + g;
      d.push_back(g + momentum * state.velocity[i]);
    }
    return {std::move(d), std::move(state)};
  }
};

}  // namespace metagrad
