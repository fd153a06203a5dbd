#pragma once
// Saving and loading tensors (.npy) and optimizer states.
#include "metagrad/io/npy.hpp"
#include "metagrad/io/npz.hpp"
#include "metagrad/io/state.hpp"
