// Fuzz target: load_npy on arbitrary bytes. A tensor that loads must have the storage its shape declares.
#include <sstream>

#include <metagrad/io/npy.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  metagrad::fuzz::expect_success_or_error([&] {
    std::istringstream in(metagrad::fuzz::bytes(data, size));
    const auto t = metagrad::load_npy<double>(in, "input.npy");
    double sum = 0;  // touch every element: a tensor without the storage its shape declares is a sanitizer report
    for (metagrad::index_t i = 0; i < t.size(); ++i) sum += t.data()[i];
    metagrad::fuzz::keep(sum);
  });
  return 0;
}
