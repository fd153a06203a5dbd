#pragma once
// Dropout whose mask is a pure function of (seed, step, layer): a replayed or re-differentiated step draws the same
// mask, so REPLAY's forward replays and the recorded step agree to the bit.
#include <cstdint>
#include <string>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/tensor/random.hpp"

namespace metagrad {

/// Names one dropout mask: a training run's seed, the step, and which dropout layer of the model.
struct DropoutKey {
  std::uint64_t seed = 0;   ///< The run's seed.
  std::uint64_t step = 0;   ///< The training step.
  std::uint64_t layer = 0;  ///< Which dropout of the model (its position, say).
};

namespace detail {
inline void check_dropout_rate(double rate) {
  if (!(rate >= 0 && rate < 1)) throw value_error("dropout: rate " + std::to_string(rate) + " (0 <= rate < 1 expected)");
}
}  // namespace detail

/// The mask that dropout multiplies by: each element 1 / (1 − rate) with probability 1 − rate, else 0, drawn from
/// the generator that the key alone seeds.
template <class T>
Tensor<T> dropout_mask(const Shape& shape, double rate, const DropoutKey& key) {
  detail::check_dropout_rate(rate);
  SplitMix64 rng(SplitMix64(key.seed ^ (0x9E3779B97F4A7C15ull * (key.step + 1)) ^ (0xBF58476D1CE4E5B9ull * (key.layer + 1))).next());
  Tensor<T> mask = Tensor<T>::uninitialized(shape);
  const T kept = static_cast<T>(1 / (1 - rate));
  for (T& m : mask) m = rng.uniform() < rate ? T(0) : kept;
  return mask;
}

/// x with each element zeroed with probability `rate` and the rest scaled by 1 / (1 − rate) (inverted dropout, as
/// PyTorch's in training mode), on either carrier; rate 0 is the identity.
template <class X>
X dropout(const X& x, double rate, const DropoutKey& key) {
  detail::check_dropout_rate(rate);
  if (rate == 0) return x;
  return x * dropout_mask<typename X::value_type>(x.shape(), rate, key);
}

}  // namespace metagrad
