#pragma once
// Learned optimizers: an LSTM trained to be the update rule.
#include "metagrad/learned/preprocessing.hpp"
#include "metagrad/learned/lstm_optimizer.hpp"
#include "metagrad/learned/unroll_run.hpp"
#include "metagrad/learned/meta_training.hpp"
#include "metagrad/learned/tasks.hpp"
#include "metagrad/learned/optimizer_file.hpp"
