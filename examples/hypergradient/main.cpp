// hypergradient: the MNIST experiments of "Online Learning Rate Adaptation with Hypergradient Descent"
// (Baydin et al., ICLR 2018) — logistic regression and an MLP trained by SGD, SGD with Nesterov momentum and
// Adam, each with a fixed step size and with its additive (-hd) and multiplicative (-hdm) hypergradient forms,
// then the step-size robustness sweep. Writes iterations.csv, epochs.csv and sweep.csv into --out and ends with
// one JSON line of the headline figures.
//
//   hypergradient [--data DIR] [--out DIR] [--epochs N] [--mlp-epochs N] [--hidden H] [--sweep-cap N] [--quick]
//
// --data is the folder holding mnist-10k/ (default: the build's METAGRAD_DATA_DIR); without it the example says
// so and exits cleanly. --quick is the small version the tests run.
#include <metagrad/metagrad.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "../common/checks.hpp"

#ifndef METAGRAD_DATA_DIR
#define METAGRAD_DATA_DIR ""
#endif

using namespace metagrad;
using T = double;
namespace fs = std::filesystem;

namespace {

struct Options {
  fs::path data = METAGRAD_DATA_DIR;
  fs::path out = "hypergradient-results";
  int epochs = 10;      // logistic regression
  int mlp_epochs = 3;   // MLP
  index_t hidden = 1000;
  int sweep_cap = 3000;  // iterations before a sweep run counts as not reaching the target
  bool quick = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw value_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--data") o.data = value();
    else if (a == "--out") o.out = value();
    else if (a == "--epochs") o.epochs = std::stoi(value());
    else if (a == "--mlp-epochs") o.mlp_epochs = std::stoi(value());
    else if (a == "--hidden") o.hidden = std::stol(value());
    else if (a == "--sweep-cap") o.sweep_cap = std::stoi(value());
    else if (a == "--quick") o.quick = true;
    else throw value_error("unknown option " + a);
  }
  if (o.quick) {
    o.epochs = 2;
    o.mlp_epochs = 1;
    o.hidden = 64;
    o.sweep_cap = 300;
  }
  if (o.epochs < 1 || o.mlp_epochs < 1 || o.hidden < 1 || o.sweep_cap < 1)
    throw value_error("epochs, hidden width and sweep cap must be positive");
  return o;
}

constexpr T l2 = 1e-4;  // the paper's L2 penalty, (λ/2)‖θ‖² added to the loss so that the hypergradient sees it
constexpr index_t batch_size = 128;

/// A named MLP: {784, 10} is logistic regression; {784, H, H, 10} the MLP (ReLU between layers). Mlp::init is PyTorch's
/// default initialization, U(−1/√fan_in, 1/√fan_in).
struct Model {
  std::string name;
  Mlp<T> mlp;

  ParamList<Tensor<T>> init(std::uint64_t seed) const { return mlp.init(seed); }
  template <class C, class X>
  auto logits(const ParamList<C>& p, const X& x) const {
    return mlp.logits(p, x);
  }
};

struct Evaluation {
  T loss, accuracy;
};

Evaluation evaluate(const Model& model, const ParamList<Tensor<T>>& p, const Dataset<T>& data) {
  const Tensor<T> z = model.logits(p, data.inputs);
  return {mean(cross_entropy(z, data.labels)).item(), accuracy(z, data.labels)};
}

/// A train() callback that ends the run once stop(step, params) says so.
template <class Stop>
struct StopWhen {
  Stop& stop;
  ParamList<Tensor<T>>& params;
  bool on_step(const StepReport& r) { return !stop(r.step, params); }
};

/// One training run. `on_iteration(t, loss, alpha)` sees every iteration; `stop(t, params)` may end it early.
template <class Opt, class OnIteration, class Stop>
ParamList<Tensor<T>> train_run(const Model& model, const Opt& opt, const Dataset<T>& train, std::int64_t iterations,
                               OnIteration&& on_iteration, Stop&& stop) {
  ParamList<Tensor<T>> params = model.init(7);
  auto state = opt.init(params);
  const BatchOrder order(train.size(), batch_size, 2018);
  Tape<T> tape;
  metagrad::train(iterations, [&](std::int64_t t) {
    const auto start = tape.mark();
    const Dataset<T> batch = train.batch(order.batch(t));
    std::vector<Var<T>> vars;
    for (const auto& p : params) vars.push_back(tape.variable(p));
    Var<T> penalty = sum(square(vars[0]));
    for (std::size_t i = 1; i < vars.size(); ++i) penalty = penalty + sum(square(vars[i]));
    const Var<T> data_loss = mean(cross_entropy(model.logits(vars, batch.inputs), batch.labels));
    const Var<T> loss = data_loss + penalty * (l2 / 2);
    auto g = grad(loss, vars);
    const T value = data_loss.value().item();
    tape.rewind(start);
    std::tie(params, state) = opt.step(std::move(params), g, std::move(state));
    const T alpha = opt.current_step_size(state);
    on_iteration(t, value, alpha);
    return StepReport{.loss = value, .step_size = alpha};
  }, ProgressBar(model.name), StopWhen<Stop>{stop, params});
  return params;
}

struct RunResult {
  std::string model, method;
  T alpha0, beta, final_train_loss, final_val_loss, val_accuracy, final_alpha;
};

std::string number(T v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

}  // namespace

int main(int argc, char** argv) try {
  const Options opt = parse(argc, argv);
  const fs::path mnist = opt.data / "mnist-10k";
  if (!example::mnist_present("hypergradient", opt.data)) return 0;
  const Dataset<T> train = load_mnist<T>(mnist, MnistSplit::train);
  const Dataset<T> validation = load_mnist<T>(mnist, MnistSplit::test);
  fs::create_directories(opt.out);
  std::ofstream iterations_csv(opt.out / "iterations.csv"), epochs_csv(opt.out / "epochs.csv"), sweep_csv(opt.out / "sweep.csv");
  iterations_csv << "model,method,iteration,train_loss,alpha\n";
  epochs_csv << "model,method,epoch,val_loss,val_accuracy\n";
  sweep_csv << "method,alpha0,beta,iterations_to_target\n";
  const index_t per_epoch = train.size() / batch_size;
  std::vector<RunResult> results;

  const T alpha0 = 1e-3;
  auto run_all = [&](const Model& model, int epochs) {
    auto run = [&](const std::string& method, const auto& optimizer, T beta) {
      T last_alpha = 0;
      const auto params = train_run(model, optimizer, train, epochs * per_epoch,
          [&](std::int64_t t, T loss, T alpha) {
            iterations_csv << model.name << ',' << method << ',' << t + 1 << ',' << loss << ',' << alpha << '\n';
            last_alpha = alpha;
          },
          [&](std::int64_t t, const ParamList<Tensor<T>>& p) {
            if ((t + 1) % per_epoch == 0) {
              const auto e = evaluate(model, p, validation);
              epochs_csv << model.name << ',' << method << ',' << (t + 1) / per_epoch << ',' << e.loss << ',' << e.accuracy << '\n';
            }
            return false;
          });
      const auto e = evaluate(model, params, validation);
      const T train_loss = evaluate(model, params, train).loss;  // over the whole training set, not the last minibatch
      std::printf("%-7s %-9s train loss %.4f  val loss %.4f  val accuracy %.4f  final α %.3g\n", model.name.c_str(),
                  method.c_str(), train_loss, e.loss, e.accuracy, last_alpha);
      std::fflush(stdout);
      results.push_back({model.name, method, alpha0, beta, train_loss, e.loss, e.accuracy, last_alpha});
    };
    const T beta_sgd = 1e-3, beta_adam = 1e-7, beta_multiplicative = 0.02;
    run("sgd", chain(Sgd<T>{}, ConstantStepSize<T>{alpha0}), 0);
    run("sgd-hd", chain(Sgd<T>{}, HypergradientStepSize<T>{.initial = alpha0, .beta = beta_sgd}), beta_sgd);
    run("sgd-hdm", chain(Sgd<T>{}, HypergradientStepSize<T>{.initial = alpha0, .beta = beta_multiplicative, .multiplicative = true}),
        beta_multiplicative);
    run("sgdn", chain(Nesterov<T>{.momentum = 0.9}, ConstantStepSize<T>{alpha0}), 0);
    run("sgdn-hd", chain(Nesterov<T>{.momentum = 0.9}, HypergradientStepSize<T>{.initial = alpha0, .beta = beta_sgd}), beta_sgd);
    run("sgdn-hdm", chain(Nesterov<T>{.momentum = 0.9},
                          HypergradientStepSize<T>{.initial = alpha0, .beta = beta_multiplicative, .multiplicative = true}),
        beta_multiplicative);
    run("adam", chain(Adam<T>{}, ConstantStepSize<T>{alpha0}), 0);
    run("adam-hd", chain(Adam<T>{}, HypergradientStepSize<T>{.initial = alpha0, .beta = beta_adam}), beta_adam);
    run("adam-hdm", chain(Adam<T>{}, HypergradientStepSize<T>{.initial = alpha0, .beta = beta_multiplicative, .multiplicative = true}),
        beta_multiplicative);
  };
  run_all(Model{"logreg", {{784, 10}, Activation::relu}}, opt.epochs);
  run_all(Model{"mlp", {{784, opt.hidden, opt.hidden, 10}, Activation::relu}}, opt.mlp_epochs);

  // Robustness: logistic regression, iterations until the full training loss reaches 0.29 (checked every 10).
  struct SweepResult {
    std::string method;
    T alpha0, beta;
    std::optional<std::int64_t> iterations;
  };
  std::vector<SweepResult> sweep;
  const Model logreg{"logreg", {{784, 10}, Activation::relu}};
  const T target = 0.29;
  std::printf("\nrobustness sweep: iterations to training loss %.2f (at most %d)\n%-18s", target, opt.sweep_cap, "α0");
  const std::vector<T> alphas = {1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6};
  for (T a : alphas) std::printf("%9.0e", a);
  std::printf("\n");
  auto sweep_method = [&](const std::string& method, auto make, T beta) {
    std::printf("%-18s", (method + (beta > 0 ? " β=" + number(beta) : "")).c_str());
    for (T a : alphas) {
      std::optional<std::int64_t> reached;
      train_run(logreg, make(a), train, opt.sweep_cap, [](std::int64_t, T, T) {},
                [&](std::int64_t t, const ParamList<Tensor<T>>& p) {
                  if ((t + 1) % 10 != 0) return false;
                  if (evaluate(logreg, p, train).loss > target) return false;
                  reached = t + 1;
                  return true;
                });
      sweep.push_back({method, a, beta, reached});
      sweep_csv << method << ',' << a << ',' << beta << ',' << (reached ? std::to_string(*reached) : "") << '\n';
      if (reached) std::printf("%9lld", static_cast<long long>(*reached));
      else std::printf("%9s", "-");
      std::fflush(stdout);
    }
    std::printf("\n");
  };
  // The paper's β (1e-3 for SGD-HD and SGDN-HD, 1e-7 for Adam-HD), and β = 1e-4 as an extra row for the SGD forms.
  auto sgd_hd = [](T beta) {
    return [beta](T a) { return chain(Sgd<T>{}, HypergradientStepSize<T>{.initial = a, .beta = beta}); };
  };
  auto sgdn_hd = [](T beta) {
    return [beta](T a) { return chain(Nesterov<T>{}, HypergradientStepSize<T>{.initial = a, .beta = beta}); };
  };
  const T sweep_beta = 1e-3, small_beta = 1e-4, sweep_beta_adam = 1e-7;
  sweep_method("sgd", [](T a) { return chain(Sgd<T>{}, ConstantStepSize<T>{a}); }, 0);
  sweep_method("sgd-hd", sgd_hd(sweep_beta), sweep_beta);
  sweep_method("sgd-hd", sgd_hd(small_beta), small_beta);
  sweep_method("sgdn", [](T a) { return chain(Nesterov<T>{}, ConstantStepSize<T>{a}); }, 0);
  sweep_method("sgdn-hd", sgdn_hd(sweep_beta), sweep_beta);
  sweep_method("sgdn-hd", sgdn_hd(small_beta), small_beta);
  sweep_method("adam", [](T a) { return chain(Adam<T>{}, ConstantStepSize<T>{a}); }, 0);
  sweep_method("adam-hd", [&](T a) { return chain(Adam<T>{}, HypergradientStepSize<T>{.initial = a, .beta = sweep_beta_adam}); },
               sweep_beta_adam);

  std::string json = "{\"example\": \"hypergradient\", \"runs\": [";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    json += (i ? ", " : "") + std::string("{\"model\": \"") + r.model + "\", \"method\": \"" + r.method +
            "\", \"alpha0\": " + number(r.alpha0) + ", \"beta\": " + number(r.beta) + ", \"final_train_loss\": " +
            number(r.final_train_loss) + ", \"final_val_loss\": " + number(r.final_val_loss) + ", \"val_accuracy\": " +
            number(r.val_accuracy) + ", \"final_alpha\": " + number(r.final_alpha) + "}";
  }
  json += "], \"sweep\": [";
  for (std::size_t i = 0; i < sweep.size(); ++i)
    json += (i ? ", " : "") + std::string("{\"method\": \"") + sweep[i].method + "\", \"alpha0\": " + number(sweep[i].alpha0) +
            ", \"beta\": " + number(sweep[i].beta) + ", \"iterations_to_target\": " + (sweep[i].iterations ? std::to_string(*sweep[i].iterations) : "null") + "}";
  json += "]}";
  std::printf("%s\n", json.c_str());
  const auto final_val_loss = [&](const char* method) {
    for (const auto& r : results)
      if (r.model == std::string("logreg") && r.method == method) return r.final_val_loss;
    throw value_error(std::string("no logreg run of ") + method);
  };
  example::check_figure(opt.quick, final_val_loss("sgd-hd") < final_val_loss("sgd"),
                        "SGD-HD must end below SGD at the same initial step size (logistic regression, validation loss)");
  return 0;
} catch (const metagrad::error& e) {
  std::fprintf(stderr, "hypergradient: %s\n", e.what());
  return 1;
}
