// Writes a small CIFAR-10 sample in the binary format (records of one label byte and 3 × 32 × 32 pixel bytes) into
// the folder given: data_batch_1.bin with 400 records and test_batch.bin with 100. Each image is a deterministic
// pattern whose brightness follows its label, so that a network can learn something from it. The examples' tests run
// their --cifar10 path on it.
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace {
bool write_batch(const std::filesystem::path& path, int records, int offset) {
  std::ofstream out(path, std::ios::binary);
  for (int r = 0; r < records; ++r) {
    const int label = (r * 7 + offset) % 10;
    out.put(static_cast<char>(label));
    for (int p = 0; p < 3 * 32 * 32; ++p) out.put(static_cast<char>((label * 23 + (p * 31 + r * 17) % 41) % 256));
  }
  return static_cast<bool>(out);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_cifar10_sample FOLDER\n");
    return 2;
  }
  const std::filesystem::path folder = argv[1];
  std::filesystem::create_directories(folder);
  if (!write_batch(folder / "data_batch_1.bin", 400, 0) || !write_batch(folder / "test_batch.bin", 100, 3)) {
    std::fprintf(stderr, "make_cifar10_sample: cannot write into %s\n", folder.string().c_str());
    return 1;
  }
  return 0;
}
