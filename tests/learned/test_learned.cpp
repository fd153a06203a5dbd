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

TEST_CASE("LstmOptimizer: one step by hand, shapes, state, errors, and use as an update rule") {
  const auto opt = LstmOptimizer<TD>::initial(5, 11);
  opt.check();
  const std::vector<TD> params = {randn({2, 3}, 1), randn({4}, 2)};
  const std::vector<TD> grads = {randn({2, 3}, 3), randn({4}, 4)};
  auto state = opt.init(params);
  CHECK(state.hidden1.shape() == Shape{10, 5});
  // Two steps, the second from the first's state, against the same computation written out.
  TD h1 = TD::zeros({10, 5}), c1 = h1, h2 = h1, c2 = h1;
  for (int step = 0; step < 2; ++step) {
    auto [d, next] = opt.direction(params, grads, std::move(state));
    state = std::move(next);
    const TD g = concat(std::vector<TD>{reshape(grads[0], {6}), grads[1]}, 0);
    std::tie(h1, c1) = lstm_cell(preprocess_gradient(g, GradientPreprocessing::paper()), h1, c1, opt.layer1);
    std::tie(h2, c2) = lstm_cell(h1, h2, c2, opt.layer2);
    const TD out = matmul(h2, opt.output_weight) + opt.output_bias;
    REQUIRE(d.size() == 2);
    CHECK(d[0].shape() == Shape{2, 3});
    for (index_t i = 0; i < 6; ++i) CHECK(d[0].data()[i] == doctest::Approx(-0.1 * out(i, 0)).epsilon(1e-14));
    for (index_t i = 0; i < 4; ++i) CHECK(d[1].data()[i] == doctest::Approx(-0.1 * out(6 + i, 0)).epsilon(1e-14));
    CHECK(state.cell2 == c2);
  }
  // As an update rule: chained with step size 1, θ' = θ + scale · out.
  const auto chained = chain(opt, ConstantStepSize<double>{1.0});
  auto s = chained.init(params);
  const auto [next_params, next_state] = chained.step(params, grads, s);
  const auto [d, unused] = opt.direction(params, grads, opt.init(params));
  CHECK(next_params[1] == params[1] - d[1]);
  check_throws_with<shape_error>([&] { opt.direction(std::vector<TD>{randn({3}, 5)}, std::vector<TD>{randn({3}, 6)}, opt.init(params)); },
                                 {"LstmOptimizer", "[10, 5]", "3 coordinates"});
  auto w = opt.weights();
  w[3] = randn({4, 20}, 7);
  check_throws_with<shape_error>([&] { opt.with_weights(w); }, {"LstmOptimizer", "layer2.input", "[4, 20]", "[5, 20]"});
  check_throws_with<value_error>([] { LstmOptimizer<TD>::initial(0, 1); }, {"0 hidden units"});
}
