#pragma once
// A fixed step size α.
#include <cstdint>
#include <utility>

#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

template <class T = double>
struct ConstantStepSize {
  using value_type = T;
  T value = T(1e-3);

  struct State {
    std::int64_t steps = 0;
    METAGRAD_FIELDS(steps)
  };
  static constexpr bool needs_direction = false;

  State init(const ParamList<Tensor<T>>&) const { return {}; }
  T begin_step(State& state, const ParamList<Tensor<T>>&) const {
    ++state.steps;
    return value;
  }
  T current(const State&) const { return value; }
};

}  // namespace metagrad
