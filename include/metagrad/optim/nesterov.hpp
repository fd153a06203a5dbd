#pragma once
// Nesterov momentum, in the form of PyTorch and of the hypergradient paper (SGDN):
// v' = μ v + g, d = g + μ v'.
#include "metagrad/optim/momentum.hpp"

namespace metagrad {

template <class S = double>
using Nesterov = MomentumRule<S, true>;  ///< Nesterov momentum: d = g + μ v'.

}  // namespace metagrad
