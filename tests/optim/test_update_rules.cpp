// Every update rule against a reference trajectory derived by hand (three steps with fixed gradients), on plain
// tensors and on Vars; and the gradient of a short training run with respect to each hyperparameter.
#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

namespace {

// θ0 = (1, −0.5); the gradients of steps 1–3 are fixed, so the trajectory depends on the rule alone.
const std::vector<TD> fixed_grads = {TD({2}, {0.5, 0.2}), TD({2}, {-1.0, 0.3}), TD({2}, {2.0, -0.1})};

template <class Rule>
TD three_steps(const Rule& rule, double lr, TD* first = nullptr) {
  ParamList<TD> params = {TD({2}, {1.0, -0.5})};
  auto state = rule.init(params);
  for (std::size_t t = 0; t < fixed_grads.size(); ++t) {
    std::tie(params, state) = step(rule, std::move(params), {fixed_grads[t]}, std::move(state), lr);
    if (t == 0 && first) *first = params[0];
  }
  return params[0];
}

/// The same three steps with the carrier Var (the rules' generic path), for comparison with the plain path.
template <class Rule>
TD three_steps_on_tape(const Rule& rule, double lr) {
  Tape<double> tape;
  ParamList<VD> params = {tape.variable(TD({2}, {1.0, -0.5}))};
  auto state = rule.init(params);
  for (const auto& g : fixed_grads) std::tie(params, state) = step(rule, params, {tape.constant(g)}, state, lr);
  return params[0].value();
}

void check_close(const TD& got, const TD& want, double tol = 1e-15) {
  for (index_t i = 0; i < want.size(); ++i) CHECK(got.data()[i] == doctest::Approx(want.data()[i]).epsilon(tol));
}

}  // namespace

TEST_SUITE("update rules") {

// The references: each line of the rule's documented formula, applied by hand to the gradients above with
// step size 0.1 (e.g. momentum: v = 0.5, θ = 0.95; v = 0.45 − 1 = −0.55, θ = 1.005; v = −0.495 + 2 = 1.505,
// θ = 0.8545), carried out in double precision.
TEST_CASE("SGD with coupled weight decay") {
  TD first;
  check_close(three_steps(Sgd<>{.weight_decay = 0.01}, 0.1, &first), TD({2}, {0.84700294900000006, -0.53843151950000001}));
  check_close(first, TD({2}, {0.949, -0.5195}));
}

TEST_CASE("heavy-ball momentum") {
  check_close(three_steps(Momentum<>{.momentum = 0.9}, 0.1), TD({2}, {0.8545, -0.6012}));
}

TEST_CASE("Nesterov momentum") {
  TD first;
  check_close(three_steps(Nesterov<>{.momentum = 0.9}, 0.1, &first), TD({2}, {0.71905, -0.63108}));
  check_close(first, TD({2}, {0.905, -0.538}));
}

TEST_CASE("RMSprop, epsilon outside the root") {
  check_close(three_steps(RmsProp<>{.decay = 0.9}, 0.1), TD({2}, {0.68949913460339241, -0.99346823507923698}), 1e-14);
}

TEST_CASE("Adam: bias correction, epsilon placement, coupled and decoupled weight decay") {
  TD first;
  check_close(three_steps(Adam<>{}, 0.1, &first), TD({2}, {0.89464479271810438, -0.75579755100384272}), 1e-14);
  check_close(first, TD({2}, {0.9000000019999999, -0.5999999950000003}), 1e-14);  // step 1 moves by α·sign(g)
  check_close(three_steps(Adam<>{.epsilon_inside_sqrt = true}, 0.1), TD({2}, {0.89464479269102781, -0.75579753631726321}),
              1e-14);
  check_close(three_steps(Adam<>{.weight_decay = 0.1}, 0.1), TD({2}, {0.87761726080493263, -0.73107068892598737}), 1e-14);
  check_close(three_steps(AdamW<>{.weight_decay = 0.1}, 0.1), TD({2}, {0.86656768915589877, -0.73796624387766496}), 1e-14);
}

TEST_CASE("the taped path agrees with the plain (fused) path") {
  check_close(three_steps_on_tape(Sgd<>{.weight_decay = 0.01}, 0.1), three_steps(Sgd<>{.weight_decay = 0.01}, 0.1));
  check_close(three_steps_on_tape(Momentum<>{}, 0.1), three_steps(Momentum<>{}, 0.1));
  check_close(three_steps_on_tape(Nesterov<>{}, 0.1), three_steps(Nesterov<>{}, 0.1));
  check_close(three_steps_on_tape(RmsProp<>{}, 0.1), three_steps(RmsProp<>{}, 0.1), 1e-14);
  check_close(three_steps_on_tape(Adam<>{}, 0.1), three_steps(Adam<>{}, 0.1), 1e-14);
  check_close(three_steps_on_tape(AdamW<>{}, 0.1), three_steps(AdamW<>{}, 0.1), 1e-14);
  // direction() then apply_step() is the same as the fused step_in_place.
  const Adam<> adam;
  ParamList<TD> p = {TD({2}, {1.0, -0.5})};
  auto [d, s1] = adam.direction(p, {fixed_grads[0]}, adam.init(p));
  auto [q, s2] = step(adam, p, {fixed_grads[0]}, adam.init(p), 0.1);
  check_close(apply_step(p, d, 0.1)[0], q[0]);
  CHECK(s1.steps == 1);
  CHECK(s2.first_moment[0] == s1.first_moment[0]);
}

TEST_CASE("hyperparameters receive gradients through a training run") {
  // Four steps on the quadratic f(θ) = Σ (θ − c)² with the gradient taken on the tape each step; the final loss is a
  // function of the step size and of the rule's hyperparameters, checked against finite differences.
  const TD c({3}, {0.3, -1.0, 2.0});
  auto run = [&](auto make_rule, const Vars& h) {
    Tape<double>& tape = h[0].tape();
    ParamList<VD> params = {tape.constant(TD({3}, {1.0, 0.5, -0.5}))};
    const auto rule = make_rule(h);
    auto state = rule.init(params);
    for (int t = 0; t < 4; ++t) {
      const VD g = (params[0] - c) * 2.0;
      std::tie(params, state) = step(rule, params, {g}, state, h[0]);
    }
    return sum(square(params[0] - c));
  };
  const TD lr = TD::scalar(0.05);
  auto check = [&](auto make_rule, std::vector<TD> hypers) {
    hypers.insert(hypers.begin(), lr);
    const auto r = check_gradient([&](const Vars& h) { return run(make_rule, h); }, hypers);
    CHECK_MESSAGE(r.ok, r.report);
  };
  check([](const Vars&) { return Sgd<>{}; }, {});
  check([](const Vars& h) { return Momentum<VD>{.momentum = h[1], .weight_decay = h[2]}; }, {TD::scalar(0.9), TD::scalar(0.01)});
  check([](const Vars& h) { return Nesterov<VD>{.momentum = h[1], .weight_decay = h[2]}; }, {TD::scalar(0.8), TD::scalar(0.0)});
  check([](const Vars& h) { return RmsProp<VD>{.decay = h[1], .epsilon = h[2], .weight_decay = h[3]}; },
        {TD::scalar(0.9), TD::scalar(1e-3), TD::scalar(0.01)});
  check([](const Vars& h) { return Adam<VD>{.beta1 = h[1], .beta2 = h[2], .epsilon = h[3], .weight_decay = h[4]}; },
        {TD::scalar(0.8), TD::scalar(0.99), TD::scalar(1e-3), TD::scalar(0.01)});
  check([](const Vars& h) { return AdamW<VD>{.beta1 = h[1], .beta2 = h[2], .epsilon = h[3], .weight_decay = h[4]}; },
        {TD::scalar(0.8), TD::scalar(0.99), TD::scalar(1e-3), TD::scalar(0.01)});
  // One differentiable hyperparameter, the others plain numbers (their defaults or given).
  check([](const Vars& h) { return Momentum<VD>{.momentum = h[1]}; }, {TD::scalar(0.9)});
  check([](const Vars& h) { return Nesterov<VD>{.momentum = 0.5, .weight_decay = h[1]}; }, {TD::scalar(0.02)});
  check([](const Vars& h) { return RmsProp<VD>{.epsilon = h[1]}; }, {TD::scalar(1e-3)});
  check([](const Vars& h) { return Adam<VD>{.beta1 = h[1], .weight_decay = 0.01}; }, {TD::scalar(0.8)});
  check([](const Vars& h) { return AdamW<VD>{.beta2 = h[1]}; }, {TD::scalar(0.99)});
}

TEST_CASE("plain hyperparameters mixed with Var ones: the same values, and a zero weight decay records nothing") {
  Tape<double> tape;
  const VD mu = tape.variable(TD::scalar(0.9));
  ParamList<VD> params = {tape.variable(randn({3}, 1))};
  const ParamList<VD> grads = {tape.constant(randn({3}, 2))};
  auto nodes_of_one_step = [&](const auto& rule) {
    const std::size_t before = tape.size();
    auto state = rule.init(params);
    const auto [next, ignored] = step(rule, params, grads, std::move(state), 0.1);
    return std::pair{tape.size() - before, next[0].value()};
  };
  const auto [plain_nodes, plain_value] = nodes_of_one_step(Momentum<double>{.momentum = 0.9});
  const auto [mixed_nodes, mixed_value] = nodes_of_one_step(Momentum<VD>{.momentum = mu});
  CHECK(mixed_value == plain_value);
  // v' = μv + g (2 nodes; the zero velocity is 1 more), θ − αd (2): nothing for the weight decay of 0.
  CHECK(mixed_nodes == plain_nodes);
  CHECK(mixed_nodes == 5);
  const auto [decayed_nodes, decayed_value] = nodes_of_one_step(Momentum<VD>{.momentum = mu, .weight_decay = 0.01});
  CHECK(decayed_nodes == mixed_nodes + 2);  // g + λθ
  CHECK(decayed_value == nodes_of_one_step(Momentum<double>{.momentum = 0.9, .weight_decay = 0.01}).second);
  check_throws_with<shape_error>([&] { (void)Momentum<VD>{.momentum = tape.variable(TD::ones({2}))}; }, {"Hyperparameter", "[2]"});
}

TEST_CASE("a step-size schedule receives its gradient through the run") {
  const TD c({3}, {0.3, -1.0, 2.0});
  const auto r = check_gradient(
      [&](const Vars& h) {
        Tape<double>& tape = h[0].tape();
        ParamList<VD> params = {tape.constant(TD({3}, {1.0, 0.5, -0.5}))};
        const Nesterov<double> rule{.momentum = 0.5};
        auto state = rule.init(params);
        for (std::int64_t t = 0; t < 4; ++t)
          std::tie(params, state) = step(rule, params, {(params[0] - c) * 2.0}, state, schedule_at(h[0], t));
        return sum(square(params[0] - c));
      },
      {TD({4}, {0.1, 0.05, 0.2, 0.02})});
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(r.checked == 4);
}

TEST_CASE("mismatched parameters, gradients and state are errors") {
  const Adam<> adam;
  ParamList<TD> p = {TD::ones({2}), TD::ones({3})};
  auto state = adam.init(p);
  check_throws_with<value_error>([&] { (void)adam.direction(p, {TD::ones({2})}, state); }, {"Adam", "1 gradients", "2 parameters"});
  check_throws_with<shape_error>([&] { (void)adam.direction(p, {TD::ones({2}), TD::ones({4})}, state); },
                                 {"Adam", "gradient 1", "[4]", "[3]"});
  check_throws_with<value_error>([&] { (void)adam.direction({TD::ones({2})}, {TD::ones({2})}, state); },
                                 {"Adam", "state for 2 parameters"});
  check_throws_with<value_error>([&] { (void)apply_step(p, {TD::ones({2})}, 0.1); }, {"apply_step"});
}

}  // TEST_SUITE
