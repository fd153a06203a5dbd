#pragma once
// An optimizer is an update rule (or a Chain of them) followed by a step-size policy, made by chain (chain.hpp), e.g.
//   auto adam_hd = chain(Adam<>{}, HypergradientStepSize<>{.initial = 1e-3, .beta = 1e-7});
// Its state is the pair of its parts' states. Steps are pure: (θ, state) → (θ', state'); pass both as rvalues to
// reuse their memory.
#include <string>
#include <utility>

#include "metagrad/error.hpp"
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// An update rule followed by a step-size policy; made by chain(rule…, policy).
template <class Rule, class Policy>
  requires StepSizePolicy<Policy> && UpdateRule<Rule, Tensor<typename Policy::value_type>>
struct Optimizer {
  using T = typename Policy::value_type;  ///< The number type of parameters and step sizes.
  using Params = ParamList<Tensor<T>>;    ///< The parameters, as plain tensors.
  Rule rule;                              ///< The update rule (or Chain of rules).
  Policy step_size;                       ///< The step-size policy.

  /// The rule's state and the policy's state: a tree.
  struct State {
    typename Rule::template State<Tensor<T>> rule;  ///< The rule's state.
    typename Policy::State step_size;               ///< The policy's state.
    METAGRAD_FIELDS(rule, step_size)  // a tree: paths "rule.…" and "step_size.…"
  };

  /// Both parts' initial states for these parameters.
  State init(const Params& params) const { return {rule.init(params), step_size.init(params)}; }

  /// One step: (θ', state'). Pass parameters and state as rvalues to reuse their memory. Everything that can fail is
  /// checked before either is touched — the gradients' count, shapes and finiteness (a NaN or Inf gradient is a
  /// training_error naming the step), the state against the parameters, the step size — so when step throws, the
  /// caller's parameters and state are as they were (the strong guarantee).
  std::pair<Params, State> step(Params&& params, const Params& grads, State&& state) const {
    validate(params, grads, state);
    return take_step(params, grads, state);
  }
  /// One step from parameters and state that stay the caller's (copies; see the rvalue overload).
  std::pair<Params, State> step(const Params& params, const Params& grads, const State& state) const {
    validate(params, grads, state);
    Params p = params;
    State s = state;
    return take_step(p, grads, s);
  }

  /// The step-size policy's current step size (for a hypergradient policy, the learned α).
  T current_step_size(const State& state) const { return step_size.current(state.step_size); }

 private:
  void validate(const Params& params, const Params& grads, const State& state) const {
    optim_detail::check_lists("Optimizer::step", params, grads, params.size());  // counts and shapes
    for (std::size_t i = 0; i < params.size(); ++i)
      if (!grads[i].all_finite())
        throw training_error("Optimizer::step: gradient " + std::to_string(i) + " holds a NaN or infinite value at step " +
                             std::to_string(state.step_size.steps) + "; the parameters and state are unchanged");
    tree_for_each(StateMatchesParams{params}, state);
  }

  /// Every list in the state holds one tensor of its parameter's shape per parameter.
  struct StateMatchesParams {
    const Params& params;
    void operator()(const TreePath&, const auto&) const {}
    void list(const TreePath& path, const Params& list) const {
      if (list.size() != params.size())
        throw value_error("Optimizer::step: the state's " + path.str() + " holds " + std::to_string(list.size()) + " tensors for " +
                          std::to_string(params.size()) + " parameters (was it initialized for these parameters?)");
      for (std::size_t i = 0; i < params.size(); ++i)
        if (!(list[i].shape() == params[i].shape()))
          throw shape_error("Optimizer::step: the state's " + path.str() + "[" + std::to_string(i) + "] has shape " +
                            list[i].shape().str() + ", its parameter " + params[i].shape().str());
    }
  };

  /// The step on validated input. Only the step-size policy can still refuse (a schedule that has run out, a
  /// non-finite hypergradient), and it does so before it changes anything.
  std::pair<Params, State> take_step(Params& params, const Params& grads, State& state) const {
    const T alpha = step_size.begin_step(state.step_size, grads);
    if constexpr (Policy::needs_direction && requires(Params d) { rule.step_in_place(params, grads, state.rule, alpha, &d); }) {
      Params direction = step_size.take_direction(state.step_size);  // one fused pass that also hands back d
      rule.step_in_place(params, grads, state.rule, alpha, &direction);
      step_size.end_step(state.step_size, std::move(direction));
      return {std::move(params), std::move(state)};
    } else if constexpr (Policy::needs_direction) {
      auto [direction, rule_state] = rule.direction(params, grads, std::move(state.rule));
      params = apply_step(std::move(params), direction, alpha);
      state.rule = std::move(rule_state);
      step_size.end_step(state.step_size, std::move(direction));
      return {std::move(params), std::move(state)};
    } else {
      auto [next, rule_state] = metagrad::step(rule, std::move(params), grads, std::move(state.rule), alpha);
      return {std::move(next), State{std::move(rule_state), std::move(state.step_size)}};
    }
  }
};

}  // namespace metagrad
