#pragma once
// The update rules, the step-size policies, and their composition.
#include "metagrad/optim/update_rule.hpp"
#include "metagrad/optim/sgd.hpp"
#include "metagrad/optim/momentum.hpp"
#include "metagrad/optim/nesterov.hpp"
#include "metagrad/optim/rmsprop.hpp"
#include "metagrad/optim/adam.hpp"
#include "metagrad/optim/step_size/constant.hpp"
#include "metagrad/optim/step_size/schedule.hpp"
#include "metagrad/optim/step_size/hypergradient.hpp"
#include "metagrad/optim/optimizer.hpp"
#include "metagrad/optim/stacked.hpp"
