#pragma once
// The one exception hierarchy of metagrad: every error a user can cause derives from metagrad::error.
#include <stdexcept>
#include <string>

/// Everything metagrad offers: tensors, the tape, ops, optimizers, training loops, metagradients, learned optimizers.
namespace metagrad {

/// Base class of every exception metagrad throws.
struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Operands whose shapes do not fit the operation (the message names the op and both shapes).
struct shape_error : error {
  using error::error;
};

/// Misuse of a tape: a stale or foreign variable, a gradient that was never computed, a non-scalar
/// output without a seed.
struct tape_error : error {
  using error::error;
};

/// An argument outside its valid range (an axis, an index, a label, a tolerance).
struct value_error : error {
  using error::error;
};

/// An unreadable, malformed or mismatched file of tensors or optimizer state (.npy, saved states); the message names
/// the file and what was wrong.
struct io_error : error {
  using error::error;
};

/// An unreadable, truncated or malformed data file (MNIST IDX, CIFAR-10); the message names the file.
struct data_error : error {
  using error::error;
};

/// Training stopped: a non-finite loss, gradient or step size; the message names the step.
struct training_error : error {
  using error::error;
};

}  // namespace metagrad
