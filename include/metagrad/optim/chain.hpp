#pragma once
// chain(t1, t2, …, tn) in Optax's sense: gradient transformations applied in order, each one's output the next one's
// input. The transformations are rules (update_rule.hpp): clipping, weight decay, SGD, momentum, Adam, … and a chain
// of rules is a rule again, on either carrier, so a training run can differentiate through it. A chain that ends in a
// step-size policy is an Optimizer:
//   auto optimizer = chain(ClipByGlobalNorm<>{.max_norm = 1}, Adam<>{}, AddDecayedWeights<>{.weight_decay = 0.01},
//                          HypergradientStepSize<>{.initial = 1e-3, .beta = 1e-7});
// Its state is a tree: a std::tuple of the rules' states, so save_state and the metagradient engine need nothing new
// for a new transformation.
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "metagrad/optim/optimizer.hpp"
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// Rules applied in order, each one's direction the next one's gradient: a rule itself (see chain()).
template <class... Rules>
  requires(sizeof...(Rules) >= 1)
struct Chain {
 private:
  using Last = std::tuple_element_t<sizeof...(Rules) - 1, std::tuple<Rules...>>;

 public:
  std::tuple<Rules...> rules;

  template <class C>
  using State = std::tuple<typename Rules::template State<C>...>;  ///< The tuple of the rules' states, in order.

  /// The rules' initial states.
  template <class C>
  State<C> init(const ParamList<C>& params) const {
    return std::apply([&](const auto&... rule) { return State<C>{rule.init(params)...}; }, rules);
  }

  /// The direction after every rule, and the rules' new states.
  template <class C>
  std::pair<ParamList<C>, State<C>> direction(const ParamList<C>& params, const ParamList<C>& grads, State<C> state) const {
    ParamList<C> d = through<0, sizeof...(Rules)>(params, grads, state);
    return {std::move(d), std::move(state)};
  }

  /// On plain tensors, when the last rule has a fused step (Adam): the other rules' output goes into it.
  template <class T, class S>
    requires std::is_arithmetic_v<S> &&
             requires(const Last& last, ParamList<Tensor<T>>& p, typename Last::template State<Tensor<T>>& s, ParamList<Tensor<T>>* d) {
               last.step_in_place(p, p, s, S(1), d);
             }
  void step_in_place(ParamList<Tensor<T>>& params, const ParamList<Tensor<T>>& grads, State<Tensor<T>>& state, S step_size,
                     ParamList<Tensor<T>>* direction = nullptr) const {
    constexpr std::size_t last = sizeof...(Rules) - 1;
    if constexpr (last == 0) {
      std::get<0>(rules).step_in_place(params, grads, std::get<0>(state), step_size, direction);
    } else {
      const ParamList<Tensor<T>> d = through<0, last>(params, grads, state);
      std::get<last>(rules).step_in_place(params, d, std::get<last>(state), step_size, direction);
    }
  }

 private:
  /// Rules First … End − 1 applied to `in`, each updating its part of `state`.
  template <std::size_t First, std::size_t End, class C>
  ParamList<C> through(const ParamList<C>& params, const ParamList<C>& in, State<C>& state) const {
    auto [d, next] = std::get<First>(rules).direction(params, in, std::move(std::get<First>(state)));
    std::get<First>(state) = std::move(next);
    if constexpr (First + 1 == End) return std::move(d);
    else return through<First + 1, End>(params, d, state);
  }
};

namespace optim_detail {
template <class X> inline constexpr bool is_policy = requires { X::needs_direction; };

/// One rule as itself, several as their Chain.
template <class Rule>
Rule rule_of(Rule rule) {
  return rule;
}
template <class First, class Second, class... Rest>
Chain<First, Second, Rest...> rule_of(First first, Second second, Rest... rest) {
  return {{std::move(first), std::move(second), std::move(rest)...}};
}
}  // namespace optim_detail

/// The transformations applied in order: a Chain (a rule) when the last is a rule too, an Optimizer when it is a
/// step-size policy (chain(rule, policy) is the Optimizer of that rule and policy).
template <class... Ts>
  requires(sizeof...(Ts) >= 1)
auto chain(Ts... transforms) {
  using Last = std::tuple_element_t<sizeof...(Ts) - 1, std::tuple<Ts...>>;
  if constexpr (optim_detail::is_policy<Last>) {
    static_assert(sizeof...(Ts) >= 2, "chain: a step-size policy needs a rule before it");
    auto all = std::forward_as_tuple(std::move(transforms)...);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      auto rule = optim_detail::rule_of(std::move(std::get<I>(all))...);
      return Optimizer<decltype(rule), Last>{std::move(rule), std::move(std::get<sizeof...(Ts) - 1>(all))};
    }(std::make_index_sequence<sizeof...(Ts) - 1>{});
  } else {
    return Chain<Ts...>{{std::move(transforms)...}};
  }
}

}  // namespace metagrad
