#pragma once
// Meta-training a learned optimizer (PAPERS.md §2): meta-batches of fresh optimizees, each unroll of each one a
// metagradient (UnrollRun, unroll_run.hpp), one step of clipped Adam on their mean, and a held-out evaluation that
// keeps the best weights; with loss_curve, the evaluation used for the learned optimizer and its baselines alike.
// The optimizees of a meta-batch, and those of an evaluation, run on metagrad's threads (and over MPI ranks with
// distributed::meta_train), each on its own tape, and their results are added in a fixed order: the same bits on any
// number of threads and ranks. A task's const member functions are called from several threads at once, so they must
// not change shared state.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "metagrad/learned/unroll_run.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/chain.hpp"
#include "metagrad/optim/clip.hpp"
#include "metagrad/optim/step_size/constant.hpp"
#include "metagrad/threads.hpp"
#include "metagrad/train/sharded_gradient.hpp"

namespace metagrad {

/// The optimizee's loss along a run of `steps` steps of a fixed update rule at step size `step_size` (the learned
/// optimizer at 1, a baseline at its tuned rate): entry t is f(θ_t) on step t's batch, t = 0 … steps (the last after
/// the final step). Plain tensors only.
template <class Task, class Rule>
std::vector<typename Task::value_type> loss_curve(const Task& task, const typename Task::Problem& problem, const Rule& rule,
                                                  typename Task::value_type step_size, std::int64_t steps) {
  using T = typename Task::value_type;
  ParamList<Tensor<T>> params = task.initial_params(problem);
  auto state = rule.init(params);
  std::vector<T> losses;
  for (std::int64_t t = 0; t < steps; ++t) {
    auto [loss, g] = loss_and_gradient(params, [&](const std::vector<Var<T>>& p) { return task.loss(problem, p, t); });
    losses.push_back(loss.item());
    std::tie(params, state) = metagrad::step(rule, std::move(params), g, std::move(state), step_size);
  }
  losses.push_back(task.loss(problem, params, steps).item());
  return losses;
}

/// Settings of meta_train().
struct MetaTrainingOptions {
  std::int64_t optimizee_steps = 100;  ///< each optimizee's run, cut into unrolls
  std::int64_t unroll = 20;            ///< steps per metagradient (truncated backpropagation through the optimization)
  int meta_iterations = 100;           ///< meta-batches of fresh optimizees
  int meta_batch = 4;                  ///< optimizees per meta-batch; each unroll of them is one meta-update
  double meta_learning_rate = 1e-3;    ///< Adam on the LSTM's weights
  double clip_norm = 1.0;              ///< the metagradient's global norm is clipped to this (0: no clipping)
  bool second_derivatives = false;     ///< keep the optimizee's second derivatives (the paper drops them)
  /// RecordAll: each unroll step computed once, every step's tape kept until its reversal (MNIST MLP, unroll 20:
  /// about 600 MB in float); false: StoreAll, which keeps only the states and computes each step twice.
  bool record_unrolls = true;
  bool weight_late_losses = false;  ///< meta-loss Σ_s (s / optimizee_steps) f(θ_s) instead of the paper's Σ_s f(θ_s)
  int evaluate_every = 10;          ///< meta-iterations between evaluations on held-out optimizees
  int evaluation_optimizees = 8;    ///< held-out optimizees per evaluation
  /// The held-out figure averages each run's last N losses (the end's included; 0: the whole run, which rewards
  /// early descent as much as the end).
  std::int64_t evaluation_last_steps = 0;
  double time_budget_seconds = 0;  ///< stop (after an evaluation) at the first meta-iteration that ends past it; 0: none
  std::uint64_t seed = 1;          ///< optimizee i of meta-iteration k is task.sample(seed, k, i); held-out ones differ
};

/// What meta-training did: the best weights on the held-out optimizees, and the history.
template <class T>
struct MetaTrainingResult {
  LstmOptimizer<Tensor<T>> best;     ///< the weights with the best held-out evaluation
  T best_evaluation = 0;             ///< mean loss along the held-out runs of `best` (see evaluation_last_steps)
  std::vector<T> evaluations;        ///< one per evaluation, the first before any meta-update
  std::vector<T> meta_losses;        ///< each meta-update's mean meta-loss per unroll and optimizee
  std::int64_t optimizee_steps = 0;  ///< optimizee steps differentiated through
  bool stopped_early = false;        ///< a callback's on_step returned false (meta-training stopped after that update)
};

namespace meta_detail {
inline std::uint64_t optimizee_seed(std::uint64_t seed, std::uint64_t iteration, std::uint64_t index) {
  return SplitMix64(seed ^ (0x9E3779B97F4A7C15ull * (iteration + 1)) ^ (0xBF58476D1CE4E5B9ull * (index + 1))).next();
}
}  // namespace meta_detail

/// The mean loss along `optimizee_steps`-step runs of `optimizer` (at step size 1) on the held-out optimizees of
/// `options`, over each run's last `evaluation_last_steps` losses (all when 0). With an MPI communicator
/// (metagrad/distributed/) the optimizees are split over its ranks; the result is the same bits on any number.
template <class Task, class Communicator = SingleProcess>
typename Task::value_type evaluate_learned_optimizer(const Task& task, const LstmOptimizer<Tensor<typename Task::value_type>>& optimizer,
                                                     const MetaTrainingOptions& options, const Communicator& communicator = {}) {
  using T = typename Task::value_type;
  // The optimizees' runs on metagrad's threads (and ranks), each on its own tape; their losses added in order afterwards.
  const std::int64_t length = options.optimizee_steps + 1;
  const Tensor<T> curves = gather_items<T>(communicator, std::max(options.evaluation_optimizees, 0), length, [&](std::int64_t i, T* out) {
    const auto problem = task.sample(meta_detail::optimizee_seed(~options.seed, 0, static_cast<std::uint64_t>(i)));
    const std::vector<T> curve = loss_curve(task, problem, optimizer, T(1), options.optimizee_steps);
    std::copy(curve.begin(), curve.end(), out);
  });
  const std::int64_t first = options.evaluation_last_steps > 0 && options.evaluation_last_steps < length
                                 ? length - options.evaluation_last_steps : 0;
  T total = 0;
  std::int64_t count = 0;
  for (std::int64_t i = 0; i < curves.shape()[0]; ++i)
    for (std::int64_t t = first; t < length; ++t) total += curves.data()[i * length + t], ++count;
  return total / static_cast<T>(count);
}

namespace meta_detail {
/// meta_train with the optimizees split over the ranks of `communicator`.
template <class Communicator, class Task, TrainingCallback... Callbacks>
MetaTrainingResult<typename Task::value_type> meta_train(const Communicator& communicator, const Task& task,
                                                         const LstmOptimizer<Tensor<typename Task::value_type>>& initial,
                                                         const MetaTrainingOptions& options, Callbacks&&... callbacks) {
  using T = typename Task::value_type;
  if (options.unroll < 1 || options.optimizee_steps < options.unroll || options.optimizee_steps % options.unroll != 0)
    throw value_error("meta_train: " + std::to_string(options.optimizee_steps) + " optimizee steps in unrolls of " +
                      std::to_string(options.unroll) + " (a positive multiple of the unroll expected)");
  const auto require = [](bool ok, const char* name, double value, const char* expected) {
    if (ok) return;
    std::ostringstream message;  // shortest form: 0, -1, 0.001, nan
    message << "meta_train: " << name << " = " << value << " (" << expected << " expected)";
    throw value_error(message.str());
  };
  require(options.meta_iterations >= 0, "meta_iterations", options.meta_iterations, "0 or more");
  require(options.meta_batch >= 1, "meta_batch", options.meta_batch, "1 or more");
  require(options.evaluate_every >= 1, "evaluate_every", options.evaluate_every, "1 or more");
  require(options.evaluation_optimizees >= 1, "evaluation_optimizees", options.evaluation_optimizees, "1 or more");
  require(options.evaluation_last_steps >= 0, "evaluation_last_steps", static_cast<double>(options.evaluation_last_steps), "0 or more");
  require(options.meta_learning_rate > 0, "meta_learning_rate", options.meta_learning_rate, "a positive number");
  require(options.clip_norm >= 0, "clip_norm", options.clip_norm, "0 or more");
  require(options.time_budget_seconds >= 0, "time_budget_seconds", options.time_budget_seconds, "0 or more");
  initial.check();
  const auto started = std::chrono::steady_clock::now();
  MetaTrainingResult<T> result{initial, evaluate_learned_optimizer(task, initial, options, communicator), {}, {}, 0};
  result.evaluations.push_back(result.best_evaluation);
  // The mean metagradient's norm clipped (no limit for clip_norm = 0), then Adam.
  const T max_norm = options.clip_norm > 0 ? static_cast<T>(options.clip_norm) : std::numeric_limits<T>::infinity();
  const auto meta_optimizer = chain(ClipByGlobalNorm<T>{max_norm}, Adam<T>{}, ConstantStepSize<T>{static_cast<T>(options.meta_learning_rate)});
  LstmOptimizerWeights<Tensor<T>> weights = initial.weights;
  auto meta_state = meta_optimizer.init(tree_flatten(weights));
  const std::int64_t unrolls = options.optimizee_steps / options.unroll;
  CallbackList<std::remove_reference_t<Callbacks>...> notify(callbacks...);
  notify.begin(static_cast<std::int64_t>(options.meta_iterations) * unrolls);
  std::int64_t update = 0;
  bool stop = false;
  for (int k = 0; k < options.meta_iterations && !stop; ++k) {
    std::vector<UnrollRun<Task>> runs;
    std::exception_ptr failure;  // sampling an optimizee can fail on one rank (a file): the ranks agree first
    try {
      for (int i = 0; i < options.meta_batch; ++i) {
        runs.emplace_back(task, task.sample(optimizee_seed(options.seed, static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(i))),
                          initial, options.unroll);
        runs.back().second_derivatives = options.second_derivatives;
        if (options.weight_late_losses) runs.back().weighting_horizon = options.optimizee_steps;
      }
    } catch (...) {
      failure = std::current_exception();
    }
    communicator.agree(failure);
    for (std::int64_t u = 0; u < unrolls; ++u, ++update) {
      // The optimizees' unrolls on metagrad's threads (and ranks), each on its own tape; their metagradients are added
      // in order afterwards (the same bits on any number of threads and ranks), and nothing is changed until all have
      // succeeded. Each rank continues its own optimizees.
      using Metagradient = MetagradientResult<T, LstmOptimizerWeights<Tensor<T>>>;
      std::vector<std::optional<Metagradient>> metagradients(runs.size());
      const std::int64_t width = 1 + tree_element_count(weights);  // the objective, then the gradient's elements
      const Tensor<T> all = gather_items<T>(communicator, static_cast<std::int64_t>(runs.size()), width, [&](std::int64_t i, T* out) {
        const auto& run = runs[static_cast<std::size_t>(i)];
        const MetagradientOptions unchecked{.check_determinism = false, .step_loss_weights = run.step_loss_weights()};
        const Metagradient& mg = metagradients[static_cast<std::size_t>(i)].emplace(
            options.record_unrolls ? metagradient(run, weights, options.unroll, RecordAll{}, unchecked)
                                   : metagradient(run, weights, options.unroll, StoreAll{}, unchecked));
        *out = mg.objective;
        tree_write_elements(mg.gradient, out + 1);
      });
      std::optional<LstmOptimizerWeights<Tensor<T>>> sum;  // the mean metagradient
      T meta_loss = 0;
      for (std::size_t i = 0; i < runs.size(); ++i) {
        if (metagradients[i]) runs[i] = runs[i].next(*metagradients[i]);  // under the weights the unroll was taken with
        const T* row = all.data() + static_cast<std::int64_t>(i) * width;
        const auto gradient = tree_read_elements(weights, row + 1);
        meta_loss += row[0] / static_cast<T>(runs.size());
        const auto share = static_cast<T>(runs.size());
        if (!sum) sum = tree_map(gradient, [&](const Tensor<T>& g) { return g / share; });
        else tree_for_each([&](const TreePath&, Tensor<T>& s, const Tensor<T>& g) { s += g / share; }, *sum, gradient);
        result.optimizee_steps += options.unroll;
      }
      auto [flat, next_state] = meta_optimizer.step(tree_flatten(weights), tree_flatten(*sum), std::move(meta_state));
      weights = tree_unflatten(weights, std::move(flat));
      meta_state = std::move(next_state);
      result.meta_losses.push_back(meta_loss);
      StepReport report{.step = update, .loss = static_cast<double>(meta_loss)};
      const bool last_unroll = u + 1 == unrolls;
      const bool out_of_time = last_unroll && options.time_budget_seconds > 0 &&
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() > options.time_budget_seconds;
      stop = out_of_time || k + 1 == options.meta_iterations;
      if (last_unroll && ((k + 1) % options.evaluate_every == 0 || stop)) {
        const auto candidate = initial.with_weights(weights);
        const T evaluation = evaluate_learned_optimizer(task, candidate, options, communicator);
        result.evaluations.push_back(evaluation);
        if (evaluation < result.best_evaluation) result.best_evaluation = evaluation, result.best = candidate;
        report.validation_loss = static_cast<double>(evaluation);
      }
      if (!notify.step(report)) {  // a callback asked to stop: this update counts, the rest are not taken
        result.stopped_early = stop = true;
        ++update;
        break;
      }
    }
  }
  notify.end({update, result.meta_losses.empty() ? 0.0 : static_cast<double>(result.meta_losses.back()), result.stopped_early});
  return result;
}
}  // namespace meta_detail

/// Meta-trains `optimizer` on optimizees drawn from `task` (PAPERS.md §2): for every meta-batch of fresh optimizees,
/// each unroll of each optimizee is a metagradient of Σ_t f(θ_t) with respect to the LSTM's weights (RecordAll, or
/// StoreAll when record_unrolls is off: an unroll is short); their mean, clipped to `clip_norm`, is one Adam step;
/// the optimizees continue from their unrolls' final states. The held-out evaluation keeps the best weights. Callbacks see one report per
/// meta-update: its meta-loss, and the held-out evaluation as validation_loss when one follows it.
/// With an MPI communicator (distributed::meta_train) each meta-batch's optimizees, and the evaluation's, are split over
/// the ranks; every rank gets the same bits as one process.
template <class Task, TrainingCallback... Callbacks>
MetaTrainingResult<typename Task::value_type> meta_train(const Task& task, const LstmOptimizer<Tensor<typename Task::value_type>>& initial,
                                                         const MetaTrainingOptions& options, Callbacks&&... callbacks) {
  return meta_detail::meta_train(SingleProcess{}, task, initial, options, std::forward<Callbacks>(callbacks)...);
}

}  // namespace metagrad
