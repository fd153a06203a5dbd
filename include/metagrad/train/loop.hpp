#pragma once
// A training-loop driver with optional callbacks in the ensmallen spirit. The loop calls your step function for
// t = 0, 1, …; each step returns a StepReport. A callback is any object with some of these members, detected at
// compile time:
//   void on_begin(std::int64_t total_steps)
//   bool on_step(const StepReport&)      — or void; returning false stops training
//   void on_end(const TrainingSummary&)
// A non-finite loss stops training with a training_error naming the step: never a silent NaN.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include "metagrad/error.hpp"

namespace metagrad {

struct StepReport {
  std::int64_t step = 0;
  double loss = 0;                            // training (minibatch) loss of this step
  std::optional<double> step_size{};          // the step size this step used, when there is one
  std::optional<double> validation_loss{};    // when this step evaluated on held-out data
  std::optional<double> validation_accuracy{};
};

struct TrainingSummary {
  std::int64_t steps = 0;  // steps run
  double final_loss = 0;
  bool stopped_early = false;
};

template <class StepFn, class... Callbacks>
TrainingSummary train(std::int64_t total_steps, StepFn&& step_fn, Callbacks&&... callbacks) {
  if (total_steps < 0) throw value_error("train: negative number of steps " + std::to_string(total_steps));
  auto begin = [&](auto& cb) {
    if constexpr (requires { cb.on_begin(total_steps); }) cb.on_begin(total_steps);
  };
  (begin(callbacks), ...);
  TrainingSummary summary;
  for (std::int64_t t = 0; t < total_steps; ++t) {
    StepReport report = step_fn(t);
    report.step = t;
    for (const auto& [what, value] : {std::pair{"loss", std::optional<double>(report.loss)},
                                      std::pair{"step size", report.step_size},
                                      std::pair{"validation loss", report.validation_loss}})
      if (value && !std::isfinite(*value))
        throw training_error("train: the " + std::string(what) + " is " + std::to_string(*value) + " at step " +
                             std::to_string(t) + "; stopping");
    summary.steps = t + 1;
    summary.final_loss = report.loss;
    bool keep_going = true;
    auto notify = [&](auto& cb) {
      if constexpr (requires { { cb.on_step(report) } -> std::convertible_to<bool>; }) keep_going = cb.on_step(report) && keep_going;
      else if constexpr (requires { cb.on_step(report); }) cb.on_step(report);
    };
    (notify(callbacks), ...);
    if (!keep_going) {
      summary.stopped_early = t + 1 < total_steps;
      break;
    }
  }
  auto end = [&](auto& cb) {
    if constexpr (requires { cb.on_end(summary); }) cb.on_end(summary);
  };
  (end(callbacks), ...);
  return summary;
}

}  // namespace metagrad
