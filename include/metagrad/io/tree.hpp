#pragma once
// Saving and loading any tensor tree (tensor/tree.hpp) — an optimizer's state, a training state, a learned
// optimizer's weights — as one NumPy .npz archive whose entry names are the leaves' paths ("rule.first_moment[1]",
// "step_size.steps"), so numpy.load(path)["rule.first_moment[1]"] reads it too. Tensors keep their type (float64 or
// float32), whole numbers are int64 and other numbers float64, each rank 0. Every entry carries a CRC-32.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "metagrad/io/npz.hpp"
#include "metagrad/tensor/tree.hpp"

namespace metagrad {

namespace io_detail {
/// The .npy type a number is stored as.
template <class X>
const char* npy_type() {
  if constexpr (std::is_integral_v<X>) return "<i8";
  else if constexpr (std::is_same_v<X, float>) return "<f4";
  else return "<f8";
}
}  // namespace io_detail

/// Writes every leaf of `tree` (tensors and numbers) to the archive at `path`, creating its folder if missing.
/// The archive is written beside `path` and renamed over it, so a failed save leaves an existing file as it was.
template <class Tree>
void save_tree(const std::filesystem::path& path, const Tree& tree) {
  std::vector<std::pair<std::string, std::string>> entries;
  tree_for_each([&](const TreePath& at, const auto& leaf) {
    using X = std::remove_cvref_t<decltype(leaf)>;
    static_assert(!std::is_same_v<X, Shape>, "save_tree: a tree of shapes has no values to save");
    if constexpr (std::is_arithmetic_v<X>) {
      using Stored = std::conditional_t<std::is_integral_v<X>, std::int64_t, std::conditional_t<std::is_same_v<X, float>, float, double>>;
      const auto value = static_cast<Stored>(leaf);
      entries.emplace_back(at.str(), npy_detail::encode(io_detail::npy_type<X>(), Shape{}, &value, sizeof value));
    } else {
      entries.emplace_back(at.str(), npy_detail::encode(leaf));
    }
  }, tree);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  npz_detail::write_archive(path, entries, "save_tree");
}

/// Reads an archive written by save_tree into `tree`, which gives the structure and shapes to expect (a state from
/// init() for the same parameters): every leaf must have its entry, of the leaf's shape, finite; a whole number (a
/// count) must be stored as int64 and be non-negative; and the archive may hold no other entry. Everything is read and checked before `tree`
/// changes, so on an error (an io_error naming the file, the path and what was expected) it is left as it was.
/// `name` names the stream in errors.
template <class Tree>
void load_tree(std::istream& in, const std::string& name, Tree& tree) {
  std::map<std::string, npy_detail::Array> entries;
  for (auto& [entry, array] : npz_detail::read_archive(in, name)) entries.insert_or_assign(entry, std::move(array));
  const auto fail = [&](const std::string& what) { throw io_error("load_tree: " + name + ": " + what); };
  Tree loaded = tree;
  tree_for_each([&](const TreePath& at, auto& leaf) {
    using X = std::remove_cvref_t<decltype(leaf)>;
    const std::string path = at.str();
    const auto it = entries.find(path);
    if (it == entries.end()) fail("no entry " + path + " (saved from another kind of tree?)");
    const npy_detail::Array& a = it->second;
    if constexpr (std::is_arithmetic_v<X>) {
      if (a.shape.rank() != 0 || (std::is_integral_v<X> != (a.descr == "<i8")))
        fail(path + " holds dtype '" + a.descr + "' of shape " + a.shape.str() + ", one " +
             (std::is_integral_v<X> ? "int64" : "floating-point number") + " expected");
      if constexpr (std::is_integral_v<X>) {
        std::int64_t v;
        std::memcpy(&v, a.bytes.data(), sizeof v);
        if (v < 0) fail(path + " holds " + std::to_string(v) + ", a count (>= 0) expected");
        leaf = static_cast<X>(v);
      } else {
        leaf = static_cast<X>(npy_detail::to_tensor<double>(a).item());
        if (!std::isfinite(leaf)) fail(path + " holds " + std::to_string(leaf) + ", a finite number expected");
      }
    } else {
      if (!(a.shape == leaf.shape())) fail(path + " has shape " + a.shape.str() + ", expected " + leaf.shape().str() + " (saved for other parameters?)");
      leaf = npy_detail::to_tensor<typename X::value_type>(a);
      if (!leaf.all_finite()) fail(path + " holds a NaN or infinite value");
    }
    entries.erase(it);
  }, loaded);
  if (!entries.empty()) fail("entry " + entries.begin()->first + " is not in the tree (saved from another kind of tree?)");
  tree = std::move(loaded);
}

/// Loads a tree saved by save_tree into tree, with the strong guarantee.
template <class Tree>
void load_tree(const std::filesystem::path& path, Tree& tree) {
  std::ifstream in = npz_detail::open_archive(path, "load_tree");
  load_tree(in, path.string(), tree);
}

/// An optimizer's or a training run's state is a tree: save_state and load_state are save_tree and load_tree.
template <class State>
void save_state(const std::filesystem::path& path, const State& state) {
  save_tree(path, state);
}
/// Loads a state saved by save_state into state, with the strong guarantee.
template <class State>
void load_state(const std::filesystem::path& path, State& state) {
  load_tree(path, state);
}

}  // namespace metagrad
