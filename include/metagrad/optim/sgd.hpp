#pragma once
// Plain stochastic gradient descent: d = g + λθ (λ: coupled L2 weight decay, 0 by default).
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// SGD keeps no state.
template <class C>
struct SgdState {
  auto fields() const { return named_fields(""); }
};

template <class S = double>
struct Sgd {
  Hyper<S> weight_decay = 0;

  template <class C>
  using State = SgdState<C>;

  template <class C>
  State<C> init(const ParamList<C>&) const {
    return {};
  }

  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads,
                                             State<C> state) const {
    optim_detail::check_lists("Sgd", params, grads, params.size());
    ParamList<C> d;
    for (std::size_t i = 0; i < params.size(); ++i) d.push_back(optim_detail::with_weight_decay(grads[i], params[i], weight_decay));
    return {std::move(d), state};
  }
};

}  // namespace metagrad
