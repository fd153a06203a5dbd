#pragma once
// Nesterov momentum, in the form of PyTorch and of the hypergradient paper (SGDN):
// v' = μ v + g, d = g + μ v'.
#include "metagrad/optim/momentum.hpp"

namespace metagrad {

template <class S = double>
struct Nesterov {
  S momentum = S(0.9);
  S weight_decay = S(0);

  template <class C>
  using State = MomentumState<C>;

  template <class C>
  State<C> init(const ParamList<C>& params) const {
    return {optim_detail::zeros_like_all(params)};
  }

  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads,
                                             State<C> state) const {
    return optim_detail::momentum_direction("Nesterov", params, grads, std::move(state), momentum, weight_decay, true);
  }
};

}  // namespace metagrad
