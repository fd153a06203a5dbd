#pragma once
// The training-loop driver and its callbacks.
#include "metagrad/train/loop.hpp"
#include "metagrad/train/callbacks.hpp"
