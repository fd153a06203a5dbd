#pragma once
// Named tensors in one NumPy .npz archive: a ZIP file of uncompressed ("stored") .npy entries, the layout numpy.savez
// writes, so numpy.load(path)["name"] reads what save_npz writes. Every entry carries ZIP's CRC-32 of its bytes, and
// load_npz checks it: a corrupt, truncated or hostile archive is an io_error naming the file and the entry. The
// archive is written beside its destination and renamed over it.
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/io/npy.hpp"

namespace metagrad {

namespace npz_detail {

inline std::uint32_t crc32(const std::string& bytes) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

inline void put(std::string& out, std::uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

/// Little-endian fields of an archive held in memory, bounds-checked.
class Reader {
 public:
  Reader(const std::string& data, const std::string& name) : data_(data), name_(name) {}
  std::uint32_t at(std::size_t offset, int bytes) const {
    if (offset + static_cast<std::size_t>(bytes) > data_.size()) fail("a record runs past the end of the file (truncated?)");
    std::uint32_t v = 0;
    for (int i = bytes; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(data_[offset + static_cast<std::size_t>(i)]);
    return v;
  }
  std::string text(std::size_t offset, std::size_t length) const {
    if (offset + length > data_.size() || offset + length < offset) fail("a record runs past the end of the file (truncated?)");
    return data_.substr(offset, length);
  }
  [[noreturn]] void fail(const std::string& what) const { throw io_error("load_npz: " + name_ + ": " + what); }

 private:
  const std::string& data_;
  const std::string& name_;
};

/// Writes an archive of `entries` (name → a whole .npy file's bytes; each stored as "<name>.npy") to `path`.
inline void write_archive(const std::filesystem::path& path, const std::vector<std::pair<std::string, std::string>>& entries,
                          const char* who) {
  std::string archive, directory;
  for (const auto& [name, bytes] : entries) {
    if (name.empty() || name.size() > 200) throw value_error(std::string(who) + ": entry name \"" + name + "\" (1 to 200 characters expected)");
    const std::string file = name + ".npy";
    if (bytes.size() >= 0xFFFFFFFFu || archive.size() >= 0xFFFFFFFFu - bytes.size())
      throw value_error(std::string(who) + ": archives of 4 GiB or more are not supported (entry " + name + ")");
    const std::uint32_t crc = crc32(bytes), size = static_cast<std::uint32_t>(bytes.size());
    const auto offset = static_cast<std::uint32_t>(archive.size());
    // Local header: signature, version 2.0, no flags, stored, time and date 0, CRC, sizes, name length, no extra.
    put(archive, 0x04034b50, 4), put(archive, 20, 2), put(archive, 0, 2);
    put(archive, 0, 2), put(archive, 0, 4), put(archive, crc, 4);
    put(archive, size, 4), put(archive, size, 4);
    put(archive, static_cast<std::uint32_t>(file.size()), 2), put(archive, 0, 2);
    archive += file + bytes;
    // Its central-directory record.
    put(directory, 0x02014b50, 4), put(directory, 20, 2), put(directory, 20, 2);
    put(directory, 0, 2), put(directory, 0, 2), put(directory, 0, 4);
    put(directory, crc, 4), put(directory, size, 4), put(directory, size, 4);
    put(directory, static_cast<std::uint32_t>(file.size()), 2), put(directory, 0, 4);
    put(directory, 0, 4), put(directory, 0, 4), put(directory, offset, 4);
    directory += file;
  }
  const auto directory_offset = static_cast<std::uint32_t>(archive.size());
  archive += directory;
  put(archive, 0x06054b50, 4), put(archive, 0, 4);
  put(archive, static_cast<std::uint32_t>(entries.size()), 2), put(archive, static_cast<std::uint32_t>(entries.size()), 2);
  put(archive, static_cast<std::uint32_t>(directory.size()), 4), put(archive, directory_offset, 4);
  put(archive, 0, 2);
  npy_detail::write_file(path, archive, who);
}

/// Every entry of an archive (uncompressed entries only), in the archive's order: its name without ".npy" and its
/// .npy array, whose bytes' CRC-32 has been checked. `name` names the archive in errors.
inline std::vector<std::pair<std::string, npy_detail::Array>> read_archive(std::istream& in, const std::string& name) {
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const Reader r(data, name);
  // The end-of-directory record: the last 22 bytes, or earlier when the archive has a comment.
  if (data.size() < 22) r.fail("too short to be a ZIP archive");
  std::size_t end = data.size() - 22;
  while (r.at(end, 4) != 0x06054b50) {
    if (end == 0 || data.size() - end > 22 + 0xFFFF) r.fail("not a ZIP archive (no end-of-directory record)");
    --end;
  }
  const std::uint32_t count = r.at(end + 10, 2);
  std::size_t record = r.at(end + 16, 4);
  std::vector<std::pair<std::string, npy_detail::Array>> out;
  for (std::uint32_t e = 0; e < count; ++e) {
    if (r.at(record, 4) != 0x02014b50) r.fail("central directory record " + std::to_string(e) + " is damaged");
    const std::uint32_t method = r.at(record + 10, 2), crc = r.at(record + 16, 4), size = r.at(record + 20, 4);
    const std::size_t name_length = r.at(record + 28, 2), extra = r.at(record + 30, 2), comment = r.at(record + 32, 2);
    const std::size_t local = r.at(record + 42, 4);
    const std::string file = r.text(record + 46, name_length);
    record += 46 + name_length + extra + comment;
    if (method != 0)
      r.fail("entry " + file + " is compressed (method " + std::to_string(method) + "); only stored entries are read (numpy.savez, not savez_compressed)");
    if (r.at(local, 4) != 0x04034b50 || r.text(local + 30, r.at(local + 26, 2)) != file)
      r.fail("the local header of entry " + file + " is damaged");
    const std::string bytes = r.text(local + 30 + r.at(local + 26, 2) + r.at(local + 28, 2), size);
    if (crc32(bytes) != crc) r.fail("entry " + file + " fails its CRC-32 check (the file is corrupt)");
    if (file.size() < 5 || file.substr(file.size() - 4) != ".npy") r.fail("entry " + file + " is not a .npy file");
    std::istringstream entry(bytes);
    out.emplace_back(file.substr(0, file.size() - 4), npy_detail::read(entry, name + ":" + file));
  }
  return out;
}

/// The archive at `path` opened for reading; `who` names the caller in errors.
inline std::ifstream open_archive(const std::filesystem::path& path, const char* who) {
  std::ifstream in(path, std::ios::binary);
  if (!in || std::filesystem::is_directory(path)) throw io_error(std::string(who) + ": cannot open " + path.string());
  return in;
}

}  // namespace npz_detail

/// Writes `entries` (name → tensor; each stored as "<name>.npy") to the archive at `path`.
template <class T>
void save_npz(const std::filesystem::path& path, const std::vector<std::pair<std::string, Tensor<T>>>& entries) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& [name, tensor] : entries) files.emplace_back(name, npy_detail::encode(tensor));
  npz_detail::write_archive(path, files, "save_npz");
}

/// Reads every entry of an archive written by save_npz or numpy.savez from `path` (below) or a stream (uncompressed entries only; numpy.savez_compressed
/// is refused with a message), names without ".npy", in the archive's order. Each entry's CRC-32 is checked.
/// The same from a stream (e.g. bytes in memory); `name` names it in errors.
template <class T>
std::vector<std::pair<std::string, Tensor<T>>> load_npz(std::istream& in, const std::string& name) {
  std::vector<std::pair<std::string, Tensor<T>>> out;
  for (const auto& [entry, array] : npz_detail::read_archive(in, name)) out.emplace_back(entry, npy_detail::to_tensor<T>(array));
  return out;
}

/// Every entry of a .npz file as a tensor of T, in file order; corrupt files throw io_error.
template <class T>
std::vector<std::pair<std::string, Tensor<T>>> load_npz(const std::filesystem::path& path) {
  std::ifstream in = npz_detail::open_archive(path, "load_npz");
  return load_npz<T>(in, path.string());
}

}  // namespace metagrad
