#pragma once
// Saving and loading tensors (.npy, .npz) and any tensor tree (optimizer and training states).
#include "metagrad/io/npy.hpp"
#include "metagrad/io/npz.hpp"
#include "metagrad/io/tree.hpp"
