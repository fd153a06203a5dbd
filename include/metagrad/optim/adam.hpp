#pragma once
// Adam (Kingma & Ba), in PyTorch's convention:
//   m' = β1 m + (1 − β1) g,   v' = β2 v + (1 − β2) g²,   t' = t + 1,
//   d  = m̂ / (√v̂ + ε)  with  m̂ = m' / (1 − β1^t'),  v̂ = v' / (1 − β2^t')   — ε outside the root, by default;
//   `epsilon_inside_sqrt` gives d = m̂ / √(v̂ + ε), the metasmooth variant of the REPLAY paper.
// Weight decay is a rule of its own (weight_decay.hpp): coupled L2 before Adam, chain(AddDecayedWeights<>{λ}, Adam<>{}),
// or decoupled after it, chain(Adam<>{}, AddDecayedWeights<>{λ}) — AdamW (Loshchilov & Hutter) in PyTorch's
// convention, θ' = θ − α (m̂ / (√v̂ + ε) + λθ).
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// Adam's state: both moments and the step count (whatever the hyperparameter type).
template <class C>
struct AdamState {
  ParamList<C> first_moment;   ///< m, one tensor per parameter
  ParamList<C> second_moment;  ///< v, one tensor per parameter
  std::int64_t steps = 0;      ///< steps taken (t), for the bias correction
  METAGRAD_FIELDS(first_moment, second_moment, steps)
};

/// Adam (Kingma & Ba) in PyTorch's convention; see the top of this header for the update.
template <class S = double>
struct Adam {
  Hyper<S> beta1 = 0.9;              ///< β1, the first moment's decay
  Hyper<S> beta2 = 0.999;            ///< β2, the second moment's decay
  Hyper<S> epsilon = 1e-8;           ///< ε, added to the denominator
  bool epsilon_inside_sqrt = false;  ///< add ε inside the square root (the REPLAY paper's metasmooth variant)

  template <class C>
  using State = AdamState<C>;  ///< Adam's state on carrier C.

  /// Zero moments, step 0.
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
        fused(grads[i], state, i, state.steps, [&](index_t k, const auto& dk) { di.segment(k, dk.size()) = dk; });
      } else {
        const auto c1 = 1 - optim_detail::power(beta1, state.steps);  // bias corrections
        const auto c2 = 1 - optim_detail::power(beta2, state.steps);
        state.first_moment[i] = beta1 * state.first_moment[i] + (1 - beta1) * grads[i];
        state.second_moment[i] = beta2 * state.second_moment[i] + (1 - beta2) * square(grads[i]);
        const C v_hat = state.second_moment[i] / c2;
        d.push_back((state.first_moment[i] / c1) / (epsilon_inside_sqrt ? sqrt(v_hat + epsilon) : sqrt(v_hat) + epsilon));
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
        fused(grads[i], state, i, state.steps, [&](index_t k, const auto& dk) {
          d.segment(k, dk.size()) = dk;
          p.segment(k, dk.size()) -= step_size * dk;
        });
      } else {
        fused(grads[i], state, i, state.steps, [&](index_t k, const auto& dk) { p.segment(k, dk.size()) -= step_size * dk; });
      }
    }
  }

 private:
  /// Updates both moments of parameter i and hands the direction to `use(offset, chunk)`, a chunk at a time: each
  /// chunk's arrays stay in the L1 cache across the vectorized statements, so memory is read about once.
  template <class T, class Use>
  void fused(const Tensor<T>& grad, State<Tensor<T>>& state, std::size_t i, std::int64_t t, Use&& use) const {
    constexpr index_t chunk = 512;
    const S c1 = 1 - optim_detail::power(beta1, t), c2 = 1 - optim_detail::power(beta2, t);
    const auto g_all = grad.array();
    auto m_all = state.first_moment[i].array(), v_all = state.second_moment[i].array();
    Eigen::Array<T, chunk, 1> d;
    for (index_t k = 0; k < grad.size(); k += chunk) {
      const index_t len = std::min(chunk, grad.size() - k);
      auto dk = d.head(len);
      const auto g = g_all.segment(k, len);
      auto m = m_all.segment(k, len);
      auto v = v_all.segment(k, len);
      m = beta1 * m + (1 - beta1) * g;
      v = beta2 * v + (1 - beta2) * g.square();
      if (epsilon_inside_sqrt) dk = (m / c1) / ((v / c2) + epsilon).sqrt();
      else dk = (m / c1) / ((v / c2).sqrt() + epsilon);
      use(k, dk);
    }
  }
};

}  // namespace metagrad
