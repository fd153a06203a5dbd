// cnn_metasmoothness: which design of a convolutional network's training makes its metagradients worth following?
// The REPLAY paper's metasmoothness score (PAPERS.md §3; meta/metasmoothness.hpp) for a small ResNet on MNIST-10k
// under each combination of: batch norm before the activation, after it, or none; logits scaled by 1 or 0.1; batch
// 32 or 128. Each score is measured along two metaparameters — the learning-rate schedule (every rate changed by the
// same factor) and the per-example data weights (a random ±1 direction). The setup chosen is the most metasmooth (the
// highest mean) among those that train: a network that does not learn is trivially smooth, so only setups whose test
// accuracy is within 10 points of the best compete. Writes metasmoothness.csv into --out and ends with one JSON line.
//
//   cnn_metasmoothness [--data DIR] [--cifar10 DIR] [--out DIR] [--steps N] [--train N] [--rate R] [--quick]
//
// With --cifar10 the same table is made on CIFAR-10's binary batches (data_batch_1.bin …, test_batch.bin).
#include "../common/mnist_run.hpp"

#include <algorithm>

using namespace example;

namespace {

struct Options : ExampleOptions {
  std::int64_t train = 4000;
  fs::path cifar10;
  double rate = 0.02;
  Options() { out = "cnn_metasmoothness-results", steps = 200; }
};

struct Setup {
  BatchNormPlacement batch_norm;
  T output_scale;
  index_t batch;
  std::string name() const {
    return std::string("batch norm ") + placement_name(batch_norm) + ", logits x" + (output_scale == 1 ? "1" : "0.1") +
           ", batch " + std::to_string(batch);
  }
};

}  // namespace

int main(int argc, char** argv) try {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Options opt;
  auto flags = opt.flags();
  flags.push_back({"--train", &opt.train});
  flags.push_back({"--cifar10", &opt.cifar10});
  flags.push_back({"--rate", &opt.rate});
  parse_flags(argc, argv, flags);
  if (opt.quick) opt.steps = 6, opt.train = 256;
  if (opt.steps < 1 || opt.train < 64) throw value_error("--steps must be positive and --train at least 64");
  const index_t validation = opt.quick ? 100 : 500;  // only split off: the score and the accuracy need no validation set
  const auto splits = load_image_splits("cnn_metasmoothness", opt.data, opt.cifar10, opt.train, validation);
  if (!splits) return 0;
  fs::create_directories(opt.out);
  const index_t channels = splits->train.inputs.shape()[1];
  const std::vector<index_t> widths = opt.quick ? std::vector<index_t>{4, 8} : std::vector<index_t>{8, 16};
  const T rate = opt.rate;

  std::vector<Setup> setups;
  for (const index_t batch : {index_t(32), index_t(128)})
    for (const T scale : {T(1), T(0.1)})
      for (const auto bn : {BatchNormPlacement::none, BatchNormPlacement::after_activation, BatchNormPlacement::before_activation})
        setups.push_back({bn, scale, batch});
  if (opt.quick) setups = {setups[0], setups.back()};

  auto csv = open_csv(opt.out / "metasmoothness.csv", "batch_norm,logit_scale,batch,learning_rates,data_weights,mean,test_accuracy");
  std::vector<double> means, accuracies;
  for (std::size_t i = 0; i < setups.size(); ++i) {
    const Setup& s = setups[i];
    MnistRun run(ResNet<T>{.channels = channels, .classes = 10, .widths = widths, .blocks = 1, .batch_norm = s.batch_norm,
                           .output_scale = s.output_scale},
                 splits->train, splits->validation);
    run.batch_size = s.batch;
    const MnistMeta meta = run.meta(std::vector<T>(static_cast<std::size_t>(opt.steps), rate));
    MnistMeta along_rates{Tensor<T>::ones(meta.log_learning_rates.shape()), Tensor<T>::zeros(meta.data_weights.shape()),
                          Tensor<T>::zeros(meta.poisoned_inputs.shape())};
    MnistMeta along_weights = along_rates;
    along_weights.log_learning_rates.array() = 0;
    along_weights.data_weights = Tensor<T>::random_uniform(meta.data_weights.shape(), 17, -1, 1);
    for (T& w : along_weights.data_weights) w = w < 0 ? T(-1) : T(1);
    const double by_rates = metasmoothness(run, meta, along_rates, 0.05, opt.steps);
    const double by_weights = metasmoothness(run, meta, along_weights, 0.05, opt.steps);
    const double accuracy = evaluate(run.model, run.trained(meta, opt.steps), splits->test).accuracy;
    means.push_back((by_rates + by_weights) / 2);
    accuracies.push_back(accuracy);
    csv << placement_name(s.batch_norm) << ',' << s.output_scale << ',' << s.batch << ',' << by_rates << ',' << by_weights
        << ',' << means.back() << ',' << accuracy << '\n';
    std::printf("%-40s metasmoothness: learning rates %.3f, data weights %.3f, mean %.3f; test accuracy %.4f\n",
                s.name().c_str(), by_rates, by_weights, means.back(), accuracy);
  }
  const double best_accuracy = *std::max_element(accuracies.begin(), accuracies.end());
  std::size_t best = 0;
  for (std::size_t i = 0; i < setups.size(); ++i)
    if (accuracies[i] >= best_accuracy - 0.1 && (accuracies[best] < best_accuracy - 0.1 || means[i] > means[best])) best = i;
  const auto lowest = *std::min_element(means.begin(), means.end());
  std::printf("most metasmooth: %s (%.3f; the least: %.3f)\n", setups[best].name().c_str(), means[best], lowest);
  check_figure(opt.quick, std::isfinite(means[best]) && means[best] <= 1 && lowest >= -1,
               "every metasmoothness score is a number in [-1, 1]");
  std::printf("%s\n", JsonLine("cnn_metasmoothness")
                          .add_string("data", opt.cifar10.empty() ? "mnist-10k" : "cifar-10")
                          .add_integer("steps", opt.steps).add_integer("training_examples", splits->train.size())
                          .add_string("most_metasmooth", setups[best].name()).add("score", means[best])
                          .add("test_accuracy", accuracies[best])
                          .add("least_score", lowest).str().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "cnn_metasmoothness: %s\n", e.what());
  return 1;
}
