#pragma once
// Saving and loading optimizer states: a folder of .npy files, one per tensor or number, named after the state's
// fields ("rule.first_moment.0.npy", "step_size.step_size.npy", …), so NumPy can read each of them too.
// A state type lists its fields with `fields(f)`, calling f(name, member) for tensors lists, tensors, whole
// numbers and step sizes.
#include <filesystem>
#include <string>
#include <type_traits>

#include "metagrad/io/npy.hpp"
#include "metagrad/optim/update_rule.hpp"

namespace metagrad {

/// Writes every field of `state` into `folder` (created if missing).
template <class State>
void save_state(const std::filesystem::path& folder, const State& state) {
  std::filesystem::create_directories(folder);
  state.fields([&](const std::string& name, const auto& value) {
    using V = std::decay_t<decltype(value)>;
    if constexpr (std::is_integral_v<V>) {
      save_npy_integer(folder / (name + ".npy"), static_cast<std::int64_t>(value));
    } else if constexpr (std::is_floating_point_v<V>) {
      save_npy(folder / (name + ".npy"), Tensor<V>::scalar(value));
    } else {  // a list of tensors
      save_npy_integer(folder / (name + ".count.npy"), static_cast<std::int64_t>(value.size()));
      for (std::size_t i = 0; i < value.size(); ++i) save_npy(folder / (name + "." + std::to_string(i) + ".npy"), value[i]);
    }
  });
}

/// Reads a state saved by save_state into `state`, which must come from init() for the same parameters: every tensor
/// must keep the shape it has there (a list that is empty after init, like a hypergradient's previous direction,
/// takes what the files hold).
template <class State>
void load_state(const std::filesystem::path& folder, State& state) {
  if (!std::filesystem::is_directory(folder)) throw io_error("load_state: " + folder.string() + " is not a folder");
  state.fields([&](const std::string& name, auto& value) {
    using V = std::decay_t<decltype(value)>;
    if constexpr (std::is_integral_v<V>) {
      value = static_cast<V>(load_npy_integer(folder / (name + ".npy")));
    } else if constexpr (std::is_floating_point_v<V>) {
      value = load_npy<V>(folder / (name + ".npy")).item();
    } else {
      using Tensor_ = typename V::value_type;
      const auto count = static_cast<std::size_t>(load_npy_integer(folder / (name + ".count.npy")));
      if (!value.empty() && value.size() != count)
        throw io_error("load_state: " + name + " holds " + std::to_string(count) + " tensors in " + folder.string() +
                       ", the state expects " + std::to_string(value.size()));
      V loaded;
      for (std::size_t i = 0; i < count; ++i) {
        const auto path = folder / (name + "." + std::to_string(i) + ".npy");
        loaded.push_back(load_npy<typename Tensor_::value_type>(path));
        if (!value.empty() && !(loaded.back().shape() == value[i].shape()))
          throw io_error("load_state: " + path.string() + " has shape " + loaded.back().shape().str() + ", the state expects " +
                         value[i].shape().str());
      }
      value = std::move(loaded);
    }
  });
}

}  // namespace metagrad
