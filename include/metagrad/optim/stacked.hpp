#pragma once
// Stacked hyperoptimizers ("Gradient Descent: The Ultimate Optimizer", Chandra et al., NeurIPS 2022).
//
// Level 0 updates the model parameters; level k updates the hyperparameters of level k − 1 (its step size α, and
// for Adam β1 and β2); the top level's hyperparameters stay fixed. A level's hypergradient is the derivative of the
// loss at the current parameters θ_t with respect to the hyperparameters that produced θ_t from θ_{t−1}: each step
// records the last step's chain (top level → … → θ_t, with every earlier value a constant) and takes one
// vector–Jacobian product with the gradient g_t = ∇L(θ_t). Then every level moves once, top down, on plain tensors.
// With SGD over SGD at meta step size κ this is SGD-HD with β = κ.
//
// Like every optimizer here it is a pair of pure functions, and its state saves and loads with save_state:
//   StackedOptimizer<double> opt{{{.rule = StackRule::adam, .step_size = 1e-3}, {.step_size = 1e-4}}};
//   auto state = opt.init(params);
//   std::tie(params, state) = opt.step(std::move(params), grads, std::move(state));
//   double alpha = opt.step_size(state);
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/autodiff/grad.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// The rule of one stack level.
enum class StackRule {
  sgd,   ///< d = g
  adam,  ///< Adam's direction
};

/// One level of a stacked hyperoptimizer: its rule and its initial hyperparameters.
template <class T = double>
struct StackLevel {
  StackRule rule = StackRule::sgd;  ///< SGD or Adam.
  T step_size = T(1e-3);            ///< Initial α.
  T beta1 = T(0.9);                 ///< Initial β1 (Adam only).
  T beta2 = T(0.999);               ///< Initial β2 (Adam only).
  T epsilon = T(1e-8);              ///< ε (Adam only; fixed, not optimized).
};

/// Stacked hyperoptimizers (Chandra et al. 2022): level k learns the hyperparameters of level k − 1.
template <class T = double>
class StackedOptimizer {
 public:
  using Params = ParamList<Tensor<T>>;  ///< The parameters, as plain tensors.

  /// One level's part of the state.
  struct LevelState {
    Params hyperparameters;  ///< α (then β1, β2 for Adam), rank 0 each: the values that produced the current parameters
    Params hypergradients;      ///< their hypergradients at the last step (none for the top level, which is fixed)
    AdamState<Tensor<T>> adam;  ///< an Adam level's moments over the level below (empty for SGD levels)
    METAGRAD_FIELDS(hyperparameters, hypergradients, adam)
  };

  /// Every level's state after the last step and before it, and the last step's parameters and gradients.
  struct State {
    std::int64_t steps = 0;            ///< Steps taken.
    std::vector<LevelState> levels;    ///< after the last step
    std::vector<LevelState> previous;  ///< before it: with previous_params and previous_grads, what the next step records
    Params previous_params;            ///< The parameters the last step started from.
    Params previous_grads;             ///< The gradients the last step took.
    METAGRAD_FIELDS(steps, levels, previous, previous_params, previous_grads)
  };

  /// Levels bottom up (level 0 moves the parameters); throws value_error when empty.
  explicit StackedOptimizer(std::vector<StackLevel<T>> levels) : levels_(std::move(levels)) {
    if (levels_.empty()) throw value_error("StackedOptimizer: at least one level expected");
  }

  /// Every level's initial hyperparameters and states for these parameters.
  State init(const Params& params) const {
    State s;
    for (std::size_t k = 0; k < levels_.size(); ++k) {
      const auto& l = levels_[k];
      LevelState level;
      level.hyperparameters = {Tensor<T>::scalar(l.step_size)};
      if (l.rule == StackRule::adam)
        level.hyperparameters.insert(level.hyperparameters.end(), {Tensor<T>::scalar(l.beta1), Tensor<T>::scalar(l.beta2)});
      if (k > 0) {  // level k's parameters: the model's for k = 0, else the hyperparameters of level k − 1
        const Params& below = s.levels[k - 1].hyperparameters;
        s.levels[k - 1].hypergradients = optim_detail::zeros_like_all(below);
        if (l.rule == StackRule::adam) level.adam = Adam<T>{}.init(below);
      } else if (l.rule == StackRule::adam) {
        level.adam = Adam<T>{}.init(params);
      }
      s.levels.push_back(std::move(level));
    }
    s.previous = s.levels;
    s.previous_params = optim_detail::zeros_like_all(params);
    s.previous_grads = optim_detail::zeros_like_all(params);
    return s;
  }

  /// One step from θ_t (the parameters the last step returned) and g_t = ∇L(θ_t): every level's hypergradient, then
  /// every level moves once. Gradients are checked (count, shapes, finiteness) before anything is touched.
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

  /// Level k's hyperparameters: α, then β1 and β2 for Adam.
  std::vector<T> hyperparameters(const State& state, std::size_t level = 0) const {
    std::vector<T> out;
    for (const auto& h : state.levels.at(level).hyperparameters) out.push_back(h.item());
    return out;
  }
  /// Level k's current step size α.
  T step_size(const State& state, std::size_t level = 0) const { return hyperparameters(state, level)[0]; }

 private:
  void validate(const Params& params, const Params& grads, const State& state) const {
    optim_detail::check_lists("StackedOptimizer::step", params, grads, state.previous_params.size());
    for (std::size_t i = 0; i < params.size(); ++i)
      if (!(state.previous_params[i].shape() == params[i].shape()))
        throw shape_error("StackedOptimizer::step: the state was initialized for parameter " + std::to_string(i) +
                          " of shape " + state.previous_params[i].shape().str() + ", given " + params[i].shape().str());
    if (state.levels.size() != levels_.size())
      throw value_error("StackedOptimizer::step: a state of " + std::to_string(state.levels.size()) + " levels for " +
                        std::to_string(levels_.size()));
    for (std::size_t i = 0; i < grads.size(); ++i)
      if (!grads[i].all_finite())
        throw training_error("StackedOptimizer::step: gradient " + std::to_string(i) + " holds a NaN or infinite value at step " +
                             std::to_string(state.steps) + "; the parameters and state are unchanged");
  }

  std::pair<Params, State> take_step(Params& params, const Params& grads, State& state) const {
    const std::size_t top = levels_.size() - 1;
    if (state.steps > 0 && top > 0) {  // hypergradients of the hyperparameters that produced θ_t
      const std::vector<Params> hypergradients = record_last_step(grads, state);
      for (std::size_t k = 0; k < top; ++k) state.levels[k].hypergradients = hypergradients[k];
    }
    state.previous = state.levels;
    state.previous_params = params;
    state.previous_grads = grads;
    std::vector<Params> hyper(levels_.size());
    std::vector<AdamState<Tensor<T>>> adam(levels_.size());
    std::vector<Params> hypergradients(top);
    for (std::size_t k = 0; k <= top; ++k) {
      hyper[k] = std::move(state.levels[k].hyperparameters);
      adam[k] = std::move(state.levels[k].adam);
      if (k < top) hypergradients[k] = state.levels[k].hypergradients;
    }
    Params next = advance(hyper, hypergradients, adam, params, grads, [](const Tensor<T>& h) { return h.item(); });
    for (std::size_t k = 0; k <= top; ++k) {
      state.levels[k].hyperparameters = std::move(hyper[k]);
      state.levels[k].adam = std::move(adam[k]);
    }
    ++state.steps;
    return {std::move(next), std::move(state)};
  }

  /// Records the last step (from `state.previous`) on a tape and returns ∂L(θ_t)/∂h_k for every level below the top,
  /// as the vector–Jacobian product of the chain h_top → … → h_0 → θ_t with g_t.
  std::vector<Params> record_last_step(const Params& grads, const State& state) const {
    const std::size_t top = levels_.size() - 1;
    Tape<T> tape;
    auto constants = [&](const Params& xs) {
      ParamList<Var<T>> out;
      for (const auto& x : xs) out.push_back(tape.constant(x));
      return out;
    };
    std::vector<ParamList<Var<T>>> hyper(levels_.size()), hypergradients(top);
    std::vector<AdamState<Var<T>>> adam(levels_.size());
    for (std::size_t k = 0; k <= top; ++k) {
      const LevelState& before = state.previous[k];
      // The top level's fixed hyperparameters are variables: everything below is computed from them, and only results
      // that depend on a variable are recorded with their rules.
      for (const auto& h : before.hyperparameters) hyper[k].push_back(k == top ? tape.variable(h) : tape.constant(h));
      adam[k] = {constants(before.adam.first_moment), constants(before.adam.second_moment), before.adam.steps};
      if (k < top) hypergradients[k] = constants(state.levels[k].hypergradients);
    }
    const ParamList<Var<T>> theta =
        advance(hyper, hypergradients, adam, constants(state.previous_params), constants(state.previous_grads),
                [](const Var<T>& h) { return h; });
    ParamList<Var<T>> xs;
    for (std::size_t k = 0; k < top; ++k) xs.insert(xs.end(), hyper[k].begin(), hyper[k].end());
    Var<T> g_dot_theta = dot(theta[0], tape.constant(grads[0]));
    for (std::size_t i = 1; i < theta.size(); ++i) g_dot_theta = g_dot_theta + dot(theta[i], tape.constant(grads[i]));
    const std::vector<Tensor<T>> flat = grad(g_dot_theta, xs);
    std::vector<Params> out(top);
    std::size_t at = 0;
    for (std::size_t k = 0; k < top; ++k)
      for (std::size_t i = 0; i < hyper[k].size(); ++i) out[k].push_back(flat[at++]);
    return out;
  }

  /// Moves every level once, top down, on either carrier: level k moves `hyper[k − 1]` along `hypergradients[k − 1]`
  /// with its own (new) hyperparameters, then level 0 moves the parameters. `number` turns a rank-0 hyperparameter
  /// into what the rules take (a plain number, or the Var itself). Returns the new parameters.
  template <class C, class Number>
  ParamList<C> advance(std::vector<ParamList<C>>& hyper, const std::vector<ParamList<C>>& hypergradients,
                       std::vector<AdamState<C>>& adam, const ParamList<C>& params, const ParamList<C>& grads,
                       Number number) const {
    auto level_step = [&](std::size_t k, const ParamList<C>& p, const ParamList<C>& g) {
      const auto& h = hyper[k];
      if (levels_[k].rule == StackRule::sgd) return apply_step(p, g, number(h[0]));  // SGD: the direction is g
      const Adam<decltype(number(h[0]))> rule{.beta1 = number(h[1]), .beta2 = number(h[2]), .epsilon = levels_[k].epsilon};
      auto [next, state] = rule.direction(p, g, std::move(adam[k]));
      adam[k] = std::move(state);
      return apply_step(p, next, number(h[0]));
    };
    for (std::size_t k = levels_.size() - 1; k > 0; --k) hyper[k - 1] = level_step(k, hyper[k - 1], hypergradients[k - 1]);
    return level_step(0, params, grads);
  }

  std::vector<StackLevel<T>> levels_;
};

}  // namespace metagrad
