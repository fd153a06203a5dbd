#pragma once
// A training run's state — model parameters plus optimizer state — as the metagradient engine sees it: a tensor tree
// (tensor/tree.hpp) templated on the carrier C, so the engine can copy it as plain tensors, re-create it on a tape as
// variables, hash it, and list its tensors in the tree's order.
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// The state of a training run written with one update rule: parameters and the rule's state.
template <class C, class OptimizerState>
struct TrainingState {
  ParamList<C> params;       ///< The model's parameters.
  OptimizerState optimizer;  ///< The update rule's state.
  METAGRAD_FIELDS(params, optimizer)
};

}  // namespace metagrad
