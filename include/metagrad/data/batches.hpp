#pragma once
// Deterministic minibatches: the batch at step t is a pure function of (seed, t). Each epoch is a fresh
// permutation of the examples, drawn from (seed, epoch), so any step can be replayed without stored RNG state.
// An epoch has ⌊N / B⌋ batches; the remainder of each permutation is skipped (a different remainder each epoch).
// batch() caches the current epoch's permutation: use one BatchOrder per thread.
#include <cstdint>
#include <mutex>
#include <numeric>
#include <string>

#include "metagrad/tensor/shape.hpp"
#include "metagrad/tensor/random.hpp"

namespace metagrad {

/// The minibatches of a run: example indices per step, reshuffled each epoch, a pure function of (seed, step).
class BatchOrder {
 public:
  /// Batches of batch_size from examples examples; throws value_error unless 1 ≤ batch_size ≤ examples.
  BatchOrder(index_t examples, index_t batch_size, std::uint64_t seed)
      : examples_(examples), batch_size_(batch_size), seed_(seed) {
    if (batch_size < 1 || batch_size > examples)
      throw value_error("BatchOrder: batch size " + std::to_string(batch_size) + " for " + std::to_string(examples) +
                        " examples (1 to the number of examples expected)");
  }

  /// Full batches per epoch (the remainder is dropped).
  index_t batches_per_epoch() const { return examples_ / batch_size_; }
  index_t batch_size() const { return batch_size_; }  ///< Examples per batch.

  /// The example indices of step t (t = 0, 1, …).
  IndexVector batch(std::int64_t step) const {
    if (step < 0) throw value_error("BatchOrder: negative step " + std::to_string(step));
    const std::int64_t epoch = step / batches_per_epoch();
    const index_t first = (step % batches_per_epoch()) * batch_size_;
    const std::lock_guard lock(cache_.mutex);  // runs on several threads may share this order
    if (epoch != cache_.epoch) {  // a cache of the last permutation: results never depend on it
      cache_.permutation = permutation(epoch);
      cache_.epoch = epoch;
    }
    return IndexVector(cache_.permutation.begin() + first, cache_.permutation.begin() + first + batch_size_);
  }

  /// The order of the examples in one epoch (Fisher–Yates with SplitMix64 seeded by seed and epoch).
  IndexVector permutation(std::int64_t epoch) const {
    IndexVector p(static_cast<std::size_t>(examples_));
    std::iota(p.begin(), p.end(), index_t(0));
    SplitMix64 rng(SplitMix64(seed_ ^ (0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(epoch + 1))).next());
    for (index_t i = examples_ - 1; i > 0; --i) {
      const auto j = static_cast<index_t>(((rng.next() >> 32) * static_cast<std::uint64_t>(i + 1)) >> 32);
      std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
    }
    return p;
  }

 private:
  index_t examples_, batch_size_;
  std::uint64_t seed_;
  /// The last epoch's permutation, behind a mutex; a copy starts empty.
  struct Cache {
    std::mutex mutex;
    std::int64_t epoch = -1;
    IndexVector permutation;
    Cache() = default;
    Cache(const Cache&) {}
    Cache& operator=(const Cache&) {
      const std::lock_guard lock(mutex);
      epoch = -1;
      return *this;
    }
  };
  mutable Cache cache_;
};

}  // namespace metagrad
