#pragma once
// Plain stochastic gradient descent: d = g. (Weight decay is a rule of its own: chain(AddDecayedWeights<>{λ}, Sgd<>{}).)
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// SGD keeps no state.
template <class C>
using SgdState = NoState<C>;

/// Plain SGD: d = g.
template <class S = double>
struct Sgd {
  template <class C>
  using State = SgdState<C>;  ///< No state.

  template <class C>
  State<C> init(const ParamList<C>&) const {  ///< No state to make.
    return {};
  }

  /// The direction: the gradients themselves.
  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads,
                                             State<C> state) const {
    optim_detail::check_lists("Sgd", params, grads, params.size());
    return {grads, state};
  }
};

}  // namespace metagrad
