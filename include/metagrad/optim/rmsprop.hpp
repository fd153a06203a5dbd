#pragma once
// RMSprop, PyTorch's convention: s' = ρ s + (1 − ρ) g², d = g / (√s' + ε) — ε outside the root; s starts at 0.
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// RMSprop in PyTorch's convention: d = g / (√s' + ε) with s' = ρ s + (1 − ρ) g².
template <class S = double>
struct RmsProp {
  /// ρ, the mean square's decay.
  Hyper<S> decay = 0.99;  // ρ
  Hyper<S> epsilon = 1e-8;  ///< ε, added to the denominator

  /// The running mean of each parameter's squared gradient.
  template <class C>
  struct State {
    ParamList<C> mean_square;  ///< One tensor per parameter.
    METAGRAD_FIELDS(mean_square)
  };

  template <class C>
  State<C> init(const ParamList<C>& params) const {  ///< Zero mean squares.
    return {optim_detail::zeros_like_all(params)};
  }

  /// The direction g / (√s' + ε) and the new mean squares.
  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads,
                                             State<C> state) const {
    optim_detail::check_lists("RmsProp", params, grads, state.mean_square.size());
    ParamList<C> d;
    for (std::size_t i = 0; i < params.size(); ++i) {
      state.mean_square[i] = decay * state.mean_square[i] + (1 - decay) * square(grads[i]);
      d.push_back(grads[i] / (sqrt(state.mean_square[i]) + epsilon));
    }
    return {std::move(d), std::move(state)};
  }
};

}  // namespace metagrad
