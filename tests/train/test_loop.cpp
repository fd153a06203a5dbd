// The training loop: callbacks detected at compile time, early stopping, CSV output, NaN detection.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

TEST_SUITE("training loop") {

TEST_CASE("a real loop: gradient descent on a quadratic, with every callback") {
  ParamList<TD> params = {TD({2}, {3.0, -2.0})};
  const auto opt = chain(Sgd<>{}, ConstantStepSize<>{0.1});
  auto state = opt.init(params);
  const auto csv = std::filesystem::temp_directory_path() / "metagrad-loop-test.csv";
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
  std::filesystem::remove(csv);
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

TEST_CASE("a NaN or infinite loss stops training with the step named") {
  check_throws_with<training_error>(
      [] { (void)train(10, [](std::int64_t t) { return StepReport{.loss = t == 4 ? NAN : 1.0}; }); }, {"loss", "nan", "step 4"});
  check_throws_with<training_error>(
      [] { (void)train(10, [](std::int64_t) { return StepReport{.loss = 1.0, .step_size = INFINITY}; }); }, {"step size", "step 0"});
  CHECK_THROWS_AS(CsvLogger("/nonexistent-dir/x.csv"), error);
}

}  // TEST_SUITE
