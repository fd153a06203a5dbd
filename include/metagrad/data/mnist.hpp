#pragma once
// MNIST in the IDX format of the original distribution (uncompressed): train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte. Images become rows of 784 grey levels
// scaled to [0, 1]. Gzipped files are not read: decompress them first (gunzip keeps the standard names).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "metagrad/data/dataset.hpp"

namespace metagrad {

/// The contents of one IDX file of unsigned bytes: its extents and its data.
struct IdxFile {
  std::vector<index_t> dims;
  std::vector<std::uint8_t> bytes;
};

/// Reads an IDX file of unsigned bytes (type code 0x08), checking its magic number and that its size matches.
inline IdxFile read_idx(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw data_error("read_idx: cannot open " + name);
  unsigned char magic[4];
  if (!in.read(reinterpret_cast<char*>(magic), 4)) throw data_error("read_idx: " + name + " is empty or shorter than its header");
  if (magic[0] != 0 || magic[1] != 0)
    throw data_error("read_idx: " + name + " is not an IDX file (a gzipped file? decompress it first)");
  if (magic[2] != 0x08)
    throw data_error("read_idx: " + name + " holds type code " + std::to_string(magic[2]) + ", unsigned bytes (8) expected");
  const int rank = magic[3];
  if (rank < 1 || rank > 4) throw data_error("read_idx: " + name + " declares " + std::to_string(rank) + " dimensions");
  IdxFile out;
  std::uint64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) throw data_error("read_idx: " + name + " is truncated inside its header");
    const std::uint32_t d = (std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) | (std::uint32_t(b[2]) << 8) | b[3];
    out.dims.push_back(static_cast<index_t>(d));
    count *= d;
  }
  const auto header = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  if (size != header + count)
    throw data_error("read_idx: " + name + " holds " + std::to_string(size - header) + " bytes of data, its header declares " +
                     std::to_string(count) + (size < header + count ? " (truncated)" : " (trailing bytes)"));
  in.seekg(static_cast<std::streamoff>(header));
  out.bytes.resize(count);
  in.read(reinterpret_cast<char*>(out.bytes.data()), static_cast<std::streamsize>(count));
  if (!in) throw data_error("read_idx: reading " + name + " failed");
  return out;
}

enum class MnistSplit { train, test };

/// Loads one split of MNIST from `folder` (the four standard file names).
template <class T = double>
Dataset<T> load_mnist(const std::filesystem::path& folder, MnistSplit split) {
  const std::string prefix = split == MnistSplit::train ? "train" : "t10k";
  const auto images_path = folder / (prefix + "-images-idx3-ubyte"), labels_path = folder / (prefix + "-labels-idx1-ubyte");
  const IdxFile images = read_idx(images_path), labels = read_idx(labels_path);
  if (images.dims.size() != 3)
    throw data_error("load_mnist: " + images_path.string() + " has " + std::to_string(images.dims.size()) +
                     " dimensions, 3 (count, rows, columns) expected");
  if (labels.dims.size() != 1)
    throw data_error("load_mnist: " + labels_path.string() + " has " + std::to_string(labels.dims.size()) +
                     " dimensions, 1 expected");
  if (images.dims[0] != labels.dims[0])
    throw data_error("load_mnist: " + images_path.string() + " holds " + std::to_string(images.dims[0]) + " images but " +
                     labels_path.string() + " holds " + std::to_string(labels.dims[0]) + " labels");
  const index_t n = images.dims[0], pixels = images.dims[1] * images.dims[2];
  Dataset<T> out{Tensor<T>::uninitialized({n, pixels}), {}, 10};
  for (index_t i = 0; i < n * pixels; ++i) out.inputs.data()[i] = static_cast<T>(images.bytes[static_cast<std::size_t>(i)]) / T(255);
  out.labels.reserve(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    const std::uint8_t y = labels.bytes[static_cast<std::size_t>(i)];
    if (y > 9)
      throw data_error("load_mnist: " + labels_path.string() + " has label " + std::to_string(y) + " at index " +
                       std::to_string(i) + ", digits 0–9 expected");
    out.labels.push_back(y);
  }
  return out;
}

}  // namespace metagrad
