#pragma once
// A labelled dataset in memory: one example per row of `inputs` (axis 0), one class label per example.
#include <string>

#include "metagrad/ops/index.hpp"

namespace metagrad {

/// Examples and their integer class labels.
template <class T = double>
struct Dataset {
  Tensor<T> inputs;     ///< [examples, …]
  IndexVector labels;   ///< Class of each example, in [0, classes).
  index_t classes = 0;  ///< Number of classes.

  index_t size() const { return static_cast<index_t>(labels.size()); }  ///< Number of examples.

  /// The examples at `indices` (a minibatch), inputs and labels together.
  Dataset batch(const IndexVector& indices) const {
    Dataset out{gather_rows(inputs, indices), {}, classes};
    out.labels.reserve(indices.size());
    for (index_t i : indices) out.labels.push_back(labels[static_cast<std::size_t>(i)]);
    return out;
  }

  /// Examples [start, start + count): e.g. to split off a validation set.
  Dataset slice(index_t start, index_t count) const {
    if (start < 0 || count < 0 || start + count > size())
      throw value_error("Dataset::slice: [" + std::to_string(start) + ", " + std::to_string(start + count) +
                        ") out of range for " + std::to_string(size()) + " examples");
    Dataset out{metagrad::slice(inputs, 0, start, count), {}, classes};
    out.labels.assign(labels.begin() + start, labels.begin() + start + count);
    return out;
  }
};

}  // namespace metagrad
