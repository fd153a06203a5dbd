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
  check_close(three_steps(chain(AddDecayedWeights<>{.weight_decay = 0.01}, Sgd<>{}), 0.1, &first),
              TD({2}, {0.84700294900000006, -0.53843151950000001}));
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
  // Weight decay before Adam is coupled (added to g), after it decoupled (AdamW: d = m̂ / (√v̂ + ε) + λθ).
  check_close(three_steps(chain(AddDecayedWeights<>{.weight_decay = 0.1}, Adam<>{}), 0.1),
              TD({2}, {0.87761726080493263, -0.73107068892598737}), 1e-14);
  check_close(three_steps(chain(Adam<>{}, AddDecayedWeights<>{.weight_decay = 0.1}), 0.1),
              TD({2}, {0.86656768915589877, -0.73796624387766496}), 1e-14);
}

TEST_CASE("the taped path agrees with the plain (fused) path") {
  const auto decayed_sgd = chain(AddDecayedWeights<>{.weight_decay = 0.01}, Sgd<>{});
  check_close(three_steps_on_tape(decayed_sgd, 0.1), three_steps(decayed_sgd, 0.1));
  check_close(three_steps_on_tape(Momentum<>{}, 0.1), three_steps(Momentum<>{}, 0.1));
  check_close(three_steps_on_tape(Nesterov<>{}, 0.1), three_steps(Nesterov<>{}, 0.1));
  check_close(three_steps_on_tape(RmsProp<>{}, 0.1), three_steps(RmsProp<>{}, 0.1), 1e-14);
  check_close(three_steps_on_tape(Adam<>{}, 0.1), three_steps(Adam<>{}, 0.1), 1e-14);
  const auto adamw = chain(Adam<>{}, AddDecayedWeights<>{.weight_decay = 0.01});
  check_close(three_steps_on_tape(adamw, 0.1), three_steps(adamw, 0.1), 1e-14);
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
  const auto decay = [](const VD& lambda) { return AddDecayedWeights<VD>{.weight_decay = lambda}; };
  check([&](const Vars& h) { return chain(decay(h[2]), Momentum<VD>{.momentum = h[1]}); }, {TD::scalar(0.9), TD::scalar(0.01)});
  check([&](const Vars& h) { return chain(decay(h[2]), Nesterov<VD>{.momentum = h[1]}); }, {TD::scalar(0.8), TD::scalar(0.0)});
  check([&](const Vars& h) { return chain(decay(h[3]), RmsProp<VD>{.decay = h[1], .epsilon = h[2]}); },
        {TD::scalar(0.9), TD::scalar(1e-3), TD::scalar(0.01)});
  check([&](const Vars& h) { return chain(decay(h[4]), Adam<VD>{.beta1 = h[1], .beta2 = h[2], .epsilon = h[3]}); },
        {TD::scalar(0.8), TD::scalar(0.99), TD::scalar(1e-3), TD::scalar(0.01)});
  check([&](const Vars& h) { return chain(Adam<VD>{.beta1 = h[1], .beta2 = h[2], .epsilon = h[3]}, decay(h[4])); },
        {TD::scalar(0.8), TD::scalar(0.99), TD::scalar(1e-3), TD::scalar(0.01)});
  // Clipping in a chain: the global norm's limit receives its gradient where it clips (‖g‖ starts near 6).
  check([](const Vars& h) { return chain(ClipByGlobalNorm<VD>{.max_norm = h[1]}, Momentum<VD>{.momentum = 0.5}); }, {TD::scalar(2.0)});
  check([](const Vars& h) { return chain(ClipByValue<>{.limit = 1.5}, Adam<VD>{.beta1 = h[1]}); }, {TD::scalar(0.8)});
  // One differentiable hyperparameter, the others plain numbers (their defaults or given).
  check([](const Vars& h) { return Momentum<VD>{.momentum = h[1]}; }, {TD::scalar(0.9)});
  check([](const Vars& h) { return chain(AddDecayedWeights<VD>{.weight_decay = h[1]}, Nesterov<VD>{.momentum = 0.5}); }, {TD::scalar(0.02)});
  check([](const Vars& h) { return RmsProp<VD>{.epsilon = h[1]}; }, {TD::scalar(1e-3)});
  check([](const Vars& h) { return chain(AddDecayedWeights<VD>{.weight_decay = 0.01}, Adam<VD>{.beta1 = h[1]}); }, {TD::scalar(0.8)});
  check([](const Vars& h) { return chain(Adam<VD>{.beta2 = h[1]}, AddDecayedWeights<VD>{.weight_decay = 0.01}); }, {TD::scalar(0.99)});
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
  const auto [decayed_nodes, decayed_value] =
      nodes_of_one_step(chain(AddDecayedWeights<VD>{.weight_decay = 0.01}, Momentum<VD>{.momentum = mu}));
  CHECK(decayed_nodes == mixed_nodes + 2);  // g + λθ
  CHECK(decayed_value == nodes_of_one_step(chain(AddDecayedWeights<>{.weight_decay = 0.01}, Momentum<>{.momentum = 0.9})).second);
  CHECK(nodes_of_one_step(chain(AddDecayedWeights<VD>{}, Momentum<VD>{.momentum = mu})).first == mixed_nodes);  // λ = 0: nothing
  check_throws_with<shape_error>([&] { (void)Momentum<VD>{.momentum = tape.variable(TD::ones({2}))}; }, {"Hyperparameter", "[2]"});
}

TEST_CASE("gradient transformations: clipping by hand, chains of any length, their states as trees") {
  const ParamList<TD> params = {TD({2}, {1.0, -2.0}), TD::scalar(0.5)};
  const ParamList<TD> grads = {TD({2}, {3.0, 4.0}), TD::scalar(12.0)};  // global norm 13
  const auto clipped = ClipByGlobalNorm<>{.max_norm = 6.5}.direction(params, grads, {}).first;
  CHECK(clipped[0] == TD({2}, {1.5, 2.0}));
  CHECK(clipped[1] == TD::scalar(6.0));
  CHECK(ClipByGlobalNorm<>{.max_norm = 13.5}.direction(params, grads, {}).first == grads);  // below the limit: as it was
  CHECK(ClipByValue<>{.limit = 3.5}.direction(params, grads, {}).first == ParamList<TD>{TD({2}, {3.0, 3.5}), TD::scalar(3.5)});
  Tape<double> tape;
  const ParamList<VD> taped_params = {tape.constant(params[0]), tape.constant(params[1])};
  const ParamList<VD> taped_grads = {tape.variable(grads[0]), tape.variable(grads[1])};
  const auto taped = ClipByGlobalNorm<>{.max_norm = 6.5}.direction(taped_params, taped_grads, {}).first;
  CHECK(taped[0].value() == clipped[0]);
  CHECK(taped[1].value() == clipped[1]);
  check_throws_with<value_error>([&] { (void)ClipByGlobalNorm<>{.max_norm = 0}.init(params); }, {"ClipByGlobalNorm", "max_norm = 0"});
  check_throws_with<value_error>([&] { (void)ClipByValue<>{.limit = -1}.init(params); }, {"ClipByValue", "limit = -1"});

  // Four transformations: clip each entry to [−1, 1], add 0.1 θ, heavy-ball momentum 0.9, step size 0.1. By hand, from
  // θ = (1, −2) with g = (3, −0.5): d = (1, −0.5) + (0.1, −0.2) = v = (1.1, −0.7), θ = (0.89, −1.93); then with
  // g = (−0.2, 4): (−0.2, 1) + (0.089, −0.193), v = 0.9 (1.1, −0.7) + (−0.111, 0.807) = (0.879, 0.177),
  // θ = (0.8021, −1.9477).
  const auto optimizer = chain(ClipByValue<>{.limit = 1}, AddDecayedWeights<>{.weight_decay = 0.1}, Momentum<>{.momentum = 0.9},
                               ConstantStepSize<>{0.1});
  ParamList<TD> theta = {TD({2}, {1.0, -2.0})};
  auto state = optimizer.init(theta);
  std::tie(theta, state) = optimizer.step(std::move(theta), {TD({2}, {3.0, -0.5})}, std::move(state));
  check_close(theta[0], TD({2}, {0.89, -1.93}));
  std::tie(theta, state) = optimizer.step(std::move(theta), {TD({2}, {-0.2, 4.0})}, std::move(state));
  check_close(theta[0], TD({2}, {0.8021, -1.9477}));
  // The state is a tree named by where each rule stands in the chain; it saves and loads like any other.
  CHECK(tree_paths(state) == std::vector<std::string>{"rule[2].velocity[0]"});
  const TempDir dir;
  const auto file = dir / "state.npz";
  save_state(file, state);
  auto loaded = optimizer.init(theta);
  load_state(file, loaded);
  CHECK(tree_hash(loaded) == tree_hash(state));
  // The rules without the step-size policy are a rule again, on either carrier.
  const auto rules = chain(ClipByValue<>{.limit = 1}, AddDecayedWeights<>{.weight_decay = 0.1}, Momentum<>{.momentum = 0.9});
  check_close(three_steps_on_tape(rules, 0.1), three_steps(rules, 0.1));
  // A chain that ends in Adam keeps Adam's fused step: the same bits as Adam's direction, then the step.
  const auto clipped_adam = chain(ClipByGlobalNorm<>{.max_norm = 1}, Adam<>{});
  auto [fused, fused_state] = step(clipped_adam, params, grads, clipped_adam.init(params), 0.1);
  auto [d, ignored] = clipped_adam.direction(params, grads, clipped_adam.init(params));
  const ParamList<TD> stepped = apply_step(params, d, 0.1);
  for (std::size_t i = 0; i < params.size(); ++i) check_close(fused[i], stepped[i]);
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
