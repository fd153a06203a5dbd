// Stacked hyperoptimizers: SGD over SGD is SGD-HD; deeper stacks and Adam levels learn their hyperparameters; the
// state saves, loads and resumes like every optimizer's.
#include <filesystem>
#include <random>

#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

namespace {

// f(θ) = Σ a (θ − c)², a = (1, 3), c = (0.5, −1): a gradient that depends on θ, so the trajectories differ by rule.
const TD a({2}, {1.0, 3.0}), c({2}, {0.5, -1.0});
double quadratic(const TD& theta) { return sum(square(theta - c) * a).item(); }
TD quadratic_gradient(const TD& theta) { return (theta - c) * a * 2.0; }

/// Runs `steps` steps of opt from θ₀ = (2, 1); returns the loss at the last parameters, and the optimizer's state.
auto run(const StackedOptimizer<double>& opt, int steps) {
  ParamList<TD> params = {TD({2}, {2.0, 1.0})};
  auto state = opt.init(params);
  for (int t = 0; t < steps; ++t) {
    const TD g = quadratic_gradient(params[0]);
    std::tie(params, state) = opt.step(std::move(params), {g}, std::move(state));
  }
  return std::pair{quadratic(params[0]), state};
}

}  // namespace

TEST_SUITE("stacked hyperoptimizers") {

TEST_CASE("SGD over SGD with meta step size κ is SGD-HD with β = κ") {
  const double alpha0 = 0.05, kappa = 0.002;
  const StackedOptimizer<double> stacked({{.step_size = alpha0}, {.step_size = kappa}});
  const auto hd = chain(Sgd<>{}, HypergradientStepSize<>{.initial = alpha0, .beta = kappa});
  ParamList<TD> params = {TD({2}, {2.0, 1.0})}, stacked_params = params;
  auto state = hd.init(params);
  auto stacked_state = stacked.init(stacked_params);
  for (int t = 0; t < 12; ++t) {
    // Both hold θ_t and the α that produced it.
    for (index_t i = 0; i < 2; ++i)
      CHECK(stacked_params[0].data()[i] == doctest::Approx(params[0].data()[i]).epsilon(1e-13));
    CHECK(stacked.step_size(stacked_state) == doctest::Approx(state.step_size.step_size).epsilon(1e-13));
    const TD g = quadratic_gradient(params[0]), stacked_g = quadratic_gradient(stacked_params[0]);
    std::tie(params, state) = hd.step(std::move(params), {g}, std::move(state));
    std::tie(stacked_params, stacked_state) = stacked.step(std::move(stacked_params), {stacked_g}, std::move(stacked_state));
  }
  CHECK(stacked.step_size(stacked_state) != alpha0);  // α did move
}

TEST_CASE("deeper stacks and Adam levels reduce the loss and move their hyperparameters") {
  using Levels = std::vector<StackLevel<double>>;
  // Adam at the bottom, SGD above: α, β1 and β2 all receive hypergradients.
  const StackedOptimizer<double> adam_opt(Levels{{.rule = StackRule::adam, .step_size = 0.05}, {.step_size = 1e-4}});
  const auto [adam_loss, adam_state] = run(adam_opt, 60);
  CHECK(adam_loss < 0.05);
  const auto adam_hyper = adam_opt.hyperparameters(adam_state, 0);
  CHECK(adam_hyper.size() == 3);
  CHECK(adam_hyper[0] != 0.05);
  CHECK(adam_hyper[1] != 0.9);
  CHECK(adam_hyper[2] != 0.999);
  CHECK(adam_opt.hyperparameters(adam_state, 1)[0] == 1e-4);  // the top level is fixed
  // Three levels: SGD over SGD over SGD; the middle level's κ moves as well.
  const StackedOptimizer<double> deep(Levels{{.step_size = 0.02}, {.step_size = 1e-3}, {.step_size = 1e-5}});
  const auto [deep_loss, deep_state] = run(deep, 40);
  CHECK(deep_loss < 1e-3);
  CHECK(deep.step_size(deep_state, 1) != 1e-3);
  CHECK(deep.step_size(deep_state, 2) == 1e-5);
  // An Adam level above an SGD level.
  const StackedOptimizer<double> meta_adam(Levels{{.step_size = 0.02}, {.rule = StackRule::adam, .step_size = 1e-3}});
  const auto [meta_adam_loss, meta_adam_state] = run(meta_adam, 40);
  const double plain_sgd_loss = run(StackedOptimizer<double>(Levels{{.step_size = 0.02}}), 40).first;  // SGD, fixed α
  CHECK(meta_adam_loss < 0.5 * plain_sgd_loss);
  CHECK(deep_loss < 0.5 * plain_sgd_loss);
  CHECK(meta_adam.step_size(meta_adam_state, 0) != 0.02);
}

TEST_CASE("an Adam level's hypergradients of α, β1 and β2 match finite differences") {
  // After a step from θ_t, level 0's hypergradients are ∂f(θ_t)/∂(α, β1, β2) at the values that produced θ_t from
  // θ_{t−1} (the level above moves them by a constant, so perturbing them before or after that move is the same).
  // By hand: θ_t = θ_{t−1} − α · Adam's direction(g_{t−1}; β1, β2) from the moments before that step.
  const StackedOptimizer<double> opt({{.rule = StackRule::adam, .step_size = 0.05}, {.step_size = 1e-4}});
  ParamList<TD> params = {TD({2}, {2.0, 1.0})};
  auto state = opt.init(params);
  for (int t = 0; t < 6; ++t) std::tie(params, state) = opt.step(std::move(params), {quadratic_gradient(params[0])}, std::move(state));
  const auto before = state;  // produced θ_6 from θ_5
  const auto [next, after] = opt.step(params, {quadratic_gradient(params[0])}, state);
  const auto loss_after_step = [&](std::size_t j, double delta) {
    std::vector<double> h;
    for (const auto& x : before.levels[0].hyperparameters) h.push_back(x.item());
    h[j] += delta;
    const Adam<double> adam{.beta1 = h[1], .beta2 = h[2]};
    const auto d = adam.direction(before.previous_params, before.previous_grads, before.previous[0].adam).first;
    return quadratic(apply_step(before.previous_params, d, h[0])[0]);
  };
  CHECK(loss_after_step(0, 0) == doctest::Approx(quadratic(params[0])).epsilon(1e-14));  // the hand step is the step taken
  const char* names[] = {"α", "β1", "β2"};
  for (std::size_t j = 0; j < 3; ++j) {
    const double h = 1e-6;
    check_derivative(after.levels[0].hypergradients[j].item(), loss_after_step(j, h), loss_after_step(j, -h), h, 1e-6, names[j]);
  }
}

TEST_CASE("a stacked optimizer's state saves, loads and resumes bit for bit") {
  namespace fs = std::filesystem;
  const TempDir temp;
  const fs::path dir = temp / "state.npz";
  const StackedOptimizer<double> opt(
      {{.rule = StackRule::adam, .step_size = 0.05}, {.step_size = 1e-4}, {.rule = StackRule::adam, .step_size = 1e-6}});
  ParamList<TD> params = {TD({2}, {2.0, 1.0})};
  auto state = opt.init(params);
  auto step = [&](ParamList<TD>& p, auto& s) {
    const TD g = quadratic_gradient(p[0]);
    std::tie(p, s) = opt.step(std::move(p), {g}, std::move(s));
  };
  for (int t = 0; t < 7; ++t) step(params, state);
  save_state(dir, state);
  auto loaded = opt.init(params);
  load_state(dir, loaded);
  ParamList<TD> resumed = params;
  for (int t = 0; t < 5; ++t) {
    step(params, state);
    step(resumed, loaded);
  }
  CHECK(resumed[0] == params[0]);
  CHECK(opt.hyperparameters(loaded, 0) == opt.hyperparameters(state, 0));
  CHECK(opt.hyperparameters(loaded, 1) == opt.hyperparameters(state, 1));
  auto other = opt.init({TD::ones({3})});
  CHECK_THROWS_AS(load_state(dir, other), io_error);
}

TEST_CASE("misuse of a stacked optimizer; a step that throws changes nothing") {
  CHECK_THROWS_AS(StackedOptimizer<double>({}), value_error);
  const StackedOptimizer<double> opt({{.step_size = 0.1}, {.step_size = 0.01}});
  ParamList<TD> params = {TD::ones({2})};
  auto state = opt.init(params);
  std::tie(params, state) = opt.step(std::move(params), {TD::ones({2})}, std::move(state));
  const TD before = params[0];
  const double alpha = opt.step_size(state);
  check_throws_with<training_error>([&] { (void)opt.step(std::move(params), {TD({2}, {NAN, 1.0})}, std::move(state)); },
                                    {"gradient 0", "NaN", "step 1"});
  CHECK(params[0] == before);
  CHECK(opt.step_size(state) == alpha);
  CHECK(state.steps == 1);
  CHECK_THROWS_AS((void)opt.step(params, {TD::ones({3})}, state), shape_error);
  CHECK_THROWS_AS((void)opt.step({TD::ones({3})}, {TD::ones({3})}, state), shape_error);
}

}  // TEST_SUITE
