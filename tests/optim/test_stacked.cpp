// Stacked hyperoptimizers: SGD over SGD is SGD-HD; deeper stacks and Adam levels learn their hyperparameters.
#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

namespace {

// f(θ) = Σ a (θ − c)², a = (1, 3), c = (0.5, −1): a gradient that depends on θ, so the trajectories differ by rule.
const TD a({2}, {1.0, 3.0}), c({2}, {0.5, -1.0});
VD quadratic(const VD& theta) { return sum(square(theta - c) * a); }
TD quadratic_gradient(const TD& theta) { return (theta - c) * a * 2.0; }

}  // namespace

TEST_SUITE("stacked hyperoptimizers") {

TEST_CASE("SGD over SGD with meta step size κ is SGD-HD with β = κ") {
  const double alpha0 = 0.05, kappa = 0.002;
  StackedOptimizer<double> stacked({{.step_size = alpha0}, {.step_size = kappa}}, {TD({2}, {2.0, 1.0})});
  const auto hd = chain(Sgd<>{}, HypergradientStepSize<>{.initial = alpha0, .beta = kappa});
  ParamList<TD> params = {TD({2}, {2.0, 1.0})};
  auto state = hd.init(params);
  for (int t = 0; t < 12; ++t) {
    Tape<double> tape;
    const auto theta = stacked.begin_step(tape);
    stacked.finish_step(quadratic(theta[0]));
    // The stacked optimizer has just evaluated the loss at θ_t; SGD-HD holds θ_t too before its step t + 1.
    for (index_t i = 0; i < 2; ++i) CHECK(stacked.params()[0].data()[i] == doctest::Approx(params[0].data()[i]).epsilon(1e-13));
    // …and both hold the α that produced θ_t.
    CHECK(stacked.step_size() == doctest::Approx(state.step_size.step_size).epsilon(1e-13));
    const TD g = quadratic_gradient(params[0]);  // before params is moved into the call
    std::tie(params, state) = hd.step(std::move(params), {g}, std::move(state));
  }
  CHECK(stacked.step_size() != alpha0);  // α did move
}

TEST_CASE("deeper stacks and Adam levels reduce the loss and move their hyperparameters") {
  auto final_loss = [](std::vector<StackLevel<double>> levels, int steps) {
    StackedOptimizer<double> opt(std::move(levels), {TD({2}, {2.0, 1.0})});
    double loss = 0;
    for (int t = 0; t < steps; ++t) {
      Tape<double> tape;
      loss = opt.finish_step(quadratic(opt.begin_step(tape)[0]));
    }
    return std::pair{loss, opt};
  };
  // Adam at the bottom, SGD above: α, β1 and β2 all receive hypergradients.
  auto [adam_loss, adam_opt] =
      final_loss({{.rule = StackRule::adam, .step_size = 0.05}, {.step_size = 1e-4}}, 60);
  CHECK(adam_loss < 0.05);
  CHECK(adam_opt.hyperparameters(0).size() == 3);
  CHECK(adam_opt.hyperparameters(0)[0] != 0.05);
  CHECK(adam_opt.hyperparameters(0)[1] != 0.9);
  CHECK(adam_opt.hyperparameters(0)[2] != 0.999);
  CHECK(adam_opt.hyperparameters(1)[0] == 1e-4);  // the top level is fixed
  // Three levels: SGD over SGD over SGD; the middle level's κ moves as well.
  auto [deep_loss, deep_opt] = final_loss({{.step_size = 0.02}, {.step_size = 1e-3}, {.step_size = 1e-5}}, 40);
  CHECK(deep_loss < 1e-3);
  CHECK(deep_opt.step_size(1) != 1e-3);
  CHECK(deep_opt.step_size(2) == 1e-5);
  // An Adam level above an SGD level.
  auto [meta_adam_loss, meta_adam_opt] = final_loss({{.step_size = 0.02}, {.rule = StackRule::adam, .step_size = 1e-3}}, 40);
  const double plain_sgd_loss = final_loss({{.step_size = 0.02}}, 40).first;  // one level: SGD at a fixed α
  CHECK(meta_adam_loss < 0.5 * plain_sgd_loss);
  CHECK(deep_loss < 0.5 * plain_sgd_loss);
  CHECK(meta_adam_opt.step_size(0) != 0.02);
}

TEST_CASE("misuse of a stacked optimizer") {
  CHECK_THROWS_AS(StackedOptimizer<double>({}, {TD::ones({2})}), value_error);
  StackedOptimizer<double> opt({{.step_size = 0.1}}, {TD::ones({2})});
  Tape<double> tape;
  CHECK_THROWS_AS((void)opt.finish_step(tape.constant(TD::scalar(1.0))), tape_error);
  const auto theta = opt.begin_step(tape);
  check_throws_with<value_error>([&] { (void)opt.finish_step(sum(theta[0]) * NAN); }, {"loss", "step 1"});
}

}  // TEST_SUITE
