#pragma once
// A training-loop driver with optional callbacks in the ensmallen spirit. The loop calls your step function for
// t = first, first + 1, … (steps count from 0; pass a StepRange to resume at a later step). A step function returns
// either
//   - propose_step(report, apply): the report of the step it evaluated and the update it proposes; train() checks
//     the report first and calls apply() only when it is sound, so a NaN loss never reaches the parameters, or
//   - a StepReport, for a step that has already applied its update (checked after the fact).
// A non-finite loss, step size or validation loss stops training with a training_error naming the step.
//
// A callback is any object with some of these members, called with the callback as passed (const or not):
//   void on_begin(std::int64_t end_step)     — steps run up to end_step − 1
//   bool on_step(const StepReport&)          — or void; returning false stops training
//   void on_end(const TrainingSummary&)
// A callback with none of them, or with a member of one of these names that does not fit its signature (a
// misspelled parameter, a const object whose hook is not const), is a compile error, never silently ignored.
#include <cmath>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "metagrad/error.hpp"

namespace metagrad {

/// What one training step reports to the loop and its callbacks.
struct StepReport {
  std::int64_t step = 0;                        ///< the step, counted from 0 (set by the loop)
  double loss = 0;                              ///< training (minibatch) loss of this step
  std::optional<double> step_size{};            ///< the step size this step used, when there is one
  std::optional<double> validation_loss{};      ///< when this step evaluated on held-out data
  std::optional<double> validation_accuracy{};  ///< the accuracy on held-out data, when evaluated
};

/// What train() returns.
struct TrainingSummary {
  std::int64_t steps = 0;      ///< one past the last step run (so a resumed run counts the steps before it too)
  double final_loss = 0;       ///< The last step's loss.
  bool stopped_early = false;  ///< Whether a callback stopped the run before its end.
};

/// Steps first, first + 1, …, end − 1.
struct StepRange {
  std::int64_t first = 0;  ///< The first step.
  std::int64_t end = 0;    ///< One past the last step.
};

/// A step evaluated but not yet applied: train() calls apply() once the report has passed its checks.
template <class Apply>
struct ProposedStep {
  StepReport report;  ///< The step's report.
  Apply apply;        ///< Applies the update; called once, after the checks.
};
/// A step whose update train() applies only after its report passed the checks (non-finite loss: not applied).
template <class Apply>
ProposedStep<Apply> propose_step(StepReport report, Apply apply) {
  return {std::move(report), std::move(apply)};
}

namespace train_detail {
template <class T> inline constexpr bool is_proposed_step = false;
template <class A> inline constexpr bool is_proposed_step<ProposedStep<A>> = true;

template <class C> concept has_on_begin = requires { &std::remove_cvref_t<C>::on_begin; };
template <class C> concept has_on_step = requires { &std::remove_cvref_t<C>::on_step; };
template <class C> concept has_on_end = requires { &std::remove_cvref_t<C>::on_end; };
template <class C> concept calls_on_begin = requires(C& c, std::int64_t n) { c.on_begin(n); };
template <class C> concept calls_on_step = requires(C& c, const StepReport& r) { c.on_step(r); };
template <class C> concept calls_on_end = requires(C& c, const TrainingSummary& s) { c.on_end(s); };
}  // namespace train_detail

/// A train() callback: at least one hook that can be called, and no hook-named member that cannot.
template <class C>
concept TrainingCallback =
    (train_detail::calls_on_begin<C> || train_detail::calls_on_step<C> || train_detail::calls_on_end<C>) &&
    (!train_detail::has_on_begin<C> || train_detail::calls_on_begin<C>) &&
    (!train_detail::has_on_step<C> || train_detail::calls_on_step<C>) &&
    (!train_detail::has_on_end<C> || train_detail::calls_on_end<C>);

/// The one dispatcher of the loops (train, metagradient, meta_train): each callback's hooks are called where it has
/// them, in the order the callbacks were passed, and an on_step that returns false asks the loop to stop — which
/// train() and meta_train() do after that step, and metagradient() reports as an error (it has no partial result).
template <class... Callbacks>
class CallbackList {
 public:
  /// Dispatches to these callbacks, which must outlive the list.
  explicit CallbackList(Callbacks&... callbacks) : callbacks_(callbacks...) {}

  /// Calls on_begin(end_step) where a callback has it.
  void begin(std::int64_t end_step) {
    std::apply([&](auto&... cb) { (call_begin(cb, end_step), ...); }, callbacks_);
  }
  /// Every callback sees the report; returns whether all of them want the loop to go on.
  bool step(const StepReport& report) {
    bool keep_going = true;
    std::apply([&](auto&... cb) { ((keep_going = call_step(cb, report) && keep_going), ...); }, callbacks_);
    return keep_going;
  }
  /// Calls on_end(summary) where a callback has it.
  void end(const TrainingSummary& summary) {
    std::apply([&](auto&... cb) { (call_end(cb, summary), ...); }, callbacks_);
  }

 private:
  template <class C>
  static void call_begin(C& cb, std::int64_t end_step) {
    if constexpr (train_detail::calls_on_begin<C&>) cb.on_begin(end_step);
  }
  template <class C>
  static bool call_step(C& cb, const StepReport& report) {
    if constexpr (requires { { cb.on_step(report) } -> std::convertible_to<bool>; }) return cb.on_step(report);
    else if constexpr (train_detail::calls_on_step<C&>) cb.on_step(report);
    return true;
  }
  template <class C>
  static void call_end(C& cb, const TrainingSummary& summary) {
    if constexpr (train_detail::calls_on_end<C&>) cb.on_end(summary);
  }

  std::tuple<Callbacks&...> callbacks_;
};

/// Runs steps range.first … range.end − 1, calling step_fn(t) and the callbacks; a non-finite loss is a training_error.
template <class StepFn, TrainingCallback... Callbacks>
TrainingSummary train(StepRange range, StepFn&& step_fn, Callbacks&&... callbacks) {
  if (range.first < 0 || range.end < range.first)
    throw value_error("train: steps [" + std::to_string(range.first) + ", " + std::to_string(range.end) +
                      ") (0 <= first <= end expected)");
  using Result = std::remove_cvref_t<std::invoke_result_t<StepFn&, std::int64_t>>;
  static_assert(std::is_same_v<Result, StepReport> || train_detail::is_proposed_step<Result>,
                "train: the step function must return a StepReport or propose_step(report, apply)");
  CallbackList<std::remove_reference_t<Callbacks>...> notify(callbacks...);
  notify.begin(range.end);
  TrainingSummary summary{range.first, 0, false};
  for (std::int64_t t = range.first; t < range.end; ++t) {
    Result result = step_fn(t);
    StepReport& report = [&]() -> StepReport& {
      if constexpr (std::is_same_v<Result, StepReport>) return result;
      else return result.report;
    }();
    report.step = t;
    for (const auto& [what, value] : {std::pair{"loss", std::optional<double>(report.loss)},
                                      std::pair{"step size", report.step_size},
                                      std::pair{"validation loss", report.validation_loss}})
      if (value && !std::isfinite(*value))
        throw training_error("train: the " + std::string(what) + " is " + std::to_string(*value) + " at step " +
                             std::to_string(t) + (std::is_same_v<Result, StepReport> ? "; stopping" : "; its update was not applied"));
    if constexpr (!std::is_same_v<Result, StepReport>) result.apply();
    summary.steps = t + 1;
    summary.final_loss = report.loss;
    if (!notify.step(report)) {
      summary.stopped_early = t + 1 < range.end;
      break;
    }
  }
  notify.end(summary);
  return summary;
}

/// Steps 0 … total_steps − 1.
template <class StepFn, TrainingCallback... Callbacks>
TrainingSummary train(std::int64_t total_steps, StepFn&& step_fn, Callbacks&&... callbacks) {
  if (total_steps < 0) throw value_error("train: negative number of steps " + std::to_string(total_steps));
  return train(StepRange{0, total_steps}, std::forward<StepFn>(step_fn), std::forward<Callbacks>(callbacks)...);
}

}  // namespace metagrad
