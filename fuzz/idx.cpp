// Fuzz target: read_idx on arbitrary bytes. A file that reads must hold exactly as many bytes as its extents say.
#include <sstream>

#include <metagrad/data/mnist.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  metagrad::fuzz::expect_success_or_error([&] {
    std::istringstream in(metagrad::fuzz::bytes(data, size));
    const auto idx = metagrad::read_idx(in, "input-idx3-ubyte");
    std::size_t count = 1;
    for (auto d : idx.dims) count *= static_cast<std::size_t>(d);
    if (count != idx.bytes.size()) metagrad::fuzz::finding("read_idx: extents and data disagree");
  });
  return 0;
}
