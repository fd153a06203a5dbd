#pragma once
// The metagradient benchmarks' training run: an MLP 784-100-10 (tanh), or LeNet-5 on 1×28×28 images, trained by SGD
// on MNIST-sized inputs in batches of 128, in double; the metaparameter is the per-step learning-rate schedule and the
// objective the loss on a held-out batch. Random inputs stand in for MNIST: only the sizes matter for time and memory. With shards = S > 0
// each batch's gradient is the fixed sum over S virtual shards (sharded_loss_and_gradient) on metagrad's threads and
// on the ranks of `communicator`, when the run is on MPI.
#include <metagrad/metagrad.hpp>

#include <type_traits>
#include <vector>

namespace bench {

using namespace metagrad;

template <class Communicator = SingleProcess, class Model = Mlp<double>>
struct LrScheduleRunOn {
  using value_type = double;
  template <class C>
  using State = TrainingState<C, SgdState<C>>;
  static constexpr bool images = !std::is_same_v<Model, Mlp<double>>;  // a CNN's inputs are [N, 1, 28, 28]

  Model model = default_model();
  index_t examples = 1280, batch = 128;
  Tensor<double> inputs = random_inputs(examples, 1);
  IndexVector labels = random_labels(examples, 2);
  Tensor<double> validation_inputs = random_inputs(batch, 3);
  IndexVector validation_labels = random_labels(batch, 4);
  BatchOrder order{examples, batch, 5};
  std::vector<Tensor<double>> initial = model.init(6);
  std::int64_t shards = 0;                     // 0: each batch's gradient on one tape
  const Communicator* communicator = nullptr;  // null: this process alone (SingleProcess only)

  template <class C>
  struct Meta {
    C lr_schedule;
    METAGRAD_FIELDS(lr_schedule)
  };
  Meta<Shape> metaparameter_shapes(std::int64_t steps) const { return {Shape{steps}}; }

  template <class C>
  State<C> init(const Meta<C>& meta) const {
    return {as_constants(initial, meta), {}};
  }
  template <class C>
  StepResult<State<C>, C> step(std::int64_t t, State<C> s, const Meta<C>& meta) const {
    const IndexVector rows = order.batch(t);
    auto [loss, g] = shards == 0
        ? loss_and_gradient(s.params, [&](const std::vector<Var<double>>& p) { return loss_on(p, rows); })
        : sharded_loss_and_gradient(s.params, ShardPlan(batch, shards), [this, rows](const std::vector<Var<double>>& p, const Shard& shard) {
            return loss_on(p, IndexVector(rows.begin() + shard.begin, rows.begin() + shard.end)) * shard.fraction();
          }, on());
    auto [params, opt] = metagrad::step(Sgd<hyper_t<C>>{}, std::move(s.params), g, std::move(s.optimizer), schedule_at(meta.lr_schedule, t));
    return {{std::move(params), std::move(opt)}, loss};
  }
  /// The mean cross-entropy over the training examples `rows`.
  Var<double> loss_on(const std::vector<Var<double>>& p, const IndexVector& rows) const {
    IndexVector y;
    for (index_t i : rows) y.push_back(labels[static_cast<std::size_t>(i)]);
    return mean(cross_entropy(model.logits(p, gather_rows(inputs, rows)), y));
  }
  const Communicator& on() const {
    if constexpr (std::is_empty_v<Communicator>) {
      static const Communicator alone;
      return communicator ? *communicator : alone;
    } else {
      return *communicator;
    }
  }

  template <class C>
  C objective(const State<C>& s, const Meta<C>&) const {
    return mean(cross_entropy(model.logits(s.params, validation_inputs), validation_labels));
  }

  /// Plain training: the parameters after `steps` steps (what the metagradient is compared with).
  State<Tensor<double>> train(const Tensor<double>& schedule, std::int64_t steps) const {
    const Meta<Tensor<double>> meta{schedule};
    State<Tensor<double>> s = init(meta);
    for (std::int64_t t = 0; t < steps; ++t) s = step(t, std::move(s), meta).state;
    return s;
  }

  static Model default_model() {
    if constexpr (images) return Model{};
    else return Model{{784, 100, 10}, Activation::tanh};
  }
  static Tensor<double> random_inputs(index_t n, std::uint64_t seed) {
    return images ? Tensor<double>::random_normal({n, 1, 28, 28}, seed) : Tensor<double>::random_normal({n, 784}, seed);
  }
  static IndexVector random_labels(index_t n, std::uint64_t seed) {
    SplitMix64 rng(seed);
    IndexVector y;
    for (index_t i = 0; i < n; ++i) y.push_back(static_cast<index_t>(rng.next() % 10));
    return y;
  }
};

using LrScheduleRun = LrScheduleRunOn<>;
using LeNetLrScheduleRun = LrScheduleRunOn<SingleProcess, LeNet5<double>>;

}  // namespace bench
