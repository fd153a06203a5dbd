#pragma once
// Tensors in NumPy's .npy format (version 1.0, little-endian, C order): numpy.load reads what save_npy writes, and
// load_npy reads float64, float32 and int64 arrays that numpy.save writes (converting to the tensor's type).
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "metagrad/tensor/tensor.hpp"

namespace metagrad {

/// Thrown for unreadable or malformed files; the message names the file and what was wrong.
struct io_error : error {
  using error::error;
};

namespace npy_detail {

inline void write(const std::filesystem::path& path, const std::string& descr, const Shape& shape, const void* data,
                  std::size_t bytes) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < shape.rank(); ++i) header += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.rank() == 1) header += ',';  // Python's one-element tuple
  header += "), }";
  const std::size_t unpadded = 10 + header.size() + 1;  // magic, version, length, header, newline
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw io_error("save_npy: cannot open " + path.string() + " for writing");
  const auto length = static_cast<std::uint16_t>(header.size());
  const char preamble[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  out.write(preamble, 8);
  const char len[2] = {static_cast<char>(length & 0xff), static_cast<char>(length >> 8)};
  out.write(len, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!out) throw io_error("save_npy: writing " + path.string() + " failed");
}

struct Array {
  std::string descr;
  Shape shape;
  std::vector<char> bytes;
};

inline Array read(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("load_npy: cannot open " + name);
  char preamble[10];
  if (!in.read(preamble, 10) || std::memcmp(preamble, "\x93NUMPY", 6) != 0)
    throw io_error("load_npy: " + name + " is not a .npy file (bad magic string)");
  if (preamble[6] != 1 && preamble[6] != 2) throw io_error("load_npy: " + name + " has unsupported .npy version " + std::to_string(preamble[6]));
  std::size_t length = static_cast<unsigned char>(preamble[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(preamble[9])) << 8);
  if (preamble[6] == 2) {  // version 2 has a 4-byte header length; two of its bytes were read above
    char more[2];
    if (!in.read(more, 2)) throw io_error("load_npy: " + name + " is truncated inside its header");
    length |= (static_cast<std::size_t>(static_cast<unsigned char>(more[0])) << 16) |
              (static_cast<std::size_t>(static_cast<unsigned char>(more[1])) << 24);
  }
  std::string header(length, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(length))) throw io_error("load_npy: " + name + " is truncated inside its header");
  auto field = [&](const std::string& key) {
    const auto at = header.find("'" + key + "'");
    if (at == std::string::npos) throw io_error("load_npy: " + name + " has no '" + key + "' in its header");
    return header.substr(header.find(':', at) + 1);
  };
  Array a;
  const std::string descr = field("descr");
  a.descr = descr.substr(descr.find('\'') + 1, descr.find('\'', descr.find('\'') + 1) - descr.find('\'') - 1);
  const std::string order = field("fortran_order");
  if (order.substr(0, order.find(',')).find("True") != std::string::npos)
    throw io_error("load_npy: " + name + " is in Fortran order; save it in C order");
  const std::string shape = field("shape");
  for (std::size_t i = shape.find('(') + 1; i < shape.find(')');) {
    const std::size_t end = std::min(shape.find(',', i), shape.find(')', i));
    const std::string number = shape.substr(i, end - i);
    if (number.find_first_not_of(' ') != std::string::npos) a.shape.push_back(std::stol(number));
    i = end + 1;
  }
  std::size_t element = a.descr == "<f8" || a.descr == "<i8" ? 8 : a.descr == "<f4" ? 4 : 0;
  if (element == 0) throw io_error("load_npy: " + name + " holds dtype '" + a.descr + "'; float64, float32 or int64 expected");
  const auto bytes = static_cast<std::size_t>(a.shape.size()) * element;
  a.bytes.resize(bytes);
  if (!in.read(a.bytes.data(), static_cast<std::streamsize>(bytes)))
    throw io_error("load_npy: " + name + " is truncated: its header declares " + std::to_string(bytes) + " bytes of data");
  if (in.peek() != std::char_traits<char>::eof()) throw io_error("load_npy: " + name + " has trailing bytes after its data");
  return a;
}

template <class Out, class In>
void convert(const Array& a, Out* out) {
  for (std::size_t i = 0; i < a.bytes.size() / sizeof(In); ++i) {
    In v;
    std::memcpy(&v, a.bytes.data() + i * sizeof(In), sizeof(In));
    out[i] = static_cast<Out>(v);
  }
}

}  // namespace npy_detail

template <class T>
void save_npy(const std::filesystem::path& path, const Tensor<T>& t) {
  npy_detail::write(path, std::is_same_v<T, double> ? "<f8" : "<f4", t.shape(), t.data(), static_cast<std::size_t>(t.size()) * sizeof(T));
}

template <class T>
Tensor<T> load_npy(const std::filesystem::path& path) {
  const auto a = npy_detail::read(path);
  Tensor<T> t = Tensor<T>::uninitialized(a.shape);
  if (a.descr == "<f8") npy_detail::convert<T, double>(a, t.data());
  else if (a.descr == "<f4") npy_detail::convert<T, float>(a, t.data());
  else npy_detail::convert<T, std::int64_t>(a, t.data());
  return t;
}

/// A whole number as a rank-0 int64 array.
inline void save_npy_integer(const std::filesystem::path& path, std::int64_t value) {
  npy_detail::write(path, "<i8", Shape{}, &value, sizeof value);
}
inline std::int64_t load_npy_integer(const std::filesystem::path& path) {
  const auto a = npy_detail::read(path);
  if (a.descr != "<i8" || a.shape.size() != 1)
    throw io_error("load_npy_integer: " + path.string() + " does not hold one int64 (dtype '" + a.descr + "', shape " + a.shape.str() + ")");
  std::int64_t v;
  std::memcpy(&v, a.bytes.data(), sizeof v);
  return v;
}

}  // namespace metagrad
