#pragma once
// What the metagradient examples share: command-line flags, the MNIST-10k splits, evaluation, CSV/JSON output, and
// the training run they differentiate (`MnistRun`): a model (an MLP, or a convolutional network on the images) trained
// by SGD with heavy-ball momentum in minibatches, whose metaparameters are the per-step learning rates (as
// logarithms), per-example data weights, and the inputs of the last `poisoned` training examples.
#include <metagrad/metagrad.hpp>
#ifdef METAGRAD_EXAMPLES_MPI
#include <metagrad/distributed/communicator.hpp>
#endif

#include "checks.hpp"

#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#ifndef METAGRAD_DATA_DIR
#define METAGRAD_DATA_DIR ""
#endif

namespace example {

using namespace metagrad;
using T = double;
namespace fs = std::filesystem;

/// A command-line flag and the variable it sets; a flag whose target is a bool takes no value.
struct Flag {
  std::string name;
  std::variant<bool*, int*, std::int64_t*, double*, fs::path*, std::string*> target;
};

/// Sets the flags' targets from argv; an unknown flag or a missing or malformed value is a value_error naming it.
inline void parse_flags(int argc, char** argv, const std::vector<Flag>& flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const Flag* flag = nullptr;
    for (const auto& f : flags)
      if (f.name == arg) flag = &f;
    if (!flag) throw value_error("unknown option " + arg);
    if (std::holds_alternative<bool*>(flag->target)) {
      *std::get<bool*>(flag->target) = true;
      continue;
    }
    if (i + 1 >= argc) throw value_error(arg + " needs a value");
    const std::string value = argv[++i];
    try {
      std::visit([&](auto* target) {
        using V = std::remove_pointer_t<decltype(target)>;
        if constexpr (std::is_same_v<V, int>) *target = std::stoi(value);
        else if constexpr (std::is_same_v<V, std::int64_t>) *target = std::stoll(value);
        else if constexpr (std::is_same_v<V, double>) *target = std::stod(value);
        else if constexpr (std::is_same_v<V, fs::path> || std::is_same_v<V, std::string>) *target = value;
      }, flag->target);
    } catch (const std::logic_error&) {
      throw value_error(arg + " " + value + " is not a valid value");
    }
  }
}

/// The flags every metagradient example takes; `flags()` lists them for parse_flags (add the example's own).
struct ExampleOptions {
  fs::path data = METAGRAD_DATA_DIR;
  fs::path out;
  std::int64_t steps = 0;  // training steps of each run
  int meta_steps = 0;      // metagradient steps
  bool quick = false;      // the small version the tests run
  std::int64_t shards = 0;  // 0: each batch's gradient on one tape; S: over S virtual shards (and MPI ranks)

  std::vector<Flag> flags() {
    return {{"--data", &data}, {"--out", &out}, {"--steps", &steps}, {"--meta-steps", &meta_steps}, {"--quick", &quick},
            {"--shards", &shards}};
  }
};

/// The processes an example runs on: the ranks of an MPI job when the example was built with MPI and started by an MPI
/// launcher (`mpirun -np 2 lr_schedule …`), else this process alone. It is the communicator of MnistRun's sharded
/// gradients either way: every rank computes its shards of each batch and gets the same bits as one process.
class Processes {
 public:
  /// This process alone.
  Processes() = default;
  /// Joins the MPI job when an MPI launcher started the program.
  Processes([[maybe_unused]] int& argc, [[maybe_unused]] char**& argv) {
#ifdef METAGRAD_EXAMPLES_MPI
    if (distributed::launched_by_mpi()) {
      environment_.emplace(argc, argv);
      communicator_.emplace();
    }
#endif
  }
  int rank() const { return mpi() ? communicator().rank() : 0; }
  int size() const { return mpi() ? communicator().size() : 1; }
  template <class U>
  void all_gather(std::span<const U> mine, std::span<const std::int64_t> counts, std::span<U> out) const {
    if (mpi()) communicator().all_gather(mine, counts, out);
    else SingleProcess{}.all_gather(mine, counts, out);
  }
  void agree(std::exception_ptr failure) const {
    if (mpi()) communicator().agree(failure);
    else SingleProcess{}.agree(failure);
  }

 private:
#ifdef METAGRAD_EXAMPLES_MPI
  bool mpi() const { return communicator_.has_value(); }
  const distributed::Communicator& communicator() const { return *communicator_; }
  std::optional<distributed::Environment> environment_;
  std::optional<distributed::Communicator> communicator_;
#else
  bool mpi() const { return false; }
  const SingleProcess& communicator() const { return single_; }
  SingleProcess single_;
#endif
};

/// After the flags: a value_error unless every rank has a shard; on ranks other than 0 of an MPI job, silences stdout
/// and moves the files into <out>/rank-r (the same bits as rank 0's, which `diff -r` confirms), so that the job prints
/// and writes like one process.
inline void share_work(const Processes& processes, ExampleOptions& opt) {
  if (opt.shards < 0) throw value_error("--shards " + std::to_string(opt.shards) + " (0 or more expected)");
  if (processes.size() > 1 && opt.shards < processes.size())
    throw value_error(std::to_string(opt.shards) + " shards for " + std::to_string(processes.size()) +
                      " MPI ranks (at least one shard per rank: set --shards)");
  if (processes.rank() == 0) return;
  if (!std::freopen("/dev/null", "w", stdout)) throw io_error("cannot silence rank " + std::to_string(processes.rank()) + "'s output");
  opt.out /= "rank-" + std::to_string(processes.rank());
}

struct Splits {
  Dataset<T> train, validation, test;
};

/// MNIST-10k: the first `train_size` digits of its training file for training, the next `validation_size` for
/// validation, and its 2,000 test digits for testing. Without the data: prints that the example is skipped (and its
/// JSON line) and returns nothing; under CI, throws.
inline std::optional<Splits> load_splits(const char* example, const fs::path& data, index_t train_size, index_t validation_size) {
  if (!mnist_present(example, data)) return std::nullopt;
  const fs::path mnist = data / "mnist-10k";
  const Dataset<T> all = load_mnist<T>(mnist, MnistSplit::train);
  if (train_size + validation_size > all.size())
    throw value_error(std::to_string(train_size) + " training and " + std::to_string(validation_size) +
                      " validation digits requested, MNIST-10k's training file has " + std::to_string(all.size()));
  return Splits{all.slice(0, train_size), all.slice(train_size, validation_size), load_mnist<T>(mnist, MnistSplit::test)};
}

struct Evaluation {
  T loss, accuracy;
};

/// The mean cross-entropy and the accuracy of the model on `data`. Images go through in chunks of 1,000 (so that a
/// convolutional network's activations stay small); a network with batch norm then normalizes each chunk with its own
/// statistics (training mode).
template <class Model>
Evaluation evaluate(const Model& model, const ParamList<Tensor<T>>& params, const Dataset<T>& data) {
  if (data.inputs.rank() != 4) {
    const Tensor<T> z = model.logits(params, data.inputs);
    return {mean(cross_entropy(z, data.labels)).item(), accuracy(z, data.labels)};
  }
  const index_t chunk = 1000;
  T loss = 0, correct = 0;
  for (index_t start = 0; start < data.size(); start += chunk) {
    const Dataset<T> part = data.slice(start, std::min(chunk, data.size() - start));
    const Tensor<T> z = model.logits(params, part.inputs);
    const T n = static_cast<T>(part.size());
    loss += mean(cross_entropy(z, part.labels)).item() * n;
    correct += accuracy(z, part.labels) * n;
  }
  const T n = static_cast<T>(data.size());
  return {loss / n, correct / n};
}

/// One JSON object on one line, keys in the order added.
class JsonLine {
 public:
  explicit JsonLine(const std::string& example) { add_string("example", example); }
  JsonLine& add(const std::string& key, double value) {
    std::ostringstream os;
    os.precision(6);
    os << value;
    return raw(key, os.str());
  }
  JsonLine& add_integer(const std::string& key, std::int64_t value) { return raw(key, std::to_string(value)); }
  JsonLine& add_string(const std::string& key, const std::string& value) { return raw(key, "\"" + value + "\""); }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  JsonLine& raw(const std::string& key, const std::string& value) {
    body_ += (body_.empty() ? "\"" : ", \"") + key + "\": " + value;
    return *this;
  }
  std::string body_;
};

inline std::ofstream open_csv(const fs::path& path, const std::string& header) {
  std::ofstream out(path);
  if (!out) throw io_error("cannot write " + path.string());
  out << header << '\n';
  out.precision(8);
  return out;
}

/// MnistRun's metaparameters, a tree: errors and files name them by these fields.
template <class C>
struct MnistMetaparameters {
  C log_learning_rates;  // [steps]
  C data_weights;        // [training examples]
  C poisoned_inputs;     // [poisoned, the shape of one input]
  METAGRAD_FIELDS(log_learning_rates, data_weights, poisoned_inputs)
};

/// The examples' training run. Step t trains on batch t of a BatchOrder over the training set, with the per-example
/// cross-entropy weighted by the data weights (1 is ordinary training), and takes a heavy-ball momentum step of size
/// exp(u_t). The objective is the mean cross-entropy on the validation set. The model is any with init(seed) and
/// logits(params, inputs) whose inputs have the datasets' shape: an Mlp on rows of 784 pixels, LeNet5 or ResNet on
/// images [N, 1, 28, 28] (see as_images).
template <class Model = Mlp<T>>
struct MnistRun {
  using value_type = T;
  template <class C>
  using State = TrainingState<C, MomentumState<C>>;
  template <class C>
  using Meta = MnistMetaparameters<C>;

  Model model;
  const Dataset<T>* train = nullptr;
  const Dataset<T>* validation = nullptr;
  index_t batch_size = 128;
  std::uint64_t init_seed = 1, order_seed = 2;
  T momentum = 0.9;
  /// The inputs of the last `poisoned` training examples are the metaparameter poisoned_inputs (their labels stay).
  index_t poisoned = 0;
  /// 0: each batch's gradient on one tape; S ≥ 1: as the fixed sum over S virtual shards (sharded_loss_and_gradient),
  /// computed on metagrad's threads and, under mpirun, spread over the ranks of `processes` with the same bits.
  std::int64_t shards = 0;
  const Processes* processes = nullptr;  // null: this process alone

  MnistRun(Model model_, const Dataset<T>& train_, const Dataset<T>& validation_)
      : model(std::move(model_)), train(&train_), validation(&validation_) {}

  Meta<Shape> metaparameter_shapes(std::int64_t steps) const {
    return {{steps}, {train->size()}, train->inputs.shape().with_extent(0, poisoned)};
  }

  /// Metaparameters for a schedule of learning rates, unit data weights and the training set's own inputs.
  Meta<Tensor<T>> meta(const std::vector<T>& learning_rates) const {
    Tensor<T> u({static_cast<index_t>(learning_rates.size())});
    for (std::size_t t = 0; t < learning_rates.size(); ++t) u.data()[t] = std::log(learning_rates[t]);
    return {u, Tensor<T>::ones({train->size()}), metagrad::slice(train->inputs, 0, train->size() - poisoned, poisoned)};
  }

  template <class C>
  State<C> init(const Meta<C>& meta) const {
    ParamList<C> params = as_constants(model.init(init_seed), meta);
    return {params, Momentum<hyper_t<C>>{}.init(params)};
  }

  template <class C>
  StepResult<State<C>, C> step(std::int64_t t, State<C> s, const Meta<C>& meta) const {
    const IndexVector rows = BatchOrder(train->size(), batch_size, order_seed).batch(t);
    auto [loss, g] = shards == 0
        ? loss_and_gradient(s.params, [&](const std::vector<Var<T>>& p) { return loss_on(p, meta.data_weights, meta.poisoned_inputs, rows); })
        : sharded_loss_and_gradient(s.params, std::vector<C>{meta.data_weights, meta.poisoned_inputs}, ShardPlan(batch_size, shards),
                                    [this, rows](const std::vector<Var<T>>& p, const std::vector<Var<T>>& in, const Shard& shard) {
                                      const IndexVector part(rows.begin() + shard.begin, rows.begin() + shard.end);
                                      return loss_on(p, in[0], in[1], part) * shard.fraction();
                                    }, on());
    const auto rate = [&] {
      if constexpr (std::is_same_v<C, Tensor<T>>) return std::exp(schedule_at(meta.log_learning_rates, t));
      else return exp(schedule_at(meta.log_learning_rates, t));
    }();
    auto [params, velocity] = metagrad::step(Momentum<hyper_t<C>>{.momentum = momentum}, std::move(s.params), g, std::move(s.optimizer), rate);
    return {{std::move(params), std::move(velocity)}, loss};
  }

  /// Independent runs go one after another under MPI: every rank must meet the same collectives in the same order.
  bool parallel_runs() const { return on().size() == 1; }

  /// The weighted mean cross-entropy over the training examples `rows` (a batch, or a shard of one), with the data
  /// weights and poisoned inputs given as Tensors or Vars.
  template <class W, class X>
  Var<T> loss_on(const std::vector<Var<T>>& p, const W& data_weights, const X& poisoned_inputs, const IndexVector& rows) const {
    const index_t first_poisoned = train->size() - poisoned;
    IndexVector clean, clean_labels, changed, changed_labels, weight_rows;
    for (index_t i : rows) {
      const index_t label = train->labels[static_cast<std::size_t>(i)];
      if (i < first_poisoned) clean.push_back(i), clean_labels.push_back(label);
      else changed.push_back(i - first_poisoned), changed_labels.push_back(label);
    }
    weight_rows = clean;  // the weights in the order of the losses: clean examples first
    for (index_t i : changed) weight_rows.push_back(i + first_poisoned);
    std::vector<Var<T>> losses;
    if (!clean.empty()) losses.push_back(cross_entropy(model.logits(p, gather_rows(train->inputs, clean)), clean_labels));
    if (!changed.empty()) losses.push_back(cross_entropy(model.logits(p, gather_rows(poisoned_inputs, changed)), changed_labels));
    return weighted_mean(losses.size() == 1 ? losses[0] : concat(losses, 0), gather_rows(data_weights, weight_rows));
  }

  template <class C>
  C objective(const State<C>& s, const Meta<C>&) const {
    return mean(cross_entropy(model.logits(s.params, validation->inputs), validation->labels));
  }

  const Processes& on() const {
    static const Processes alone;
    return processes ? *processes : alone;
  }

  /// The trained parameters for `meta` after `steps` steps (plain training, no tape beyond each step's gradient).
  ParamList<Tensor<T>> trained(const Meta<Tensor<T>>& meta, std::int64_t steps) const {
    return run_final_state(*this, meta, steps).params;
  }
};

/// MnistRun's metaparameters on plain tensors.
using MnistMeta = MnistMetaparameters<Tensor<T>>;

/// The dataset with each row of 784 pixels as a 1 × 28 × 28 image, for the convolutional networks.
inline Dataset<T> as_images(Dataset<T> data) {
  data.inputs = reshape(std::move(data.inputs), Shape{data.size(), 1, 28, 28});
  return data;
}

/// The options of the examples that train either model on either dataset: ExampleOptions with --model and --cifar10.
struct ModelOptions : ExampleOptions {
  std::string model = "mlp";  // "mlp" or "lenet5"
  fs::path cifar10;           // CIFAR-10's binary batches in place of MNIST-10k

  std::vector<Flag> flags() {
    auto all = ExampleOptions::flags();
    all.insert(all.end(), {{"--model", &model}, {"--cifar10", &cifar10}});
    return all;
  }
  /// A value_error unless --model is "mlp" or "lenet5".
  void check_model() const {
    if (model != "mlp" && model != "lenet5") throw value_error("--model " + model + " (mlp or lenet5 expected)");
  }
  /// The JSON line's "model" and "data" keys.
  void describe(JsonLine& json) const {
    json.add_string("model", model).add_string("data", cifar10.empty() ? "mnist-10k" : "cifar-10");
  }
};

/// LeNet-5 for images [channels, size, size] with tanh and average pooling: the setup data_poisoning's table finds
/// metasmooth (0.998 along the poisoned pixels, where ReLU or max pooling score below 0.08).
inline LeNet5<T> smooth_lenet5(const Shape& image) {
  return {.channels = image[0], .image_size = image[1], .classes = 10, .activation = Activation::tanh, .pooling = Pooling::average};
}

/// The dataset with each image [C, H, W] as a row of C·H·W pixels, for an MLP.
inline Dataset<T> as_rows(Dataset<T> data) {
  data.inputs = flatten(std::move(data.inputs));
  return data;
}

/// MNIST-10k's splits (load_splits) as images [N, 1, 28, 28].
inline std::optional<Splits> load_image_splits(const char* example, const fs::path& data, index_t train_size,
                                               index_t validation_size) {
  auto s = load_splits(example, data, train_size, validation_size);
  if (!s) return s;
  return Splits{as_images(std::move(s->train)), as_images(std::move(s->validation)), as_images(std::move(s->test))};
}

/// CIFAR-10 from the folder of its binary batches: the first `train_size` images of data_batch_1.bin, data_batch_2.bin
/// … for training, the next `validation_size` for validation, and test_batch.bin for testing; images [N, 3, 32, 32].
inline Splits load_cifar10_splits(const fs::path& folder, index_t train_size, index_t validation_size) {
  std::vector<fs::path> files;
  for (int k = 1; k <= 5 && static_cast<index_t>(files.size()) * 10000 < train_size + validation_size; ++k)
    if (fs::exists(folder / ("data_batch_" + std::to_string(k) + ".bin"))) files.push_back(folder / ("data_batch_" + std::to_string(k) + ".bin"));
  if (files.empty())
    throw data_error("no CIFAR-10 training batch (data_batch_1.bin …) in '" + folder.string() + "'");
  const Dataset<T> all = load_cifar10<T>(files);
  if (train_size + validation_size > all.size())
    throw value_error(std::to_string(train_size) + " training and " + std::to_string(validation_size) +
                      " validation images requested, " + folder.string() + " has " + std::to_string(all.size()));
  return Splits{all.slice(0, train_size), all.slice(train_size, validation_size), load_cifar10<T>({folder / "test_batch.bin"})};
}

/// The images the convolutional examples train on: CIFAR-10's when `cifar10` names its folder, else MNIST-10k's
/// (nothing when MNIST is missing outside CI, as load_splits).
inline std::optional<Splits> load_image_splits(const char* example, const fs::path& data, const fs::path& cifar10,
                                               index_t train_size, index_t validation_size) {
  if (!cifar10.empty()) return load_cifar10_splits(cifar10, train_size, validation_size);
  return load_image_splits(example, data, train_size, validation_size);
}

}  // namespace example
