// Fuzz target: load_state (load_tree) of an Adam-HD optimizer state from arbitrary archive bytes. Whatever the bytes
// hold, load_state either loads a state of the right shapes or throws and leaves the state it was given as it was.
#include <sstream>
#include <vector>

#include <metagrad/io/tree.hpp>
#include <metagrad/optim/adam.hpp>
#include <metagrad/optim/chain.hpp>
#include <metagrad/optim/step_size/hypergradient.hpp>

#include "fuzz.hpp"

namespace {
using metagrad::Tensor;

const auto optimizer = metagrad::chain(metagrad::Adam<>{}, metagrad::HypergradientStepSize<>{});
const metagrad::ParamList<Tensor<double>> params = {Tensor<double>::random_normal({3, 2}, 1),
                                                     Tensor<double>::random_normal({4}, 2)};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto state = optimizer.init(params);
  const auto untouched = state;
  bool loaded = false;
  metagrad::fuzz::expect_success_or_error([&] {
    std::istringstream in(metagrad::fuzz::bytes(data, size));
    metagrad::load_tree(in, "input.npz", state);
    loaded = true;
  });
  if (!loaded && metagrad::tree_hash(state) != metagrad::tree_hash(untouched))
    metagrad::fuzz::finding("load_state: a failed load changed the state");
  if (loaded)
    for (std::size_t i = 0; i < params.size(); ++i)
      if (!(state.rule.first_moment[i].shape() == params[i].shape()) ||
          !(state.step_size.previous_direction[i].shape() == params[i].shape()))
        metagrad::fuzz::finding("load_state: loaded a state whose shapes do not fit the parameters");
  return 0;
}
