// data_weighting: find mislabelled training examples by metagradient descent on per-example data weights.
// 30% of the training labels are flipped to another class; the weights multiply the per-example losses (1 is
// ordinary training) and follow the exact metagradient of the loss on a clean validation split through the whole
// training run. Reports how well the learned weights single out the flipped examples (ROC AUC, flipped = low weight)
// and the test accuracy of models retrained from scratch (another initialization and batch order) on all data, with
// the learned weights, and on the truly clean subset. Writes weights.csv, mgd.csv, metasmoothness.csv into --out and
// ends with one JSON line.
//
//   data_weighting [--model mlp|lenet5] [--data DIR] [--cifar10 DIR] [--out DIR] [--steps N] [--meta-steps N]
//                  [--train N] [--shards S] [--quick]
//
// --model lenet5 weighs the examples of LeNet-5 on the images instead of an MLP on their pixels; --cifar10 DIR takes
// the images from CIFAR-10's binary batches instead of MNIST-10k.
//
// The runs are short (60 steps of batch 100 for the MLP, 120 for LeNet-5: 3 and 6 epochs) on purpose: a network
// learns the clean examples before it memorizes the flipped ones, and the metagradient tells them apart only in that
// early phase. Through 300 steps the AUC of the learned weights stays near 0.78, through 1,000 near 0.6.
#include "../common/mnist_run.hpp"

#include <algorithm>
#include <numeric>

using namespace example;

namespace {

struct Options : ModelOptions {
  std::int64_t train = 2000;
  Options() { out = "data_weighting-results", meta_steps = 30; }  // steps 0: the model's default
};

/// The area under the ROC curve of `score` for telling `positive` examples from the others: the probability that a
/// random positive scores above a random negative (ties count half).
double roc_auc(const std::vector<double>& score, const std::vector<bool>& positive) {
  std::vector<std::size_t> order(score.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return score[a] < score[b]; });
  double rank_sum = 0, positives = 0;
  for (std::size_t i = 0; i < order.size();) {  // average ranks over ties
    std::size_t j = i;
    while (j < order.size() && score[order[j]] == score[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + 1 + j);
    for (std::size_t k = i; k < j; ++k)
      if (positive[order[k]]) rank_sum += rank, positives += 1;
    i = j;
  }
  const double negatives = static_cast<double>(score.size()) - positives;
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

/// Weights scaled to mean 1, so that every retraining takes steps of the same average size.
Tensor<T> normalized(Tensor<T> w) {
  w.array() *= static_cast<T>(w.size()) / w.array().sum();
  return w;
}

template <class Model>
int weigh(const Options& opt, const Processes& processes, Splits splits, const Model& model);

}  // namespace

int main(int argc, char** argv) try {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they happen, also in a pipe
  const Processes processes(argc, argv);
  Options opt;
  auto flags = opt.flags();
  flags.push_back({"--train", &opt.train});
  parse_flags(argc, argv, flags);
  share_work(processes, opt);
  opt.check_model();
  if (opt.steps == 0) opt.steps = opt.model == "lenet5" ? 120 : 60;
  if (opt.quick) opt.steps = 40, opt.meta_steps = 2, opt.train = 400;
  if (opt.steps < 1 || opt.meta_steps < 1 || opt.train < 10) throw value_error("steps, meta-steps and train must be positive");
  auto splits = load_image_splits("data_weighting", opt.data, opt.cifar10, opt.train, opt.quick ? 200 : 1000);
  if (!splits) return 0;
  const Shape image = splits->train.inputs.shape().reduced(0, false);
  if (opt.model == "lenet5")
    return weigh(opt, processes, std::move(*splits), smooth_lenet5(image));
  return weigh(opt, processes, {as_rows(splits->train), as_rows(splits->validation), as_rows(splits->test)},
               Mlp<T>{{image.size(), opt.quick ? 16 : 64, 10}, Activation::tanh});
} catch (const metagrad::error& e) {
  std::fprintf(stderr, "data_weighting: %s\n", e.what());
  return 1;
}

namespace {

template <class Model>
int weigh(const Options& opt, const Processes& processes, Splits splits, const Model& model) {
  fs::create_directories(opt.out);

  // Flip 30% of the training labels, each to a different class drawn at random.
  const double flipped_fraction = 0.3;
  const index_t n = splits.train.size();
  std::vector<bool> flipped(static_cast<std::size_t>(n), false);
  IndexVector order = BatchOrder(n, n, 77).permutation(0);
  SplitMix64 rng(78);
  for (index_t k = 0; k < static_cast<index_t>(flipped_fraction * static_cast<double>(n)); ++k) {
    const auto i = static_cast<std::size_t>(order[static_cast<std::size_t>(k)]);
    flipped[i] = true;
    splits.train.labels[i] = (splits.train.labels[i] + 1 + static_cast<index_t>(rng.next() % 9)) % 10;
  }
  MnistRun run(model, splits.train, splits.validation);
  run.shards = opt.shards, run.processes = &processes;
  run.batch_size = 100;
  const T rate = 0.05;
  MnistMeta meta = run.meta(std::vector<T>(static_cast<std::size_t>(opt.steps), rate));

  // How metasmooth the run is along a random change of the data weights: the chosen batch of 100 against a batch of 10.
  auto smoothness_csv = open_csv(opt.out / "metasmoothness.csv", "setup,batch,score");
  double chosen_smoothness = 0;
  for (index_t batch : {index_t(100), index_t(10)}) {
    MnistRun variant = run;
    variant.batch_size = batch;
    const MnistMeta direction{.log_learning_rates = Tensor<T>::zeros(meta.log_learning_rates.shape()),
                              .data_weights = Tensor<T>::random_uniform(meta.data_weights.shape(), 5, -1, 1),
                              .poisoned_inputs = Tensor<T>::zeros(meta.poisoned_inputs.shape())};
    const double s = metasmoothness(variant, meta, direction, 0.05, opt.steps);
    if (batch == 100) chosen_smoothness = s;
    smoothness_csv << (batch == 100 ? "chosen" : "small batch") << ',' << batch << ',' << s << '\n';
    std::printf("metasmoothness along the data weights, batch %3lld: %.3f\n", static_cast<long long>(batch), s);
  }

  // Metagradient descent on the weights: Adam, each weight kept in [0, 2].
  auto meta_optimizer = chain(Adam<T>{}, ConstantStepSize<T>{0.05});
  ParamList<Tensor<T>> w = {meta.data_weights};
  auto meta_state = meta_optimizer.init(w);
  auto mgd_csv = open_csv(opt.out / "mgd.csv", "meta_step,val_loss,auc");
  const auto scores = [&](const Tensor<T>& weights) {
    std::vector<double> s;
    for (index_t i = 0; i < n; ++i) s.push_back(-weights.data()[i]);  // low weight = suspected flipped
    return s;
  };
  const Revolve policy{32};
  for (int k = 0; k < opt.meta_steps; ++k) {
    meta.data_weights = w[0];
    const auto result = metagradient(run, meta, opt.steps, policy, {}, ProgressBar("metagradient " + std::to_string(k + 1)));
    const double auc_now = roc_auc(scores(w[0]), flipped);
    mgd_csv << k << ',' << result.objective << ',' << auc_now << '\n';
    std::printf("MGD step %2d: validation loss %.4f, AUC of the weights %.3f\n", k, result.objective, auc_now);
    std::fflush(stdout);
    std::tie(w, meta_state) = meta_optimizer.step(std::move(w), {result.gradient.data_weights}, std::move(meta_state));
    w[0].array() = w[0].array().max(0.0).min(2.0);
  }
  const double auc = roc_auc(scores(w[0]), flipped);
  auto weights_csv = open_csv(opt.out / "weights.csv", "example,flipped,weight");
  double mean_flipped = 0, mean_clean = 0;
  for (index_t i = 0; i < n; ++i) {
    const bool f = flipped[static_cast<std::size_t>(i)];
    weights_csv << i << ',' << f << ',' << w[0].data()[i] << '\n';
    (f ? mean_flipped : mean_clean) += w[0].data()[i];
  }
  const auto flipped_count = static_cast<double>(std::count(flipped.begin(), flipped.end(), true));
  mean_flipped /= flipped_count;
  mean_clean /= static_cast<double>(n) - flipped_count;
  std::printf("learned weights: mean %.3f on flipped examples, %.3f on clean ones; ROC AUC %.3f\n", mean_flipped, mean_clean, auc);

  // Retrain from scratch with another initialization and batch order.
  MnistRun retrain = run;
  retrain.init_seed = 101;
  retrain.order_seed = 102;
  const auto test_accuracy = [&](const Tensor<T>& weights) {
    MnistMeta m = meta;
    m.data_weights = normalized(weights);
    return evaluate(model, retrain.trained(m, opt.steps), splits.test).accuracy;
  };
  Tensor<T> clean_only = Tensor<T>::ones({n});
  for (index_t i = 0; i < n; ++i)
    if (flipped[static_cast<std::size_t>(i)]) clean_only.data()[i] = 0;
  const T accuracy_all = test_accuracy(Tensor<T>::ones({n})), accuracy_weighted = test_accuracy(w[0]), accuracy_clean = test_accuracy(clean_only);
  std::printf("test accuracy retrained: all data %.4f, learned weights %.4f, clean subset only %.4f\n", accuracy_all, accuracy_weighted, accuracy_clean);

  JsonLine json("data_weighting");
  json.add("flipped_fraction", flipped_fraction).add("auc", auc).add("test_accuracy_all", accuracy_all)
      .add("test_accuracy_weighted", accuracy_weighted).add("test_accuracy_clean_only", accuracy_clean)
      .add("mean_weight_flipped", mean_flipped).add("mean_weight_clean", mean_clean).add_integer("metagradient_steps", opt.meta_steps)
      .add_integer("steps", opt.steps).add_integer("training_examples", n).add("metasmoothness", chosen_smoothness);
  opt.describe(json);
  std::printf("%s\n", json.str().c_str());
  check_figure(opt.quick, auc > 0.5, "the learned weights must rank the flipped labels above chance (ROC AUC > 0.5)");
  return 0;
}

}  // namespace
