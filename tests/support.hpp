#pragma once
// Shared by the test sources (and precompiled once for all of them).
#include <doctest/doctest.h>

#include <metagrad/metagrad.hpp>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace metagrad::test {

using TD = Tensor<double>;
using VD = Var<double>;
using Vars = std::vector<Var<double>>;

inline TD randn(const Shape& shape, std::uint64_t seed) { return TD::random_normal(shape, seed); }

/// A derivative against the central difference (f_up − f_down) / 2h of the same quantity (f at x ± h·v): within
/// `relative` of the difference's size plus ten times its rounding noise ε·|f|/h — and the difference must stand a
/// thousand times above that noise, so that the check cannot pass on a derivative lost in it.
inline void check_derivative(double exact, double f_up, double f_down, double h, double relative, const std::string& what) {
  const double fd = (f_up - f_down) / (2 * h);
  const double noise = std::numeric_limits<double>::epsilon() * std::max(std::abs(f_up), std::abs(f_down)) / h;
  INFO(what << ": derivative " << exact << ", finite differences " << fd << ", relative difference "
            << std::abs(exact - fd) / std::abs(fd) << ", rounding noise about " << noise);
  CHECK(std::abs(fd) > 1000 * noise);
  CHECK(std::abs(exact - fd) <= relative * std::abs(fd) + 10 * noise);
}

/// A fresh directory of its own under the system's temporary folder, removed with its contents when the test ends
/// (also when it fails), so that tests running in parallel never share a file.
struct TempDir {
  std::filesystem::path path = std::filesystem::temp_directory_path() / ("metagrad-test-" + std::to_string(std::random_device{}()));
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

/// The MNIST-10k folder under METAGRAD_DATA_DIR, when it is there. Without it the calling test is skipped with a
/// message — except under CI (the environment variable CI set), where a missing dataset fails the test.
inline std::optional<std::filesystem::path> mnist_folder() {
  const std::filesystem::path dir = std::filesystem::path(METAGRAD_DATA_DIR) / "mnist-10k";
  if (!std::string(METAGRAD_DATA_DIR).empty() && std::filesystem::exists(dir)) return dir;
  if (std::getenv("CI")) FAIL_CHECK("no MNIST under METAGRAD_DATA_DIR ('" METAGRAD_DATA_DIR "'), and under CI a missing dataset is a failure");
  else MESSAGE("skipped: no MNIST under METAGRAD_DATA_DIR ('" METAGRAD_DATA_DIR "')");
  return std::nullopt;
}

/// Values in [low, high): for ops with a restricted domain or a kink to stay away from.
inline TD randu(const Shape& shape, std::uint64_t seed, double low, double high) {
  return TD::random_uniform(shape, seed, low, high);
}

/// Runs f's recorded backward (the Hessian-vector product of Σ tanh(f)) on tapes that already hold p nodes, for
/// every p that puts a block boundary of the tape's node storage inside the computation, and requires the same bits
/// every time: a rule that held a reference into storage that moves as the tape grows would read freed memory
/// (which the sanitizer build reports) or wrong values.
template <class F>
void check_under_tape_growth(F f, const std::vector<TD>& xs) {
  auto run = [&](std::size_t prefill, std::size_t& recorded) {
    Tape<double> tape;
    for (std::size_t k = 0; k < prefill; ++k) tape.constant(TD::scalar(double(k)));
    const std::size_t start = tape.size();
    Vars v;
    for (const auto& x : xs) v.push_back(tape.variable(x));
    const VD y = sum(tanh(f(v)));
    const Vars g = grad(y, v, create_graph);
    VD g_dot_u = dot(g[0], tape.constant(randn(xs[0].shape(), 99)));
    for (std::size_t i = 1; i < g.size(); ++i) g_dot_u = g_dot_u + dot(g[i], tape.constant(randn(xs[i].shape(), 99 + i)));
    std::vector<TD> out = grad(g_dot_u, v);
    for (const auto& gi : g) out.push_back(gi.value());
    recorded = tape.size() - start;
    return out;
  };
  std::size_t recorded = 0, ignored = 0;
  const std::vector<TD> reference = run(0, recorded);
  const std::size_t block = Tape<double>::default_nodes_per_block;
  for (std::size_t p = block - std::min(block, recorded + 1); p <= block; ++p) {
    const std::vector<TD> got = run(p, ignored);
    bool same = got.size() == reference.size();
    for (std::size_t i = 0; same && i < got.size(); ++i)
      same = got[i].shape() == reference[i].shape() &&
             std::equal(got[i].data(), got[i].data() + got[i].size(), reference[i].data());
    if (!same) {
      FAIL_CHECK("recorded backward differs with " << p << " nodes already on the tape");
      return;
    }
  }
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
  check_under_tape_growth(f, xs);
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
