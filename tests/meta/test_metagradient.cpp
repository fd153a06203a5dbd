// Metagradients through whole training runs: against a closed form, against central finite differences of whole
// runs, every checkpoint policy against every other to the last bit, their plans against what they do, and errors.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <variant>

#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

namespace {

/// Gradient descent on f(θ) = ½ Σ a_i θ_i² − Σ b_i θ_i with a per-step learning-rate schedule (the metaparameter);
/// the objective is f(θ_T).
struct QuadraticRun {
  using value_type = double;
  template <class C> using State = TrainingState<C, SgdState<C>>;
  TD a = randu({5}, 1, 0.5, 2.0), b = randn({5}, 2), theta0 = randn({5}, 3);

  template <class C> struct Meta {  // the metaparameters as a tree: messages name them by field
    C lr_schedule;
    METAGRAD_FIELDS(lr_schedule)
  };
  Meta<Shape> metaparameter_shapes(std::int64_t steps) const { return {Shape{steps}}; }
  template <class C> State<C> init(const Meta<C>& meta) const {
    if constexpr (std::is_same_v<C, TD>) return {{theta0}, {}};
    else return {{meta.lr_schedule.tape().constant(theta0)}, {}};  // not a metaparameter: a constant on the metaparameters' tape
  }
  template <class C> StepResult<State<C>, C> step(std::int64_t t, State<C> s, const Meta<C>& meta) const {
    auto [loss, g] = loss_and_gradient(s.params, [&](const Vars& p) { return f(p[0]); });
    auto [params, opt] = metagrad::step(Sgd<hyper_t<C>>{}, std::move(s.params), g, std::move(s.optimizer), schedule_at(meta.lr_schedule, t));
    return {{std::move(params), std::move(opt)}, loss};
  }
  template <class C> C objective(const State<C>& s, const Meta<C>&) const { return f(s.params[0]); }

  template <class C> C f(const C& theta) const { return 0.5 * sum(a * square(theta)) - sum(b * theta); }
};

}  // namespace

TEST_CASE("the metagradient of gradient descent on a quadratic matches its closed form") {
  // θ_{t+1} = θ_t − η_t g_t with g_t = aθ_t − b, so ∂f(θ_T)/∂η_t = −g_Tᵀ [Π_{s=t+1}^{T−1} (1 − η_s a)] g_t.
  const QuadraticRun run;
  const std::int64_t T = 12;
  const TD lr = randu({T}, 4, 0.05, 0.4);
  const auto result = metagradient(run, {lr}, T, StoreAll{});
  Eigen::ArrayXd theta = run.theta0.array();
  const Eigen::ArrayXd a = run.a.array(), b = run.b.array();
  std::vector<Eigen::ArrayXd> g;
  for (std::int64_t t = 0; t <= T; ++t) {
    g.push_back(a * theta - b);
    if (t < T) theta -= lr.data()[t] * g.back();
  }
  CHECK(result.objective == doctest::Approx((0.5 * a * theta.square() - b * theta).sum()).epsilon(1e-14));
  for (std::int64_t t = 0; t < T; ++t) {
    Eigen::ArrayXd v = g[static_cast<std::size_t>(t)];
    for (std::int64_t s = t + 1; s < T; ++s) v *= 1 - lr.data()[s] * a;
    const double expected = -(g[static_cast<std::size_t>(T)] * v).sum();
    CHECK(result.gradient.lr_schedule.data()[t] == doctest::Approx(expected).epsilon(1e-12));
  }
  // The gradient is a tree of the metaparameters' type; a policy chosen at run time gives the chosen one's bits.
  static_assert(std::is_same_v<decltype(result.gradient), QuadraticRun::Meta<TD>>);
  for (const std::variant<StoreAll, Replay, Revolve>& chosen : {std::variant<StoreAll, Replay, Revolve>(Replay{3}), {Revolve{2}}}) {
    const auto by_variant = metagradient(run, {lr}, T, chosen);
    const auto direct = std::visit([&](const auto& policy) { return metagradient(run, {lr}, T, policy); }, chosen);
    CHECK(by_variant.cost == direct.cost);
    CHECK(by_variant.cost == checkpoint_plan(chosen, T));
    CHECK(tree_hash(by_variant.gradient) == tree_hash(direct.gradient));
    CHECK(tree_hash(by_variant.gradient) == tree_hash(result.gradient));
  }
  check_throws_with<shape_error>([&] { metagradient(run, {randu({T - 1}, 5, 0.1, 0.2)}, T, StoreAll{}); },
                                 {"metagradient: metaparameter lr_schedule has shape [11], expected [12] for 12 steps"});
}

namespace {

/// The quadratic run with its schedule given by 4 knots, interpolated linearly over the steps.
struct KnotRun : QuadraticRun {
  Meta<Shape> metaparameter_shapes(std::int64_t) const { return {Shape{4}}; }  // the schedule's knots
  template <class C> StepResult<State<C>, C> step(std::int64_t t, State<C> s, const Meta<C>& meta) const {
    auto [loss, g] = loss_and_gradient(s.params, [&](const Vars& p) { return f(p[0]); });
    auto [params, opt] = metagrad::step(Sgd<hyper_t<C>>{}, std::move(s.params), g, std::move(s.optimizer), knot_schedule_at(meta.lr_schedule, 20, t));
    return {{std::move(params), std::move(opt)}, loss};
  }
};

}  // namespace

TEST_CASE("a schedule interpolated between knots: its entries, and its knots' metagradient") {
  const TD knots = TD::from_eigen(Eigen::VectorXd{{0.1, 0.4, 0.2, 0.3}}).reshape({4});
  CHECK(knot_schedule_at(knots, 7, 0) == 0.1);
  CHECK(knot_schedule_at(knots, 7, 1) == doctest::Approx(0.25));  // half-way between knots 0 and 1
  CHECK(knot_schedule_at(knots, 7, 2) == doctest::Approx(0.4));
  CHECK(knot_schedule_at(knots, 7, 6) == doctest::Approx(0.3));
  check_throws_with<shape_error>([&] { knot_schedule_at(TD::ones({1}), 7, 0); }, {"knot_schedule_at", "K >= 2"});
  check_throws_with<value_error>([&] { knot_schedule_at(knots, 7, 7); }, {"knot_schedule_at", "step 7 of 7"});
  const KnotRun run;
  const auto result = metagradient(run, {knots}, 20, Replay{3});
  for (std::int64_t k = 0; k < 4; ++k) {
    TD up = knots, down = knots;
    up.data()[k] += 1e-6;
    down.data()[k] -= 1e-6;
    check_derivative(result.gradient.lr_schedule.data()[k], run_objective(run, {up}, 20), run_objective(run, {down}, 20), 1e-6,
                     1e-6, "knot " + std::to_string(k));
  }
}

namespace {

enum class RuleKind { momentum, adam };

/// A 4-5-3 tanh MLP trained on 24 examples in batches of 8 by heavy-ball momentum or Adam, every metaparameter the
/// engine must handle at once; the objective is the loss on 16 held-out examples.
struct MlpRun {
  using value_type = double;
  enum Meta { lr, momentum_or_beta1, beta2, decay, weights, inputs, w0, b0, w1, b1 };
  RuleKind kind = RuleKind::momentum;
  Mlp<double> model{{4, 5, 3}, Activation::tanh};
  BatchOrder order{24, 8, 11};
  IndexVector labels, validation_labels;
  TD validation_inputs = randn({16, 4}, 12);

  MlpRun() {
    for (index_t i = 0; i < 24; ++i) labels.push_back(i % 3);
    for (index_t i = 0; i < 16; ++i) validation_labels.push_back((i * 7) % 3);
  }
  /// A std::vector of metaparameters (no Meta): messages name them by index, in the order of the enum above.
  std::vector<Shape> metaparameter_shapes(std::int64_t steps) const {
    return {{steps}, {}, {}, {}, {24}, {24, 4}, {4, 5}, {5}, {5, 3}, {3}};
  }
  std::vector<TD> meta(std::int64_t steps) const {
    std::vector<TD> m = {randu({steps}, 20, 0.05, 0.15), TD::scalar(0.8), TD::scalar(0.95), TD::scalar(0.01),
                         randu({24}, 21, 0.5, 1.5), randn({24, 4}, 22)};
    if (kind == RuleKind::adam) m[lr] = randu({steps}, 20, 0.01, 0.03);
    for (auto& p : model.init(23)) m.push_back(p);
    return m;
  }
};

template <RuleKind K>
struct MlpRunOf : MlpRun {
  /// Coupled weight decay, then the rule.
  template <class C>
  using Rule = Chain<AddDecayedWeights<hyper_t<C>>, std::conditional_t<K == RuleKind::adam, Adam<hyper_t<C>>, Momentum<hyper_t<C>>>>;
  template <class C>
  using State = TrainingState<C, typename Rule<C>::template State<C>>;

  MlpRunOf() { kind = K; }

  template <class C> Rule<C> rule(const std::vector<C>& m) const {
    const AddDecayedWeights<hyper_t<C>> decay_rule{.weight_decay = scalar(m[decay])};
    if constexpr (K == RuleKind::adam) return chain(decay_rule, Adam<hyper_t<C>>{.beta1 = scalar(m[momentum_or_beta1]), .beta2 = scalar(m[beta2])});
    else return chain(decay_rule, Momentum<hyper_t<C>>{.momentum = scalar(m[momentum_or_beta1])});
  }
  template <class C> State<C> init(const std::vector<C>& m) const {
    ParamList<C> params(m.begin() + w0, m.end());
    return {params, rule(m).init(params)};
  }
  template <class C> StepResult<State<C>, C> step(std::int64_t t, State<C> s, const std::vector<C>& m) const {
    const IndexVector batch = order.batch(t);
    IndexVector y;
    for (index_t i : batch) y.push_back(labels[static_cast<std::size_t>(i)]);
    const C x = gather_rows(m[inputs], batch), w = gather_rows(m[weights], batch);
    auto [loss, g] = loss_and_gradient(s.params, [&](const Vars& p) { return weighted_mean(cross_entropy(model.logits(p, x), y), w); });
    auto [params, opt] = metagrad::step(rule(m), std::move(s.params), g, std::move(s.optimizer), schedule_at(m[lr], t));
    return {{std::move(params), std::move(opt)}, loss};
  }
  template <class C> C objective(const State<C>& s, const std::vector<C>&) const {
    return mean(cross_entropy(model.logits(s.params, validation_inputs), validation_labels));
  }
};

/// Central differences of whole training runs along a random direction of metaparameter j, against ⟨∇_j, v⟩.
template <class Run>
void check_against_finite_differences(const Run& run, const std::vector<TD>& meta, std::int64_t steps, std::size_t j,
                                      const MetagradientResult<double>& result) {
  const TD v = randn(meta[j].shape(), 100 + j);
  const double h = 1e-5;
  std::vector<TD> up = meta, down = meta;
  up[j].array() += h * v.array();
  down[j].array() -= h * v.array();
  check_derivative((result.gradient[j].array() * v.array()).sum(), run_objective(run, up, steps), run_objective(run, down, steps), h,
                   1e-6, "metaparameter " + std::to_string(j));
}

}  // namespace

TEST_CASE("metagradients of an MLP's training run match finite differences of whole runs") {
  const std::int64_t T = 30;
  SUBCASE("heavy-ball momentum: lr schedule, momentum, weight decay, data weights, inputs, initial parameters") {
    const MlpRunOf<RuleKind::momentum> run;
    const auto meta = run.meta(T);
    const auto result = metagradient(run, meta, T, Replay{3});
    CHECK(result.objective == doctest::Approx(run_objective(run, meta, T)).epsilon(1e-13));
    for (std::size_t j : {0, 1, 3, 4, 5, 6, 7, 8, 9}) check_against_finite_differences(run, meta, T, j, result);
    CHECK(result.gradient[MlpRun::beta2].item() == 0.0);  // momentum does not read β2
  }
  SUBCASE("Adam: lr schedule, β1, β2, weight decay, data weights, inputs, initial parameters") {
    const MlpRunOf<RuleKind::adam> run;
    const auto meta = run.meta(T);
    const auto result = metagradient(run, meta, T, Revolve{4});
    for (std::size_t j = 0; j < meta.size(); ++j) check_against_finite_differences(run, meta, T, j, result);
  }
  SUBCASE("each entry of the learning-rate schedule") {
    const MlpRunOf<RuleKind::momentum> run;
    const std::int64_t short_run = 8;
    const auto meta = run.meta(short_run);
    const auto result = metagradient(run, meta, short_run, StoreAll{});
    for (std::int64_t t = 0; t < short_run; ++t) {
      std::vector<TD> up = meta, down = meta;
      up[0].data()[t] += 1e-6;
      down[0].data()[t] -= 1e-6;
      check_derivative(result.gradient[0].data()[t], run_objective(run, up, short_run), run_objective(run, down, short_run), 1e-6, 1e-6,
                       "learning rate " + std::to_string(t));
    }
  }
}

TEST_CASE("step-loss weights add the weighted losses along the run to the objective") {
  const MlpRunOf<RuleKind::adam> run;
  const std::int64_t T = 10;
  const auto meta = run.meta(T);
  MetagradientOptions options;
  for (std::int64_t t = 0; t < T; ++t) options.step_loss_weights.push_back(0.5 + 0.1 * static_cast<double>(t));
  const auto result = metagradient(run, meta, T, Replay{2}, options);
  CHECK(result.objective == doctest::Approx(run_objective(run, meta, T, options)).epsilon(1e-13));
  const TD v = randn(meta[0].shape(), 7);
  std::vector<TD> up = meta, down = meta;
  up[0].array() += 1e-5 * v.array();
  down[0].array() -= 1e-5 * v.array();
  check_derivative((result.gradient[0].array() * v.array()).sum(), run_objective(run, up, T, options), run_objective(run, down, T, options),
                   1e-5, 1e-6, "the learning rates, with step-loss weights");
}

namespace {

/// Counts the plain training steps the engine replays (the run's own steps; the tape's are not counted).
template <class Run>
struct CountingRun : Run {
  mutable std::int64_t plain_steps = 0;
  template <class C> StepResult<typename Run::template State<C>, C> step(std::int64_t t, typename Run::template State<C> s,
                                                                          const std::vector<C>& m) const {
    if constexpr (std::is_same_v<C, TD>) ++plain_steps;
    return Run::step(t, std::move(s), m);
  }
};

/// The fewest replays for `length` steps with `slots` checkpoints, by exhaustive dynamic programming over split points.
std::int64_t brute_force_optimum(std::int64_t length, std::int64_t slots, std::map<std::pair<std::int64_t, std::int64_t>, std::int64_t>& memo) {
  if (length <= 1) return 0;
  if (slots == 1) return length * (length - 1) / 2;
  const auto key = std::pair{length, slots};
  if (const auto it = memo.find(key); it != memo.end()) return it->second;
  std::int64_t best = INT64_MAX;
  for (std::int64_t m = 1; m < length; ++m)
    best = std::min(best, m + brute_force_optimum(length - m, slots - 1, memo) + brute_force_optimum(m, slots, memo));
  return memo[key] = best;
}

std::int64_t ceil_log(std::int64_t steps, std::int64_t k) {
  std::int64_t levels = 0;
  for (std::int64_t reach = 1; reach < steps; reach *= k) ++levels;
  return levels;
}

}  // namespace

TEST_CASE("every checkpoint policy gives the same metagradient to the last bit, at the cost it planned") {
  CountingRun<MlpRunOf<RuleKind::adam>> run;
  const MetagradientOptions unchecked{.check_determinism = false};  // no extra steps: count the policy's alone
  for (std::int64_t T : {1, 2, 7, 16, 37}) {
    const auto meta = run.meta(T);
    run.plain_steps = 0;
    const auto reference = metagradient(run, meta, T, StoreAll{}, unchecked);
    CHECK(reference.cost == CheckpointPlan{T, T, T - 1});
    CHECK(run.plain_steps == T - 1);
    const auto same = [&](const auto& policy, const char* name, std::int64_t parameter) {
      INFO(name << " " << parameter << ", T = " << T);
      run.plain_steps = 0;
      const auto result = metagradient(run, meta, T, policy, unchecked);
      CHECK(result.objective == reference.objective);
      for (std::size_t j = 0; j < meta.size(); ++j) CHECK(result.gradient[j] == reference.gradient[j]);
      CHECK(result.cost == checkpoint_plan(policy, T));
      CHECK(run.plain_steps == result.cost.replayed_steps);
      return result.cost;
    };
    CHECK(same(RecordAll{}, "RecordAll", 0) == CheckpointPlan{T, 1, 0, T});  // no plain step: every step recorded once
    for (std::int64_t k : {2, 3, 4}) {
      const auto cost = same(Replay{k}, "Replay", k);
      CHECK(cost.stored_states <= (k - 1) * ceil_log(T, k) + k);
    }
    std::map<std::pair<std::int64_t, std::int64_t>, std::int64_t> memo;
    for (std::int64_t slots : {1, 2, 3, 5}) {
      const auto cost = same(Revolve{slots}, "Revolve", slots);
      CHECK(cost.stored_states <= slots);
      CHECK(cost.replayed_steps == brute_force_optimum(T, slots, memo));
    }
  }
}

TEST_CASE("checkpoint plans: REPLAY's and revolve's costs on long runs") {
  std::map<std::pair<std::int64_t, std::int64_t>, std::int64_t> memo;
  for (std::int64_t T = 1; T <= 60; ++T)
    for (std::int64_t s = 1; s <= 6; ++s) {
      INFO("T = " << T << ", slots = " << s);
      const CheckpointPlan plan = checkpoint_plan(Revolve{s}, T);
      CHECK(plan.replayed_steps == brute_force_optimum(T, s, memo));
      CHECK(plan.replayed_steps == Revolve::optimal_replays(T, s));
      CHECK(plan.stored_states == std::min(s, T));
    }
  // PAPERS.md's example: T = 10,000 with 14 stored states, revolve ≈ 4.6 T replays.
  CHECK(checkpoint_plan(Revolve{14}, 10000).replayed_steps == 46124);
  for (std::int64_t k : {2, 3, 4, 8, 10}) {
    const CheckpointPlan plan = checkpoint_plan(Replay{k}, 10000);
    INFO("k = " << k);
    CHECK(plan.stored_states <= (k - 1) * ceil_log(10000, k) + k);
    // At most T·(1 − 1/k)·⌈log_k T⌉ + T replays (PAPERS.md), and revolve with as many slots needs fewer.
    CHECK(static_cast<double>(plan.replayed_steps) <= 10000.0 * (1 - 1.0 / static_cast<double>(k)) * static_cast<double>(ceil_log(10000, k)) + 10000);
    CHECK(checkpoint_plan(Revolve{plan.stored_states}, 10000).replayed_steps < plan.replayed_steps);
  }
  check_throws_with<value_error>([] { checkpoint_plan(Replay{1}, 10); }, {"Replay", "branching factor 1"});
  check_throws_with<value_error>([] { checkpoint_plan(Revolve{0}, 10); }, {"Revolve", "0 checkpoint slots"});
  check_throws_with<value_error>([] { checkpoint_plan(StoreAll{}, 0); }, {"StoreAll", "0 steps"});
  check_throws_with<value_error>([] { checkpoint_plan(RecordAll{}, 0); }, {"RecordAll", "0 steps"});
}

namespace {

/// A run whose step adds noise from a counter kept in the run: not a function of (t, state, meta).
struct NondeterministicRun : MlpRunOf<RuleKind::momentum> {
  mutable int calls = 0;
  int noisy_call = 1;
  template <class C> StepResult<State<C>, C> step(std::int64_t t, State<C> s, const std::vector<C>& m) const {
    auto out = MlpRunOf<RuleKind::momentum>::step(t, std::move(s), m);
    if constexpr (std::is_same_v<C, TD>)
      if (calls++ == noisy_call) out.state.params[1].data()[0] += 1e-12;
    return out;
  }
};

/// Counts progress reports.
struct Progress {
  std::int64_t total = 0, reports = 0;
  bool ended = false;
  void on_begin(std::int64_t n) { total = n; }
  void on_step(const StepReport& r) { CHECK(r.step == reports++); }
  void on_end(const TrainingSummary&) { ended = true; }
};

}  // namespace

TEST_CASE("metagradient errors name what was wrong") {
  const MlpRunOf<RuleKind::momentum> run;
  const auto meta = run.meta(10);
  check_throws_with<value_error>([&] { metagradient(run, meta, 0, StoreAll{}); }, {"metagradient", "0 steps"});
  check_throws_with<shape_error>([&] { metagradient(run, meta, 12, StoreAll{}); }, {"metaparameter [0]", "[10]", "[12]"});
  auto wrong = meta;
  wrong[MlpRun::weights] = TD::ones({23});
  check_throws_with<shape_error>([&] { metagradient(run, wrong, 10, StoreAll{}); }, {"metaparameter [4]", "[23]", "[24]"});
  wrong = meta;
  wrong.pop_back();
  check_throws_with<shape_error>([&] { metagradient(run, wrong, 10, StoreAll{}); }, {"metaparameters", "holds 9 elements, expected 10"});
  struct NoMetaparameters : MlpRunOf<RuleKind::momentum> {
    std::vector<Shape> metaparameter_shapes(std::int64_t) const { return {}; }
  };
  check_throws_with<value_error>([&] { metagradient(NoMetaparameters{}, {}, 10, StoreAll{}); }, {"no metaparameters"});
  wrong = meta;
  wrong[MlpRun::decay] = TD::scalar(std::nan(""));
  check_throws_with<value_error>([&] { metagradient(run, wrong, 10, StoreAll{}); }, {"metaparameter [3]", "NaN"});
  check_throws_with<value_error>([&] { metagradient(run, meta, 10, StoreAll{}, {.step_loss_weights = {1, 2}}); }, {"2 step-loss weights", "10 steps"});
  wrong = meta;
  wrong = run.meta(20);
  wrong[MlpRun::lr].array() = 1e30;  // θ grows by 1e30 a step until it overflows: the adjoint is not finite
  wrong[MlpRun::decay] = TD::scalar(-1);
  check_throws_with<training_error>([&] { metagradient(run, wrong, 20, Replay{2}); }, {"NaN or infinite adjoint at step 19"});
  check_throws_with<training_error>([&] { metagradient(run, wrong, 20, RecordAll{}); }, {"NaN or infinite adjoint at step 19"});

  NondeterministicRun noisy;
  noisy.noisy_call = 1;  // the second call: step 0 replayed by the determinism check
  check_throws_with<training_error>([&] { metagradient(noisy, meta, 10, StoreAll{}); }, {"step 0 is not deterministic"});
  noisy.calls = 0;
  noisy.noisy_call = 7;  // a later replay (the first pass made calls 2–10)
  check_throws_with<training_error>([&] { metagradient(noisy, meta, 10, Replay{2}); }, {"not deterministic"});
  noisy.calls = 0;
  CHECK_NOTHROW(metagradient(noisy, meta, 10, Replay{2}, {.check_determinism = false}));  // unchecked: not caught
}

TEST_CASE("metagradient reports progress through train()'s callbacks") {
  const MlpRunOf<RuleKind::momentum> run;
  Progress progress;
  const auto plan = checkpoint_plan(Replay{2}, 20);
  metagradient(run, run.meta(20), 20, Replay{2}, {}, progress);
  CHECK(progress.total == plan.replayed_steps + 20);
  CHECK(progress.reports == progress.total);
  CHECK(progress.ended);
  Progress recorded;
  metagradient(run, run.meta(20), 20, RecordAll{}, {}, recorded);
  CHECK(recorded.total == 40);  // each step recorded, then reversed
  CHECK(recorded.reports == recorded.total);
  // A callback that asks to stop ends it with an error (a metagradient needs the whole run); on_end sees the stop.
  struct StopAfterThree {
    int reports = 0;
    std::optional<TrainingSummary> summary;
    bool on_step(const StepReport&) { return ++reports < 3; }
    void on_end(const TrainingSummary& s) { summary = s; }
  } stop;
  Progress alongside;
  check_throws_with<training_error>([&] { metagradient(run, run.meta(20), 20, Replay{2}, {}, stop, alongside); },
                                    {"metagradient: a callback stopped it after 3 of", "there is none"});
  CHECK(stop.reports == 3);
  CHECK(alongside.reports == 3);  // every callback saw the step that stopped it
  REQUIRE(stop.summary);
  CHECK(stop.summary->stopped_early);
  CHECK(stop.summary->steps == 3);
}

namespace {

/// One step that sets the parameters to (3z, z − 2z²): a final state whose metasmoothness is known by hand.
struct CurveRun {
  using value_type = double;
  template <class C> using State = TrainingState<C, SgdState<C>>;
  std::vector<Shape> metaparameter_shapes(std::int64_t) const { return {{}}; }
  template <class C> State<C> init(const std::vector<C>& m) const { return {{m[0] * 0.0, m[0] * 0.0}, {}}; }
  template <class C> StepResult<State<C>, C> step(std::int64_t, State<C>, const std::vector<C>& m) const {
    return {{{m[0] * 3.0, m[0] - 2.0 * square(m[0])}, {}}, m[0] * 0.0};
  }
  template <class C> C objective(const State<C>& s, const std::vector<C>&) const { return sum(s.params[0]); }
};

}  // namespace

TEST_CASE("metasmoothness: a hand-computed case, a smooth run, and errors") {
  // θ₀ = (0, 0), θ_h = (1.5, 0), θ_2h = (3, −1) for h = 0.5: d = (3, 1); S = (3·1·1 + 1·0·(−1)) / 4.
  CHECK(metasmoothness(CurveRun{}, {TD::scalar(0)}, {TD::scalar(1)}, 0.5, 1) == doctest::Approx(0.75).epsilon(1e-15));
  // Gradient descent on a quadratic is smooth in its schedule.
  const QuadraticRun quadratic;
  CHECK(metasmoothness(quadratic, {TD::full({20}, 0.1)}, {randn({20}, 5)}, 1e-4, 20) > 0.99);
  // The MLP trained with momentum: smooth at its small learning rates, much less so at large ones.
  const MlpRunOf<RuleKind::momentum> mlp;
  auto meta = mlp.meta(30);
  std::vector<TD> direction;
  for (const auto& m : meta) direction.push_back(TD::zeros(m.shape()));
  direction[MlpRun::lr] = TD::ones({30});
  const double small = metasmoothness(mlp, meta, direction, 1e-3, 30);
  meta[MlpRun::lr].array() *= 40;
  const double large = metasmoothness(mlp, meta, direction, 1e-3, 30);
  MESSAGE("metasmoothness of the MLP run: " << small << " at its learning rates, " << large << " at 40 times them");
  CHECK(small > 0.9);
  CHECK(large < 0.5);
  check_throws_with<shape_error>([&] { metasmoothness(mlp, meta, {}, 1e-4, 30); }, {"metasmoothness: the direction: (root) holds 0 elements, expected 10"});
  check_throws_with<shape_error>([&] { metasmoothness(quadratic, {TD::full({20}, 0.1)}, {randn({3}, 1)}, 1e-4, 20); }, {"the direction's lr_schedule has shape [3], its metaparameter [20]"});
  check_throws_with<value_error>([&] { metasmoothness(quadratic, {TD::full({20}, 0.1)}, {randn({20}, 1)}, -1.0, 20); }, {"step h"});
}
