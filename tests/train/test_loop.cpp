// The training loop: callbacks detected at compile time, early stopping, CSV output, NaN detection.
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

TEST_SUITE("training loop") {

TEST_CASE("a real loop: gradient descent on a quadratic, with every callback") {
  ParamList<TD> params = {TD({2}, {3.0, -2.0})};
  const auto opt = chain(Sgd<>{}, ConstantStepSize<>{0.1});
  auto state = opt.init(params);
  const TempDir dir;
  const auto csv = dir / "log.csv";
  struct Counter {
    int begins = 0, steps = 0, ends = 0;
    void on_begin(std::int64_t) { ++begins; }
    void on_step(const StepReport&) { ++steps; }
    void on_end(const TrainingSummary&) { ++ends; }
  } counter;
  ProgressBar bar("quadratic");  // silent: the test's stderr is not a terminal
  const auto summary = train(
      50,
      [&](std::int64_t) {
        Tape<double> tape;
        const VD x = tape.variable(params[0]);
        const VD loss = sum(square(x));
        auto g = grad(loss, {x});
        std::tie(params, state) = opt.step(std::move(params), g, std::move(state));
        return StepReport{.loss = loss.value().item(), .step_size = 0.1};
      },
      counter, bar, CsvLogger(csv));
  CHECK(summary.steps == 50);
  CHECK_FALSE(summary.stopped_early);
  CHECK(summary.final_loss < 1e-8);
  CHECK(counter.begins == 1);
  CHECK(counter.steps == 50);
  CHECK(counter.ends == 1);
  std::ifstream in(csv);
  std::string header, first;
  std::getline(in, header);
  std::getline(in, first);
  CHECK(header == "step,loss,step_size,validation_loss,validation_accuracy");
  CHECK(first == "0,13,0.1,,");
}

TEST_CASE("early stopping and a callback that stops") {
  EarlyStopping stop(3);
  // The loss improves through step 5 (10, 9, 8, 7, 6, 5), then stays flat: patience 3 stops at step 8.
  const auto s = train(100, [](std::int64_t t) { return StepReport{.loss = t < 5 ? 10.0 - t : 5.0}; }, stop);
  CHECK(s.steps == 9);
  CHECK(s.stopped_early);
  CHECK(stop.best() == 5.0);
  EarlyStopping on_validation(2);
  on_validation.on_validation_only();
  const auto v = train(100, [](std::int64_t t) {
    StepReport r{.loss = 1.0};
    if (t % 10 == 9) r.validation_loss = t < 30 ? 1.0 / static_cast<double>(t) : 1.0;
    return r;
  }, on_validation);
  CHECK(v.steps == 50);  // validations at 9, 19, 29 improve; 39 and 49 do not
  CHECK_THROWS_AS(EarlyStopping(0), value_error);
}

TEST_CASE("a proposed step is applied only after its loss passed the checks") {
  ParamList<TD> params = {TD({2}, {3.0, -2.0})};
  const auto opt = chain(Momentum<>{}, ConstantStepSize<>{0.1});
  auto state = opt.init(params);
  ParamList<TD> at_step_4;
  auto step = [&](std::int64_t t) {
    Tape<double> tape;
    const VD x = tape.variable(params[0]);
    const VD loss = sum(square(x)) * (t == 4 ? NAN : 1.0);  // the loss is NaN at step 4, its gradient too
    if (t == 4) at_step_4 = params;
    auto g = grad(sum(square(x)), {x});
    return propose_step(StepReport{.loss = loss.value().item()},
                        [&, g] { std::tie(params, state) = opt.step(std::move(params), g, std::move(state)); });
  };
  check_throws_with<training_error>([&] { (void)train(10, step); }, {"loss", "nan", "step 4", "not applied"});
  REQUIRE(at_step_4.size() == 1);
  CHECK(params[0] == at_step_4[0]);  // the parameters of step 4, not NaN
  CHECK(params[0].array().isFinite().all());
}

TEST_CASE("a run stopped, saved, reloaded and resumed gives the same bits and the same log") {
  namespace fs = std::filesystem;
  const TempDir dir;
  const auto opt = chain(Adam<>{}, HypergradientStepSize<>{.initial = 0.01, .beta = 1e-4});
  const TD target = randn({3, 2}, 7);
  // Minibatch noise that is a pure function of the step, as BatchOrder gives.
  auto gradient = [&](const ParamList<TD>& p, std::int64_t t) {
    return ParamList<TD>{(p[0] - target) * 2.0 + randn({3, 2}, 100 + static_cast<std::uint64_t>(t)) * 0.1,
                         p[1] * 2.0 + randn({2}, 200 + static_cast<std::uint64_t>(t)) * 0.1};
  };
  auto run = [&](ParamList<TD>& params, typename decltype(opt)::State& state, StepRange range, const fs::path& log,
                 CsvLogger::Mode mode) {
    return train(range, [&](std::int64_t t) {
      const auto g = gradient(params, t);
      const double loss = sum(square(params[0] - target)).item() + sum(square(params[1])).item();
      return propose_step(StepReport{.loss = loss, .step_size = opt.current_step_size(state)},
                          [&, g] { std::tie(params, state) = opt.step(std::move(params), g, std::move(state)); });
    }, CsvLogger(log, mode));
  };
  const ParamList<TD> initial = {randn({3, 2}, 1), randn({2}, 2)};
  ParamList<TD> straight = initial;
  auto straight_state = opt.init(straight);
  CHECK(run(straight, straight_state, {0, 30}, dir / "straight.csv", CsvLogger::truncate).steps == 30);

  ParamList<TD> first = initial;
  auto first_state = opt.init(first);
  run(first, first_state, {0, 12}, dir / "resumed.csv", CsvLogger::truncate);
  save_npy(dir / "p0.npy", first[0]);
  save_npy(dir / "p1.npy", first[1]);
  save_state(dir / "state", first_state);
  // A fresh start: parameters and state come only from the files.
  ParamList<TD> resumed = {load_npy<double>(dir / "p0.npy"), load_npy<double>(dir / "p1.npy")};
  auto resumed_state = opt.init(resumed);
  load_state(dir / "state", resumed_state);
  const auto summary = run(resumed, resumed_state, {12, 30}, dir / "resumed.csv", CsvLogger::append);
  CHECK(summary.steps == 30);
  CHECK(resumed[0] == straight[0]);
  CHECK(resumed[1] == straight[1]);
  CHECK(resumed_state.step_size.step_size == straight_state.step_size.step_size);
  std::ifstream a(dir / "straight.csv"), b(dir / "resumed.csv");
  const std::string log_a{std::istreambuf_iterator<char>(a), {}}, log_b{std::istreambuf_iterator<char>(b), {}};
  CHECK(log_a == log_b);
  CHECK(std::count(log_a.begin(), log_a.end(), '\n') == 31);
  CHECK_THROWS_AS((void)train(StepRange{5, 3}, [](std::int64_t) { return StepReport{}; }), value_error);
}

// Callbacks are checked when train() is instantiated: a hook that cannot be called is a compile error.
namespace {
struct Misspelled {
  void on_stpe(const StepReport&) {}
};
struct WrongSignature {
  void on_begin() {}
  void on_step(const StepReport&) {}
};
struct NonConstHook {
  void on_step(const StepReport&) {}
};
}  // namespace
static_assert(TrainingCallback<EarlyStopping&> && TrainingCallback<CsvLogger> && TrainingCallback<ProgressBar&>);
static_assert(!TrainingCallback<Misspelled&>);
static_assert(!TrainingCallback<WrongSignature&>);
static_assert(TrainingCallback<NonConstHook&> && !TrainingCallback<const NonConstHook&>);

TEST_CASE("a NaN or infinite loss stops training with the step named") {
  check_throws_with<training_error>(
      [] { (void)train(10, [](std::int64_t t) { return StepReport{.loss = t == 4 ? NAN : 1.0}; }); }, {"loss", "nan", "step 4"});
  check_throws_with<training_error>(
      [] { (void)train(10, [](std::int64_t) { return StepReport{.loss = 1.0, .step_size = INFINITY}; }); }, {"step size", "step 0"});
  CHECK_THROWS_AS(CsvLogger("/nonexistent-dir/x.csv"), error);
}

}  // TEST_SUITE
