#pragma once
// Data-parallel training over MPI: every rank runs the same loop on the same parameters, and each step's gradient is
// sharded_loss_and_gradient(params, plan, shard_loss, communicator) — each rank computes its shards, every rank gets
// the same sum. distributed::train is metagrad::train with one collective added per step: a failure on any rank (a
// throw inside the step, a bad file) reaches every rank as the same exception before any rank applies the step, so no
// rank is left waiting. A non-finite loss stops every rank at the same step, since the loss is the same bits on all.
// ParameterCheck compares the ranks' parameters by hash every few steps.
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "metagrad/distributed/communicator.hpp"
#include "metagrad/tensor/tree.hpp"
#include "metagrad/train/loop.hpp"

namespace metagrad::distributed {

/// metagrad::train on every rank of `communicator`, with the ranks agreeing after each step that none failed before
/// the step is applied (collective: every rank calls it with the same range). Callbacks run on every rank after the
/// agreement and are not agreed on themselves: one that can fail on a single rank (writing a file, say) belongs on
/// rank 0 only and must not throw, or the other ranks wait for it in the next step.
template <class StepFn, TrainingCallback... Callbacks>
TrainingSummary train(const Communicator& communicator, StepRange range, StepFn&& step_fn, Callbacks&&... callbacks) {
  using Result = std::remove_cvref_t<std::invoke_result_t<StepFn&, std::int64_t>>;
  auto agreed_step = [&](std::int64_t t) -> Result {
    const std::uint64_t failures_before = communicator.failures();
    std::optional<Result> result;
    std::exception_ptr failure;
    try {
      result.emplace(step_fn(t));
    } catch (...) {
      if (communicator.failures() != failures_before) throw;  // already agreed on by every rank
      failure = std::current_exception();
    }
    communicator.agree(failure);
    return std::move(*result);
  };
  return metagrad::train(range, agreed_step, std::forward<Callbacks>(callbacks)...);
}

/// Steps 0 … total_steps − 1 on every rank.
template <class StepFn, TrainingCallback... Callbacks>
TrainingSummary train(const Communicator& communicator, std::int64_t total_steps, StepFn&& step_fn,
                      Callbacks&&... callbacks) {
  if (total_steps < 0) throw value_error("train: negative number of steps " + std::to_string(total_steps));
  return train(communicator, StepRange{0, total_steps}, std::forward<StepFn>(step_fn),
               std::forward<Callbacks>(callbacks)...);
}

/// A train() callback that checks, every `every` steps, that all ranks hold the same bits of `params` (a tree of plain
/// tensors); a rank that drifted is a training_error on every rank. Collective: pass it on every rank.
template <class Tree>
class ParameterCheck {
 public:
  /// Checks `params` (which must outlive the check) after steps every − 1, 2·every − 1, …
  ParameterCheck(const Communicator& communicator, const Tree& params, std::int64_t every)
      : communicator_(&communicator), params_(&params), every_(every) {
    if (every < 1) throw value_error("ParameterCheck: every " + std::to_string(every) + " steps (at least 1 expected)");
  }
  /// The check, after the step has been applied.
  void on_step(const StepReport& report) const {
    if ((report.step + 1) % every_ != 0) return;
    communicator_->check_identical(tree_hash(*params_), "the parameters after step " + std::to_string(report.step));
  }

 private:
  const Communicator* communicator_;
  const Tree* params_;
  std::int64_t every_;
};

}  // namespace metagrad::distributed
