#pragma once
// What the examples' quick versions (the tests') hold themselves to: under CI (the environment variable CI set)
// missing MNIST is an error, not a skip, and each quick run checks the figure its example exists to show.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <metagrad/error.hpp>

namespace example {

/// Whether MNIST-10k is under `data`; under CI its absence is a data_error naming where it looked.
inline bool mnist_found(const std::filesystem::path& data) {
  const std::filesystem::path mnist = data / "mnist-10k";
  if (!data.empty() && std::filesystem::exists(mnist / "train-images-idx3-ubyte")) return true;
  if (std::getenv("CI"))
    throw metagrad::data_error("no MNIST at '" + mnist.string() + "', and under CI a missing dataset is a failure");
  return false;
}

/// True when MNIST-10k is under `data`. Without it, outside CI: prints that `example` is skipped (and its JSON line).
inline bool mnist_present(const char* example, const std::filesystem::path& data) {
  if (mnist_found(data)) return true;
  const std::filesystem::path mnist = data / "mnist-10k";
  std::printf("%s: skipped, no MNIST at '%s' (pass --data with the folder that holds mnist-10k/)\n", example, mnist.string().c_str());
  std::printf("{\"example\": \"%s\", \"skipped\": true}\n", example);
  return false;
}

/// In the quick version, throws unless the example's figure holds (`what` says which figure and what it must be).
inline void check_figure(bool quick, bool holds, const std::string& what) {
  if (quick && !holds) throw metagrad::value_error("quick check failed: " + what);
}

}  // namespace example
