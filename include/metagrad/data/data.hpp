#pragma once
// Datasets, their readers, and deterministic batch order.
#include "metagrad/data/dataset.hpp"
#include "metagrad/data/mnist.hpp"
#include "metagrad/data/cifar10.hpp"
#include "metagrad/data/batches.hpp"
