// Tensor<T> and Shape: construction, access, reshape, random draws, Eigen views, errors.
#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

TEST_SUITE("tensor") {

TEST_CASE("shapes") {
  const Shape s{2, 3, 4};
  CHECK(s.rank() == 3);
  CHECK(s.size() == 24);
  CHECK(s.stride(0) == 12);
  CHECK(s.str() == "[2, 3, 4]");
  CHECK(Shape{}.size() == 1);
  CHECK(s.reduced(1, false) == Shape{2, 4});
  CHECK(s.reduced(1, true) == Shape{2, 1, 4});
  CHECK(broadcast_shapes("t", Shape{3, 1}, Shape{4}) == Shape{3, 4});
  CHECK_THROWS_AS(Shape({1, 2, 3, 4, 5}), shape_error);
  CHECK_THROWS_AS(Shape({-1}), shape_error);
  // Extents whose product would overflow are refused where the shape is built, not when memory is touched.
  check_throws_with<shape_error>([] { (void)Shape({index_t(1) << 62, 4}); }, {"more than", "elements"});
  check_throws_with<shape_error>([] { (void)Shape({index_t(1) << 31, index_t(1) << 31, 4}); }, {"elements"});
  CHECK(Shape({0, index_t(1) << 62}).size() == 0);
  CHECK(s.with_extent(1, 7) == Shape{2, 7, 4});
  check_throws_with<shape_error>([] { (void)broadcast_shapes("add", Shape{2, 3}, Shape{2}); }, {"add", "[2, 3]", "[2]"});
  check_throws_with<value_error>([&] { (void)normalize_axis("sum", 3, s); }, {"sum", "axis 3", "[2, 3, 4]"});
  CHECK(normalize_axis("sum", -1, s) == 2);
}

TEST_CASE("construction and element access") {
  const TD z = TD::zeros({2, 3});
  CHECK(z.size() == 6);
  CHECK(z.array().sum() == 0.0);
  CHECK(TD::ones({4}).array().sum() == 4.0);
  CHECK(TD::full({2, 2}, 2.5)(1, 1) == 2.5);
  CHECK(TD::scalar(3.0).item() == 3.0);
  CHECK(TD::scalar(3.0).rank() == 0);
  TD t({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(t(1, 2) == 6.0);
  t(0, 1) = 9.0;
  CHECK(t.data()[1] == 9.0);
  CHECK(t.dim(-1) == 3);
  check_throws_with<shape_error>([] { TD({2, 2}, {1.0, 2.0, 3.0}); }, {"3 values", "[2, 2]"});
  check_throws_with<value_error>([&] { (void)t(2, 0); }, {"index 2", "axis 0"});
  check_throws_with<value_error>([&] { (void)t(0); }, {"1 indices", "[2, 3]"});
  CHECK_THROWS_AS((void)t.item(), shape_error);
}

TEST_CASE("reshape keeps the data and checks the size") {
  const TD t({2, 3}, {1, 2, 3, 4, 5, 6});
  const TD r = t.reshape({3, 2});
  CHECK(r(2, 1) == 6.0);
  CHECK(r.shape() == Shape{3, 2});
  check_throws_with<shape_error>([&] { (void)t.reshape({4, 2}); }, {"reshape", "[2, 3]", "[4, 2]"});
}

TEST_CASE("random tensors are a pure function of the seed") {
  const TD a = TD::random_normal({1000}, 42), b = TD::random_normal({1000}, 42), c = TD::random_normal({1000}, 43);
  CHECK(a == b);
  CHECK_FALSE(a == c);
  CHECK(std::abs(a.array().mean()) < 0.1);
  CHECK(std::abs(std::sqrt((a.array() - a.array().mean()).square().mean()) - 1.0) < 0.1);
  const TD u = TD::random_uniform({1000}, 7, -2.0, 3.0);
  CHECK(u.array().minCoeff() >= -2.0);
  CHECK(u.array().maxCoeff() < 3.0);
  // Fixed bits: a change to the generator would change every seeded experiment downstream.
  CHECK(SplitMix64(0).next() == 0xE220A8397B1DCDAFull);
}

TEST_CASE("zero-copy Eigen views, and copies from Eigen") {
  TD t({2, 3}, {1, 2, 3, 4, 5, 6});
  auto m = t.matrix();
  CHECK(m.rows() == 2);
  CHECK(m(1, 0) == 4.0);
  m(1, 0) = -1.0;  // writes through
  CHECK(t(1, 0) == -1.0);
  CHECK(t.matrix().data() == t.data());
  Eigen::MatrixXd e(2, 2);
  e << 1, 2, 3, 4;
  const TD f = TD::from_eigen(e);
  CHECK(f(0, 1) == 2.0);  // column-major source, row-major tensor
  CHECK(f(1, 0) == 3.0);
  CHECK_THROWS_AS((void)TD::zeros({2, 2, 2}).matrix(), shape_error);
}

TEST_CASE("all_finite finds a NaN or an infinity anywhere, in either precision") {
  CHECK(TD::zeros({0}).all_finite());
  CHECK(TD({2, 2}, {1, -2, 1e308, -1e-308}).all_finite());
  for (const double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL})
    for (index_t at = 0; at < 37; at += 9) {
      TD t = TD::random_normal({37}, 1);
      Tensor<float> f = Tensor<float>::random_normal({37}, 1);
      t.data()[at] = bad;
      f.data()[at] = static_cast<float>(bad);
      CAPTURE(at);
      CHECK_FALSE(t.all_finite());
      CHECK_FALSE(f.all_finite());
    }
}

TEST_CASE("freed blocks are reused by the same thread, within the cache limit") {
  const Shape big{64, 64};  // 32 KiB: above the caching threshold
  const double* first;
  {
    TD a = TD::zeros(big);
    first = a.data();
  }
  CHECK(memory::cached_bytes() >= 64 * 64 * sizeof(double));
  const TD b = TD::zeros(big);
  CHECK(b.data() == first);  // the same block came back
  CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % memory::alignment == 0);
  const std::size_t limit = memory::cache_limit();
  memory::set_cache_limit(0);
  const std::size_t before = memory::cached_bytes();
  { TD c = TD::zeros({128, 128}); }
  CHECK(memory::cached_bytes() <= before);  // over the limit: the block went back to the C allocator
  memory::set_cache_limit(limit);
  memory::release_cache();
  CHECK(memory::cached_bytes() == 0);
  const TD copy = b;
  CHECK(copy == b);
  CHECK(copy.data() != b.data());
}

TEST_CASE("beyond its limit, the caches keep as much as the program's high-water mark of live bytes, the most recently used sizes first") {
  const std::size_t limit = memory::cache_limit();
  memory::release_cache();  // empty, and the high-water mark lowered to what is live now
  memory::set_cache_limit(memory::min_cached_bytes);
  const std::size_t base = memory::live_bytes(), block = 256 * 256 * sizeof(double);
  REQUIRE(base < block);  // no large tensor of another test still alive
  const auto blocks = [](int count, index_t rows) {
    std::vector<TD> held;
    for (int i = 0; i < count; ++i) held.push_back(TD::zeros({rows, 256}));
    return held;
  };
  blocks(3, 256);
  CHECK(memory::high_water_bytes() == base + 3 * block);
  CHECK(memory::cached_bytes() == 3 * block);  // far above the limit, but the peak needed all of it
  {
    const auto again = blocks(3, 256);
    CHECK(memory::cached_bytes() == 0);  // every block reused: no allocation
    CHECK(memory::live_bytes() == base + 3 * block);
  }
  blocks(4, 256);  // one block more: the high-water mark grows, and the caches keep all four
  CHECK(memory::high_water_bytes() == base + 4 * block);
  CHECK(memory::cached_bytes() == 4 * block);
  blocks(1, 512);  // another size: cached beside the four, it would pass the high-water mark
  CHECK(memory::high_water_bytes() == base + 4 * block);
  CHECK(memory::cached_bytes() == 4 * block);  // so two of the least recently used size made room for it
  {
    const auto again = blocks(1, 512);
    CHECK(memory::cached_bytes() == 2 * block);  // the new size is reused, not page-faulted in again
    const auto older = blocks(2, 256);
    CHECK(memory::cached_bytes() == 0);  // and what is left of the older one too
  }
  memory::release_cache();
  CHECK(memory::cached_bytes() == 0);
  CHECK(memory::high_water_bytes() == memory::live_bytes());
  memory::set_cache_limit(0);  // off, high-water mark or not
  blocks(3, 256);
  CHECK(memory::cached_bytes() == 0);
  memory::set_cache_limit(limit);
}

TEST_CASE("float tensors") {
  const Tensor<float> f = Tensor<float>::random_normal({3, 3}, 1);
  CHECK(f.size() == 9);
  CHECK((f * 2.0f)(0, 0) == 2.0f * f(0, 0));
}

}  // TEST_SUITE
