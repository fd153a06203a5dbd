// The learned optimizer: gradient preprocessing.
#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

TEST_CASE("gradient preprocessing: the paper's and the published code's log-and-sign features") {
  const TD g = TD::from_eigen(Eigen::VectorXd{{0.5, -2e-5, 0.0, 1e3, -0.01}}).reshape({5});
  const TD paper = preprocess_gradient(g, GradientPreprocessing::paper());
  REQUIRE(paper.shape() == Shape{5, 2});
  const double e10 = std::exp(10.0);
  const double expected_paper[5][2] = {{std::log(0.5) / 10, 1}, {-1, -2e-5 * e10}, {-1, 0}, {std::log(1e3) / 10, 1}, {std::log(0.01) / 10, -1}};
  for (index_t i = 0; i < 5; ++i)
    for (index_t k = 0; k < 2; ++k) CHECK(paper(i, k) == doctest::Approx(expected_paper[i][k]).epsilon(1e-14));
  const TD code = preprocess_gradient(g, GradientPreprocessing::published_code());
  const double eps = std::numeric_limits<double>::epsilon(), e5 = std::exp(5.0);
  const double expected_code[5][2] = {{std::log(0.5 + eps) / 5, 1}, {-1, -2e-5 * e5}, {-1, 0}, {std::log(1e3 + eps) / 5, 1}, {std::log(0.01 + eps) / 5, -1}};
  for (index_t i = 0; i < 5; ++i)
    for (index_t k = 0; k < 2; ++k) CHECK(code(i, k) == doctest::Approx(expected_code[i][k]).epsilon(1e-14));
  CHECK(preprocess_gradient(g, {GradientPreprocessing::none, 1}) == g.reshape({5, 1}));
  // The two branches of the paper's form meet at |g| = e^−p: (−1, ±1) from both sides.
  const TD edge = TD::from_eigen(Eigen::VectorXd{{std::exp(-10.0), std::exp(-10.0) * (1 - 1e-12)}}).reshape({2});
  const TD at_edge = preprocess_gradient(edge, GradientPreprocessing::paper());
  CHECK(at_edge(0, 0) == doctest::Approx(at_edge(1, 0)).epsilon(1e-9));
  CHECK(at_edge(0, 1) == doctest::Approx(at_edge(1, 1)).epsilon(1e-9));
  check_throws_with<shape_error>([] { preprocess_gradient(TD::ones({2, 2}), GradientPreprocessing::paper()); }, {"preprocess_gradient", "[2, 2]"});
  check_throws_with<value_error>([] { preprocess_gradient(TD::ones({2}), {GradientPreprocessing::log_and_sign, 0}); }, {"p = 0"});
}

TEST_CASE("gradient preprocessing is differentiable away from its kinks, on a tape") {
  // Coordinates in both branches of the paper's form and inside the clipped form's linear ranges.
  const TD g = TD::from_eigen(Eigen::VectorXd{{0.3, -1e-5, 2e-6, -0.7}}).reshape({4});
  for (const auto& pre : {GradientPreprocessing::paper(), GradientPreprocessing{GradientPreprocessing::log_and_sign_clipped, 0.5}}) {
    const TD weights = randn({4, 2}, 3);
    check_first_and_second_order([&](const Vars& v) { return sum(preprocess_gradient(v[0], pre) * weights); }, {g});
  }
}
