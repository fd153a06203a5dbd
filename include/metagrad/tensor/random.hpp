#pragma once
// Counter-based random numbers: the same seed gives the same bits on every compiler, platform and thread count
// (std::normal_distribution is implementation-defined, so it is not used).
#include <cmath>
#include <cstdint>
#include <numbers>

namespace metagrad {

/// SplitMix64: a tiny, well-mixed 64-bit generator. Its whole state is one counter.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}  ///< A generator whose sequence is fixed by seed.

  /// The next 64 random bits.
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Standard normal by the Box-Muller transform (one draw per call; the partner value is discarded so that the
  /// i-th draw depends only on the seed and i).
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  std::uint64_t state_;
};

}  // namespace metagrad
