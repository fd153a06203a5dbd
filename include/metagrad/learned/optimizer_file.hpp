#pragma once
// The learned optimizer's file: a NumPy .npz archive (readable with numpy.load), format version 2, entries
//   metagrad_lstm_optimizer_version   [] float64: 2
//   preprocessing                     [2]: kind (0 none, 1 the paper's log-and-sign, 2 the published code's, 3 the
//                                          paper's with momentum features, 4 those and raw momenta), p
//   output_scale                      []
//   and the weights (LstmOptimizerWeights) named by their paths: layer1.input [F, 4H], layer1.recurrent [H, 4H],
//   layer1.bias [4H], layer2.input [H, 4H], layer2.recurrent [H, 4H], layer2.bias [4H], output.weight [H, 1],
//   output.bias [1], output.skip [F, 1]
// with ZIP's CRC-32 on every entry. A corrupt, truncated or mismatched file is an io_error naming the file and what
// is wrong with it. Version 1 files (no output.skip: the paper's architecture) load with a zero skip path.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <istream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "metagrad/io/npz.hpp"
#include "metagrad/learned/lstm_optimizer.hpp"

namespace metagrad {

inline constexpr double learned_optimizer_file_version = 2;  ///< The format save_learned_optimizer writes.

namespace learned_detail {
[[noreturn]] inline void file_error(const std::string& name, const std::string& what) {
  throw io_error("load_learned_optimizer: " + name + ": " + what);
}
}  // namespace learned_detail

/// Writes a trained LSTM optimizer as one .npz (its weights by path, its architecture and the format version).
template <class T>
void save_learned_optimizer(const std::filesystem::path& path, const LstmOptimizer<Tensor<T>>& optimizer) {
  optimizer.check();
  Tensor<T> preprocessing({2});
  preprocessing.data()[0] = static_cast<T>(optimizer.preprocessing.kind);
  preprocessing.data()[1] = static_cast<T>(optimizer.preprocessing.p);
  std::vector<std::pair<std::string, Tensor<T>>> entries = {
      {"metagrad_lstm_optimizer_version", Tensor<T>::scalar(static_cast<T>(learned_optimizer_file_version))},
      {"preprocessing", preprocessing},
      {"output_scale", Tensor<T>::scalar(optimizer.output_scale)}};
  tree_for_each([&](const TreePath& at, const Tensor<T>& weight) { entries.emplace_back(at.str(), weight); }, optimizer.weights);
  save_npz(path, entries);
}

/// Reads a learned optimizer's file from a stream; `path` names it in errors.
template <class T = double>
LstmOptimizer<Tensor<T>> load_learned_optimizer(std::istream& in, const std::string& path) {
  std::map<std::string, Tensor<T>> entries;
  for (auto& [name, tensor] : load_npz<T>(in, path)) entries.emplace(name, std::move(tensor));
  const auto fail = [&](const std::string& what) { learned_detail::file_error(path, what); };
  const auto entry = [&](const std::string& name, const Shape* shape) -> const Tensor<T>& {
    const auto it = entries.find(name);
    if (it == entries.end()) fail("no entry " + name + " (is this a learned optimizer file?)");
    if (shape && !(it->second.shape() == *shape)) fail(name + " has shape " + it->second.shape().str() + ", expected " + shape->str());
    if (!it->second.all_finite()) fail(name + " holds a NaN or infinite value");
    return it->second;
  };
  const Shape scalar{}, pair{2};
  const T version = entry("metagrad_lstm_optimizer_version", &scalar).item();
  if (version != 1 && version != static_cast<T>(learned_optimizer_file_version)) {
    std::ostringstream message;
    message << "format version " << version << "; this library reads versions 1 to " << learned_optimizer_file_version;
    fail(message.str());
  }
  const Tensor<T>& pre = entry("preprocessing", &pair);
  const T kind = pre.data()[0];
  if (!(kind >= 0 && kind < GradientPreprocessing::kinds && kind == std::floor(kind)))
    fail("unknown preprocessing kind " + std::to_string(kind) + " (0 to " + std::to_string(GradientPreprocessing::kinds - 1) + " expected)");
  LstmOptimizer<Tensor<T>> out;
  out.preprocessing = {static_cast<GradientPreprocessing::Kind>(static_cast<int>(kind)), static_cast<double>(pre.data()[1])};
  if (!(out.preprocessing.p > 0)) fail("preprocessing p = " + std::to_string(out.preprocessing.p) + " (positive expected)");
  out.output_scale = entry("output_scale", &scalar).item();
  LstmOptimizerWeights<Tensor<T>> weights;
  tree_for_each([&](const TreePath& at, Tensor<T>& weight) {
    const std::string name = at.str();
    weight = version == 1 && name == "output.skip" ? Tensor<T>::zeros({weights.layer1.input.shape()[0], 1}) : entry(name, nullptr);
  }, weights);
  try {
    return out.with_weights(weights);
  } catch (const error& e) {
    learned_detail::file_error(path, std::string("the weights do not fit together: ") + e.what());
  }
}

/// Reads a file of any version save_learned_optimizer wrote; throws io_error naming what is wrong.
template <class T = double>
LstmOptimizer<Tensor<T>> load_learned_optimizer(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in || std::filesystem::is_directory(path)) throw io_error("load_learned_optimizer: cannot open " + path.string());
  return load_learned_optimizer<T>(in, path.string());
}

}  // namespace metagrad
