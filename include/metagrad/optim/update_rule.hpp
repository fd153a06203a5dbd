#pragma once
// What every update rule shares. A rule turns gradients into a descent direction d and a new state; the step
// θ' = θ − α d is taken by `apply_step` with a step size α from a step-size policy. A rule is a gradient
// transformation in Optax's sense: clipping (clip.hpp) and weight decay (weight_decay.hpp) are rules too, and
// `chain` (chain.hpp) composes any number of them. Rules are pure functions,
// generic over the carrier C (plain Tensor, or Var to differentiate through the step) and over the type S of
// their hyperparameters (a plain number; or Var, and then each hyperparameter is a plain number or a rank-0 Var that
// receives a gradient, in any mix — see hyperparameter.hpp).
#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/optim/hyperparameter.hpp"
#include "metagrad/tensor/tree.hpp"

namespace metagrad {

/// The parameters (or gradients, or a state's per-parameter tensors) of a model, in a fixed order.
template <class C>
using ParamList = std::vector<C>;

namespace optim_detail {

template <class C>
inline constexpr bool is_plain_tensor = std::is_same_v<C, Tensor<typename C::value_type>>;

/// b^t for a hyperparameter b: std::pow for plain numbers, the taped pow for a Var or a Hyperparameter.
template <class S>
S power(const S& b, std::int64_t t) {
  if constexpr (std::is_arithmetic_v<S>) return std::pow(b, static_cast<S>(t));
  else if constexpr (is_hyperparameter<S>) return pow(b, t);
  else return pow(b, static_cast<typename S::value_type>(t));
}

template <class C>
ParamList<C> zeros_like_all(const ParamList<C>& params) {
  ParamList<C> out;
  out.reserve(params.size());
  for (const auto& p : params) out.push_back(zeros_like(p));
  return out;
}

template <class C>
void check_lists(const char* rule, const ParamList<C>& params, const ParamList<C>& grads, std::size_t state_size) {
  if (grads.size() != params.size())
    throw value_error(std::string(rule) + ": " + std::to_string(grads.size()) + " gradients for " +
                      std::to_string(params.size()) + " parameters");
  if (state_size != params.size())
    throw value_error(std::string(rule) + ": state for " + std::to_string(state_size) + " parameters, given " +
                      std::to_string(params.size()) + " (was it initialized for these parameters?)");
  for (std::size_t i = 0; i < params.size(); ++i)
    if (!(grads[i].shape() == params[i].shape()))
      throw shape_error(std::string(rule) + ": gradient " + std::to_string(i) + " has shape " + grads[i].shape().str() +
                        ", its parameter " + params[i].shape().str());
}

/// A hyperparameter's current value as a plain number.
template <class S>
auto value_of(const S& h) {
  if constexpr (std::is_arithmetic_v<S>) return h;
  else return h.value();
}

}  // namespace optim_detail

/// The state of a rule that keeps none (SGD, clipping, weight decay): an empty tree.
template <class C>
struct NoState {
  auto fields() const { return named_fields(""); }  ///< No fields.
};

/// An update rule: a typed State per carrier C, `init(params)`, and the pure `direction(params, grads, state)`
/// returning (d, state'). See sgd.hpp for the smallest one.
template <class R, class C>
concept UpdateRule = requires(const R& rule, const ParamList<C>& params, typename R::template State<C> state) {
  { rule.init(params) } -> std::same_as<typename R::template State<C>>;
  { rule.direction(params, params, std::move(state)) } -> std::same_as<std::pair<ParamList<C>, typename R::template State<C>>>;
};

/// A step-size policy: its number type, a State that counts `steps`, `init(params)`, `begin_step(state, grads)`
/// giving this step's α (and changing `state` only when it succeeds), `current(state)`, and whether it needs the
/// rule's direction (then also `take_direction(state)` and `end_step(state, direction)`). See constant.hpp.
template <class P>
concept StepSizePolicy = requires(const P& policy, typename P::State& state, const ParamList<Tensor<typename P::value_type>>& grads) {
  { P::needs_direction } -> std::convertible_to<bool>;
  { policy.init(grads) } -> std::same_as<typename P::State>;
  { policy.begin_step(state, grads) } -> std::same_as<typename P::value_type>;
  { policy.current(state) } -> std::same_as<typename P::value_type>;
  { state.steps } -> std::convertible_to<std::int64_t>;
} && (!P::needs_direction || requires(const P& policy, typename P::State& state, ParamList<Tensor<typename P::value_type>> d) {
  { policy.take_direction(state) } -> std::same_as<ParamList<Tensor<typename P::value_type>>>;
  policy.end_step(state, std::move(d));
});

/// θ' = θ − α d for every parameter. Pass the parameters as an rvalue to update them in place.
template <class C, class S>
ParamList<C> apply_step(ParamList<C> params, const ParamList<C>& direction, const S& step_size) {
  if (direction.size() != params.size())
    throw value_error("apply_step: " + std::to_string(direction.size()) + " directions for " +
                      std::to_string(params.size()) + " parameters");
  for (std::size_t i = 0; i < params.size(); ++i) {
    if constexpr (optim_detail::is_plain_tensor<C> && std::is_arithmetic_v<S>) params[i].array() -= step_size * direction[i].array();
    else params[i] = params[i] - step_size * direction[i];
  }
  return params;
}

/// One step of a rule at a given step size: (θ', state'). Pass parameters and state as rvalues to reuse their
/// memory. A rule may provide `step_in_place` for plain tensors, one fused pass when nobody needs the direction.
template <class Rule, class C, class S>
auto step(const Rule& rule, ParamList<C> params, const ParamList<C>& grads, typename Rule::template State<C> state,
          const S& step_size) {
  if constexpr (requires { rule.step_in_place(params, grads, state, step_size); }) {
    rule.step_in_place(params, grads, state, step_size);
    return std::pair{std::move(params), std::move(state)};
  } else {
    auto [direction, next] = rule.direction(params, grads, std::move(state));
    return std::pair{apply_step(std::move(params), direction, step_size), std::move(next)};
  }
}

}  // namespace metagrad
