#pragma once
// Peak memory of the benchmark process (Linux): the resident-set high-water mark, which can be reset between
// benchmarks, so each one reports the most memory it needed itself.
#include <malloc.h>

#include <fstream>
#include <string>

#include <metagrad/tensor/buffer.hpp>

namespace bench {

/// Resets the high-water mark to the current resident set, after handing freed memory back to the system.
inline void reset_peak_memory() {
  metagrad::memory::release_cache();
  malloc_trim(0);  // hand freed heap memory back too, or it still counts as resident
  std::ofstream("/proc/self/clear_refs") << "5";
}

/// The resident-set high-water mark since the last reset, in MB (VmHWM); 0 where /proc is not there.
inline double peak_memory_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // reported in kB
  return 0;
}

}  // namespace bench
