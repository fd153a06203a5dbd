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
#include <utility>
#include <vector>

#include "metagrad/learned/lstm_optimizer.hpp"
#include "metagrad/meta/metagradient.hpp"

namespace metagrad {

/// `unroll` optimizee steps from `start`, with the LSTM's weights as the metaparameters. The objective is the
/// optimizee's loss after the last step; with `step_loss_weights()` the metagradient's objective is the paper's
/// meta-loss Σ_{t=1}^{unroll} f(θ_t), or with `weighting_horizon` = T the weighted Σ_t (s_t / T) f(θ_t), s_t the
/// optimizee's own step count: the losses late in the optimizee's run count most.
template <class Task>
struct UnrollRun {
  using value_type = typename Task::value_type;  ///< The number type.
  using T = value_type;                          ///< The number type.
  /// The optimizee's parameters and the LSTM's state, on carrier C.
  template <class C>
  using State = TrainingState<C, LstmOptimizerState<C>>;
  /// The metaparameters: the LSTM's weights, on carrier C.
  template <class C>
  using Meta = LstmOptimizerWeights<C>;

  const Task* task = nullptr;           ///< The task; must outlive the run.
  typename Task::Problem problem;       ///< The optimizee.
  index_t hidden = 0;                   ///< the optimizer's architecture (its weights are the metaparameters)
  T output_scale = 0;                   ///< The optimizer's output scale.
  GradientPreprocessing preprocessing;  ///< The optimizer's features.
  State<Tensor<T>> start;               ///< the optimizee and the LSTM where this unroll begins
  std::int64_t first_step = 0;          ///< the optimizee's step count at `start` (batches continue across unrolls)
  std::int64_t unroll = 20;             ///< Optimizee steps in this unroll.
  bool second_derivatives = false;      ///< keep the loss's second derivatives in the metagradient
  std::int64_t weighting_horizon = 0;   ///< 0: every step's loss weighs 1; T: the loss at optimizee step s weighs s / T

  /// The first unroll of a fresh optimizee, for optimizers of `architecture`'s kind (its weights are not kept).
  UnrollRun(const Task& t, typename Task::Problem p, const LstmOptimizer<Tensor<T>>& architecture, std::int64_t unroll_steps)
      : task(&t), problem(std::move(p)), hidden(architecture.hidden()), output_scale(architecture.output_scale),
        preprocessing(architecture.preprocessing), unroll(unroll_steps) {
    start.params = task->initial_params(problem);
    start.optimizer = architecture.init(start.params);
  }

  /// The weights' shapes.
  Meta<Shape> metaparameter_shapes(std::int64_t) const { return lstm_optimizer_shapes(hidden, preprocessing.features()); }

  /// Weights 0 for step 0 (its loss does not depend on the optimizer) and loss_weight(t) after: with the objective,
  /// the metagradient's objective is Σ_{t=1}^{unroll} loss_weight(t) f(θ_t).
  std::vector<double> step_loss_weights() const {
    std::vector<double> w(static_cast<std::size_t>(unroll));
    for (std::int64_t t = 1; t < unroll; ++t) w[static_cast<std::size_t>(t)] = loss_weight(t);
    return w;
  }
  /// The weight of step t's loss in the meta-loss.
  double loss_weight(std::int64_t t) const {
    return weighting_horizon > 0 ? static_cast<double>(first_step + t) / static_cast<double>(weighting_horizon) : 1.0;
  }

  /// The start state, on the metaparameters' carrier (constants on a tape).
  template <class C>
  State<C> init(const Meta<C>& meta) const {
    if constexpr (std::is_same_v<C, Tensor<T>>) {
      return start;
    } else {
      const auto& o = start.optimizer;
      const auto lstm = as_constants(ParamList<Tensor<T>>{o.hidden1, o.cell1, o.hidden2, o.cell2, o.features}, meta);
      return {as_constants(start.params, meta), {lstm[0], lstm[1], lstm[2], lstm[3], lstm[4]}};
    }
  }

  /// One optimizee step under the LSTM with weights meta.
  template <class C>
  StepResult<State<C>, C> step(std::int64_t t, State<C> s, const Meta<C>& meta) const {
    const auto loss_fn = [&](const std::vector<Var<T>>& p) { return task->loss(problem, p, first_step + t); };
    auto [loss, g] = second_derivatives ? loss_and_gradient(s.params, loss_fn) : loss_and_gradient(s.params, loss_fn, without_second_derivatives);
    const LstmOptimizer<C> optimizer{meta, output_scale, preprocessing};  // the engine checked meta's shapes
    auto [params, lstm] = metagrad::step(optimizer, std::move(s.params), g, std::move(s.optimizer), T(1));
    return {{std::move(params), std::move(lstm)}, loss};
  }

  /// The optimizee's loss after the last step (weighted, with a horizon).
  template <class C>
  C objective(const State<C>& s, const Meta<C>&) const {
    const C loss = task->loss(problem, s.params, first_step + unroll);
    return weighting_horizon > 0 ? loss * static_cast<T>(loss_weight(unroll)) : loss;
  }

  /// The next unroll: the same optimizee continued from this one's final state under `weights`, or from the final
  /// state a metagradient of this unroll computed (no training again).
  UnrollRun next(const Meta<Tensor<T>>& weights) const { return continued(run_final_state(*this, weights, unroll)); }
  /// The next unroll from the final state a metagradient of this one computed.
  UnrollRun next(const MetagradientResult<T, Meta<Tensor<T>>>& metagradient) const {
    return continued(tree_unflatten(start, metagradient.final_state));
  }

 private:
  UnrollRun continued(State<Tensor<T>> end) const {
    UnrollRun out = *this;
    out.start = std::move(end);
    out.first_step = first_step + unroll;
    return out;
  }
};

}  // namespace metagrad
