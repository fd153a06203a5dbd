#pragma once
// Meta-training a learned optimizer over MPI: each meta-batch's optimizees, and the held-out evaluation's, split over
// the ranks; every rank ends with the same bits as meta_train in one process.
#include <utility>

#include "metagrad/distributed/communicator.hpp"
#include "metagrad/learned/meta_training.hpp"

namespace metagrad::distributed {

/// metagrad::meta_train with the optimizees split over the ranks of `communicator` (collective: every rank calls it
/// with the same arguments). A failure on any rank reaches every rank as the same error before the weights change.
/// Callbacks run on every rank.
template <class Task, TrainingCallback... Callbacks>
MetaTrainingResult<typename Task::value_type> meta_train(const Communicator& communicator, const Task& task,
                                                         const LstmOptimizer<Tensor<typename Task::value_type>>& initial,
                                                         const MetaTrainingOptions& options, Callbacks&&... callbacks) {
  return meta_detail::meta_train(communicator, task, initial, options, std::forward<Callbacks>(callbacks)...);
}

}  // namespace metagrad::distributed
