#pragma once
// Shared by the test sources (and precompiled once for all of them).
#include <doctest/doctest.h>

#include <metagrad/metagrad.hpp>
#include <string>
#include <vector>

namespace metagrad::test {

using TD = Tensor<double>;
using VD = Var<double>;
using Vars = std::vector<Var<double>>;

inline TD randn(const Shape& shape, std::uint64_t seed) { return TD::random_normal(shape, seed); }

/// Values in [low, high): for ops with a restricted domain or a kink to stay away from.
inline TD randu(const Shape& shape, std::uint64_t seed, double low, double high) {
  return TD::random_uniform(shape, seed, low, high);
}

/// The first-order check, and the second-order one on f's output passed through tanh (so that linear ops get a
/// non-zero Hessian and their recorded backward rule is exercised).
template <class F>
void check_first_and_second_order(F f, const std::vector<TD>& xs) {
  const auto first = check_gradient(f, xs);
  CHECK_MESSAGE(first.ok, "gradient check failed:\n" << first.report);
  CHECK(first.checked > 0);
  const auto second = check_hvp([&](const Vars& v) { return tanh(f(v)); }, xs);
  CHECK_MESSAGE(second.ok, "Hessian-vector product check failed:\n" << second.report);
  const auto second_raw = check_hvp(f, xs);
  CHECK_MESSAGE(second_raw.ok, "Hessian-vector product check (no tanh) failed:\n" << second_raw.report);
}

/// Runs f and checks it throws E with a message that contains every fragment.
template <class E, class F>
void check_throws_with(F f, const std::vector<std::string>& fragments) {
  bool thrown = false;
  try {
    f();
  } catch (const E& e) {
    thrown = true;
    const std::string msg = e.what();
    for (const auto& frag : fragments) CHECK_MESSAGE(msg.find(frag) != std::string::npos, "'" << frag << "' not in: " << msg);
  }
  CHECK_MESSAGE(thrown, "expected an exception");
}

}  // namespace metagrad::test
