// The LSTM optimizer of "Learning to learn by gradient descent by gradient descent", against tuned baselines.
//
//   learned_optimizer [--out DIR]             evaluate the shipped optimizers (pretrained/*.npz) on fresh optimizees
//   learned_optimizer --meta-train mnist      meta-train one (or: quadratic) and write it to --weights
//   learned_optimizer --only mnist            one task (quadratic, mnist, mnist-40, mnist-2layer, mnist-relu)
//
// Meta-training's recipe: --features paper|moments|moments-raw, --optimizee-steps, --unroll, --meta-lr,
// --meta-batch, --minutes (a time budget) or --iterations, --zero-output (the LSTM's output layer starts at zero),
// --nesterov-init LR (the skip path starts as NAG at LR; needs moments-raw), --weight-late-losses (meta-loss
// Σ_s (s/T) f(θ_s)), --select-on-last N (keep the weights best on the held-out runs' last N losses).
//
// Evaluation: for every task, SGD, RMSprop, Adam and NAG get their learning rate tuned on a log-spaced grid (on
// tuning optimizees, for each horizon separately); then the learned optimizer and the tuned baselines run on fresh
// optimizees. The table reports the final loss (MNIST: over the whole training set) as mean and standard deviation;
// curves of the minibatch loss along the runs go to CSV, and plot.gnuplot draws them.
#include "../common/mnist_run.hpp"

#include <chrono>
#include <map>

#ifndef METAGRAD_PRETRAINED_DIR
#define METAGRAD_PRETRAINED_DIR ""
#endif

namespace {

using namespace example;
using Quadratic = QuadraticTask<T>;
using Mnist = MnistMlpTask<T>;
using Learned = LstmOptimizer<Tensor<T>>;

/// The MNIST task and the paper's transfer cases: 40 hidden units, two hidden layers, ReLU.
template <class U>
MnistMlpTask<U> mnist_task(const std::string& name, const Dataset<U>& data) {
  MnistMlpTask<U> task{&data};
  if (name == "mnist-40") task.model = Mlp<U>{{784, 40, 10}, Activation::sigmoid};
  else if (name == "mnist-2layer") task.model = Mlp<U>{{784, 20, 20, 10}, Activation::sigmoid};
  else if (name == "mnist-relu") task.model = Mlp<U>{{784, 20, 10}, Activation::relu};
  else if (name != "mnist") throw value_error("unknown task " + name);
  return task;
}

/// The loss the table reports: the quadratic itself; the MLP's mean loss over the whole training set.
T final_loss(const Quadratic& task, const Quadratic::Problem& problem, const ParamList<Tensor<T>>& params) {
  return task.loss(problem, params, 0).item();
}
T final_loss(const Mnist& task, const Mnist::Problem&, const ParamList<Tensor<T>>& params) { return task.full_loss(params); }

/// One optimizee's run: the minibatch loss before every step, and the final loss at each horizon (∞ once diverged).
struct Trace {
  std::vector<T> losses;
  std::map<std::int64_t, T> final;
};

template <class Task, class Rule>
Trace trace(const Task& task, const typename Task::Problem& problem, const Rule& rule, T step_size, const std::vector<std::int64_t>& horizons) {
  const T inf = std::numeric_limits<T>::infinity();
  ParamList<Tensor<T>> params = task.initial_params(problem);
  auto state = rule.init(params);
  Trace out;
  for (std::int64_t t = 0; t < horizons.back(); ++t) {
    auto [loss, g] = loss_and_gradient(params, [&](const std::vector<Var<T>>& p) { return task.loss(problem, p, t); });
    bool finite = std::isfinite(loss.item());
    for (const auto& gi : g) finite = finite && gi.array().isFinite().all();
    if (!finite || loss.item() > 1e6) {  // diverged: a learning rate too large for this optimizer
      out.losses.resize(static_cast<std::size_t>(horizons.back()), inf);
      for (std::int64_t h : horizons) out.final.try_emplace(h, inf);
      return out;
    }
    out.losses.push_back(loss.item());
    std::tie(params, state) = metagrad::step(rule, std::move(params), g, std::move(state), step_size);
    for (std::int64_t h : horizons)
      if (h == t + 1) out.final[h] = final_loss(task, problem, params);
  }
  return out;
}

template <class F>
void for_each_baseline(F&& f) {
  f("sgd", Sgd<T>{});
  f("rmsprop", RmsProp<T>{});
  f("adam", Adam<T>{});
  f("nag", Nesterov<T>{});
}

/// Learning rates 10^(k/per_decade) from 1e-5 to 100.
std::vector<T> learning_rate_grid(int per_decade) {
  std::vector<T> out;
  for (int k = -5 * per_decade; k <= 2 * per_decade; ++k) out.push_back(std::pow(T(10), T(k) / per_decade));
  return out;
}

struct Settings {
  std::vector<std::int64_t> horizons;
  int tuning_optimizees, evaluation_optimizees, grid_per_decade;
};

std::uint64_t tuning_seed(int i) { return 1000 + static_cast<std::uint64_t>(i); }
std::uint64_t evaluation_seed(int i) { return 2000 + static_cast<std::uint64_t>(i); }

/// Mean and standard deviation over optimizees.
std::pair<T, T> mean_std(const std::vector<T>& x) {
  T m = 0, v = 0;
  for (T e : x) m += e / static_cast<T>(x.size());
  for (T e : x) v += (e - m) * (e - m) / static_cast<T>(x.size() > 1 ? x.size() - 1 : 1);
  return {m, std::sqrt(v)};
}

struct Row {
  std::string task;
  std::int64_t steps;
  std::string optimizer;
  T learning_rate;  // 0 for the learned optimizer (it takes step size 1)
  T mean, std;
  std::vector<T> finals;   // per evaluation optimizee
  std::vector<T> curve_mean, curve_std;
};

/// Tunes the baselines on `task`, then evaluates them and `learned` on fresh optimizees: one row per optimizer and
/// horizon.
template <class Task>
std::vector<Row> evaluate_task(const std::string& name, const Task& task, const Learned& learned, const Settings& s) {
  std::vector<Row> rows;
  const auto add_row = [&](const std::string& optimizer, T lr, std::int64_t horizon, const std::vector<Trace>& traces) {
    Row row{name, horizon, optimizer, lr, 0, 0, {}, {}, {}};
    for (const auto& tr : traces) row.finals.push_back(tr.final.at(horizon));
    std::tie(row.mean, row.std) = mean_std(row.finals);
    for (std::int64_t t = 0; t < horizon; ++t) {
      std::vector<T> at;
      for (const auto& tr : traces) at.push_back(tr.losses[static_cast<std::size_t>(t)]);
      const auto [m, sd] = mean_std(at);
      row.curve_mean.push_back(m), row.curve_std.push_back(sd);
    }
    rows.push_back(std::move(row));
  };
  std::vector<Trace> traces;
  for (int i = 0; i < s.evaluation_optimizees; ++i) traces.push_back(trace(task, task.sample(evaluation_seed(i)), learned, T(1), s.horizons));
  for (std::int64_t h : s.horizons) add_row("lstm", 0, h, traces);
  const auto grid = learning_rate_grid(s.grid_per_decade);
  for_each_baseline([&](const char* optimizer, const auto& rule) {
    std::map<std::int64_t, std::pair<T, T>> best;  // horizon → (mean tuning loss, learning rate)
    for (T lr : grid) {
      std::map<std::int64_t, T> mean;
      for (int i = 0; i < s.tuning_optimizees; ++i)
        for (const auto& [h, loss] : trace(task, task.sample(tuning_seed(i)), rule, lr, s.horizons).final) mean[h] += loss / s.tuning_optimizees;
      for (const auto& [h, m] : mean)
        if (!best.count(h) || m < best[h].first) best[h] = {m, lr};
    }
    for (std::int64_t h : s.horizons) {
      const T lr = best.at(h).second;
      if (lr == grid.front() || lr == grid.back())
        std::printf("note: %s's best learning rate on %s at %lld steps is at the end of the grid (%g)\n", optimizer, name.c_str(),
                    static_cast<long long>(h), lr);
      std::vector<Trace> runs;
      for (int i = 0; i < s.evaluation_optimizees; ++i) runs.push_back(trace(task, task.sample(evaluation_seed(i)), rule, lr, {h}));
      add_row(optimizer, lr, h, runs);
    }
  });
  return rows;
}

void write_results(const fs::path& out, const std::vector<Row>& rows) {
  auto table = open_csv(out / "table.csv", "task,steps,optimizer,learning_rate,final_loss_mean,final_loss_std");
  auto finals = open_csv(out / "final_losses.csv", "task,steps,optimizer,optimizee_seed,final_loss");
  for (const auto& r : rows) {
    table << r.task << ',' << r.steps << ',' << r.optimizer << ',' << r.learning_rate << ',' << r.mean << ',' << r.std << '\n';
    for (std::size_t i = 0; i < r.finals.size(); ++i)
      finals << r.task << ',' << r.steps << ',' << r.optimizer << ',' << evaluation_seed(static_cast<int>(i)) << ',' << r.finals[i] << '\n';
  }
  // Curves: one file per task and horizon, a mean and a std column per optimizer.
  std::map<std::pair<std::string, std::int64_t>, std::vector<const Row*>> groups;
  for (const auto& r : rows) groups[{r.task, r.steps}].push_back(&r);
  for (const auto& [key, group] : groups) {
    std::string header = "step";
    for (const Row* r : group) header += "," + r->optimizer + "_mean," + r->optimizer + "_std";
    auto curves = open_csv(out / ("curves_" + key.first + "_" + std::to_string(key.second) + ".csv"), header);
    for (std::int64_t t = 0; t < key.second; ++t) {
      curves << t;
      for (const Row* r : group) curves << ',' << r->curve_mean[static_cast<std::size_t>(t)] << ',' << r->curve_std[static_cast<std::size_t>(t)];
      curves << '\n';
    }
  }
}

/// The learned optimizer against the best tuned baseline of its task and horizon, paired by optimizee (both ran on
/// the same 20): it wins or loses only when the mean difference is more than two standard errors from zero.
std::string verdict(const Row& lstm, const std::vector<Row>& rows) {
  const Row* best = nullptr;
  for (const auto& o : rows)
    if (o.task == lstm.task && o.steps == lstm.steps && o.optimizer != "lstm" && (!best || o.mean < best->mean)) best = &o;
  if (!best) return "";
  std::vector<T> difference;
  for (std::size_t i = 0; i < lstm.finals.size(); ++i) difference.push_back(lstm.finals[i] - best->finals[i]);
  const auto [mean, std] = mean_std(difference);
  const T standard_error = std / std::sqrt(static_cast<T>(difference.size()));
  char text[160];
  std::snprintf(text, sizeof text, "%s the best tuned baseline (%s): difference %+.4f ± %.4f (paired, standard error)",
                mean + 2 * standard_error < 0 ? "beats" : mean - 2 * standard_error > 0 ? "LOSES to" : "ties with", best->optimizer.c_str(),
                mean, standard_error);
  return text;
}

void print_table(const std::vector<Row>& rows) {
  std::printf("\n%-13s %5s  %-8s %10s  %-22s %s\n", "task", "steps", "optimizer", "lr", "final loss (mean ± std)", "");
  for (const auto& r : rows)
    std::printf("%-13s %5lld  %-8s %10s  %10.4f ± %-9.4f %s\n", r.task.c_str(), static_cast<long long>(r.steps), r.optimizer.c_str(),
                r.optimizer == "lstm" ? "-" : std::to_string(r.learning_rate).substr(0, 8).c_str(), r.mean, r.std,
                r.optimizer == "lstm" ? verdict(r, rows).c_str() : "");
}

std::string json_results(const std::vector<Row>& rows) {
  std::ostringstream os;
  os.precision(6);
  os << "{\"example\": \"learned_optimizer\", \"results\": [";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    os << (i ? ", " : "") << "{\"task\": \"" << r.task << "\", \"steps\": " << r.steps << ", \"optimizer\": \"" << r.optimizer
       << "\", \"learning_rate\": ";
    if (r.optimizer == "lstm") os << "null";
    else os << r.learning_rate;
    os << ", \"final_loss_mean\": " << r.mean << ", \"final_loss_std\": " << r.std << "}";
  }
  os << "]}";
  return os.str();
}

struct MetaTrainFlags {
  fs::path task, weights, features = "paper", precision = "float";
  bool zero_output = false, weight_late_losses = false;
  double minutes = 30, meta_learning_rate = 3e-3, nesterov_init = 0;
  int meta_batch = 1, iterations = 1000000, evaluate_every = 10, evaluation_optimizees = 4;
  std::int64_t optimizee_steps = 100, unroll = 20, evaluation_last_steps = 0;
};

/// Meta-trains on `task` (in its precision: single precision runs about 1.7× faster, and the file it writes loads in
/// either) and writes the best weights.
template <class Task>
int meta_train_and_save(const Task& task, const MetaTrainFlags& f, const fs::path& out) {
  using U = typename Task::value_type;
  const MetaTrainingOptions options{.optimizee_steps = f.optimizee_steps, .unroll = f.unroll, .meta_iterations = f.iterations,
                                    .meta_batch = f.meta_batch, .meta_learning_rate = f.meta_learning_rate,
                                    .weight_late_losses = f.weight_late_losses, .evaluate_every = f.evaluate_every,
                                    .evaluation_optimizees = f.evaluation_optimizees, .evaluation_last_steps = f.evaluation_last_steps,
                                    .time_budget_seconds = f.minutes * 60, .seed = 7};
  const auto started = std::chrono::steady_clock::now();
  std::printf("meta-training on %s (%s) for up to %.1f minutes: optimizees of %lld steps in unrolls of %lld, meta-batch %d, Adam %g\n",
              f.task.string().c_str(), sizeof(U) == 4 ? "float" : "double", f.minutes, static_cast<long long>(f.optimizee_steps), static_cast<long long>(f.unroll),
              f.meta_batch, f.meta_learning_rate);
  if (f.features != "paper" && f.features != "moments" && f.features != "moments-raw")
    throw value_error("--features paper, moments or moments-raw");
  auto initial = LstmOptimizer<Tensor<U>>::initial(20, 1, f.features == "moments" ? GradientPreprocessing::moments()
                                                        : f.features == "moments-raw" ? GradientPreprocessing::moments_and_raw_momenta()
                                                                                      : GradientPreprocessing::paper());
  if (f.zero_output) initial.weights.output.weight.array() = 0, initial.weights.output.bias.array() = 0;
  if (f.nesterov_init > 0) initial.nesterov_skip(static_cast<U>(f.nesterov_init));
  const auto result = meta_train(task, initial, options, ProgressBar("meta-training"), CsvLogger(out / "meta_training.csv"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  save_learned_optimizer(f.weights, result.best);
  std::printf("held-out mean loss along the runs: %.4f before, %.4f at the end, best %.4f (of %zu evaluations, in %s)\n",
              result.evaluations.front(), result.evaluations.back(), result.best_evaluation, result.evaluations.size(),
              (out / "meta_training.csv").string().c_str());
  std::printf("%lld optimizee steps in %.0f s: %.1f per second; wrote %s\n", static_cast<long long>(result.optimizee_steps), seconds,
              static_cast<double>(result.optimizee_steps) / seconds, f.weights.string().c_str());
  std::printf("{\"example\": \"learned_optimizer\", \"meta_trained\": \"%s\", \"optimizee_steps\": %lld, \"seconds\": %.0f, "
              "\"best_evaluation\": %.6g}\n",
              f.task.string().c_str(), static_cast<long long>(result.optimizee_steps), seconds, result.best_evaluation);
  return 0;
}

int run(int argc, char** argv) {
  ExampleOptions common;
  MetaTrainFlags mt;
  fs::path pretrained = METAGRAD_PRETRAINED_DIR, only;
  int optimizees = 20;
  auto flags = common.flags();
  flags.insert(flags.end(), {{"--meta-train", &mt.task}, {"--weights", &mt.weights}, {"--minutes", &mt.minutes},
                             {"--meta-lr", &mt.meta_learning_rate}, {"--meta-batch", &mt.meta_batch}, {"--iterations", &mt.iterations},
                             {"--optimizee-steps", &mt.optimizee_steps}, {"--unroll", &mt.unroll}, {"--pretrained", &pretrained},
                             {"--optimizees", &optimizees}, {"--only", &only},
                             {"--features", &mt.features}, {"--zero-output", &mt.zero_output}, {"--nesterov-init", &mt.nesterov_init},
                             {"--select-on-last", &mt.evaluation_last_steps}, {"--weight-late-losses", &mt.weight_late_losses},
                             {"--precision", &mt.precision}, {"--evaluate-every", &mt.evaluate_every}});
  parse_flags(argc, argv, flags);
  if (common.out.empty()) common.out = "results";
  fs::create_directories(common.out);
  const fs::path mnist_dir = common.data / "mnist-10k";
  const bool have_mnist = mnist_found(common.data);
  const auto data = have_mnist ? std::optional(load_mnist<T>(mnist_dir, MnistSplit::train)) : std::nullopt;

  if (!mt.task.empty()) {
    if (mt.weights.empty()) mt.weights = common.out / (mt.task.string() + "_lstm.npz");
    if (mt.precision != "float" && mt.precision != "double") throw value_error("--precision float or double");
    const bool single = mt.precision == "float";
    if (mt.task == "quadratic") return single ? meta_train_and_save(QuadraticTask<float>{}, mt, common.out) : meta_train_and_save(Quadratic{}, mt, common.out);
    if (!data) throw value_error("meta-training on " + mt.task.string() + " needs MNIST (--data)");
    if (!single) return meta_train_and_save(mnist_task(mt.task.string(), *data), mt, common.out);
    const Dataset<float> digits = load_mnist<float>(mnist_dir, MnistSplit::train);
    return meta_train_and_save(mnist_task(mt.task.string(), digits), mt, common.out);
  }

  const Settings settings = common.quick ? Settings{{20}, 2, 3, 1} : Settings{{100, 200}, 8, optimizees, 3};
  std::vector<Row> rows;
  const auto add = [&](std::vector<Row> r) { rows.insert(rows.end(), r.begin(), r.end()); };
  const auto started = std::chrono::steady_clock::now();
  const auto wanted = [&](const std::string& task) { return only.empty() || only == task; };
  if (wanted("quadratic")) {  // cheap: tuned on more optimizees
    Settings quadratic = settings;
    quadratic.tuning_optimizees *= 4;
    add(evaluate_task("quadratic", Quadratic{}, load_learned_optimizer(pretrained / "quadratic_lstm.npz"), quadratic));
  }
  if (data) {
    const Learned learned = load_learned_optimizer(pretrained / "mnist_lstm.npz");
    if (wanted("mnist")) add(evaluate_task("mnist", mnist_task("mnist", *data), learned, settings));
    const Settings transfer{{200}, settings.tuning_optimizees, settings.evaluation_optimizees, settings.grid_per_decade};
    for (const char* name : {"mnist-40", "mnist-2layer", "mnist-relu"})
      if (!common.quick && wanted(name)) add(evaluate_task(name, mnist_task(name, *data), learned, transfer));
  } else {
    std::printf("learned_optimizer: no MNIST at '%s' (pass --data with the folder that holds mnist-10k/); quadratics only\n",
                mnist_dir.string().c_str());
  }
  print_table(rows);
  write_results(common.out, rows);
  std::printf("%.0f s; wrote %s/table.csv, final_losses.csv and curves_*.csv\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), common.out.string().c_str());
  std::printf("%s\n", json_results(rows).c_str());
  const auto mean_of = [&](const std::string& task, const std::string& optimizer) {
    for (const auto& r : rows)
      if (r.task == task && r.optimizer == optimizer) return r.mean;
    throw value_error("no " + optimizer + " row for " + task);
  };
  if (wanted("quadratic"))
    check_figure(common.quick, mean_of("quadratic", "lstm") < mean_of("quadratic", "sgd"),
                 "the shipped LSTM optimizer must end below tuned SGD on the quadratics");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "learned_optimizer: %s\n", e.what());
    return 1;
  }
}
