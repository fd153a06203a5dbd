#pragma once
// Exact metagradients through whole training runs: the gradient of a run's objective with respect to every
// metaparameter, by step-wise reverse mode (PAPERS.md §3). The plain training steps a checkpoint policy replays run on
// Tensors (the fast path); each step t in reverse is recorded once on a tape from its state s_t — its gradient with
// create_graph, the update — and one vector–Jacobian product with the running adjoint ā_{t+1} gives ā_t and step t's
// contribution to the metagradient; then the tape is rewound. Memory: the policy's checkpoints plus one step's tape.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "metagrad/autodiff/grad.hpp"
#include "metagrad/meta/checkpoint.hpp"
#include "metagrad/meta/run.hpp"
#include "metagrad/meta/state.hpp"
#include "metagrad/train/loop.hpp"

namespace metagrad {

/// Settings of metagradient().
struct MetagradientOptions {
  /// Replay step 0 from the initial state and compare the bits, and compare every later replayed state with the
  /// first computation of the same step: a run whose step is not a pure function of (t, state, meta) is an error.
  bool check_determinism = true;
  /// Empty, or one weight per step: the objective becomes φ(s_T) + Σ_t w_t · loss_t (a learned optimizer is
  /// meta-trained on the losses along the run).
  std::vector<double> step_loss_weights{};
};

/// What metagradient() returns: the objective, its gradient as a Meta tree, the cost and the trained state.
template <class T, class Meta = std::vector<Tensor<T>>>
struct MetagradientResult {
  T objective = 0;  ///< The objective φ(s_T) (plus the weighted step losses, when asked).
  /// ∂objective/∂meta: a tree of the metaparameters' type and shapes.
  Meta gradient;
  /// What the run measured: checkpoints held at once and plain steps replayed (equal to the policy's plan).
  CheckpointPlan cost;
  /// The trained state s_T's tensors, in the tree's order (tree_unflatten puts them back into a state): a run that
  /// continues from where this one ended (a learned optimizer's next unroll) need not train again to get there.
  std::vector<Tensor<T>> final_state;
};

namespace meta_detail {

template <class P> inline constexpr bool is_variant = false;
template <class... P> inline constexpr bool is_variant<std::variant<P...>> = true;

/// Carries out a checkpoint policy's schedule on a real run (see checkpoint.hpp for the primitives).
template <class Run, class... Callbacks>
class MetagradientEngine {
 public:
  using T = typename Run::value_type;
  using PlainState = typename Run::template State<Tensor<T>>;
  using TapedState = typename Run::template State<Var<T>>;
  using Meta = meta_t<Run, Tensor<T>>;
  using TapedMeta = meta_t<Run, Var<T>>;

  MetagradientEngine(const Run& run, const Meta& meta, std::int64_t steps, const MetagradientOptions& options, std::int64_t work,
                     Callbacks&... callbacks)
      : run_(run), meta_(meta), steps_(steps), options_(options), known_(static_cast<std::size_t>(steps) + 1, false),
        hashes_(static_cast<std::size_t>(steps) + 1, 0), next_reverse_(steps - 1), work_(work), callbacks_(callbacks...) {
    result_.cost = {steps, 1, 0};
    meta_vars_ = tree_convert<TapedMeta>(meta_, [&](const Tensor<T>& m) { return tape_.variable(m); });
    meta_leaves_ = tree_flatten(meta_vars_);
    for (const auto& m : meta_leaves_) gradient_.push_back(Tensor<T>::zeros(m.shape()));
    start_ = tape_.mark();
    callbacks_.begin(work_);
    PlainState initial = run_.init(meta_);
    if (options_.check_determinism) check_step_zero(initial);
    record_hash(0, initial);
    checkpoints_.emplace(0, std::move(initial));
  }

  void restore(std::int64_t t) { set_working(t, checkpoint(t)); }
  void take(std::int64_t t) {
    auto it = checkpoints_.find(t);
    if (it == checkpoints_.end()) missing(t);
    set_working(t, std::move(it->second));
    checkpoints_.erase(it);
  }
  void advance(std::int64_t to) {
    for (; working_step_ < to; ++working_step_) {
      auto next = run_.step(working_step_, std::move(*working_), meta_);
      working_ = std::move(next.state);
      ++result_.cost.replayed_steps;
      record_hash(working_step_ + 1, *working_);
      progress(next.loss.item());
    }
  }
  void store() {
    checkpoints_.insert_or_assign(working_step_, *working_);
    result_.cost.stored_states = std::max(result_.cost.stored_states, static_cast<std::int64_t>(checkpoints_.size()));
  }
  void release(std::int64_t t) {
    if (checkpoints_.erase(t) == 0) missing(t);
  }

  /// Records the working state's step on the tape and keeps it for reverse(); the working state becomes its result.
  void record() {
    if (!working_ || working_step_ >= steps_)
      throw std::logic_error("metagradient: the checkpoint policy recorded step " + std::to_string(working_step_) + " without its state");
    recorded_.push_back(record_step(working_step_));
    result_.cost.recorded_steps = std::max(result_.cost.recorded_steps, static_cast<std::int64_t>(recorded_.size()));
    const Recorded& r = recorded_.back();
    if (++working_step_ < steps_) {  // the next step is recorded from these values as variables of its own
      working_ = tree_convert<PlainState>(r.state, [](const Var<T>& v) { return v.value(); });
      record_hash(working_step_, *working_);
    }
    progress(r.loss.value().item());
  }

  /// The step-VJP of step t — the last recorded step, or else the working state's step, recorded now:
  /// (ā_{t+1}, s_t) → ā_t, and meta's gradient += step t's part. Step t's tape is dropped after.
  void reverse() {
    const std::int64_t t = next_reverse_;
    const bool recorded = !recorded_.empty();
    const std::int64_t found = recorded ? recorded_.back().step : working_ ? working_step_ : -1;
    if (found != t)
      throw std::logic_error("metagradient: the checkpoint policy reversed step " + std::to_string(found) + " where step " +
                             std::to_string(t) + " was due");
    T loss = 0;
    {
      const TapeScope<T> scratch(tape_, recorded ? recorded_.back().mark : tape_.mark());  // the step's recording
      Recorded r = recorded ? std::move(recorded_.back()) : record_step(t);
      if (recorded) recorded_.pop_back();
      Var<T> total;  // Σ_i ⟨s_{t+1,i}, ā_{t+1,i}⟩ + w_t loss_t, plus φ(s_T) at the last step
      if (t == steps_ - 1) {
        for (const auto& v : tree_flatten(r.state)) result_.final_state.push_back(v.value());
        total = run_.objective(r.state, meta_vars_);
        if (total.value().size() != 1) throw shape_error("metagradient: the objective has shape " + total.shape().str() + "; one number expected");
        result_.objective = total.value().data()[0];
      } else {
        total = with_adjoint(tree_flatten(r.state));
      }
      if (!options_.step_loss_weights.empty()) {
        const T w = static_cast<T>(options_.step_loss_weights[static_cast<std::size_t>(t)]);
        total = total + w * r.loss;
        result_.objective += w * r.loss.value().item();
      }
      std::vector<Var<T>> xs = r.inputs;
      xs.insert(xs.end(), meta_leaves_.begin(), meta_leaves_.end());
      std::vector<Tensor<T>> g = grad(total, xs);
      check_finite(g, "step " + std::to_string(t));
      adjoint_.assign(std::make_move_iterator(g.begin()), std::make_move_iterator(g.begin() + static_cast<std::ptrdiff_t>(r.inputs.size())));
      for (std::size_t j = 0; j < gradient_.size(); ++j) gradient_[j] += g[r.inputs.size() + j];
      loss = r.loss.value().item();
    }
    progress(loss);
    --next_reverse_;
  }

  /// After the schedule: the initial state's part (initial parameters that are metaparameters), and the result.
  MetagradientResult<T, Meta> finish() {
    if (next_reverse_ != -1 || !checkpoints_.empty() || !recorded_.empty())
      throw std::logic_error("metagradient: the checkpoint policy ended with step " + std::to_string(next_reverse_ + 1) +
                             " unreversed or " + std::to_string(checkpoints_.size()) + " checkpoints still stored");
    const TapedState initial = run_.init(meta_vars_);
    const std::vector<Var<T>> outputs = tree_flatten(initial);
    if (!outputs.empty()) {
      const std::vector<Tensor<T>> g = grad(with_adjoint(outputs), meta_leaves_);
      check_finite(g, "the initial state");
      for (std::size_t j = 0; j < gradient_.size(); ++j) gradient_[j] += g[j];
    }
    tape_.rewind(start_);
    result_.gradient = tree_unflatten(meta_, std::move(gradient_));
    TrainingSummary summary{work_, result_.objective, false};
    callbacks_.end(summary);
    return std::move(result_);
  }

 private:
  /// One step recorded on the tape from the working state (moved onto the tape as variables of its own).
  struct Recorded {
    std::int64_t step = 0;
    typename Tape<T>::Mark mark;  // the tape before the step: reverse() rewinds to it
    std::vector<Var<T>> inputs;   // s_t's tensors as variables
    TapedState state;             // s_{t+1}
    Var<T> loss;
  };
  Recorded record_step(std::int64_t t) {
    Recorded r{t, tape_.mark(), {}, {}, {}};
    TapedState state = tree_convert<TapedState>(*working_, [&](Tensor<T>& t) {  // moved onto the tape as variables
      r.inputs.push_back(tape_.variable(std::move(t)));
      return r.inputs.back();
    });
    working_.reset();
    auto next = run_.step(t, std::move(state), meta_vars_);
    r.state = std::move(next.state);
    r.loss = next.loss;
    return r;
  }

  /// Σ_i ⟨outputs_i, ā_i⟩ on the tape, handing the adjoint over: its gradient is the vector–Jacobian product with ā.
  Var<T> with_adjoint(const std::vector<Var<T>>& outputs) {
    Var<T> total;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      const Var<T> term = dot(outputs[i], tape_.constant(std::move(adjoint_[i])));
      total = i == 0 ? term : total + term;
    }
    return total;
  }

  const PlainState& checkpoint(std::int64_t t) const {
    const auto it = checkpoints_.find(t);
    if (it == checkpoints_.end()) missing(t);
    return it->second;
  }
  [[noreturn]] static void missing(std::int64_t t) {
    throw std::logic_error("metagradient: the checkpoint policy used the state of step " + std::to_string(t) + ", which is not stored");
  }
  void set_working(std::int64_t t, PlainState state) {
    working_ = std::move(state);
    working_step_ = t;
  }

  void record_hash(std::int64_t t, const PlainState& state) {
    if (!options_.check_determinism) return;
    const std::uint64_t h = tree_hash(state);
    const auto k = static_cast<std::size_t>(t);
    if (known_[k] && hashes_[k] != h) not_deterministic(t - 1);
    known_[k] = true;
    hashes_[k] = h;
  }
  [[noreturn]] static void not_deterministic(std::int64_t t) {
    throw training_error("metagradient: step " + std::to_string(t) +
                         " is not deterministic: replaying it from the same state gave different bits (its batch and "
                         "every random draw must be a function of the seed and the step, not of state kept in the run)");
  }
  /// Replays step 0 (and the initial state) twice and compares the bits: catches a non-deterministic run even when
  /// the policy replays nothing.
  void check_step_zero(const PlainState& initial) {
    if (tree_hash(run_.init(meta_)) != tree_hash(initial))
      throw training_error("metagradient: init is not deterministic: two calls with the same metaparameters gave different bits");
    const std::uint64_t once = tree_hash(run_.step(0, PlainState(initial), meta_).state);
    if (tree_hash(run_.step(0, PlainState(initial), meta_).state) != once) not_deterministic(0);
  }

  static void check_finite(const std::vector<Tensor<T>>& g, const std::string& where) {
    for (const auto& x : g)
      if (!x.all_finite())
        throw training_error("metagradient: a NaN or infinite adjoint at " + where +
                             " (the run diverged, or its objective is not differentiable there)");
  }

  /// Reports one replayed or reversed step. A callback that asks to stop ends the metagradient with an error: there
  /// is no partial metagradient (the callbacks' on_end sees stopped_early).
  void progress(T loss) {
    const StepReport report{.step = done_++, .loss = static_cast<double>(loss)};
    if (callbacks_.step(report)) return;
    callbacks_.end({done_, static_cast<double>(loss), true});
    throw training_error("metagradient: a callback stopped it after " + std::to_string(done_) + " of " + std::to_string(work_) +
                         " steps; a metagradient needs the whole run, so there is none (nothing passed in was changed)");
  }

  const Run& run_;
  const Meta& meta_;
  std::int64_t steps_;
  const MetagradientOptions& options_;
  std::map<std::int64_t, PlainState> checkpoints_;
  std::vector<Recorded> recorded_;  // the tape holds their steps, the last on top
  std::optional<PlainState> working_;
  std::int64_t working_step_ = 0;
  std::vector<bool> known_;
  std::vector<std::uint64_t> hashes_;
  std::int64_t next_reverse_;
  Tape<T> tape_;
  TapedMeta meta_vars_;
  std::vector<Var<T>> meta_leaves_;   // meta_vars_'s tensors, in the tree's order
  std::vector<Tensor<T>> gradient_;   // their gradients so far
  typename Tape<T>::Mark start_;
  std::vector<Tensor<T>> adjoint_;
  MetagradientResult<T, Meta> result_;
  std::int64_t work_, done_ = 0;
  CallbackList<Callbacks...> callbacks_;
};

/// The metaparameters must have the run's structure and shapes, and finite values; errors name them by path.
template <class Run>
void check_metaparameters(const char* who, const Run& run, const meta_t<Run, Tensor<typename Run::value_type>>& meta, std::int64_t steps) {
  const std::string context = " for " + std::to_string(steps) + " steps";
  std::size_t count = 0;
  const auto shapes = run.metaparameter_shapes(steps);
  const std::string where = std::string(who) + ": the metaparameters";  // names a list of the wrong length
  tree_detail::walk<false>(where.c_str(), TreePath(), [&](const TreePath& path, const Shape& expected, const auto& m) {
    ++count;
    if (!(m.shape() == expected))
      throw shape_error(std::string(who) + ": metaparameter " + path.str() + " has shape " + m.shape().str() + ", expected " +
                        expected.str() + context);
    if (!m.all_finite()) throw value_error(std::string(who) + ": metaparameter " + path.str() + " holds a NaN or infinite value");
  }, shapes, meta);
  if (count == 0) throw value_error(std::string(who) + ": the run declares no metaparameters, so there is nothing to differentiate");
}

}  // namespace meta_detail

/// The objective of `run` after `steps` training steps from the metaparameters `meta`, and its gradient with respect
/// to each of them, exact (to rounding) and the same bits whatever the checkpoint policy (a policy, or a std::variant
/// of policies chosen at run time). `meta` is any tree of tensors (the run's Meta), and so is the gradient. Callbacks (train()'s:
/// ProgressBar, CsvLogger, …) see one report per replayed or reversed step. Nothing passed in is changed; every
/// error is an exception naming what went wrong: steps < 1, a metaparameter of the wrong count, shape or value, a
/// non-finite adjoint (naming the step), a run that is not deterministic (naming the step).
template <TrainingRun Run, class Policy, TrainingCallback... Callbacks>
  requires CheckpointPolicy<Policy> || meta_detail::is_variant<Policy>
MetagradientResult<typename Run::value_type, meta_t<Run, Tensor<typename Run::value_type>>> metagradient(
    const Run& run, const meta_t<Run, Tensor<typename Run::value_type>>& meta, std::int64_t steps, const Policy& policy,
    const MetagradientOptions& options = {}, Callbacks&&... callbacks) {
  if constexpr (meta_detail::is_variant<Policy>) {  // a policy chosen at run time
    return std::visit([&](const auto& chosen) { return metagradient(run, meta, steps, chosen, options, callbacks...); }, policy);
  } else {
    meta_detail::check_steps("metagradient", steps);
    meta_detail::check_metaparameters("metagradient", run, meta, steps);
    if (!options.step_loss_weights.empty() && static_cast<std::int64_t>(options.step_loss_weights.size()) != steps)
      throw value_error("metagradient: " + std::to_string(options.step_loss_weights.size()) + " step-loss weights for " +
                        std::to_string(steps) + " steps (one per step, or none)");
    const CheckpointPlan plan = checkpoint_plan(policy, steps);
    meta_detail::MetagradientEngine<Run, std::remove_reference_t<Callbacks>...> engine(
        run, meta, steps, options, plan.replayed_steps + plan.recorded_steps + steps, callbacks...);
    policy.schedule(steps, engine);
    return engine.finish();
  }
}

/// The objective after `steps` plain training steps (no gradient): what `metagradient` differentiates.
template <TrainingRun Run>
typename Run::value_type run_objective(const Run& run, const meta_t<Run, Tensor<typename Run::value_type>>& meta, std::int64_t steps,
                                       const MetagradientOptions& options = {}) {
  meta_detail::check_steps("run_objective", steps);
  meta_detail::check_metaparameters("run_objective", run, meta, steps);
  auto state = run.init(meta);
  typename Run::value_type weighted_losses = 0;
  for (std::int64_t t = 0; t < steps; ++t) {
    auto next = run.step(t, std::move(state), meta);
    if (!options.step_loss_weights.empty())
      weighted_losses += static_cast<typename Run::value_type>(options.step_loss_weights[static_cast<std::size_t>(t)]) * next.loss.item();
    state = std::move(next.state);
  }
  return run.objective(state, meta).item() + weighted_losses;
}

}  // namespace metagrad
