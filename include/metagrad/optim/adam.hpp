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
  METAGRAD_FIELDS(first_moment, second_moment, steps)
};

template <class S = double>
struct Adam {
  Hyper<S> beta1 = 0.9;
  Hyper<S> beta2 = 0.999;
  Hyper<S> epsilon = 1e-8;
  Hyper<S> weight_decay = 0;
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
        auto di = d[i].array();
        fused(params[i], grads[i], state, i, state.steps, [&](index_t k, const auto& dk) { di.segment(k, dk.size()) = dk; });
      } else {
        const auto c1 = 1 - optim_detail::power(beta1, state.steps);  // bias corrections
        const auto c2 = 1 - optim_detail::power(beta2, state.steps);
        const C g = decoupled_weight_decay ? grads[i] : optim_detail::with_weight_decay(grads[i], params[i], weight_decay);
        state.first_moment[i] = beta1 * state.first_moment[i] + (1 - beta1) * g;
        state.second_moment[i] = beta2 * state.second_moment[i] + (1 - beta2) * square(g);
        const C v_hat = state.second_moment[i] / c2;
        d.push_back((state.first_moment[i] / c1) / (epsilon_inside_sqrt ? sqrt(v_hat + epsilon) : sqrt(v_hat) + epsilon));
        if (decoupled_weight_decay) d[i] = optim_detail::with_weight_decay(d[i], params[i], weight_decay);
      }
    }
    return {std::move(d), std::move(state)};
  }

  /// θ −= α d in the same pass that updates the moments: plain tensors and a plain step size only. When
  /// `direction` is given, it receives d as well (for a hypergradient step size); tensors it already holds with the
  /// right shapes are overwritten rather than reallocated.
  template <class T>
    requires std::is_arithmetic_v<S>
  void step_in_place(ParamList<Tensor<T>>& params, const ParamList<Tensor<T>>& grads, State<Tensor<T>>& state,
                     S step_size, ParamList<Tensor<T>>* direction = nullptr) const {
    optim_detail::check_lists("Adam", params, grads, state.first_moment.size());
    ++state.steps;
    if (direction) direction->resize(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      auto p = params[i].array();
      if (direction) {
        if (!((*direction)[i].shape() == params[i].shape())) (*direction)[i] = Tensor<T>::uninitialized(params[i].shape());
        auto d = (*direction)[i].array();
        fused(params[i], grads[i], state, i, state.steps, [&](index_t k, const auto& dk) {
          d.segment(k, dk.size()) = dk;
          p.segment(k, dk.size()) -= step_size * dk;
        });
      } else {
        fused(params[i], grads[i], state, i, state.steps,
              [&](index_t k, const auto& dk) { p.segment(k, dk.size()) -= step_size * dk; });
      }
    }
  }

 private:
  /// Updates both moments of parameter i and hands the direction to `use(offset, chunk)`, a chunk at a time: each
  /// chunk's arrays stay in the L1 cache across the vectorized statements, so memory is read about once.
  template <class T, class Use>
  void fused(const Tensor<T>& param, const Tensor<T>& grad, State<Tensor<T>>& state, std::size_t i, std::int64_t t,
             Use&& use) const {
    constexpr index_t chunk = 512;
    const S c1 = 1 - optim_detail::power(beta1, t), c2 = 1 - optim_detail::power(beta2, t);
    const S coupled = decoupled_weight_decay ? S(0) : weight_decay, decoupled = decoupled_weight_decay ? weight_decay : S(0);
    const auto g_all = grad.array(), p_all = param.array();
    auto m_all = state.first_moment[i].array(), v_all = state.second_moment[i].array();
    Eigen::Array<T, chunk, 1> g, d;
    for (index_t k = 0; k < param.size(); k += chunk) {
      const index_t len = std::min(chunk, param.size() - k);
      auto gk = g.head(len);
      auto dk = d.head(len);
      const auto p = p_all.segment(k, len);
      auto m = m_all.segment(k, len);
      auto v = v_all.segment(k, len);
      gk = g_all.segment(k, len) + coupled * p;
      m = beta1 * m + (1 - beta1) * gk;
      v = beta2 * v + (1 - beta2) * gk.square();
      if (epsilon_inside_sqrt) dk = (m / c1) / ((v / c2) + epsilon).sqrt() + decoupled * p;
      else dk = (m / c1) / ((v / c2).sqrt() + epsilon) + decoupled * p;
      use(k, dk);
    }
  }
};

/// AdamW (Loshchilov & Hutter), PyTorch's convention: Adam's direction plus the decoupled decay λθ, so that the
/// step is θ' = θ − α (m̂ / (√v̂ + ε) + λθ): the decay is scaled by the step size but not by the moments.
template <class S = double>
struct AdamW {
  Hyper<S> beta1 = 0.9;
  Hyper<S> beta2 = 0.999;
  Hyper<S> epsilon = 1e-8;
  Hyper<S> weight_decay = 0.01;
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
                     S step_size, ParamList<Tensor<T>>* direction = nullptr) const {
    adam().step_in_place(params, grads, state, step_size, direction);
  }

  Adam<S> adam() const { return {beta1, beta2, epsilon, weight_decay, epsilon_inside_sqrt, true}; }
};

}  // namespace metagrad
