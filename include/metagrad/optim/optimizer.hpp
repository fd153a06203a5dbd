#pragma once
// An optimizer is an update rule chained with a step-size policy, e.g.
//   auto adam_hd = chain(Adam<>{}, HypergradientStepSize<>{.initial = 1e-3, .beta = 1e-7});
// Its state is the pair of its parts' states. Steps are pure: (θ, state) → (θ', state'); pass both as rvalues to
// reuse their memory.
#include <string>
#include <utility>

#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

template <class Rule, class Policy>
struct Optimizer {
  using T = typename Policy::value_type;
  Rule rule;
  Policy step_size;

  struct State {
    typename Rule::template State<Tensor<T>> rule;
    typename Policy::State step_size;
    /// Every part's fields, named "rule.…" and "step_size.…" (for save_state / load_state).
    template <class F> void fields(F&& f) { visit(*this, f); }
    template <class F> void fields(F&& f) const { visit(*this, f); }

   private:
    template <class Self, class F>
    static void visit(Self& self, F& f) {
      self.rule.fields([&](const std::string& name, auto& value) { f("rule." + name, value); });
      self.step_size.fields([&](const std::string& name, auto& value) { f("step_size." + name, value); });
    }
  };

  State init(const ParamList<Tensor<T>>& params) const { return {rule.init(params), step_size.init(params)}; }

  std::pair<ParamList<Tensor<T>>, State> step(ParamList<Tensor<T>> params, const ParamList<Tensor<T>>& grads,
                                              State state) const {
    auto begun = step_size.begin_step(std::move(state.step_size), grads);
    const T alpha = begun.first;  // not structured bindings: clang 14 cannot name them in a requires-expression
    auto policy_state = std::move(begun.second);
    if constexpr (Policy::needs_direction && requires(ParamList<Tensor<T>> d) {
                    rule.step_in_place(params, grads, state.rule, alpha, &d);
                  }) {  // one fused pass that also hands back the direction
      ParamList<Tensor<T>> direction = step_size.take_direction(policy_state);  // reused as the output buffer
      rule.step_in_place(params, grads, state.rule, alpha, &direction);
      policy_state = step_size.end_step(std::move(policy_state), std::move(direction));
      return {std::move(params), State{std::move(state.rule), std::move(policy_state)}};
    } else if constexpr (Policy::needs_direction) {
      auto [direction, rule_state] = rule.direction(params, grads, std::move(state.rule));
      params = apply_step(std::move(params), direction, alpha);
      policy_state = step_size.end_step(std::move(policy_state), std::move(direction));
      return {std::move(params), State{std::move(rule_state), std::move(policy_state)}};
    } else {
      auto [next, rule_state] = metagrad::step(rule, std::move(params), grads, std::move(state.rule), alpha);
      return {std::move(next), State{std::move(rule_state), std::move(policy_state)}};
    }
  }

  /// The step-size policy's current step size (for a hypergradient policy, the learned α).
  T current_step_size(const State& state) const { return step_size.current(state.step_size); }
};

template <class Rule, class Policy>
Optimizer<Rule, Policy> chain(Rule rule, Policy step_size) {
  return {std::move(rule), std::move(step_size)};
}

}  // namespace metagrad
