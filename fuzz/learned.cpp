// Fuzz target: load_learned_optimizer (and so load_npz) on arbitrary bytes. An optimizer that loads must apply to a
// parameter without error.
#include <sstream>

#include <metagrad/learned/optimizer_file.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  metagrad::fuzz::expect_success_or_error([&] {
    std::istringstream in(metagrad::fuzz::bytes(data, size));
    const auto optimizer = metagrad::load_learned_optimizer<double>(in, "input.npz");
    const std::vector<metagrad::Tensor<double>> params = {metagrad::Tensor<double>::ones({3})};
    const auto [d, state] = optimizer.direction(params, params, optimizer.init(params));
    if (!(d[0].shape() == params[0].shape())) metagrad::fuzz::finding("a loaded optimizer's direction has the wrong shape");
    metagrad::fuzz::keep(d[0].data()[0]);
  });
  return 0;
}
