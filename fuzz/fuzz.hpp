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

inline std::string bytes(const std::uint8_t* data, std::size_t size) { return {reinterpret_cast<const char*>(data), size}; }

/// Runs f; a metagrad::error is an expected outcome of hostile input, every other exception propagates.
template <class F>
void expect_success_or_error(F&& f) {
  try {
    f();
  } catch (const metagrad::error&) {
  }
}

/// Keeps a computed value from being optimized away.
inline void keep(double v) {
  static volatile double sink = 0;
  sink = sink + v;
}

[[noreturn]] inline void finding(const char* what) {
  std::fputs(what, stderr);
  std::fputs("\n", stderr);
  std::abort();
}

}  // namespace metagrad::fuzz
