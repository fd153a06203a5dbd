// Step-size policies chained with update rules: constant, scheduled, and hypergradient descent in its additive,
// multiplicative, clamped and decaying forms, against trajectories derived by hand (PAPERS.md §1).
#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

namespace {

// θ0 = (1, −0.5) and fixed gradients g1, g2, g3 (g2·g1 = −0.44, g3·g2 = −2.03), as in the update-rule tests.
const std::vector<TD> fixed_grads = {TD({2}, {0.5, 0.2}), TD({2}, {-1.0, 0.3}), TD({2}, {2.0, -0.1})};

struct Trajectory {
  TD final_params;
  std::vector<double> step_sizes;  // the α each step used
  double current_step_size = 0;    // the optimizer's report after the last step
};

template <class Rule, class Policy>
Trajectory run(const Rule& rule, const Policy& policy) {
  const auto opt = chain(rule, policy);
  ParamList<TD> params = {TD({2}, {1.0, -0.5})};
  auto state = opt.init(params);
  Trajectory out;
  for (const auto& g : fixed_grads) {
    const TD before = params[0];
    std::tie(params, state) = opt.step(std::move(params), {g}, std::move(state));
    // The α used, from θ' = θ − α g: meaningful for SGD, whose direction is g.
    out.step_sizes.push_back((before.data()[0] - params[0].data()[0]) / g.data()[0]);
  }
  out.final_params = params[0];
  out.current_step_size = opt.current_step_size(state);
  return out;
}

void check_close(const TD& got, const TD& want, double tol = 1e-14) {
  for (index_t i = 0; i < want.size(); ++i) CHECK(got.data()[i] == doctest::Approx(want.data()[i]).epsilon(tol));
}

}  // namespace

TEST_SUITE("step sizes") {

TEST_CASE("constant and scheduled step sizes") {
  const auto constant = run(Sgd<>{}, ConstantStepSize<>{0.1});
  check_close(constant.final_params, TD({2}, {0.85, -0.54}));
  const auto scheduled = run(Sgd<>{}, ScheduledStepSize<>{TD({3}, {0.1, 0.2, 0.05})});
  CHECK(scheduled.step_sizes[1] == doctest::Approx(0.2));
  CHECK(scheduled.current_step_size == 0.05);
  CHECK(constant.current_step_size == 0.1);
  check_close(scheduled.final_params, TD({2}, {1.0 - 0.05 + 0.2 - 0.1, -0.5 - 0.02 - 0.06 + 0.005}));
  // Too short a schedule is an error, not a silent reuse of its last value.
  const auto opt = chain(Sgd<>{}, ScheduledStepSize<>{TD({1}, {0.1})});
  ParamList<TD> p = {TD::ones({2})};
  auto s = opt.init(p);
  std::tie(p, s) = opt.step(std::move(p), {TD::ones({2})}, std::move(s));
  check_throws_with<value_error>([&] { (void)opt.step(p, {TD::ones({2})}, s); }, {"ScheduledStepSize", "step 1", "1 steps"});
}

TEST_CASE("a differentiable schedule entry") {
  Tape<double> tape;
  const VD schedule = tape.variable(TD({3}, {0.1, 0.2, 0.3}));
  const VD a2 = schedule_at(schedule, 1);  // steps count from 0
  CHECK(a2.value().item() == 0.2);
  CHECK(grad(a2 * 5.0, {schedule})[0] == TD({3}, {0, 5, 0}));
  check_throws_with<value_error>([&] { (void)schedule_at(schedule, 3); }, {"schedule_at", "step 3", "from 0", "[3]"});
  CHECK_THROWS_AS((void)schedule_at(schedule, -1), value_error);
}

TEST_CASE("SGD-HD: α_t = α_{t−1} + β g_t·g_{t−1}") {
  // α1 = 0.1; α2 = 0.1 + 0.01·(−0.44) = 0.0956; α3 = 0.0956 + 0.01·(−2.03) = 0.0753.
  const auto r = run(Sgd<>{}, HypergradientStepSize<>{.initial = 0.1, .beta = 0.01});
  CHECK(r.step_sizes[0] == doctest::Approx(0.1).epsilon(1e-14));
  CHECK(r.step_sizes[1] == doctest::Approx(0.0956).epsilon(1e-14));
  CHECK(r.step_sizes[2] == doctest::Approx(0.0753).epsilon(1e-14));
  CHECK(r.current_step_size == doctest::Approx(0.0753).epsilon(1e-14));
  check_close(r.final_params, TD({2}, {0.8949999999999998, -0.54115000000000002}));
}

TEST_CASE("multiplicative SGD-HD: α_t = α_{t−1} (1 + β cos(g_t, g_{t−1}))") {
  const auto r = run(Sgd<>{}, HypergradientStepSize<>{.initial = 0.1, .beta = 0.02, .multiplicative = true});
  CHECK(r.step_sizes[1] == doctest::Approx(0.098434797891648718).epsilon(1e-14));
  CHECK(r.step_sizes[2] == doctest::Approx(0.096523232090292108).epsilon(1e-14));
  check_close(r.final_params, TD({2}, {0.85538833371106437, -0.53987811615846548}));
}

TEST_CASE("SGDN-HD and Adam-HD use the previous step's direction of their rule") {
  // SGDN: d1 = g1 + 0.9 v1 = 1.9 g1, so α2 = 0.1 + 0.01 g2·(1.9 g1) = 0.09164.
  check_close(run(Nesterov<>{.momentum = 0.9}, HypergradientStepSize<>{.initial = 0.1, .beta = 0.01}).final_params,
              TD({2}, {0.83735046400000002, -0.61720887040000005}));
  // Adam: d1 = m̂1/(√v̂1 + ε) ≈ sign(g1), so α2 ≈ 0.1 + 0.01 (−1 + 0.3) = 0.093.
  check_close(run(Adam<>{}, HypergradientStepSize<>{.initial = 0.1, .beta = 0.01}).final_params,
              TD({2}, {0.89850820315964097, -0.74017692117748435}));
}

TEST_CASE("safeguards: clamping and HD with decay") {
  const auto clamped = run(Sgd<>{}, HypergradientStepSize<>{.initial = 0.1, .beta = 0.01, .min_step_size = 0.09});
  CHECK(clamped.step_sizes[2] == doctest::Approx(0.09));
  check_close(clamped.final_params, TD({2}, {0.86559999999999993, -0.53968000000000005}));
  // γ_t = α_t / t² + (1 − 1/t²) α_∞ with α_∞ = 0.05: γ2 = 0.0956/4 + 0.75·0.05 = 0.0614.
  const auto decayed = run(Sgd<>{}, HypergradientStepSize<>{.initial = 0.1, .beta = 0.01, .limit_step_size = 0.05});
  CHECK(decayed.step_sizes[1] == doctest::Approx(0.0614).epsilon(1e-14));
  check_close(decayed.final_params, TD({2}, {0.90577777777777779, -0.53313888888888894}));
  CHECK_THROWS_AS((void)chain(Sgd<>{}, HypergradientStepSize<>{.min_step_size = 1, .max_step_size = 0}).init({TD::ones({1})}),
                  value_error);
}

TEST_CASE("a non-finite hypergradient stops with the step named") {
  const auto opt = chain(Sgd<>{}, HypergradientStepSize<>{});
  ParamList<TD> p = {TD::ones({2})};
  auto s = opt.init(p);
  std::tie(p, s) = opt.step(std::move(p), {TD::full({2}, 1e200)}, std::move(s));
  // Finite gradients whose hypergradient g·d overflows: step 1 (steps count from 0).
  check_throws_with<training_error>([&] { (void)opt.step(p, {TD::full({2}, 1e200)}, s); }, {"hypergradient", "step 1"});
  check_throws_with<training_error>([&] { (void)opt.step(p, {TD({2}, {NAN, 1.0})}, s); }, {"gradient 0", "NaN", "step 1"});
}

/// Every leaf of an optimizer state — tensors, step sizes, counters — as a list of tensors, to compare states whole.
template <class State>
std::vector<TD> state_values(const State& state) {
  std::vector<TD> out;
  tree_for_each([&](const TreePath&, const auto& v) {
    if constexpr (requires { v.shape(); }) out.push_back(v);
    else out.push_back(TD::scalar(static_cast<double>(v)));
  }, state);
  return out;
}

TEST_CASE("a step that throws leaves the caller's parameters and state as they were") {
  auto check_strong = [](const char* name, const auto& opt) {
    CAPTURE(name);
    ParamList<TD> params = {randn({3, 2}, 1), randn({2}, 2)};
    auto state = opt.init(params);
    for (int t = 0; t < 2; ++t) {
      const ParamList<TD> g = {randn({3, 2}, 10 + t), randn({2}, 20 + t)};
      std::tie(params, state) = opt.step(std::move(params), g, std::move(state));
    }
    const auto params_before = params;
    const auto state_before = state;
    auto unchanged = [&] {
      return params == params_before && state_values(state) == state_values(state_before);
    };
    const ParamList<TD> nan_grad = {randn({3, 2}, 30), TD({2}, {1.0, NAN})};
    check_throws_with<training_error>([&] { (void)opt.step(std::move(params), nan_grad, std::move(state)); },
                                      {"gradient 1", "NaN", "step 2"});
    CHECK(unchanged());
    const ParamList<TD> inf_grad = {TD::full({3, 2}, INFINITY), TD::ones({2})};
    CHECK_THROWS_AS((void)opt.step(std::move(params), inf_grad, std::move(state)), training_error);
    CHECK(unchanged());
    check_throws_with<shape_error>([&] { (void)opt.step(std::move(params), {TD::ones({2, 3}), TD::ones({2})}, std::move(state)); },
                                   {"gradient 0", "[2, 3]", "[3, 2]"});
    CHECK(unchanged());
    auto other_state = opt.init({TD::ones({4}), TD::ones({2})});  // a state of other parameters (SGD's holds nothing)
    if (!tree_paths(other_state).empty()) {
      check_throws_with<shape_error>([&] { (void)opt.step(std::move(params), {TD::ones({3, 2}), TD::ones({2})}, std::move(other_state)); },
                                     {"state's", "[4]", "[3, 2]"});
      CHECK(unchanged());
    }
  };
  check_strong("sgd", chain(Sgd<>{}, ConstantStepSize<>{0.1}));
  check_strong("momentum", chain(Momentum<>{}, ConstantStepSize<>{0.1}));
  check_strong("nesterov", chain(Nesterov<>{}, ConstantStepSize<>{0.1}));
  check_strong("rmsprop", chain(RmsProp<>{}, ConstantStepSize<>{0.1}));
  check_strong("adam", chain(Adam<>{}, ConstantStepSize<>{0.1}));
  check_strong("adamw", chain(Adam<>{}, AddDecayedWeights<>{.weight_decay = 0.01}, ConstantStepSize<>{0.1}));
  check_strong("clipped momentum, decayed, hd", chain(ClipByGlobalNorm<>{.max_norm = 0.5}, AddDecayedWeights<>{.weight_decay = 0.01},
                                                      Momentum<>{}, HypergradientStepSize<>{}));
  check_strong("sgd-hd", chain(Sgd<>{}, HypergradientStepSize<>{}));
  check_strong("adam-hd", chain(Adam<>{}, HypergradientStepSize<>{.beta = 1e-7}));
  check_strong("nesterov, scheduled", chain(Nesterov<>{}, ScheduledStepSize<>{TD({4}, {0.1, 0.1, 0.1, 0.1})}));
  // A schedule that has run out refuses the step before anything changes.
  const auto scheduled = chain(Sgd<>{}, ScheduledStepSize<>{TD({1}, {0.1})});
  ParamList<TD> p = {TD::ones({2})};
  auto s = scheduled.init(p);
  std::tie(p, s) = scheduled.step(std::move(p), {TD::ones({2})}, std::move(s));
  const TD p_before = p[0];
  CHECK_THROWS_AS((void)scheduled.step(std::move(p), {TD::ones({2})}, std::move(s)), value_error);
  CHECK(p.size() == 1);
  CHECK(p[0] == p_before);
  CHECK(s.step_size.steps == 1);
}

}  // TEST_SUITE
