#pragma once
// A fixed step size α.
#include <cstdint>
#include <utility>

#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// A fixed step size α.
template <class T = double>
struct ConstantStepSize {
  using value_type = T;  ///< the number type of α
  T value = T(1e-3);     ///< α

  /// Counts the steps taken.
  struct State {
    std::int64_t steps = 0;  ///< Steps taken.
    METAGRAD_FIELDS(steps)
  };
  static constexpr bool needs_direction = false;  ///< The policy does not need the rule's direction.

  State init(const ParamList<Tensor<T>>&) const { return {}; }  ///< Step 0.
  /// Counts the step; returns α.
  T begin_step(State& state, const ParamList<Tensor<T>>&) const {
    ++state.steps;
    return value;
  }
  T current(const State&) const { return value; }  ///< α
};

}  // namespace metagrad
