// main() for fuzz targets built without libFuzzer: runs the target once on every file under the folders (or files)
// given on the command line — the seed corpus as a regression test. Seeds in a folder named valid/ must load.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    if (fs::is_directory(argv[i]))
      for (const auto& e : fs::recursive_directory_iterator(argv[i]))
        if (e.is_regular_file()) inputs.push_back(e.path());
    if (fs::is_regular_file(argv[i])) inputs.emplace_back(argv[i]);
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "usage: %s CORPUS_FOLDER_OR_FILE... (no inputs found)\n", argv[0]);
    return 2;
  }
  std::size_t valid = 0;
  for (const auto& path : inputs) {
    metagrad::fuzz::must_succeed = path.parent_path().filename() == "valid";
    valid += metagrad::fuzz::must_succeed;
    std::ifstream in(path, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), {}};
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  if (valid == 0) {
    std::fprintf(stderr, "no valid/ seeds among the %zu inputs: the replay would not notice a reader that refuses everything\n", inputs.size());
    return 2;
  }
  std::printf("%zu inputs ran without a finding, %zu of them valid seeds that loaded\n", inputs.size(), valid);
  return 0;
}
