#pragma once
// Models as pure functions of their parameters.
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/dropout.hpp"
#include "metagrad/nn/lenet.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/loss.hpp"
#include "metagrad/nn/lstm.hpp"
#include "metagrad/nn/mlp.hpp"
#include "metagrad/nn/normalization.hpp"
#include "metagrad/nn/resnet.hpp"
