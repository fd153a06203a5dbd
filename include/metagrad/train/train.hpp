#pragma once
// The training-loop driver, its callbacks, and the batch gradient summed over virtual shards.
#include "metagrad/train/loop.hpp"
#include "metagrad/train/callbacks.hpp"
#include "metagrad/train/sharded_gradient.hpp"
