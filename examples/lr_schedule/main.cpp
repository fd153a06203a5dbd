// lr_schedule: three ways to tune the learning rate of the same training run — an MLP (or LeNet-5, --model lenet5)
// trained on MNIST-10k by SGD with heavy-ball momentum for --steps steps — and what each costs:
//   1. a grid over constant, cosine and one-cycle schedules (52 configurations),
//   2. hypergradient descent online (SGD-HD on the same momentum rule, and Adam-HD),
//   3. metagradient descent (MGD): Adam on the per-step log learning rates, from a flat start, each step following
//      the exact metagradient of the validation loss through the whole training run (revolve checkpointing).
// Every schedule is judged by the validation loss after training; the test accuracy of each winner is reported.
// Writes grid.csv, hd.csv, mgd.csv, schedules.csv and metasmoothness.csv into --out and ends with one JSON line.
//
//   lr_schedule [--model mlp|lenet5] [--data DIR] [--cifar10 DIR] [--out DIR] [--steps N] [--meta-steps N] [--hidden H]
//               [--shards S] [--quick] [--demo]
//
// --demo runs only the metagradient descent (25 steps) and prints what it learned: scripts/demo's flagship run.
// Each batch's gradient is the fixed sum over --shards virtual shards (default 4; 0: one tape), computed on metagrad's
// threads; built with MPI and started by `mpirun -np N` (N ≤ S), the ranks share the shards and print the same JSON
// line, to the bit.
#include "../common/mnist_run.hpp"

#include <algorithm>
#include <limits>
#include <numbers>

using namespace example;

namespace {

struct Options : ModelOptions {
  std::int64_t hidden = 64;  // the MLP's hidden units
  bool demo = false;  // metagradient descent alone, fewer steps: the one-minute flagship run of scripts/demo
  Options() { out = "lr_schedule-results", steps = 500, meta_steps = 50, shards = 4; }
};

/// A named schedule of the grid.
struct Schedule {
  std::string family;
  T peak, warmup;
  std::vector<T> rates;
};

std::vector<Schedule> grid(std::int64_t steps, const std::vector<T>& peaks) {
  std::vector<Schedule> out;
  const auto n = static_cast<T>(steps);
  for (T peak : peaks) {
    out.push_back({"constant", peak, 0, std::vector<T>(static_cast<std::size_t>(steps), peak)});
    Schedule cosine{"cosine", peak, 0, {}};
    for (std::int64_t t = 0; t < steps; ++t)
      cosine.rates.push_back(peak * (0.5 * (1 + std::cos(std::numbers::pi * static_cast<T>(t) / n)) + 1e-3));
    out.push_back(cosine);
    for (T warmup : {0.1, 0.3}) {  // one-cycle: linear warm-up to the peak, then linear decay
      Schedule cycle{"one-cycle", peak, warmup, {}};
      const T top = warmup * n;
      for (std::int64_t t = 0; t < steps; ++t) {
        const auto x = static_cast<T>(t) + 0.5;
        cycle.rates.push_back(peak * (x < top ? x / top : std::max<T>(1e-3, (n - x) / (n - top))));
      }
      out.push_back(cycle);
    }
  }
  return out;
}

/// Validation loss, with a diverged run (NaN) counted as infinitely bad.
template <class Model>
T validation_loss(const Model& model, const ParamList<Tensor<T>>& params, const Dataset<T>& validation) {
  const T loss = evaluate(model, params, validation).loss;
  return std::isfinite(loss) ? loss : std::numeric_limits<T>::infinity();
}

/// An online run of a hypergradient optimizer on the same batches: the learning rates it chose and its parameters.
template <class Model, class Opt>
std::pair<std::vector<T>, ParamList<Tensor<T>>> hypergradient_run(const MnistRun<Model>& run, const Opt& optimizer, std::int64_t steps) {
  ParamList<Tensor<T>> params = run.model.init(run.init_seed);
  auto state = optimizer.init(params);
  const BatchOrder order(run.train->size(), run.batch_size, run.order_seed);
  std::vector<T> rates;
  for (std::int64_t t = 0; t < steps; ++t) {
    const Dataset<T> batch = run.train->batch(order.batch(t));
    auto [loss, g] = loss_and_gradient(params, [&](const std::vector<Var<T>>& p) { return mean(cross_entropy(run.model.logits(p, batch.inputs), batch.labels)); });
    std::tie(params, state) = optimizer.step(std::move(params), g, std::move(state));
    rates.push_back(optimizer.current_step_size(state));
  }
  return {rates, params};
}

template <class Model>
int tune(const Options& opt, const Processes& processes, const Splits& splits, const Model& model);

}  // namespace

int main(int argc, char** argv) try {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they happen, also in a pipe
  const Processes processes(argc, argv);
  Options opt;
  auto flags = opt.flags();
  flags.insert(flags.end(), {{"--hidden", &opt.hidden}, {"--demo", &opt.demo}});
  parse_flags(argc, argv, flags);
  share_work(processes, opt);
  if (opt.quick) opt.steps = 40, opt.meta_steps = 3, opt.hidden = 16;
  if (opt.demo) opt.meta_steps = 25;
  if (opt.steps < 1 || opt.meta_steps < 1 || opt.hidden < 1) throw value_error("steps, meta-steps and hidden must be positive");
  opt.check_model();
  const auto splits = load_image_splits("lr_schedule", opt.data, opt.cifar10, opt.quick ? 1000 : 7000, opt.quick ? 200 : 1000);
  if (!splits) return 0;
  const Shape image = splits->train.inputs.shape().reduced(0, false);
  if (opt.model == "lenet5")
    return tune(opt, processes, *splits, smooth_lenet5(image));
  return tune(opt, processes, {as_rows(splits->train), as_rows(splits->validation), as_rows(splits->test)},
              Mlp<T>{{image.size(), opt.hidden, 10}, Activation::tanh});
} catch (const metagrad::error& e) {
  std::fprintf(stderr, "lr_schedule: %s\n", e.what());
  return 1;
}

namespace {

template <class Model>
int tune(const Options& opt, const Processes& processes, const Splits& splits, const Model& model) {
  fs::create_directories(opt.out);
  MnistRun run(model, splits.train, splits.validation);
  run.shards = opt.shards, run.processes = &processes;
  const std::int64_t T_steps = opt.steps;

  // Why this setup: how metasmooth the run is along the schedule (a 5% change of every learning rate) for the batch
  // size chosen and a small one, at the flat start and at a large learning rate (1 = the trained model moves
  // consistently with the schedule; near 0 = chaotically).
  auto smoothness_csv = open_csv(opt.out / "metasmoothness.csv", "setup,batch,learning_rate,score");
  double chosen_smoothness = 0;
  for (const auto& [name, batch, rate] : {std::tuple{"chosen", index_t(128), 0.01}, std::tuple{"small batch", index_t(16), 0.01},
                                          std::tuple{"large rate", index_t(128), 0.5}, std::tuple{"both", index_t(16), 0.5}}) {
    MnistRun variant = run;
    variant.batch_size = batch;
    auto meta = variant.meta(std::vector<T>(static_cast<std::size_t>(T_steps), rate));
    const MnistMeta direction{.log_learning_rates = Tensor<T>::ones(meta.log_learning_rates.shape()),
                              .data_weights = Tensor<T>::zeros(meta.data_weights.shape()),
                              .poisoned_inputs = Tensor<T>::zeros(meta.poisoned_inputs.shape())};
    const double s = metasmoothness(variant, meta, direction, 0.05, T_steps);
    if (std::string(name) == "chosen") chosen_smoothness = s;
    smoothness_csv << name << ',' << batch << ',' << rate << ',' << s << '\n';
    std::printf("metasmoothness, %-11s (batch %3lld, learning rate %.2f): %.3f\n", name, static_cast<long long>(batch), rate, s);
  }

  // 1. The grid.
  std::vector<T> peaks;
  const int peak_count = opt.quick ? 3 : 13;
  for (int i = 0; i < peak_count; ++i) peaks.push_back(std::pow(10.0, -3.0 + 2.5 * i / std::max(1, peak_count - 1)));
  const auto schedules = opt.demo ? std::vector<Schedule>{} : grid(T_steps, peaks);
  auto grid_csv = open_csv(opt.out / "grid.csv", "family,peak,warmup,val_loss,test_accuracy");
  T grid_best = std::numeric_limits<T>::infinity(), grid_best_accuracy = 0;
  const Schedule* best_schedule = nullptr;
  std::vector<Evaluation> outcomes(schedules.size());  // the configurations on metagrad's threads (one at a time under MPI)
  for_each_run(run, static_cast<std::int64_t>(schedules.size()), [&](std::int64_t i) {
    const auto params = run.trained(run.meta(schedules[static_cast<std::size_t>(i)].rates), T_steps);
    outcomes[static_cast<std::size_t>(i)] = {validation_loss(model, params, splits.validation), evaluate(model, params, splits.test).accuracy};
  });
  for (std::size_t i = 0; i < schedules.size(); ++i) {
    const Schedule& s = schedules[i];
    const auto [val, accuracy] = outcomes[i];
    grid_csv << s.family << ',' << s.peak << ',' << s.warmup << ',' << val << ',' << accuracy << '\n';
    if (val < grid_best) grid_best = val, grid_best_accuracy = accuracy, best_schedule = &s;
  }
  if (best_schedule)
    std::printf("grid: %zu schedules, best %s (peak %.3g, warm-up %.1f): validation loss %.4f, test accuracy %.4f\n", schedules.size(),
                best_schedule->family.c_str(), best_schedule->peak, best_schedule->warmup, grid_best, grid_best_accuracy);

  // 2. Hypergradient descent, online.
  const T flat = 0.01;
  auto hd_csv = open_csv(opt.out / "hd.csv", "method,val_loss,test_accuracy,final_learning_rate");
  T hd_best = std::numeric_limits<T>::infinity();
  std::vector<T> hd_rates;
  auto hd = [&](const char* name, const auto& optimizer) {
    const auto [rates, params] = hypergradient_run(run, optimizer, T_steps);
    const T val = validation_loss(model, params, splits.validation);
    const T accuracy = evaluate(model, params, splits.test).accuracy;
    hd_csv << name << ',' << val << ',' << accuracy << ',' << rates.back() << '\n';
    std::printf("%s: validation loss %.4f, test accuracy %.4f, final learning rate %.3g\n", name, val, accuracy, rates.back());
    if (val < hd_best) hd_best = val, hd_rates = rates;
  };
  if (!opt.demo) {
    hd("sgd-hd (momentum 0.9)", chain(Momentum<T>{.momentum = 0.9}, HypergradientStepSize<T>{.initial = flat, .beta = 1e-3}));
    hd("adam-hd", chain(Adam<T>{}, HypergradientStepSize<T>{.initial = 1e-3, .beta = 1e-7}));
  }

  // 3. Metagradient descent from the flat schedule.
  MnistMeta meta = run.meta(std::vector<T>(static_cast<std::size_t>(T_steps), flat));
  const Revolve policy{32};
  const CheckpointPlan plan = checkpoint_plan(policy, T_steps);
  std::printf("MGD: %d metagradient steps through %lld training steps each; revolve with %lld checkpoints replays %lld steps per metagradient\n",
              opt.meta_steps, static_cast<long long>(T_steps), static_cast<long long>(plan.stored_states), static_cast<long long>(plan.replayed_steps));
  auto meta_optimizer = chain(Adam<T>{}, ConstantStepSize<T>{0.1});
  ParamList<Tensor<T>> u = {meta.log_learning_rates};
  auto meta_state = meta_optimizer.init(u);
  auto mgd_csv = open_csv(opt.out / "mgd.csv", "meta_step,val_loss");
  std::int64_t replayed = 0, reversed = 0;
  T mgd_start = 0;
  for (int k = 0; k < opt.meta_steps; ++k) {
    meta.log_learning_rates = u[0];
    const auto result = metagradient(run, meta, T_steps, policy, {}, ProgressBar("metagradient " + std::to_string(k + 1)));
    replayed += result.cost.replayed_steps;
    reversed += T_steps;
    mgd_csv << k << ',' << result.objective << '\n';
    if (k == 0) mgd_start = result.objective;
    std::printf("MGD step %2d: validation loss %.4f\n", k, result.objective);
    std::fflush(stdout);
    std::tie(u, meta_state) = meta_optimizer.step(std::move(u), {result.gradient.log_learning_rates}, std::move(meta_state));
  }
  meta.log_learning_rates = u[0];
  const auto mgd_params = run.trained(meta, T_steps);
  const T mgd_val = validation_loss(model, mgd_params, splits.validation);
  const T mgd_accuracy = evaluate(model, mgd_params, splits.test).accuracy;
  mgd_csv << opt.meta_steps << ',' << mgd_val << '\n';
  std::printf("MGD: validation loss %.4f (flat schedule: %.4f), test accuracy %.4f\n", mgd_val, mgd_start, mgd_accuracy);

  auto schedules_csv = open_csv(opt.out / "schedules.csv", "step,grid_best,mgd,hd");
  T mgd_min = std::numeric_limits<T>::infinity(), mgd_max = 0;
  for (std::int64_t t = 0; t < T_steps; ++t) {
    const T rate = std::exp(u[0].data()[t]);
    mgd_min = std::min(mgd_min, rate), mgd_max = std::max(mgd_max, rate);
    schedules_csv << t << ',';
    if (best_schedule) schedules_csv << best_schedule->rates[static_cast<std::size_t>(t)];
    schedules_csv << ',' << rate << ',';
    if (!hd_rates.empty()) schedules_csv << hd_rates[static_cast<std::size_t>(t)];
    schedules_csv << '\n';
  }
  const auto rate_at = [&](double fraction) { return std::exp(u[0].data()[static_cast<index_t>(fraction * static_cast<double>(T_steps - 1))]); };
  std::printf("learned schedule: %.3g at the start, %.3g at a quarter, %.3g half-way, %.3g at three quarters, %.3g at the end (range %.3g to %.3g)\n",
              rate_at(0), rate_at(0.25), rate_at(0.5), rate_at(0.75), rate_at(1), mgd_min, mgd_max);

  JsonLine json("lr_schedule");
  json.add("mgd_val_loss", mgd_val).add("mgd_test_accuracy", mgd_accuracy).add("mgd_start_val_loss", mgd_start);
  if (opt.demo) {  // what the flagship run learned, without the grid and hypergradient comparisons
    json.add_integer("metagradient_steps", opt.meta_steps).add_integer("steps", T_steps);
    std::printf("%s\n", json.str().c_str());
    return 0;
  }
  json.add("grid_best_val_loss", grid_best)
      .add("grid_best_test_accuracy", grid_best_accuracy).add_integer("grid_configurations", static_cast<std::int64_t>(schedules.size()))
      .add("hd_val_loss", hd_best).add_integer("metagradient_steps", opt.meta_steps)
      .add_integer("grid_training_steps", static_cast<std::int64_t>(schedules.size()) * T_steps).add_integer("hd_training_steps", 2 * T_steps)
      .add_integer("mgd_replayed_steps", replayed).add_integer("mgd_reversed_steps", reversed).add("flat_start_learning_rate", flat)
      .add("metasmoothness", chosen_smoothness).add_integer("steps", T_steps);
  opt.describe(json);
  std::printf("%s\n", json.str().c_str());
  check_figure(opt.quick, mgd_val < mgd_start, "metagradient descent must lower the validation loss of the flat schedule");
  return 0;
}

}  // namespace
