// Fuzz target: a CIFAR-10 binary file of arbitrary bytes.
#include <sstream>

#include <metagrad/data/cifar10.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  metagrad::fuzz::expect_success_or_error([&] {
    std::istringstream in(metagrad::fuzz::bytes(data, size));
    const auto set = metagrad::load_cifar10<float>(in, "data_batch.bin");
    if (set.inputs.shape()[0] != set.size()) metagrad::fuzz::finding("load_cifar10: images and labels disagree");
  });
  return 0;
}
