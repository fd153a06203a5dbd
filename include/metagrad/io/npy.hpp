#pragma once
// Tensors in NumPy's .npy format (version 1.0, little-endian, C order): numpy.load reads what save_npy writes, and
// load_npy reads float64, float32 and int64 arrays that numpy.save writes (versions 1 to 3; converted to the
// tensor's type). The reader parses the header as the dict literal it is and checks every declared size against
// the bytes present before it allocates: a hostile file gets an io_error, never a crash or a huge allocation.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <utility>
#include <string>
#include <vector>

#include "metagrad/data/stream.hpp"
#include "metagrad/tensor/tensor.hpp"

namespace metagrad {

namespace npy_detail {

/// A whole .npy file's bytes for an array of `bytes` bytes at `data`.
inline std::string encode(const std::string& descr, const Shape& shape, const void* data, std::size_t bytes) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < shape.rank(); ++i) header += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.rank() == 1) header += ',';  // Python's one-element tuple
  header += "), }";
  const std::size_t unpadded = 10 + header.size() + 1;  // magic, version, length, header, newline
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  const auto length = static_cast<std::uint16_t>(header.size());
  std::string out = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<char>(length & 0xff), static_cast<char>(length >> 8)};
  out += header;
  out.append(static_cast<const char*>(data), bytes);
  return out;
}

/// Writes `contents` beside `path` and renames it over `path`, so a failed write leaves an existing file as it was.
inline void write_file(const std::filesystem::path& path, const std::string& contents, const char* who) {
  std::filesystem::path temporary = path;
  temporary += ".partial";
  std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
  if (!out) throw io_error(std::string(who) + ": cannot open " + temporary.string() + " for writing");
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  std::error_code ec;
  if (out.fail() || (std::filesystem::rename(temporary, path, ec), ec)) {
    std::filesystem::remove(temporary, ec);
    throw io_error(std::string(who) + ": writing " + path.string() + " failed");
  }
}

inline void write(const std::filesystem::path& path, const std::string& descr, const Shape& shape, const void* data,
                  std::size_t bytes) {
  write_file(path, encode(descr, shape, data, bytes), "save_npy");
}

struct Array {
  std::string descr;
  Shape shape;
  std::vector<char> bytes;
};

/// A parser for the header's Python dict literal, e.g. {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }:
/// string keys; string, True/False or tuple-of-integers values. Anything else is an error naming the file.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& name) : s_(text), name_(name) {}

  Array parse() {
    Array a;
    bool has_descr = false, has_order = false, has_shape = false, fortran = false;
    expect('{');
    while (!peek('}')) {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        a.descr = string_literal();
        has_descr = true;
      } else if (key == "fortran_order") {
        fortran = boolean();
        has_order = true;
      } else if (key == "shape") {
        a.shape = shape();
        has_shape = true;
      } else {
        fail("has an unknown key '" + key + "' in its header");
      }
      if (!peek('}')) expect(',');
    }
    expect('}');
    skip_space();
    if (pos_ != s_.size()) fail("has text after the header's closing brace");
    if (!has_descr || !has_order || !has_shape) fail("lacks one of 'descr', 'fortran_order' and 'shape' in its header");
    if (fortran) fail("is in Fortran order; save it in C order");
    return a;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw io_error("load_npy: " + name_ + " " + what); }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) ++pos_;
  }
  bool peek(char c) {
    skip_space();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  void expect(char c) {
    if (!peek(c)) fail(std::string("has a malformed header: '") + c + "' expected at offset " + std::to_string(pos_));
    ++pos_;
  }
  std::string string_literal() {
    skip_space();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) fail("has a malformed header: a quoted string expected");
    const char quote = s_[pos_++];
    const std::size_t end = s_.find(quote, pos_);
    if (end == std::string::npos) fail("has a malformed header: an unterminated string");
    std::string out = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}})
      if (s_.compare(pos_, std::strlen(word), word) == 0) {
        pos_ += std::strlen(word);
        return value;
      }
    fail("has a malformed header: True or False expected for 'fortran_order'");
  }
  Shape shape() {
    Shape out;
    expect('(');
    while (!peek(')')) {
      std::uint64_t extent = 0;
      const std::size_t first = pos_;
      for (; pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; ++pos_) {
        extent = extent * 10 + static_cast<std::uint64_t>(s_[pos_] - '0');
        if (extent > static_cast<std::uint64_t>(Shape::max_elements)) fail("declares an extent too large to hold");
      }
      if (pos_ == first) fail("has a malformed shape: a non-negative integer expected at offset " + std::to_string(pos_));
      if (out.rank() == Shape::max_rank) fail("has more than " + std::to_string(Shape::max_rank) + " dimensions");
      try {
        out.push_back(static_cast<index_t>(extent));
      } catch (const shape_error& e) {
        fail(std::string("declares a shape too large to hold (") + e.what() + ")");
      }
      if (!peek(')')) expect(',');
    }
    expect(')');
    return out;
  }

  const std::string& s_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

/// Reads a whole .npy file from `in`; `name` names it in errors. Every size is checked against the bytes that are
/// there before anything is allocated.
inline Array read(std::istream& in, const std::string& name) {
  unsigned char preamble[10];
  if (!in.read(reinterpret_cast<char*>(preamble), 10) || std::memcmp(preamble, "\x93NUMPY", 6) != 0)
    throw io_error("load_npy: " + name + " is not a .npy file (bad magic string)");
  const int version = preamble[6];
  if (version < 1 || version > 3) throw io_error("load_npy: " + name + " has unsupported .npy version " + std::to_string(version));
  std::uint64_t length = preamble[8] | (std::uint64_t(preamble[9]) << 8);
  if (version >= 2) {  // a 4-byte header length; two of its bytes were read above
    unsigned char more[2];
    if (!in.read(reinterpret_cast<char*>(more), 2)) throw io_error("load_npy: " + name + " is truncated inside its header");
    length |= (std::uint64_t(more[0]) << 16) | (std::uint64_t(more[1]) << 24);
  }
  if (length > bytes_left(in))
    throw io_error("load_npy: " + name + " is truncated: its header length is " + std::to_string(length) + " bytes");
  std::string header(static_cast<std::size_t>(length), '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(length))) throw io_error("load_npy: " + name + " is truncated inside its header");
  Array a = HeaderParser(header, name).parse();
  const std::size_t element = a.descr == "<f8" || a.descr == "<i8" ? 8 : a.descr == "<f4" ? 4 : 0;
  if (element == 0) throw io_error("load_npy: " + name + " holds dtype '" + a.descr + "'; float64, float32 or int64 expected");
  const auto bytes = static_cast<std::uint64_t>(a.shape.size()) * element;  // cannot overflow: Shape::max_elements
  const std::uint64_t available = bytes_left(in);
  if (bytes > available)
    throw io_error("load_npy: " + name + " is truncated: its header declares " + std::to_string(bytes) + " bytes of data, " +
                   std::to_string(available) + " follow");
  if (bytes < available) throw io_error("load_npy: " + name + " has trailing bytes after its data");
  a.bytes.resize(static_cast<std::size_t>(bytes));
  if (!in.read(a.bytes.data(), static_cast<std::streamsize>(bytes))) throw io_error("load_npy: reading " + name + " failed");
  return a;
}

inline Array read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in || std::filesystem::is_directory(path)) throw io_error("load_npy: cannot open " + path.string());
  return read(in, path.string());
}

template <class Out, class In>
void convert(const Array& a, Out* out) {
  for (std::size_t i = 0; i < a.bytes.size() / sizeof(In); ++i) {
    In v;
    std::memcpy(&v, a.bytes.data() + i * sizeof(In), sizeof(In));
    out[i] = static_cast<Out>(v);
  }
}

template <class T>
Tensor<T> to_tensor(const Array& a) {
  Tensor<T> t = Tensor<T>::uninitialized(a.shape);
  if (a.descr == "<f8") convert<T, double>(a, t.data());
  else if (a.descr == "<f4") convert<T, float>(a, t.data());
  else convert<T, std::int64_t>(a, t.data());
  return t;
}

/// A whole .npy file's bytes for a tensor (float64 or float32).
template <class T>
std::string encode(const Tensor<T>& t) {
  return encode(std::is_same_v<T, double> ? "<f8" : "<f4", t.shape(), t.data(), static_cast<std::size_t>(t.size()) * sizeof(T));
}

}  // namespace npy_detail

/// Writes t as a .npy file (float64 or float32). The file is written beside its destination and renamed over it,
/// so a failed write leaves an existing file as it was.
template <class T>
void save_npy(const std::filesystem::path& path, const Tensor<T>& t) {
  npy_detail::write_file(path, npy_detail::encode(t), "save_npy");
}

/// Reads a .npy file (float64, float32 or int64; converted to T). Any malformed, truncated or oversized file is an
/// io_error naming it.
template <class T>
Tensor<T> load_npy(const std::filesystem::path& path) {
  return npy_detail::to_tensor<T>(npy_detail::read(path));
}
/// The same from a stream (e.g. a file inside an archive); `name` names it in errors.
template <class T>
Tensor<T> load_npy(std::istream& in, const std::string& name) {
  return npy_detail::to_tensor<T>(npy_detail::read(in, name));
}

/// A whole number as a rank-0 int64 array.
inline void save_npy_integer(const std::filesystem::path& path, std::int64_t value) {
  npy_detail::write(path, "<i8", Shape{}, &value, sizeof value);
}
/// Reads a file written by save_npy_integer (or numpy.save of one int64).
inline std::int64_t load_npy_integer(const std::filesystem::path& path) {
  const auto a = npy_detail::read(path);
  if (a.descr != "<i8" || a.shape.size() != 1)
    throw io_error("load_npy_integer: " + path.string() + " does not hold one int64 (dtype '" + a.descr + "', shape " + a.shape.str() + ")");
  std::int64_t v;
  std::memcpy(&v, a.bytes.data(), sizeof v);
  return v;
}

}  // namespace metagrad
