// Fuzz target: load_state of an Adam-HD optimizer state, one of whose files is replaced by arbitrary bytes (the
// first input byte picks the file). Whatever the file holds, load_state either loads a state of the right shapes or
// throws and leaves the state it was given as it was.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include <metagrad/io/state.hpp>
#include <metagrad/optim/adam.hpp>
#include <metagrad/optim/optimizer.hpp>
#include <metagrad/optim/step_size/hypergradient.hpp>
#include <unistd.h>

#include "fuzz.hpp"

namespace {
namespace fs = std::filesystem;
using metagrad::Tensor;

const auto optimizer = metagrad::chain(metagrad::Adam<>{}, metagrad::HypergradientStepSize<>{});
const metagrad::ParamList<Tensor<double>> params = {Tensor<double>::random_normal({3, 2}, 1),
                                                     Tensor<double>::random_normal({4}, 2)};

struct Folder {
  fs::path path = fs::temp_directory_path() / ("metagrad-fuzz-state-" + std::to_string(getpid()));
  std::vector<fs::path> files;
  Folder() {
    auto state = optimizer.init(params);
    std::tie(std::ignore, state) = optimizer.step(params, params, std::move(state));
    metagrad::save_state(path, state);
    for (const auto& e : fs::directory_iterator(path)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
  }
  ~Folder() { fs::remove_all(path); }
};

/// Every field of the state — tensors, the step size, the counters — as tensors, to compare states whole.
std::vector<Tensor<double>> values(const decltype(optimizer)::State& state) {
  std::vector<Tensor<double>> out;
  state.fields([&](const std::string&, const auto& v) {
    if constexpr (requires { v[0].shape(); }) out.insert(out.end(), v.begin(), v.end());
    else out.push_back(Tensor<double>::scalar(static_cast<double>(v)));
  });
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Folder folder;
  if (size == 0) return 0;
  const fs::path& file = folder.files[data[0] % folder.files.size()];
  std::ifstream in(file, std::ios::binary);
  const std::string original{std::istreambuf_iterator<char>(in), {}};
  in.close();
  std::ofstream(file, std::ios::binary | std::ios::trunc) << metagrad::fuzz::bytes(data + 1, size - 1);
  auto state = optimizer.init(params);
  const auto untouched = state;
  bool loaded = false;
  metagrad::fuzz::expect_success_or_error([&] {
    metagrad::load_state(folder.path, state);
    loaded = true;
  });
  if (!loaded && values(state) != values(untouched)) metagrad::fuzz::finding("load_state: a failed load changed the state");
  if (loaded)
    for (std::size_t i = 0; i < params.size(); ++i)
      if (!(state.rule.first_moment[i].shape() == params[i].shape()) ||
          !(state.step_size.previous_direction[i].shape() == params[i].shape()))
        metagrad::fuzz::finding("load_state: loaded a state whose shapes do not fit the parameters");
  std::ofstream(file, std::ios::binary | std::ios::trunc) << original;
  return 0;
}
