#pragma once
// The update rules.
#include "metagrad/optim/update_rule.hpp"
#include "metagrad/optim/sgd.hpp"
#include "metagrad/optim/momentum.hpp"
#include "metagrad/optim/nesterov.hpp"
#include "metagrad/optim/rmsprop.hpp"
#include "metagrad/optim/adam.hpp"
