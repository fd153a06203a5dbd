#pragma once
// What every file reader (data/ and io/) needs to check a declared size before it allocates: the bytes left.
#include <cstdint>
#include <istream>

namespace metagrad {

/// The number of bytes from `in`'s current position to its end; the position is kept. 0 when it cannot be told.
inline std::uint64_t bytes_left(std::istream& in) {
  const auto here = in.tellg();
  in.seekg(0, std::ios::end);
  const auto end = in.tellg();
  in.seekg(here);
  if (here < 0 || end < here) return 0;
  return static_cast<std::uint64_t>(end - here);
}

}  // namespace metagrad
