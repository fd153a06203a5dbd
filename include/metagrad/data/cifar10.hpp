#pragma once
// CIFAR-10 in its binary layout (data_batch_1.bin … data_batch_5.bin, test_batch.bin): records of one label byte
// and 3072 pixel bytes (the red, green and blue 32×32 planes). Images become [N, 3, 32, 32] scaled to [0, 1].
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "metagrad/data/dataset.hpp"

namespace metagrad {

/// Loads and concatenates CIFAR-10 binary files, in the order given.
template <class T = double>
Dataset<T> load_cifar10(const std::vector<std::filesystem::path>& files) {
  constexpr index_t pixels = 3 * 32 * 32, record = pixels + 1;
  std::vector<std::uint8_t> bytes;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw data_error("load_cifar10: cannot open " + path.string());
    const auto size = static_cast<index_t>(in.tellg());
    if (size == 0 || size % record != 0)
      throw data_error("load_cifar10: " + path.string() + " has " + std::to_string(size) +
                       " bytes, not a positive multiple of the 3073-byte record (truncated or not CIFAR-10?)");
    in.seekg(0);
    const std::size_t at = bytes.size();
    bytes.resize(at + static_cast<std::size_t>(size));
    if (!in.read(reinterpret_cast<char*>(bytes.data() + at), size)) throw data_error("load_cifar10: reading " + path.string() + " failed");
  }
  if (files.empty()) throw value_error("load_cifar10: no files given");
  const index_t n = static_cast<index_t>(bytes.size()) / record;
  Dataset<T> out{Tensor<T>::uninitialized({n, 3, 32, 32}), {}, 10};
  for (index_t i = 0; i < n; ++i) {
    const std::uint8_t* r = bytes.data() + i * record;
    if (r[0] > 9)
      throw data_error("load_cifar10: record " + std::to_string(i) + " has label " + std::to_string(r[0]) + ", 0–9 expected");
    out.labels.push_back(r[0]);
    for (index_t j = 0; j < pixels; ++j) out.inputs.data()[i * pixels + j] = static_cast<T>(r[1 + j]) / T(255);
  }
  return out;
}

}  // namespace metagrad
