#pragma once
// Meta-training a learned optimizer is a metagradient (PAPERS.md §2): the LSTM's weights are the metaparameters, an
// unroll of optimizee steps is the training run, and the meta-loss is the sum of the optimizee's losses along it.
// `UnrollRun` is that training run, for any optimizee task:
//   struct Task {
//     using value_type = double;
//     struct Problem { … };                                 // one optimizee: its data, its initial parameters
//     Problem sample(std::uint64_t seed) const;             // a fresh optimizee
//     ParamList<Tensor<value_type>> initial_params(const Problem&) const;
//     template <class P> auto loss(const Problem&, const std::vector<P>& params, std::int64_t step) const;
//   };                                                      // (the loss on step `step`'s batch; P: Tensor or Var)
#include <cstdint>
#include <string>
#include <vector>

#include "metagrad/learned/lstm_optimizer.hpp"
#include "metagrad/meta/metagradient.hpp"

namespace metagrad {

/// `unroll` optimizee steps from `start`, with the LSTM's weights as the metaparameters. The objective is the
/// optimizee's loss after the last step; with `step_loss_weights()` the metagradient's objective is the paper's
/// meta-loss Σ_{t=1}^{unroll} f(θ_t).
template <class Task>
struct UnrollRun {
  using value_type = typename Task::value_type;
  using T = value_type;
  template <class C>
  using State = TrainingState<C, LstmOptimizerState<C>>;

  const Task* task = nullptr;
  typename Task::Problem problem;
  LstmOptimizer<Tensor<T>> architecture;  // hidden units, output scale, preprocessing (its weights are not used)
  State<Tensor<T>> start;                 // the optimizee and the LSTM where this unroll begins
  std::int64_t first_step = 0;            // the optimizee's step count at `start` (batches continue across unrolls)
  std::int64_t unroll = 20;
  bool second_derivatives = false;        // keep the loss's second derivatives in the metagradient

  /// The first unroll of a fresh optimizee.
  UnrollRun(const Task& t, typename Task::Problem p, const LstmOptimizer<Tensor<T>>& a, std::int64_t unroll_steps)
      : task(&t), problem(std::move(p)), architecture(a), unroll(unroll_steps) {
    start.params = task->initial_params(problem);
    start.optimizer = architecture.init(start.params);
  }

  std::vector<Metaparameter> metaparameters(std::int64_t) const {
    std::vector<Metaparameter> out;
    const auto names = LstmOptimizer<Tensor<T>>::weight_names();
    const auto w = architecture.weights();
    for (std::size_t i = 0; i < w.size(); ++i) out.push_back({names[i], w[i].shape()});
    return out;
  }

  /// Weights 0 for step 0 (its loss does not depend on the optimizer) and 1 after: with the objective f(θ_unroll),
  /// the metagradient's objective is Σ_{t=1}^{unroll} f(θ_t).
  std::vector<double> step_loss_weights() const {
    std::vector<double> w(static_cast<std::size_t>(unroll), 1.0);
    w[0] = 0;
    return w;
  }

  template <class C>
  State<C> init(const std::vector<C>& meta) const {
    if constexpr (std::is_same_v<C, Tensor<T>>) {
      return start;
    } else {
      const auto lstm = as_constants(ParamList<Tensor<T>>{start.optimizer.hidden1, start.optimizer.cell1, start.optimizer.hidden2,
                                                          start.optimizer.cell2}, meta);
      return {as_constants(start.params, meta), {lstm[0], lstm[1], lstm[2], lstm[3]}};
    }
  }

  template <class C>
  StepResult<State<C>, C> step(std::int64_t t, State<C> s, const std::vector<C>& meta) const {
    const auto loss_fn = [&](const std::vector<Var<T>>& p) { return task->loss(problem, p, first_step + t); };
    auto [loss, g] = second_derivatives ? loss_and_gradient(s.params, loss_fn) : loss_and_gradient(s.params, loss_fn, without_second_derivatives);
    const auto optimizer = architecture.with_weights(meta);
    auto [params, lstm] = metagrad::step(optimizer, std::move(s.params), g, std::move(s.optimizer), T(1));
    return {{std::move(params), std::move(lstm)}, loss};
  }

  template <class C>
  C objective(const State<C>& s, const std::vector<C>&) const {
    return task->loss(problem, s.params, first_step + unroll);
  }

  /// The next unroll: the same optimizee continued from this one's final state under `weights`.
  UnrollRun next(const std::vector<Tensor<T>>& weights) const {
    UnrollRun out = *this;
    out.start = run_final_state(*this, weights, unroll);
    out.first_step = first_step + unroll;
    return out;
  }
};

}  // namespace metagrad
