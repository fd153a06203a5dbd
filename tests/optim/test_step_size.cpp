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
  check_throws_with<value_error>([&] { (void)opt.step(p, {TD::ones({2})}, s); }, {"ScheduledStepSize", "step 2", "1 steps"});
}

TEST_CASE("a differentiable schedule entry") {
  Tape<double> tape;
  const VD schedule = tape.variable(TD({3}, {0.1, 0.2, 0.3}));
  const VD a2 = schedule_at(schedule, 2);
  CHECK(a2.value().item() == 0.2);
  CHECK(grad(a2 * 5.0, {schedule})[0] == TD({3}, {0, 5, 0}));
  CHECK_THROWS_AS((void)schedule_at(schedule, 4), value_error);
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
  std::tie(p, s) = opt.step(std::move(p), {TD::ones({2})}, std::move(s));
  check_throws_with<value_error>([&] { (void)opt.step(p, {TD({2}, {NAN, 1.0})}, s); }, {"hypergradient", "step 2"});
}

}  // TEST_SUITE
