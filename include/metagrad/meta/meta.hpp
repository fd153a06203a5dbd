#pragma once
// Metagradients through whole training runs: training runs as values, checkpoint policies, the engine.
#include "metagrad/meta/checkpoint.hpp"
#include "metagrad/meta/metagradient.hpp"
#include "metagrad/meta/metasmoothness.hpp"
#include "metagrad/meta/run.hpp"
#include "metagrad/meta/state.hpp"
