#pragma once
// Adam (Kingma & Ba), in PyTorch's convention:
//   m' = β1 m + (1 − β1) g,   v' = β2 v + (1 − β2) g²,   t' = t + 1,
//   d  = m̂ / (√v̂ + ε)  with  m̂ = m' / (1 − β1^t'),  v̂ = v' / (1 − β2^t')   — ε outside the root, by default;
//   `epsilon_inside_sqrt` gives d = m̂ / √(v̂ + ε), the metasmooth variant of the REPLAY paper.
// `weight_decay` is coupled L2 (added to g) unless `decoupled_weight_decay` is set, which is AdamW (below).
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// Adam's state: both moments and the step count (shared by Adam and AdamW whatever their hyperparameter type).
template <class C>
struct AdamState {
  ParamList<C> first_moment, second_moment;
  std::int64_t steps = 0;
};

template <class S = double>
struct Adam {
  S beta1 = S(0.9);
  S beta2 = S(0.999);
  S epsilon = S(1e-8);
  S weight_decay = S(0);
  bool epsilon_inside_sqrt = false;
  bool decoupled_weight_decay = false;  // AdamW: d = m̂ / (√v̂ + ε) + λθ

  template <class C>
  using State = AdamState<C>;

  template <class C>
  State<C> init(const ParamList<C>& params) const {
    return {optim_detail::zeros_like_all(params), optim_detail::zeros_like_all(params), 0};
  }

  /// The direction and the new state. A state passed as an rvalue is updated in place.
  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads, State<C> state) const {
    optim_detail::check_lists("Adam", params, grads, state.first_moment.size());
    ++state.steps;
    ParamList<C> d;
    for (std::size_t i = 0; i < params.size(); ++i) {
      if constexpr (optim_detail::is_plain_tensor<C> && std::is_arithmetic_v<S>) {
        d.push_back(C::uninitialized(params[i].shape()));
        fused(params[i], grads[i], state, i, state.steps, [&](index_t k, S dk) { d[i].data()[k] = dk; });
      } else {
        const S c1 = 1 - optim_detail::power(beta1, state.steps);  // bias corrections
        const S c2 = 1 - optim_detail::power(beta2, state.steps);
        const C g = decoupled_weight_decay ? grads[i] : optim_detail::with_weight_decay(grads[i], params[i], weight_decay);
        state.first_moment[i] = beta1 * state.first_moment[i] + (1 - beta1) * g;
        state.second_moment[i] = beta2 * state.second_moment[i] + (1 - beta2) * square(g);
        const C v_hat = state.second_moment[i] / c2;
        d.push_back((state.first_moment[i] / c1) / (epsilon_inside_sqrt ? sqrt(v_hat + epsilon) : sqrt(v_hat) + epsilon));
        if (decoupled_weight_decay) d[i] = d[i] + weight_decay * params[i];
      }
    }
    return {std::move(d), std::move(state)};
  }

  /// θ −= α d in the same pass that updates the moments: plain tensors and a plain step size only.
  template <class T>
    requires std::is_arithmetic_v<S>
  void step_in_place(ParamList<Tensor<T>>& params, const ParamList<Tensor<T>>& grads, State<Tensor<T>>& state,
                     S step_size) const {
    optim_detail::check_lists("Adam", params, grads, state.first_moment.size());
    ++state.steps;
    for (std::size_t i = 0; i < params.size(); ++i) {
      T* p = params[i].data();
      fused(params[i], grads[i], state, i, state.steps, [&](index_t k, S dk) { p[k] -= step_size * dk; });
    }
  }

 private:
  /// One pass over parameter i: updates both moments and hands each element's direction to `use`.
  template <class T, class Use>
  void fused(const Tensor<T>& param, const Tensor<T>& grad, State<Tensor<T>>& state, std::size_t i, std::int64_t t,
             Use&& use) const {
    const S c1 = 1 - optim_detail::power(beta1, t), c2 = 1 - optim_detail::power(beta2, t);
    const S coupled = decoupled_weight_decay ? S(0) : weight_decay, decoupled = decoupled_weight_decay ? weight_decay : S(0);
    const T* g = grad.data();
    const T* p = param.data();
    T* m = state.first_moment[i].data();
    T* v = state.second_moment[i].data();
    for (index_t k = 0; k < param.size(); ++k) {
      const T gk = g[k] + coupled * p[k];
      m[k] = beta1 * m[k] + (1 - beta1) * gk;
      v[k] = beta2 * v[k] + (1 - beta2) * gk * gk;
      const T v_hat = v[k] / c2;
      use(k, (m[k] / c1) / (epsilon_inside_sqrt ? std::sqrt(v_hat + epsilon) : std::sqrt(v_hat) + epsilon) +
                 decoupled * p[k]);
    }
  }
};

/// AdamW (Loshchilov & Hutter), PyTorch's convention: Adam's direction plus the decoupled decay λθ, so that the
/// step is θ' = θ − α (m̂ / (√v̂ + ε) + λθ): the decay is scaled by the step size but not by the moments.
template <class S = double>
struct AdamW {
  S beta1 = S(0.9);
  S beta2 = S(0.999);
  S epsilon = S(1e-8);
  S weight_decay = S(0.01);
  bool epsilon_inside_sqrt = false;

  template <class C>
  using State = AdamState<C>;

  template <class C>
  State<C> init(const ParamList<C>& params) const {
    return adam().init(params);
  }
  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads, State<C> state) const {
    return adam().direction(params, grads, std::move(state));
  }
  template <class T>
    requires std::is_arithmetic_v<S>
  void step_in_place(ParamList<Tensor<T>>& params, const ParamList<Tensor<T>>& grads, State<Tensor<T>>& state,
                     S step_size) const {
    adam().step_in_place(params, grads, state, step_size);
  }

  Adam<S> adam() const { return {beta1, beta2, epsilon, weight_decay, epsilon_inside_sqrt, true}; }
};

}  // namespace metagrad
