#pragma once
// Weight decay as a rule of its own (Optax's add_decayed_weights): d = g + λθ. Where it stands in a chain says which
// kind it is: before a rule it is the coupled L2 penalty's gradient, chain(AddDecayedWeights<>{λ}, Momentum<>{}); after
// one it is decoupled, chain(Adam<>{}, AddDecayedWeights<>{λ}) being AdamW. λ may be a Var (a metaparameter).
#include <utility>

#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// Weight decay as a rule: d = g + λθ (coupled before a rule in a chain, decoupled after it).
template <class S = double>
struct AddDecayedWeights {
  Hyper<S> weight_decay = 0;  ///< λ; a plain 0 records nothing

  template <class C>
  using State = NoState<C>;  ///< No state.

  template <class C>
  State<C> init(const ParamList<C>&) const {  ///< No state to make.
    return {};
  }

  /// g + λθ for every parameter; a plain λ = 0 passes g through and records nothing.
  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads, State<C> state) const {
    optim_detail::check_lists("AddDecayedWeights", params, grads, params.size());
    if constexpr (std::is_arithmetic_v<Hyper<S>>) {
      if (weight_decay == S(0)) return {grads, state};
    } else {
      if (weight_decay.is_plain_zero()) return {grads, state};
    }
    ParamList<C> d;
    for (std::size_t i = 0; i < params.size(); ++i) d.push_back(grads[i] + weight_decay * params[i]);
    return {std::move(d), state};
  }
};

}  // namespace metagrad
