// Data readers (on files the tests write, and on the shared MNIST when present) and deterministic batch order.
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;
namespace fs = std::filesystem;

namespace {

void write_bytes(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::uint8_t> idx(std::vector<std::uint32_t> dims, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> b = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

/// A complete little MNIST folder: three 2×2 images.
void write_mnist(const fs::path& dir, const std::string& prefix, std::vector<std::uint8_t> labels = {7, 0, 9}) {
  write_bytes(dir / (prefix + "-images-idx3-ubyte"), idx({3, 2, 2}, {0, 255, 51, 102, 1, 2, 3, 4, 255, 255, 0, 0}));
  write_bytes(dir / (prefix + "-labels-idx1-ubyte"), idx({static_cast<std::uint32_t>(labels.size())}, labels));
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("MNIST IDX files are read into [0, 1] rows with their labels") {
  TempDir dir;
  write_mnist(dir.path, "train");
  const auto d = load_mnist(dir.path, MnistSplit::train);
  CHECK(d.inputs.shape() == Shape{3, 4});
  CHECK(d.inputs(0, 1) == 1.0);
  CHECK(d.inputs(0, 2) == doctest::Approx(0.2));
  CHECK(d.labels == IndexVector{7, 0, 9});
  CHECK(d.classes == 10);
  const auto b = d.batch({2, 0});
  CHECK(b.labels == IndexVector{9, 7});
  CHECK(b.inputs(0, 0) == 1.0);
  CHECK(d.slice(1, 2).labels == IndexVector{0, 9});
  CHECK_THROWS_AS((void)d.slice(2, 2), value_error);
}

TEST_CASE("broken MNIST files get errors naming the file and the fault") {
  TempDir dir;
  const auto images = dir.path / "t10k-images-idx3-ubyte", labels = dir.path / "t10k-labels-idx1-ubyte";
  check_throws_with<data_error>([&] { (void)load_mnist(dir.path, MnistSplit::test); }, {"cannot open", "t10k-images"});
  write_mnist(dir.path, "t10k", {1, 2});  // two labels for three images
  check_throws_with<data_error>([&] { (void)load_mnist(dir.path, MnistSplit::test); }, {"3 images", "2 labels"});
  write_mnist(dir.path, "t10k", {1, 2, 10});
  check_throws_with<data_error>([&] { (void)load_mnist(dir.path, MnistSplit::test); }, {"label 10", "index 2"});
  write_bytes(images, idx({3, 2, 2}, {1, 2, 3}));
  check_throws_with<data_error>([&] { (void)read_idx(images); }, {"t10k-images", "3 bytes", "12", "truncated"});
  write_bytes(images, idx({1, 2, 2}, {1, 2, 3, 4, 5}));
  check_throws_with<data_error>([&] { (void)read_idx(images); }, {"trailing"});
  write_bytes(images, {0x1f, 0x8b, 8, 0, 0, 0});
  check_throws_with<data_error>([&] { (void)read_idx(images); }, {"not an IDX file", "gzip"});
  write_bytes(images, {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0});
  check_throws_with<data_error>([&] { (void)read_idx(images); }, {"type code 13"});
  write_bytes(images, {0, 0, 8, 3, 0, 0});
  check_throws_with<data_error>([&] { (void)read_idx(images); }, {"truncated inside its header"});
  write_bytes(images, idx({4}, {1, 2, 3, 4}));
  write_bytes(labels, idx({4}, {1, 2, 3, 4}));
  check_throws_with<data_error>([&] { (void)load_mnist(dir.path, MnistSplit::test); }, {"1 dimensions", "3"});
}

TEST_CASE("CIFAR-10 binary records") {
  TempDir dir;
  std::vector<std::uint8_t> file;
  for (std::uint8_t label : {3, 8}) {
    file.push_back(label);
    for (int j = 0; j < 3072; ++j) file.push_back(static_cast<std::uint8_t>((j + label) % 256));
  }
  write_bytes(dir.path / "data_batch_1.bin", file);
  write_bytes(dir.path / "data_batch_2.bin", std::vector<std::uint8_t>(file.begin(), file.begin() + 3073));
  const auto d = load_cifar10({dir.path / "data_batch_1.bin", dir.path / "data_batch_2.bin"});
  CHECK(d.inputs.shape() == Shape{3, 3, 32, 32});
  CHECK(d.labels == IndexVector{3, 8, 3});
  CHECK(d.inputs(1, 0, 0, 0) == doctest::Approx(8.0 / 255));
  CHECK(d.inputs(0, 1, 0, 0) == doctest::Approx(((1024 + 3) % 256) / 255.0));  // green plane starts at byte 1024
  write_bytes(dir.path / "short.bin", std::vector<std::uint8_t>(file.begin(), file.begin() + 3000));
  check_throws_with<data_error>([&] { (void)load_cifar10({dir.path / "short.bin"}); }, {"short.bin", "3000 bytes", "3073"});
  file[3073] = 12;
  write_bytes(dir.path / "bad.bin", file);
  check_throws_with<data_error>([&] { (void)load_cifar10({dir.path / "bad.bin"}); }, {"record 1", "label 12"});
  check_throws_with<data_error>([&] { (void)load_cifar10({dir.path / "missing.bin"}); }, {"cannot open", "missing.bin"});
}

TEST_CASE("batch order is a pure function of (seed, step), a fresh permutation each epoch") {
  const BatchOrder order(10, 3, 42);
  CHECK(order.batches_per_epoch() == 3);
  const IndexVector b4 = order.batch(4);
  CHECK(order.batch(0).size() == 3);
  CHECK(order.batch(4) == b4);              // after visiting another epoch
  CHECK(BatchOrder(10, 3, 42).batch(4) == b4);  // a fresh object
  CHECK_FALSE(BatchOrder(10, 3, 43).batch(4) == b4);
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::set<index_t> seen;
    for (int k = 0; k < 3; ++k)
      for (index_t i : order.batch(epoch * 3 + k)) seen.insert(i);
    CHECK(seen.size() == 9);  // no repeats within an epoch
    CHECK(*seen.rbegin() < 10);
  }
  CHECK_FALSE(order.permutation(0) == order.permutation(1));
  CHECK_THROWS_AS(BatchOrder(10, 11, 1), value_error);
  CHECK_THROWS_AS(BatchOrder(10, 0, 1), value_error);
  CHECK_THROWS_AS((void)order.batch(-1), value_error);
}

TEST_CASE("the shared MNIST digits") {
  const auto found = mnist_folder();
  if (!found) return;
  const fs::path dir = *found;
  const auto train = load_mnist(dir, MnistSplit::train), test = load_mnist(dir, MnistSplit::test);
  CHECK(train.inputs.shape() == Shape{8000, 784});
  CHECK(test.inputs.shape() == Shape{2000, 784});
  CHECK(train.inputs.array().minCoeff() == 0.0);
  CHECK(train.inputs.array().maxCoeff() == 1.0);
  std::vector<int> counts(10);
  for (index_t y : train.labels) ++counts[static_cast<std::size_t>(y)];
  for (int c : counts) {  // the data README: every class has 685–916 training images
    CHECK(c >= 685);
    CHECK(c <= 916);
  }
  const double mean = train.inputs.array().mean();
  CHECK(mean > 0.1);  // MNIST's mean grey level is about 0.13
  CHECK(mean < 0.16);
}

}  // TEST_SUITE
