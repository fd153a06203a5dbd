#pragma once
// Shared by the fuzz targets. Each target defines LLVMFuzzerTestOneInput: with clang's libFuzzer it is a fuzzer;
// otherwise replay_main.cpp supplies a main() that runs it on every file of the seed corpus (a ctest).
// The property checked everywhere: a reader either succeeds or throws metagrad::error — anything else escaping,
// a crash, or a sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <metagrad/error.hpp>

namespace metagrad::fuzz {

/// Set by the corpus replay for the seeds under a folder named valid/: a reader that refuses one is a finding (a
/// reader that refused everything would otherwise pass).
inline bool must_succeed = false;

inline std::string bytes(const std::uint8_t* data, std::size_t size) { return {reinterpret_cast<const char*>(data), size}; }

[[noreturn]] inline void finding(const char* what) {
  std::fputs(what, stderr);
  std::fputs("\n", stderr);
  std::abort();
}

/// Runs f; a metagrad::error is an expected outcome of hostile input (but not of a valid seed), every other
/// exception propagates.
template <class F>
void expect_success_or_error(F&& f) {
  try {
    f();
  } catch (const metagrad::error& e) {
    if (must_succeed) finding((std::string("a valid seed was refused: ") + e.what()).c_str());
  }
}

/// Keeps a computed value from being optimized away.
inline void keep(double v) {
  static volatile double sink = 0;
  sink = sink + v;
}

}  // namespace metagrad::fuzz
