#pragma once
// metagrad over MPI (optional: include this, link MPI::MPI_CXX): data-parallel training and meta-training whose sums
// are the same bits on any number of ranks. Not part of metagrad.hpp, which never needs MPI.
#include "metagrad/distributed/communicator.hpp"
#include "metagrad/distributed/meta_training.hpp"
#include "metagrad/distributed/train.hpp"
