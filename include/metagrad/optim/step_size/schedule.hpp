#pragma once
// A step size per step, read from a rank-1 tensor: α_t = schedule[t] for steps t = 0, 1, … (metagrad counts steps
// from 0 everywhere: train(), BatchOrder, error messages).
// On a tape, `schedule_at` reads the same entry from a Var schedule, differentiably (metagradients of a schedule).
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "metagrad/autodiff/index.hpp"
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// A step size per step: α_t = schedule[t], t counted from 0.
template <class T = double>
struct ScheduledStepSize {
  using value_type = T;  ///< the number type of α
  Tensor<T> schedule;    ///< α_t for t = 0, 1, …: rank 1

  /// Counts the steps taken (the next entry to read).
  struct State {
    std::int64_t steps = 0;  ///< Steps taken.
    METAGRAD_FIELDS(steps)
  };
  static constexpr bool needs_direction = false;  ///< The policy does not need the rule's direction.

  /// Step 0; throws shape_error unless the schedule has rank 1.
  State init(const ParamList<Tensor<T>>&) const {
    if (schedule.rank() != 1) throw shape_error("ScheduledStepSize: rank-1 schedule expected, got " + schedule.shape().str());
    return {};
  }
  /// Returns schedule[steps] and counts the step; throws value_error past the end.
  T begin_step(State& state, const ParamList<Tensor<T>>&) const {
    if (state.steps >= schedule.size())
      throw value_error("ScheduledStepSize: step " + std::to_string(state.steps) + " is past the end of a schedule of " +
                        std::to_string(schedule.size()) + " steps");
    return schedule.data()[state.steps++];
  }
  /// The step size of the last step taken (the first entry before any step).
  T current(const State& state) const { return schedule.data()[state.steps > 0 ? state.steps - 1 : 0]; }
};

namespace detail {
inline void check_schedule_entry(const Shape& schedule, std::int64_t step) {
  if (schedule.rank() != 1 || step < 0 || step >= schedule[0])
    throw value_error("schedule_at: step " + std::to_string(step) + " (counted from 0) of a schedule of shape " + schedule.str());
}
}  // namespace detail

/// Entry t of a rank-1 schedule of plain numbers (the same call as for a Var schedule, so code over the carrier reads
/// both).
template <class T>
T schedule_at(const Tensor<T>& schedule, std::int64_t step) {
  detail::check_schedule_entry(schedule.shape(), step);
  return schedule.data()[step];
}

/// Entry t of a rank-1 schedule as a rank-0 Var (the step size of step t, counted from 0), with its gradient flowing
/// to the schedule.
template <class T>
Var<T> schedule_at(const Var<T>& schedule, std::int64_t step) {
  detail::check_schedule_entry(schedule.shape(), step);
  return reshape(slice(schedule, 0, static_cast<index_t>(step), 1), Shape{});
}

/// Entry t of a schedule of `steps` entries interpolated linearly between K ≥ 2 knots spread evenly over the steps
/// (knot 0 at step 0, knot K − 1 at step steps − 1): a few numbers that describe a whole schedule, read on either
/// carrier, so the knots can be metaparameters.
template <class C>
auto knot_schedule_at(const C& knots, std::int64_t steps, std::int64_t step) {
  if (knots.shape().rank() != 1 || knots.shape()[0] < 2)
    throw shape_error("knot_schedule_at: knots of shape [K] with K >= 2 expected, got " + knots.shape().str());
  if (steps < 2 || step < 0 || step >= steps)
    throw value_error("knot_schedule_at: step " + std::to_string(step) + " of " + std::to_string(steps) +
                      " (0 <= step < steps, and at least 2 steps)");
  using T = typename C::value_type;
  const T position = static_cast<T>(step) * static_cast<T>(knots.shape()[0] - 1) / static_cast<T>(steps - 1);
  const auto left = std::min(static_cast<std::int64_t>(position), knots.shape()[0] - 2);
  const T weight = position - static_cast<T>(left);
  return schedule_at(knots, left) * (1 - weight) + schedule_at(knots, left + 1) * weight;
}

}  // namespace metagrad
