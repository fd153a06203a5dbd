// Forward values of the op vocabulary on plain tensors, Var results equal to Tensor results, and the shape and
// domain errors of every op.
#include "support.hpp"

#include <array>

using namespace metagrad;
using namespace metagrad::test;

namespace {
bool close(const TD& a, const TD& b, double tol = 1e-12) {
  return a.shape() == b.shape() && (a.array() - b.array()).abs().maxCoeff() <= tol;
}
}  // namespace

TEST_SUITE("ops") {

TEST_CASE("broadcasting arithmetic") {
  const TD m({2, 3}, {1, 2, 3, 4, 5, 6});
  const TD row({3}, {10, 20, 30});
  const TD col({2, 1}, {100, 200});
  CHECK(m + row == TD({2, 3}, {11, 22, 33, 14, 25, 36}));
  CHECK(row - m == TD({2, 3}, {9, 18, 27, 6, 15, 24}));
  CHECK(m * col == TD({2, 3}, {100, 200, 300, 800, 1000, 1200}));
  CHECK(m / TD::scalar(2.0) == TD({2, 3}, {0.5, 1, 1.5, 2, 2.5, 3}));
  CHECK(TD::scalar(6.0) / m == TD({2, 3}, {6, 3, 2, 1.5, 1.2, 1}));
  CHECK(col + row == TD({2, 3}, {110, 120, 130, 210, 220, 230}));  // general broadcast
  CHECK(TD({2, 1, 2}, {1, 2, 3, 4}) + TD({3, 1}, {0, 10, 20}) ==
        TD({2, 3, 2}, {1, 2, 11, 12, 21, 22, 3, 4, 13, 14, 23, 24}));
  CHECK(2.0 - m == TD({2, 3}, {1, 0, -1, -2, -3, -4}));
  CHECK(broadcast_to(row, {2, 3}) == TD({2, 3}, {10, 20, 30, 10, 20, 30}));
  CHECK(sum_to(m, {3}) == TD({3}, {5, 7, 9}));
  CHECK(sum_to(m, {2, 1}) == TD({2, 1}, {6, 15}));
  CHECK(sum_to(m, {}) == TD::scalar(21));
  CHECK(sum_to(TD::ones({2, 3, 4}), {3, 1}) == TD::full({3, 1}, 8));
  check_throws_with<shape_error>([&] { (void)(m + TD::ones({2})); }, {"add", "[2, 3]", "[2]"});
  check_throws_with<shape_error>([&] { (void)(m * TD::ones({3, 3})); }, {"mul"});
  check_throws_with<shape_error>([&] { (void)broadcast_to(m, {3, 3}); }, {"broadcast_to", "[2, 3]", "[3, 3]"});
  check_throws_with<shape_error>([&] { (void)sum_to(m, {2}); }, {"sum_to", "[2, 3]", "[2]"});
  TD acc = m;
  CHECK_THROWS_AS(acc += row, shape_error);
}

TEST_CASE("sum_to a trailing shape keeps the bits of Eigen's rowwise sum, in float and double") {
  // sum_to([n, d] -> [d]) reads x row by row but sums in the order of the Eigen expression it replaced; random values
  // make any other order show in the last bits. Every row count around the four-row step and every tail of a packet.
  const auto check = [](auto zero, index_t n, index_t d) {
    using T = decltype(zero);
    const auto x = Tensor<T>::random_normal({n, d}, static_cast<std::uint64_t>(7 * n + d));
    Tensor<T> eigen({d});
    eigen.array() = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>>(x.data(), d, n).rowwise().sum();
    CAPTURE(n);
    CAPTURE(d);
    CHECK(sum_to(x, {d}) == eigen);
  };
  for (const index_t n : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 31, 1000})
    for (const index_t d : {2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 100}) {  // (to one element is the full sum)
      check(0.0, n, d);
      check(0.0f, n, d);
    }
  const TD x = TD::random_normal({3, 4, 5}, 1);  // a trailing shape of rank 2
  TD eigen({4, 5});
  eigen.array() = Eigen::Map<const Eigen::Array<double, Eigen::Dynamic, Eigen::Dynamic>>(x.data(), 20, 3).rowwise().sum();
  CHECK(sum_to(x, {4, 5}) == eigen);
}

TEST_CASE("sum_to into a few outputs sums each run in one fixed order, wherever the run lies in memory") {
  // [K, n, d] -> [K, 1, 1] sums each component's n·d contiguous values with sum_run; the same values one element
  // further along in memory give the same bits, and the sum is as accurate as a long-double loop to 1e-14.
  const index_t K = 3, n = 101, d = 37;
  const TD x = TD::random_normal({K, n, d}, 91);
  const TD s = sum_to(x, {K, 1, 1});
  std::vector<double> shifted(static_cast<std::size_t>(n * d + 1));
  for (index_t k = 0; k < K; ++k) {
    const double* run = x.data() + k * n * d;
    std::copy(run, run + n * d, shifted.begin() + 1);
    long double exact = 0;
    for (index_t i = 0; i < n * d; ++i) exact += run[i];
    CAPTURE(k);
    CHECK(s.data()[k] == detail::sum_run(run, n * d));
    CHECK(detail::sum_run(shifted.data() + 1, n * d) == s.data()[k]);
    CHECK(std::abs(s.data()[k] - static_cast<double>(exact)) <= 1e-14 * static_cast<double>(n * d));
  }
  for (const index_t length : {0, 1, 7, 31, 32, 33, 64, 100}) {  // below, at and past one group of four packets
    const TD v = TD::random_normal({length}, 92);
    long double exact = 0;
    for (index_t i = 0; i < length; ++i) exact += v.data()[i];
    CHECK(std::abs(detail::sum_run(v.data(), length) - static_cast<double>(exact)) <= 1e-14 * (length + 1));
  }
}

TEST_CASE("every broadcast pattern of rank <= 4, against element-by-element loops") {
  // Each operand takes every subset of [2, 3, 4, 5]'s axes as broadcast (extent 1), with and without its leading
  // broadcast axes. The values are small integers, so every sum is exact in any order: broadcast_to, the binary ops
  // and sum_to must all match the loops exactly.
  const Shape out{2, 3, 4, 5};
  const auto shape_of = [](const std::vector<index_t>& d) {
    switch (d.size()) {
      case 0: return Shape{};
      case 1: return Shape{d[0]};
      case 2: return Shape{d[0], d[1]};
      case 3: return Shape{d[0], d[1], d[2]};
      default: return Shape{d[0], d[1], d[2], d[3]};
    }
  };
  std::vector<Shape> shapes;
  for (int mask = 0; mask < 16; ++mask)
    for (int drop = 0; drop <= 4 && (drop == 0 || (mask & (1 << (drop - 1)))); ++drop) {  // drop only broadcast axes
      std::vector<index_t> dims;
      for (int i = drop; i < 4; ++i) dims.push_back(mask & (1 << i) ? 1 : out[i]);
      shapes.push_back(shape_of(dims));
    }
  const auto integers = [](const Shape& s, int seed) {
    TD t(s);
    for (index_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<double>((i * 37 + seed) % 17 - 8);
    return t;
  };
  // Where out's element i = (i0, i1, i2, i3) reads a tensor of shape s that broadcasts to out.
  const auto at = [](const Shape& s, const std::array<index_t, 4>& i) {
    index_t o = 0;
    for (int d = 0; d < s.rank(); ++d) o += (s[d] == 1 ? 0 : i[static_cast<std::size_t>(4 - s.rank() + d)]) * s.stride(d);
    return o;
  };
  const auto for_each_index = [&](auto&& fn) {
    std::array<index_t, 4> i{};
    for (i[0] = 0; i[0] < out[0]; ++i[0])
      for (i[1] = 0; i[1] < out[1]; ++i[1])
        for (i[2] = 0; i[2] < out[2]; ++i[2])
          for (i[3] = 0; i[3] < out[3]; ++i[3]) fn(i);
  };
  const TD big = integers(out, 3);
  std::size_t pairs = 0;
  for (const Shape& sa : shapes) {
    CAPTURE(sa.str());
    const TD a = integers(sa, 1);
    TD repeated(out), summed(sa);
    for_each_index([&](const auto& i) {
      repeated.data()[at(out, i)] = a.data()[at(sa, i)];
      summed.data()[at(sa, i)] += big.data()[at(out, i)];
    });
    CHECK(broadcast_to(a, out) == repeated);
    CHECK(sum_to(big, sa) == summed);
    for (const Shape& sb : shapes) {
      CAPTURE(sb.str());
      const TD b = integers(sb, 2) + 0.5;  // never 0, for the division
      const TD sum = a + b, quotient = a / b;
      const Shape s = broadcast_shapes("test", sa, sb);
      REQUIRE(sum.shape() == s);
      bool agree = true;
      for_each_index([&](const auto& i) {
        const double x = a.data()[at(sa, i)], y = b.data()[at(sb, i)];
        agree = agree && sum.data()[at(s, i)] == x + y && quotient.data()[at(s, i)] == x / y;
      });
      CHECK(agree);
      ++pairs;
    }
  }
  CHECK(pairs == shapes.size() * shapes.size());
  CHECK(shapes.size() == 31);
}

TEST_CASE("unary functions and their domains") {
  const TD x({4}, {-2.0, -0.5, 0.5, 2.0});
  CHECK(close(exp(x), TD({4}, {std::exp(-2.0), std::exp(-0.5), std::exp(0.5), std::exp(2.0)})));
  CHECK(close(relu(x), TD({4}, {0, 0, 0.5, 2})));
  CHECK(close(abs(x), TD({4}, {2, 0.5, 0.5, 2})));
  CHECK(close(clamp(x, -1.0, 1.0), TD({4}, {-1, -0.5, 0.5, 1})));
  CHECK(close(sigmoid(x), 1.0 / (1.0 + exp(-x))));
  CHECK(close(softplus(x), log(1.0 + exp(x))));
  CHECK(close(tanh(x), TD({4}, {std::tanh(-2.0), std::tanh(-0.5), std::tanh(0.5), std::tanh(2.0)})));
  CHECK(close(pow(x, 3.0), x * x * x));
  CHECK(close(square(x), x * x));
  CHECK(close(sqrt(square(x)), abs(x)));
  const TD g({4}, {1, 2, 3, 4});
  CHECK(close(tanh_backward(g, tanh(x)), g * (1.0 - square(tanh(x)))));
  CHECK(close(sigmoid_backward(g, sigmoid(x)), g * sigmoid(x) * (1.0 - sigmoid(x))));
  CHECK_THROWS_AS((void)tanh_backward(g, TD::ones({3})), shape_error);
  // tanh for double is a vectorized kernel of metagrad's own: within a few ulps of std::tanh everywhere.
  TD grid({20001});
  for (index_t i = 0; i < grid.size(); ++i) grid.data()[i] = -30.0 + 60.0 * static_cast<double>(i) / 20000;
  const TD t = tanh(grid);
  double worst = 0;
  for (index_t i = 0; i < grid.size(); ++i) {
    const double e = std::tanh(grid.data()[i]);
    worst = std::max(worst, e == 0 ? std::abs(t.data()[i]) : std::abs(t.data()[i] - e) / std::abs(e));
  }
  CHECK(worst < 1e-15);
  CHECK(tanh(TD({3}, {INFINITY, -INFINITY, 1e-300})) == TD({3}, {1.0, -1.0, 1e-300}));
  // Large inputs: no overflow to inf or NaN.
  const TD big({2}, {-1000.0, 1000.0});
  CHECK(close(softplus(big), TD({2}, {0.0, 1000.0})));
  CHECK(close(sigmoid(big), TD({2}, {0.0, 1.0})));
  check_throws_with<value_error>([&] { (void)log(x); }, {"log", "domain"});
  check_throws_with<value_error>([&] { (void)sqrt(x); }, {"sqrt", "domain"});
  check_throws_with<value_error>([&] { (void)pow(x, 0.5); }, {"pow", "non-integer"});
  check_throws_with<value_error>([&] { (void)clamp(x, 1.0, -1.0); }, {"clamp"});
}

TEST_CASE("matmul, transpose, dot") {
  const TD a({2, 3}, {1, 2, 3, 4, 5, 6});
  const TD b({3, 2}, {1, 0, 0, 1, 1, 1});
  CHECK(matmul(a, b) == TD({2, 2}, {4, 5, 10, 11}));
  CHECK(matmul(transpose(a), transpose(b), true, true) == matmul(a, b));
  CHECK(matmul(a, a, false, true) == TD({2, 2}, {14, 32, 32, 77}));
  CHECK(matmul(a, a, true, false) == TD({3, 3}, {17, 22, 27, 22, 29, 36, 27, 36, 45}));
  CHECK(transpose(a) == TD({3, 2}, {1, 4, 2, 5, 3, 6}));
  CHECK(dot(a, a).item() == 91.0);
  check_throws_with<shape_error>([&] { (void)matmul(a, a); }, {"matmul", "[2, 3]", "3 vs 2"});
  check_throws_with<shape_error>([&] { (void)matmul(a, TD::ones({3})); }, {"matmul", "rank-2"});
  check_throws_with<shape_error>([&] { (void)transpose(TD::ones({3})); }, {"transpose"});
  check_throws_with<shape_error>([&] { (void)dot(a, b); }, {"dot", "[2, 3]", "[3, 2]"});
}

TEST_CASE("matmul sums each element in the order of the inner index: the bits of a plain loop, whatever the blocking") {
  // Every element of op(a)·op(b) is the chain c = 0, c = c + a_ik b_kj (one rounding per step, or fused where the
  // target has fused multiply-add) for k = 0, 1, ...; random values make any other order show in the last bits.
  // Extents around the register tile (6 rows, 2 or 4 packets of columns), past the cache blocks (384 steps, 120 rows)
  // and below the packing threshold, all four transpose combinations, float and double, and a batch.
  const auto check = [](auto zero, index_t m, index_t k, index_t n, bool ta, bool tb) {
    using T = decltype(zero);
    const auto seed = static_cast<std::uint64_t>(m * 1000003 + k * 1009 + n * 4 + 2 * ta + tb);
    const auto a = Tensor<T>::random_normal(ta ? Shape{k, m} : Shape{m, k}, seed);
    const auto b = Tensor<T>::random_normal(tb ? Shape{n, k} : Shape{k, n}, seed + 1);
    Tensor<T> loop = Tensor<T>::zeros({m, n});
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) {
        T c = 0;
        for (index_t p = 0; p < k; ++p)
          c = detail::multiply_add(ta ? a.data()[p * m + i] : a.data()[i * k + p],
                                   tb ? b.data()[j * k + p] : b.data()[p * n + j], c);
        loop.data()[i * n + j] = c;
      }
    CAPTURE(m);
    CAPTURE(k);
    CAPTURE(n);
    CAPTURE(ta);
    CAPTURE(tb);
    CHECK(matmul(a, b, ta, tb) == loop);
  };
  for (const index_t m : {1, 5, 6, 7, 13, 121})
    for (const index_t k : {1, 3, 17, 384, 385})
      for (const index_t n : {1, 3, 8, 17, 33, 64, 65, 130}) {
        check(0.0, m, k, n, (m + n) % 2 == 1, (k + n) % 3 == 0);
        check(0.0f, m, k, n, m % 2 == 0, n % 2 == 1);
      }
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      check(0.0, 7, 770, 4100, ta, tb);  // two column blocks and three inner blocks
      check(0.0f, 61, 200, 70, ta, tb);
    }
  const TD a = randn({2, 7, 30}, 85), b = randn({2, 30, 40}, 86);  // a batch is its matrices' products
  const TD c = matmul(a, b);
  for (index_t i = 0; i < 2; ++i)
    CHECK(slice(c, 0, i, 1).reshape({7, 40}) ==
          matmul(slice(a, 0, i, 1).reshape({7, 30}), slice(b, 0, i, 1).reshape({30, 40})));
}

TEST_CASE("batched matmul and the matrix-structure ops: tril, triu, diagonal, diag_embed, eye") {
  const TD a = randn({3, 2, 4}, 80), b = randn({3, 4, 5}, 81), bt = randn({3, 5, 4}, 82);
  const auto matrix = [](const TD& x, index_t i) { return slice(x, 0, i, 1).reshape({x.shape()[1], x.shape()[2]}); };
  const auto close = [](const TD& got, const TD& want) {
    REQUIRE(got.shape() == want.shape());
    for (index_t i = 0; i < want.size(); ++i) CHECK(got.data()[i] == doctest::Approx(want.data()[i]).epsilon(1e-14));
  };
  const TD c = matmul(a, b), ct = matmul(a, bt, false, true), tt = matmul(b, bt, true, true);
  for (index_t i = 0; i < 3; ++i) {  // each batch is the rank-2 product of its matrices
    close(matrix(c, i), matmul(matrix(a, i), matrix(b, i)));
    close(matrix(ct, i), matmul(matrix(a, i), matrix(bt, i), false, true));
    close(matrix(tt, i), matmul(matrix(b, i), matrix(bt, i), true, true));
  }
  check_throws_with<shape_error>([&] { (void)matmul(a, a); }, {"matmul", "[3, 2, 4]", "batched"});
  check_throws_with<shape_error>([&] { (void)matmul(a, randn({2, 4, 5}, 83)); }, {"matmul", "[2, 4, 5]"});
  check_throws_with<shape_error>([&] { (void)matmul(a, randn({4, 5}, 84)); }, {"matmul", "rank-3"});

  const TD m({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(tril(m) == TD({3, 3}, {1, 0, 0, 4, 5, 0, 7, 8, 9}));
  CHECK(tril(m, -1) == TD({3, 3}, {0, 0, 0, 4, 0, 0, 7, 8, 0}));
  CHECK(triu(m, 1) == TD({3, 3}, {0, 2, 3, 0, 0, 6, 0, 0, 0}));
  CHECK(triu(TD({2, 3}, {1, 2, 3, 4, 5, 6})) == TD({2, 3}, {1, 2, 3, 0, 5, 6}));  // rectangular
  CHECK(tril(m) + triu(m, 1) == m);
  const TD stacked = concat<double>({m.reshape({1, 3, 3}), (m * 2.0).reshape({1, 3, 3})}, 0);
  CHECK(tril(stacked) == concat<double>({tril(m).reshape({1, 3, 3}), tril(m * 2.0).reshape({1, 3, 3})}, 0));  // per matrix
  CHECK(diagonal(m) == TD({3}, {1, 5, 9}));
  CHECK(diagonal(stacked) == TD({2, 3}, {1, 5, 9, 2, 10, 18}));
  CHECK(diag_embed(TD({2}, {7, 8})) == TD({2, 2}, {7, 0, 0, 8}));
  CHECK(diag_embed(diagonal(stacked)) == tril(triu(stacked)));
  CHECK(TD::eye(3) == diag_embed(TD::ones({3})));
  CHECK(TD::eye(0).shape() == Shape{0, 0});
  check_throws_with<shape_error>([] { (void)tril(TD::ones({3})); }, {"tril", "rank >= 2", "[3]"});
  check_throws_with<shape_error>([] { (void)diagonal(TD::ones({2, 3})); }, {"diagonal", "square", "[2, 3]"});
  check_throws_with<shape_error>([] { (void)diag_embed(TD::scalar(1)); }, {"diag_embed", "rank 1 to 3"});
}

TEST_CASE("reductions") {
  const TD x({2, 3}, {1, 5, 3, 4, 2, 6});
  CHECK(sum(x).item() == 21.0);
  CHECK(mean(x).item() == 3.5);
  CHECK(sum(x, 0) == TD({3}, {5, 7, 9}));
  CHECK(sum(x, 1, true) == TD({2, 1}, {9, 12}));
  CHECK(mean(x, -1) == TD({2}, {3, 4}));
  CHECK(max(x, 1) == TD({2}, {5, 6}));
  CHECK(max(x, 0) == TD({3}, {4, 5, 6}));
  CHECK(argmax_mask(TD({3}, {2, 7, 7}), 0) == TD({3}, {0, 1, 0}));  // ties: the first
  CHECK(close(logsumexp(x, 1), log(sum(exp(x), 1))));
  CHECK(close(logsumexp(TD({2}, {1000.0, 1000.0}), 0), TD::scalar(1000.0 + std::log(2.0))));
  CHECK(sum(TD::ones({2, 3, 4}), 1) == TD::full({2, 4}, 3));
  check_throws_with<value_error>([&] { (void)sum(x, 2); }, {"sum", "axis 2", "[2, 3]"});
  check_throws_with<value_error>([&] { (void)max(x, -3); }, {"max", "axis -3"});
  // Empty tensors: an empty sum is 0 (as in NumPy); an empty mean has no value and is an error.
  const TD empty({0, 3});
  CHECK(sum(empty).item() == 0.0);
  CHECK(sum(empty, 0) == TD::zeros({3}));
  CHECK(sum(empty, 1) == TD::zeros({0}));
  CHECK(softmax(empty, 1).shape() == Shape{0, 3});
  check_throws_with<value_error>([&] { (void)mean(empty); }, {"mean", "[0, 3]", "empty"});
  check_throws_with<value_error>([&] { (void)mean(empty, 0); }, {"mean", "axis 0", "empty"});
  CHECK(mean(empty, 1).shape() == Shape{0});
  check_throws_with<value_error>([&] { (void)mse(empty, empty); }, {"mse", "empty"});
  check_throws_with<value_error>([&] { (void)mean(cross_entropy(empty, {})); }, {"mean", "[0]", "empty"});
  Tape<double> tape;
  check_throws_with<value_error>([&] { (void)mean(tape.variable(empty)); }, {"mean", "empty"});
}

TEST_CASE("softmax, log_softmax, cross_entropy, mse") {
  const TD x({2, 3}, {1, 2, 3, 1000, 1000, 1000});
  const TD p = softmax(x);
  CHECK(close(sum(p, 1), TD::ones({2})));
  CHECK(close(p, exp(log_softmax(x))));
  CHECK(p(1, 0) == doctest::Approx(1.0 / 3));
  CHECK(close(softmax(x, 0), exp(log_softmax(x, 0))));
  const TD ce = cross_entropy(x, {2, 0});
  CHECK(ce(0) == doctest::Approx(-std::log(p(0, 2))));
  CHECK(ce(1) == doctest::Approx(std::log(3.0)));
  CHECK(one_hot<double>({1, 0}, 3) == TD({2, 3}, {0, 1, 0, 1, 0, 0}));
  CHECK(mse(TD({2}, {1, 2}), TD({2}, {3, 2})).item() == 2.0);
  check_throws_with<value_error>([&] { (void)cross_entropy(x, {3, 0}); }, {"cross_entropy", "label 3", "[0, 3)"});
  check_throws_with<shape_error>([&] { (void)cross_entropy(x, {0}); }, {"cross_entropy", "1 labels", "[2, 3]"});
  check_throws_with<shape_error>([&] { (void)cross_entropy(TD::ones({3}), {0}); }, {"rank 2"});
  check_throws_with<shape_error>([&] { (void)mse(x, TD::ones({3})); }, {"mse"});
}

TEST_CASE("indexing") {
  const TD x({3, 2}, {1, 2, 3, 4, 5, 6});
  CHECK(gather_rows(x, {2, 0, 2}) == TD({3, 2}, {5, 6, 1, 2, 5, 6}));
  CHECK(scatter_add_rows(TD::ones({3, 2}), {2, 0, 2}, 4) == TD({4, 2}, {1, 1, 0, 0, 2, 2, 0, 0}));
  CHECK(slice(x, 0, 1, 2) == TD({2, 2}, {3, 4, 5, 6}));
  CHECK(slice(x, 1, 1, 1) == TD({3, 1}, {2, 4, 6}));
  CHECK(pad(TD({2, 1}, {7, 8}), 1, 1, 1) == TD({2, 3}, {0, 7, 0, 0, 8, 0}));
  CHECK(concat<double>({x, TD({3, 1}, {9, 9, 9})}, 1) == TD({3, 3}, {1, 2, 9, 3, 4, 9, 5, 6, 9}));
  CHECK(concat<double>({x, x}, 0).shape() == Shape{6, 2});
  CHECK(reshape(x, {2, 3})(1, 0) == 4.0);
  CHECK(squeeze(TD({1, 3}, {1, 2, 3}), 0) == TD({3}, {1, 2, 3}));
  CHECK(squeeze(TD({3, 1}, {1, 2, 3}), -1) == TD({3}, {1, 2, 3}));
  CHECK(unsqueeze(x, 1).shape() == Shape{3, 1, 2});
  CHECK(unsqueeze(x, -1).shape() == Shape{3, 2, 1});
  CHECK(unsqueeze(TD::scalar(5), 0) == TD({1}, {5}));
  check_throws_with<shape_error>([&] { (void)squeeze(x, 0); }, {"squeeze", "axis 0", "[3, 2]", "extent 3"});
  check_throws_with<value_error>([&] { (void)unsqueeze(x, 3); }, {"unsqueeze", "axis 3", "[3, 2]"});
  check_throws_with<shape_error>([] { (void)unsqueeze(TD::ones({1, 1, 1, 1}), 0); }, {"unsqueeze", "rank, 4"});
  CHECK(stop_gradient(x) == x);
  check_throws_with<value_error>([&] { (void)gather_rows(x, {3}); }, {"gather_rows", "index 3", "3 rows"});
  check_throws_with<value_error>([&] { (void)scatter_add_rows(x, {0, 1, 5}, 4); }, {"scatter_add_rows", "index 5"});
  check_throws_with<shape_error>([&] { (void)scatter_add_rows(x, {0}, 4); }, {"scatter_add_rows", "1 indices"});
  check_throws_with<value_error>([&] { (void)slice(x, 0, 2, 2); }, {"slice", "[2, 4)", "[3, 2]"});
  check_throws_with<value_error>([&] { (void)pad(x, 0, -1, 0); }, {"pad", "negative"});
  check_throws_with<shape_error>([&] { (void)concat<double>({x, TD::ones({2, 2})}, 1); }, {"concat", "[2, 2]"});
  check_throws_with<value_error>([&] { (void)concat(std::vector<TD>{}, 0); }, {"concat"});
}

TEST_CASE("gathers along any axis and at flat positions, and their adjoints") {
  const TD x({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(index_select(x, 1, {2, 0, 2}) == TD({2, 3}, {3, 1, 3, 6, 4, 6}));
  CHECK(index_select(x, 0, {1}) == gather_rows(x, {1}));
  CHECK(index_select(x, -1, {}) == TD::zeros({2, 0}));
  CHECK(index_add(TD::ones({2, 3}), 1, {2, 0, 2}, 4) == TD({2, 4}, {1, 0, 2, 0, 1, 0, 2, 0}));
  CHECK(index_add(x, 0, {1, 1}, 2) == TD({2, 3}, {0, 0, 0, 5, 7, 9}));
  const TD cube = randn({2, 3, 4}, 85);  // a middle axis against loops
  const TD picked = index_select(cube, 1, {1, 1, 0});
  for (index_t i = 0; i < 2; ++i)
    for (index_t k = 0; k < 4; ++k) {
      CHECK(picked(i, 0, k) == cube(i, 1, k));
      CHECK(picked(i, 2, k) == cube(i, 0, k));
    }
  // ⟨index_select(u), v⟩ = ⟨u, index_add(v)⟩: the two are adjoint, and so are take and scatter_add.
  const IndexVector idx = {2, 0, 2, 1};
  const TD u = randn({2, 3, 4}, 86), v = randn({2, 3, 4}, 87);
  CHECK(dot(index_select(u, 2, idx), v).item() == doctest::Approx(dot(u, index_add(v, 2, idx, 4)).item()).epsilon(1e-14));
  CHECK(take(x, {5, 0, 5}) == TD({3}, {6, 1, 6}));
  CHECK(scatter_add(TD({3}, {1, 2, 3}), {0, 4, 0}, Shape{2, 3}) == TD({2, 3}, {4, 0, 0, 0, 2, 0}));
  const IndexVector positions = {23, 0, 7, 7};
  const TD w = randn({4}, 88);
  CHECK(dot(take(u, positions), w).item() == doctest::Approx(dot(u, scatter_add(w, positions, u.shape())).item()).epsilon(1e-14));
  // A triangular matrix from a vector, as a Cholesky factor's off-diagonal entries are stored.
  CHECK(scatter_add(TD({3}, {1, 2, 3}), {3, 6, 7}, Shape{3, 3}) == TD({3, 3}, {0, 0, 0, 1, 0, 0, 2, 3, 0}));
  check_throws_with<value_error>([&] { (void)index_select(x, 1, {3}); }, {"index_select", "index 3", "3 slabs"});
  check_throws_with<value_error>([&] { (void)index_add(x, 1, {0, 1, 4}, 4); }, {"index_add", "index 4"});
  check_throws_with<shape_error>([&] { (void)index_add(x, 1, {0}, 4); }, {"index_add", "1 indices", "3 slabs"});
  check_throws_with<value_error>([&] { (void)take(x, {-1}); }, {"take", "index -1", "6 elements"});
  check_throws_with<shape_error>([&] { (void)scatter_add(x, {0}, Shape{2}); }, {"scatter_add", "[2, 3]", "1 positions"});
  check_throws_with<value_error>([&] { (void)scatter_add(TD({1}, {1}), {2}, Shape{2}); }, {"scatter_add", "index 2"});
}

TEST_CASE("constant_like: a tensor on either carrier, in code written once") {
  const auto identity_plus = [](const auto& x) { return x + constant_like(x, TD::eye(2)); };
  CHECK(identity_plus(TD::ones({2, 2})) == TD({2, 2}, {2, 1, 1, 2}));
  Tape<double> tape;
  const VD x = tape.variable(TD::ones({2, 2}));
  const VD y = identity_plus(x);
  CHECK(y.value() == TD({2, 2}, {2, 1, 1, 2}));
  CHECK(grad(sum(y), {x})[0] == TD::ones({2, 2}));  // the constant takes no gradient
}

TEST_CASE("every op gives the same value on a Var as on a plain tensor, and both match loops over std:: math") {
  Tape<double> tape;
  const TD a0 = randn({3, 4}, 1), b0 = randu({3, 4}, 2, 0.5, 1.5);
  const VD a = tape.variable(a0), b = tape.variable(b0);
  // The reference: each formula written element by element with <cmath>, not with the library's ops.
  const auto close = [](double got, double want) { return std::abs(got - want) <= 1e-14 * std::max(1.0, std::abs(want)); };
  const auto ref = [&](index_t i, index_t j) { return std::pair{a0(i, j), b0(i, j)}; };
  const TD arithmetic = (a * b - a / b + a).value(), smooth = tanh(sigmoid(softplus(a))).value();
  const TD product = matmul(a, b, false, true).value(), lse = logsumexp(a, 1).value(), ce = cross_entropy(a, {0, 1, 3}).value();
  const IndexVector labels = {0, 1, 3};
  for (index_t i = 0; i < 3; ++i) {
    double row_max = -INFINITY, row_sum = 0;
    for (index_t j = 0; j < 4; ++j) row_max = std::max(row_max, a0(i, j));
    for (index_t j = 0; j < 4; ++j) row_sum += std::exp(a0(i, j) - row_max);
    CHECK(close(lse.data()[i], row_max + std::log(row_sum)));
    CHECK(close(ce.data()[i], row_max + std::log(row_sum) - a0(i, labels[static_cast<std::size_t>(i)])));
    for (index_t j = 0; j < 4; ++j) {
      const auto [x, y] = ref(i, j);
      CHECK(close(arithmetic(i, j), x * y - x / y + x));
      CHECK(close(smooth(i, j), std::tanh(1 / (1 + std::exp(-std::log1p(std::exp(x)))))));
    }
    for (index_t k = 0; k < 3; ++k) {
      double dot = 0;
      for (index_t j = 0; j < 4; ++j) dot += a0(i, j) * b0(k, j);
      CHECK(close(product(i, k), dot));
    }
  }
  CHECK(arithmetic == a0 * b0 - a0 / b0 + a0);
  CHECK(smooth == tanh(sigmoid(softplus(a0))));
  CHECK(product == matmul(a0, b0, false, true));
  CHECK(lse == logsumexp(a0, 1));
  CHECK(ce == cross_entropy(a0, labels));
  const TD stacked = concat({a, b}, 0).value();
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < 4; ++j) CHECK((stacked(i, j) == a0(i, j) && stacked(i + 3, j) == b0(i, j)));
  check_throws_with<shape_error>([&] { (void)matmul(a, b); }, {"matmul", "[3, 4]"});
  check_throws_with<value_error>([&] { (void)log(a); }, {"log"});
  check_throws_with<value_error>([&] { (void)(a / 0.0); }, {"div", "0"});
}

}  // TEST_SUITE
