#pragma once
// Saving and loading optimizer states: a folder of .npy files, one per tensor or number, named after the state's
// fields ("rule.first_moment.0.npy", "step_size.step_size.npy", …), so NumPy can read each of them too.
// A state type lists its fields with `fields(f)`, calling f(name, member) for lists of tensors, tensors, whole
// numbers and step sizes.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <type_traits>

#include "metagrad/io/npy.hpp"

namespace metagrad {

namespace io_detail {
template <class V> inline constexpr bool is_tensor = false;
template <class E> inline constexpr bool is_tensor<Tensor<E>> = true;

/// A tensor read from `file` that must have `shape` and finite values.
template <class E>
Tensor<E> load_state_tensor(const std::filesystem::path& file, const Shape& shape) {
  Tensor<E> t = load_npy<E>(file);
  if (!(t.shape() == shape))
    throw io_error("load_state: " + file.string() + " has shape " + t.shape().str() + ", the state expects " + shape.str() +
                   " (saved for other parameters?)");
  if (!t.all_finite()) throw io_error("load_state: " + file.string() + " holds a NaN or infinite value");
  return t;
}
}  // namespace io_detail

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
    } else if constexpr (io_detail::is_tensor<V>) {
      save_npy(folder / (name + ".npy"), value);
    } else {  // a list of tensors
      save_npy_integer(folder / (name + ".count.npy"), static_cast<std::int64_t>(value.size()));
      for (std::size_t i = 0; i < value.size(); ++i) save_npy(folder / (name + "." + std::to_string(i) + ".npy"), value[i]);
    }
  });
}

/// Reads a state saved by save_state into `state`, which must come from init() for the same parameters: every list
/// must hold as many tensors, of the same shapes, as it does there; counts must be non-negative and values finite.
/// Everything is read and checked before `state` changes, so on an error it is left as it was.
template <class State>
void load_state(const std::filesystem::path& folder, State& state) {
  if (!std::filesystem::is_directory(folder)) throw io_error("load_state: " + folder.string() + " is not a folder");
  State loaded = state;
  loaded.fields([&](const std::string& name, auto& value) {
    using V = std::decay_t<decltype(value)>;
    const auto path = [&](const std::string& suffix) { return folder / (name + suffix + ".npy"); };
    if constexpr (std::is_integral_v<V>) {
      const std::int64_t v = load_npy_integer(path(""));
      if (v < 0) throw io_error("load_state: " + path("").string() + " holds " + std::to_string(v) + ", a count (>= 0) expected");
      value = static_cast<V>(v);
    } else if constexpr (std::is_floating_point_v<V>) {
      const Tensor<V> t = load_npy<V>(path(""));
      if (t.rank() != 0 || !std::isfinite(t.item()))
        throw io_error("load_state: " + path("").string() + " holds " + (t.rank() ? "shape " + t.shape().str() : std::to_string(t.item())) +
                       ", one finite number expected");
      value = t.item();
    } else if constexpr (io_detail::is_tensor<V>) {
      value = io_detail::load_state_tensor<typename V::value_type>(path(""), value.shape());
    } else {
      using Element = typename V::value_type::value_type;
      const std::int64_t count = load_npy_integer(path(".count"));
      if (count != static_cast<std::int64_t>(value.size()))
        throw io_error("load_state: " + path(".count").string() + " says " + std::to_string(count) + " tensors, the state expects " +
                       std::to_string(value.size()) + " (saved for other parameters?)");
      for (std::size_t i = 0; i < value.size(); ++i) {
        const auto file = path(std::string(".").append(std::to_string(i)));  // not "." + …: GCC 12 warns falsely (-Wrestrict)
        value[i] = io_detail::load_state_tensor<Element>(file, value[i].shape());
      }
    }
  });
  state = std::move(loaded);
}

}  // namespace metagrad
