#pragma once
// Stacked hyperoptimizers ("Gradient Descent: The Ultimate Optimizer", Chandra et al., NeurIPS 2022).
//
// Level 0 updates the model parameters; level k updates the hyperparameters of level k − 1 (its step size α, and
// for Adam β1 and β2); the top level's hyperparameters stay fixed. Each step is recorded on a tape with every
// previous value detached: θ_t = θ_{t−1} − α d_{t−1}, where α is itself the output of the level above, and so on
// up the stack. One backward pass from L(θ_t) then gives the parameters' gradient and every level's
// hypergradient at once. With SGD over SGD at meta step size κ this is SGD-HD with β = κ.
//
//   StackedOptimizer<double> opt({{.rule = StackRule::adam, .step_size = 1e-3}, {.step_size = 1e-4}}, params);
//   for (...) {
//     Tape<double> tape;
//     auto theta = opt.begin_step(tape);
//     opt.finish_step(loss(theta, batch));
//   }
#include <cmath>
#include <string>
#include <vector>

#include "metagrad/autodiff/grad.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/sgd.hpp"

namespace metagrad {

enum class StackRule { sgd, adam };

template <class T = double>
struct StackLevel {
  StackRule rule = StackRule::sgd;
  T step_size = T(1e-3);
  T beta1 = T(0.9);  // Adam only, like the two below
  T beta2 = T(0.999);
  T epsilon = T(1e-8);  // fixed, not optimized
};

template <class T = double>
class StackedOptimizer {
 public:
  StackedOptimizer(std::vector<StackLevel<T>> levels, ParamList<Tensor<T>> params)
      : levels_(std::move(levels)), params_(std::move(params)) {
    if (levels_.empty()) throw value_error("StackedOptimizer: at least one level expected");
    for (std::size_t k = 0; k < levels_.size(); ++k) {
      const auto& l = levels_[k];
      Level level;
      level.hyper = {l.step_size};
      if (l.rule == StackRule::adam) {
        level.hyper.insert(level.hyper.end(), {l.beta1, l.beta2});
        // Level k's parameters: the model's for k = 0, else the scalar hyperparameters of level k − 1.
        if (k == 0) level.adam = Adam<T>{}.init(params_);
        else level.adam = Adam<T>{}.init(ParamList<Tensor<T>>(levels_state_[k - 1].hyper.size(), Tensor<T>::scalar(0)));
      }
      levels_state_.push_back(std::move(level));
    }
  }

  /// Records this step's parameters on `tape` as functions of every level's hyperparameters. Evaluate the loss on
  /// them and pass it to finish_step before the next begin_step.
  ParamList<Var<T>> begin_step(Tape<T>& tape) {
    const std::size_t top = levels_.size() - 1;
    hyper_vars_.assign(levels_.size(), {});
    // The top level is fixed, but recorded as variables: everything below is computed from it, and only results
    // that depend on a variable are differentiable on the tape.
    for (T h : levels_state_[top].hyper) hyper_vars_[top].push_back(tape.variable(Tensor<T>::scalar(h)));
    if (!has_gradient_) {  // the first step only evaluates θ₀; nothing has a hypergradient yet
      for (std::size_t k = 0; k < top; ++k)
        for (T h : levels_state_[k].hyper) hyper_vars_[k].push_back(tape.variable(Tensor<T>::scalar(h)));
      theta_.clear();
      for (const auto& p : params_) theta_.push_back(tape.variable(p));
      return theta_;
    }
    pending_states_.assign(levels_.size(), {});
    for (std::size_t k = top; k > 0; --k) {  // level k moves the hyperparameters of level k − 1
      ParamList<Var<T>> p, g;
      for (std::size_t i = 0; i < levels_state_[k - 1].hyper.size(); ++i) {
        p.push_back(tape.constant(Tensor<T>::scalar(levels_state_[k - 1].hyper[i])));
        g.push_back(tape.constant(Tensor<T>::scalar(levels_state_[k - 1].hypergradient[i])));
      }
      hyper_vars_[k - 1] = level_step(tape, k, p, g);
    }
    ParamList<Var<T>> p, g;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      p.push_back(tape.constant(params_[i]));
      g.push_back(tape.constant(gradient_[i]));
    }
    theta_ = level_step(tape, 0, p, g);
    return theta_;
  }

  /// Backpropagates the loss at this step's parameters to them and to every level's hyperparameters, and keeps the
  /// plain values for the next step. Returns the loss.
  T finish_step(const Var<T>& loss) {
    if (theta_.empty()) throw tape_error("StackedOptimizer::finish_step: call begin_step first");
    std::vector<Var<T>> xs = theta_;
    for (std::size_t k = 0; k + 1 < levels_.size(); ++k) xs.insert(xs.end(), hyper_vars_[k].begin(), hyper_vars_[k].end());
    const std::vector<Tensor<T>> g = grad(loss, xs);
    const T value = loss.value().item();
    if (!std::isfinite(value)) throw value_error("StackedOptimizer: the loss is " + std::to_string(value) +
                                                 " at step " + std::to_string(steps_ + 1));
    std::size_t at = 0;
    gradient_.clear();
    for (std::size_t i = 0; i < theta_.size(); ++i, ++at) {
      params_[i] = theta_[i].value();
      gradient_.push_back(g[at]);
    }
    for (std::size_t k = 0; k + 1 < levels_.size(); ++k) {
      auto& level = levels_state_[k];
      level.hypergradient.clear();
      for (std::size_t i = 0; i < hyper_vars_[k].size(); ++i, ++at) {
        level.hyper[i] = hyper_vars_[k][i].value().item();
        level.hypergradient.push_back(g[at].item());
      }
    }
    if (has_gradient_)
      for (std::size_t k = 0; k < levels_.size(); ++k)
        if (levels_[k].rule == StackRule::adam) levels_state_[k].adam = detach(pending_states_[k]);
    has_gradient_ = true;
    theta_.clear();
    ++steps_;
    return value;
  }

  /// The parameters at which the last loss was evaluated.
  const ParamList<Tensor<T>>& params() const { return params_; }
  /// Level k's current hyperparameters: α, then β1 and β2 for Adam.
  const std::vector<T>& hyperparameters(std::size_t level) const { return levels_state_.at(level).hyper; }
  T step_size(std::size_t level = 0) const { return hyperparameters(level)[0]; }

 private:
  struct Level {
    std::vector<T> hyper, hypergradient;
    AdamState<Tensor<T>> adam;  // used by Adam levels only
  };

  /// One step of level k on (p, g), with level k's hyperparameters as Vars; keeps the new Adam state pending.
  ParamList<Var<T>> level_step(Tape<T>& tape, std::size_t k, const ParamList<Var<T>>& p, const ParamList<Var<T>>& g) {
    const auto& h = hyper_vars_[k];
    if (levels_[k].rule == StackRule::sgd) {
      auto [next, state] = step(Sgd<Var<T>>{}, p, g, SgdState<Var<T>>{}, h[0]);
      return next;
    }
    const Adam<Var<T>> adam{.beta1 = h[1], .beta2 = h[2], .epsilon = levels_[k].epsilon};  // ε fixed, no weight decay
    AdamState<Var<T>> state{{}, {}, levels_state_[k].adam.steps};
    for (std::size_t i = 0; i < p.size(); ++i) {
      state.first_moment.push_back(tape.constant(levels_state_[k].adam.first_moment[i]));
      state.second_moment.push_back(tape.constant(levels_state_[k].adam.second_moment[i]));
    }
    auto [next, next_state] = step(adam, p, g, std::move(state), h[0]);
    pending_states_[k] = std::move(next_state);
    return next;
  }

  static AdamState<Tensor<T>> detach(const AdamState<Var<T>>& s) {
    AdamState<Tensor<T>> out{{}, {}, s.steps};
    for (const auto& m : s.first_moment) out.first_moment.push_back(m.value());
    for (const auto& v : s.second_moment) out.second_moment.push_back(v.value());
    return out;
  }

  std::vector<StackLevel<T>> levels_;
  std::vector<Level> levels_state_;
  ParamList<Tensor<T>> params_, gradient_;
  bool has_gradient_ = false;
  std::int64_t steps_ = 0;
  // Between begin_step and finish_step:
  std::vector<ParamList<Var<T>>> hyper_vars_;
  ParamList<Var<T>> theta_;
  std::vector<AdamState<Var<T>>> pending_states_;
};

}  // namespace metagrad
