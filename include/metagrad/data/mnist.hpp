#pragma once
// MNIST in the IDX format of the original distribution (uncompressed): train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte. Images become rows of 784 grey levels
// scaled to [0, 1]. Gzipped files are not read: decompress them first (gunzip keeps the standard names).
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "metagrad/data/dataset.hpp"
#include "metagrad/data/stream.hpp"

namespace metagrad {

/// The contents of one IDX file of unsigned bytes: its extents and its data.
struct IdxFile {
  std::vector<index_t> dims;        ///< Extents, outermost first.
  std::vector<std::uint8_t> bytes;  ///< The data, row-major.
};

/// Reads an IDX file of unsigned bytes (type code 0x08) from `in`, checking its magic number and that the bytes present
/// match the extents it declares (before allocating them); `name` names it in errors.
inline IdxFile read_idx(std::istream& in, const std::string& name) {
  unsigned char magic[4];
  if (!in.read(reinterpret_cast<char*>(magic), 4)) throw data_error("read_idx: " + name + " is empty or shorter than its header");
  if (magic[0] != 0 || magic[1] != 0)
    throw data_error("read_idx: " + name + " is not an IDX file (a gzipped file? decompress it first)");
  if (magic[2] != 0x08)
    throw data_error("read_idx: " + name + " holds type code " + std::to_string(magic[2]) + ", unsigned bytes (8) expected");
  const int rank = magic[3];
  if (rank < 1 || rank > 4) throw data_error("read_idx: " + name + " declares " + std::to_string(rank) + " dimensions, 1 to 4 expected");
  IdxFile out;
  for (int i = 0; i < rank; ++i) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) throw data_error("read_idx: " + name + " is truncated inside its header");
    out.dims.push_back(static_cast<index_t>((std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) |
                                            (std::uint32_t(b[2]) << 8) | b[3]));
  }
  const std::uint64_t available = bytes_left(in);
  // The product of the extents, checked for overflow (four 32-bit extents can exceed 64 bits); a zero extent means
  // no data, however large the others.
  std::uint64_t count = 1;
  bool overflow = false;
  for (index_t d : out.dims) overflow = __builtin_mul_overflow(count, static_cast<std::uint64_t>(d), &count) || overflow;
  if (std::find(out.dims.begin(), out.dims.end(), index_t(0)) != out.dims.end()) {
    count = 0;
    overflow = false;
  }
  if (overflow || count != available) {
    std::string declared;
    for (std::size_t i = 0; i < out.dims.size(); ++i) declared += (i ? "×" : "") + std::to_string(out.dims[i]);
    throw data_error("read_idx: " + name + " holds " + std::to_string(available) + " bytes of data, its header declares " +
                     declared + (overflow ? " (more than 2^64) bytes" : " = " + std::to_string(count) + " bytes") +
                     (overflow || count > available ? " (truncated)" : " (trailing bytes)"));
  }
  out.bytes.resize(static_cast<std::size_t>(count));
  in.read(reinterpret_cast<char*>(out.bytes.data()), static_cast<std::streamsize>(count));
  if (!in) throw data_error("read_idx: reading " + name + " failed");
  return out;
}

/// Reads an IDX file of unsigned bytes; throws data_error for a missing or corrupt file.
inline IdxFile read_idx(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in || std::filesystem::is_directory(path)) throw data_error("read_idx: cannot open " + path.string());
  return read_idx(in, path.string());
}

/// Which MNIST files to read.
enum class MnistSplit {
  train,  ///< train-images-idx3-ubyte and train-labels-idx1-ubyte
  test,   ///< t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte
};

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
  if (images.bytes.empty()) throw data_error("load_mnist: " + images_path.string() + " holds no pixels");
  const index_t n = images.dims[0], pixels = images.dims[1] * images.dims[2];  // no overflow: n·pixels bytes exist
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
