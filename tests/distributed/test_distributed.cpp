// Data parallelism over MPI, run by ctest under `mpirun -np N` for N = 1 … 4: every rank checks that it holds the same
// bits as a single process computing every shard itself. Every rank runs every test case and the same collectives in
// the same order, so the checks are CHECKs (a REQUIRE that failed on one rank only would leave the others waiting).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <metagrad/distributed/distributed.hpp>
#include <metagrad/metagrad.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <variant>

namespace {

using namespace metagrad;
using T = double;
using Params = ParamList<Tensor<T>>;

const distributed::Communicator& world() {
  static const distributed::Communicator communicator;
  return communicator;
}

/// 512 points in 20-D labelled by a random linear teacher, and a 20-32-5 tanh network.
struct Problem {
  Dataset<T> data;
  Mlp<T> model{{20, 32, 5}, Activation::tanh};
  BatchOrder order{512, 96, 7};

  Problem() {
    const Tensor<T> x = Tensor<T>::random_normal({512, 20}, 1);
    const Tensor<T> scores = matmul(x, Tensor<T>::random_normal({20, 5}, 2));
    IndexVector y(512);
    for (index_t i = 0; i < 512; ++i) scores.matrix().row(i).maxCoeff(&y[static_cast<std::size_t>(i)]);
    data = Dataset<T>{x, y, 5};
  }

  /// Shard s's part of the batch's mean cross-entropy.
  Var<T> shard_loss(const Dataset<T>& batch, const ParamList<Var<T>>& p, const Shard& s) const {
    const Dataset<T> part = batch.slice(s.begin, s.size());
    return mean(cross_entropy(model.logits(p, part.inputs), part.labels)) * s.fraction();
  }

  /// Step t of SGD (step size 0.2) with the gradient over `plan`'s shards. To inject failures: each shard's loss is
  /// multiplied by before(t, shard) (1: unchanged to the bit), and after(t, params) runs after the update.
  template <class Communicator, class Before, class After>
  auto step_fn(Params& params, const ShardPlan& plan, const Communicator& communicator, Before before, After after) const {
    return [this, &params, plan, &communicator, before, after](std::int64_t t) {
      const Dataset<T> batch = data.batch(order.batch(t));
      auto [loss, g] = sharded_loss_and_gradient(params, plan, [&](const ParamList<Var<T>>& p, const Shard& s) {
        return shard_loss(batch, p, s) * before(t, s);
      }, communicator);
      return propose_step(StepReport{.loss = loss.item()}, [&params, g = std::move(g), t, after] {
        for (std::size_t i = 0; i < params.size(); ++i) params[i].array() -= 0.2 * g[i].array();
        after(t, params);
      });
    };
  }

  /// `steps` steps of the single-process run from the initial parameters.
  Params single_process(std::int64_t steps, const ShardPlan& plan) const {
    Params params = model.init(3);
    train(steps, step_fn(params, plan, SingleProcess{}, [](std::int64_t, const Shard&) { return T(1); },
                         [](std::int64_t, Params&) {}));
    return params;
  }
};

/// The Problem trained by SGD with per-step learning rates (as logarithms) and per-example data weights, each batch's
/// gradient over `plan`'s shards on `communicator`'s ranks: what a data-parallel metagradient differentiates.
template <class C>
struct ShardedMeta {
  C log_learning_rates;  // [steps]
  C data_weights;        // [512]
  METAGRAD_FIELDS(log_learning_rates, data_weights)
};
template <class Communicator>
struct ShardedRun {
  using value_type = T;
  template <class C> using State = TrainingState<C, SgdState<C>>;
  template <class C> using Meta = ShardedMeta<C>;
  const Problem& problem;
  ShardPlan plan;
  const Communicator& communicator;

  Meta<Shape> metaparameter_shapes(std::int64_t steps) const { return {{steps}, {512}}; }
  template <class C> State<C> init(const Meta<C>& meta) const { return {as_constants(problem.model.init(3), meta), {}}; }
  template <class C> StepResult<State<C>, C> step(std::int64_t t, State<C> s, const Meta<C>& meta) const {
    const IndexVector rows = problem.order.batch(t);
    auto [loss, g] = sharded_loss_and_gradient(s.params, std::vector<C>{meta.data_weights}, plan,
        [this, rows](const ParamList<Var<T>>& p, const std::vector<Var<T>>& in, const Shard& shard) {
          const IndexVector part(rows.begin() + shard.begin, rows.begin() + shard.end);
          const Dataset<T> examples = problem.data.batch(part);
          return weighted_mean(cross_entropy(problem.model.logits(p, examples.inputs), examples.labels), gather_rows(in[0], part)) *
                 shard.fraction();
        }, communicator);
    const auto rate = [&] {
      if constexpr (std::is_same_v<C, Tensor<T>>) return std::exp(schedule_at(meta.log_learning_rates, t));
      else return exp(schedule_at(meta.log_learning_rates, t));
    }();
    auto [params, optimizer] = metagrad::step(Sgd<hyper_t<C>>{}, std::move(s.params), g, std::move(s.optimizer), rate);
    return {{std::move(params), std::move(optimizer)}, loss};
  }
  template <class C> C objective(const State<C>& s, const Meta<C>&) const {
    return mean(cross_entropy(problem.model.logits(s.params, constant_like(s.params[0], problem.data.inputs)), problem.data.labels));
  }
};

const auto no_failure = [](std::int64_t, const Shard&) { return T(1); };
const auto no_change = [](std::int64_t, Params&) {};

std::string rank_prefix(int rank) { return "rank " + std::to_string(rank) + " of " + std::to_string(world().size()) + ": "; }

}  // namespace

TEST_CASE("the sharded gradient is the same bits on every rank as in a single process, for shards of any size") {
  const Problem problem;
  const Params params = problem.model.init(3);
  const Dataset<T> batch = problem.data.batch(problem.order.batch(0));
  const auto loss_fn = [&](const ParamList<Var<T>>& p, const Shard& s) { return problem.shard_loss(batch, p, s); };
  const auto [whole_loss, whole_gradient] = loss_and_gradient(params, [&](const ParamList<Var<T>>& p) {
    return mean(cross_entropy(problem.model.logits(p, batch.inputs), batch.labels));
  });
  for (const std::int64_t shards : {4, 7, 12}) {
    CAPTURE(shards);
    const ShardPlan plan(96, shards);
    const auto [loss, gradient] = sharded_loss_and_gradient(params, plan, loss_fn, world());
    const auto [single_loss, single_gradient] = sharded_loss_and_gradient(params, plan, loss_fn);
    CHECK(loss.item() == single_loss.item());
    CHECK(tree_hash(gradient) == tree_hash(single_gradient));
    CHECK_NOTHROW(world().check_identical(tree_hash(gradient), "the gradients"));
    // The same gradient as the unsharded batch's, to rounding.
    CHECK(std::abs(loss.item() - whole_loss.item()) < 1e-14);
    for (std::size_t i = 0; i < params.size(); ++i)
      CHECK((gradient[i].array() - whole_gradient[i].array()).abs().maxCoeff() < 1e-14);
  }
}

TEST_CASE("data-parallel training ends with the single process's parameters to the last bit") {
  const Problem problem;
  const ShardPlan plan(96, 12);
  Params params = problem.model.init(3);
  const std::uint64_t bytes_before = world().bytes_received();
  const TrainingSummary summary = distributed::train(world(), 40, problem.step_fn(params, plan, world(), no_failure, no_change),
                                                     distributed::ParameterCheck(world(), params, 10));
  CHECK(summary.steps == 40);
  CHECK(tree_hash(params) == tree_hash(problem.single_process(40, plan)));
  // Each rank receives the other ranks' largest tree nodes: nothing on one rank, one gradient (+ the loss) on two.
  const std::uint64_t per_step = (world().bytes_received() - bytes_before) / 40;
  MESSAGE("rank " << world().rank() << " of " << world().size() << " received " << per_step << " bytes per step");
  if (world().size() == 1) CHECK(per_step == 0);
  if (world().size() == 2) CHECK(per_step >= (20 * 32 + 32 + 32 * 5 + 5 + 1) * sizeof(T));
}

TEST_CASE("a failure on one rank reaches every rank as the same error before any rank applies the step") {
  const Problem problem;
  const ShardPlan plan(96, 12);
  const int last = world().size() - 1;
  const std::uint64_t after_three_steps = tree_hash(problem.single_process(3, plan));

  SUBCASE("a throw inside the last rank's shard at step 3") {
    Params params = problem.model.init(3);
    const auto corrupt = [&](std::int64_t t, const Shard& s) {
      if (t == 3 && s.index == plan.count() - 1) throw data_error("batch 3: corrupt file");
      return T(1);
    };
    try {
      distributed::train(world(), 10, problem.step_fn(params, plan, world(), corrupt, no_change));
      FAIL("no error");
    } catch (const data_error& e) {
      CHECK(std::string(e.what()) == rank_prefix(last) + "batch 3: corrupt file");
    }
    CHECK(tree_hash(params) == after_three_steps);
  }
  SUBCASE("a throw on rank 0 before its gradient, at step 3") {
    Params params = problem.model.init(3);
    auto step = problem.step_fn(params, plan, world(), no_failure, no_change);
    try {
      distributed::train(world(), 10, [&](std::int64_t t) {
        if (t == 3 && world().rank() == 0) throw value_error("step 3: cannot read the batch");
        return step(t);
      });
      FAIL("no error");
    } catch (const value_error& e) {
      CHECK(std::string(e.what()) == rank_prefix(0) + "step 3: cannot read the batch");
    }
    CHECK(tree_hash(params) == after_three_steps);
  }
  SUBCASE("a NaN in the last rank's shard at step 3 stops every rank there") {
    Params params = problem.model.init(3);
    const auto nan = [&](std::int64_t t, const Shard& s) {
      return t == 3 && s.index == plan.count() - 1 ? std::numeric_limits<T>::quiet_NaN() : T(1);
    };
    try {
      distributed::train(world(), 10, problem.step_fn(params, plan, world(), nan, no_change));
      FAIL("no error");
    } catch (const training_error& e) {
      CHECK(std::string(e.what()).find("at step 3") != std::string::npos);
    }
    CHECK(tree_hash(params) == after_three_steps);
  }
}

TEST_CASE("a data-parallel metagradient under REPLAY and revolve: the single process's objective and metagradient to the "
          "last bit") {
  const Problem problem;
  const ShardPlan plan(96, 12);
  const ShardedRun<distributed::Communicator> distributed_run{problem, plan, world()};
  const ShardedRun<SingleProcess> single_run{problem, plan, SingleProcess{}};
  const ShardedMeta<Tensor<T>> meta{Tensor<T>::full({8}, std::log(0.3)), Tensor<T>::random_uniform({512}, 9, 0.5, 1.5)};
  const auto single = metagradient(single_run, meta, 8, StoreAll{});
  const std::uint64_t bytes_before = world().bytes_received();
  for (const std::variant<StoreAll, Replay, Revolve> policy : {std::variant<StoreAll, Replay, Revolve>{StoreAll{}},
                                                                {Replay{3}}, {Revolve{2}}}) {
    CAPTURE(policy.index());
    const auto result = metagradient(distributed_run, meta, 8, policy);
    CHECK(result.objective == single.objective);
    CHECK(tree_hash(result.gradient) == tree_hash(single.gradient));
    CHECK(tree_hash(result.final_state) == tree_hash(single.final_state));
  }
  if (world().size() > 1) CHECK(world().bytes_received() > bytes_before);  // the steps' VJPs were exchanged
  // A shard that fails only when it is recorded on a tape (its inputs are variables there) stops every rank with its
  // error, the tape as it was.
  const auto failing = [&](const ParamList<Var<T>>& p, const std::vector<Var<T>>& in, const Shard& shard) {
    if (in[0].requires_grad() && shard.index == plan.count() - 1) throw value_error("the last shard failed on a tape");
    return mean(cross_entropy(problem.model.logits(p, problem.data.inputs), problem.data.labels)) * in[0];
  };
  Tape<T> tape;
  ParamList<Var<T>> p;
  for (const auto& x : problem.model.init(3)) p.push_back(tape.variable(x));
  const Var<T> scale = tape.variable(Tensor<T>::scalar(1.0));
  const std::size_t nodes = tape.size();
  try {
    sharded_loss_and_gradient(p, {scale}, plan, failing, world());
    FAIL("no error");
  } catch (const value_error& e) {
    CHECK(std::string(e.what()) == rank_prefix(world().size() - 1) + "the last shard failed on a tape");
  }
  CHECK(tape.size() == nodes);
}

TEST_CASE("ParameterCheck stops every rank when one rank's parameters drift") {
  const Problem problem;
  const ShardPlan plan(96, 12);
  Params params = problem.model.init(3);
  const auto drift = [&](std::int64_t t, Params& p) {
    if (t == 6 && world().rank() == world().size() - 1) p[0].data()[0] += 1e-9;
  };
  const auto run = [&] {
    distributed::train(world(), 10, problem.step_fn(params, plan, world(), no_failure, drift),
                       distributed::ParameterCheck(world(), params, 4));
  };
  if (world().size() == 1) {
    CHECK_NOTHROW(run());  // one rank cannot differ from itself
  } else {
    try {
      run();
      FAIL("no error");
    } catch (const training_error& e) {
      CHECK(std::string(e.what()).find("the parameters after step 7 differ between ranks") != std::string::npos);
    }
  }
  CHECK_THROWS_AS(distributed::ParameterCheck(world(), params, 0), value_error);
}

TEST_CASE("a run saved on N ranks resumes on fewer ranks with the same bits") {
  const Problem problem;
  const ShardPlan plan(96, 12);
  Params params = problem.model.init(3);
  distributed::train(world(), 5, problem.step_fn(params, plan, world(), no_failure, no_change));
  // One file for this job: every rank of it has the same parent (mpirun), other jobs do not.
  const auto file = std::filesystem::temp_directory_path() / ("metagrad-checkpoint-" + std::to_string(getppid()) + ".npz");
  if (world().rank() == 0) save_tree(file, params);
  world().barrier();
  // The first max(1, N − 1) ranks resume from the file.
  const int resuming = std::max(1, world().size() - 1);
  MPI_Comm part = MPI_COMM_NULL;
  MPI_Comm_split(world().get(), world().rank() < resuming ? 0 : MPI_UNDEFINED, world().rank(), &part);
  if (part != MPI_COMM_NULL) {
    const distributed::Communicator fewer(part);
    MPI_Comm_free(&part);
    CHECK(fewer.size() == resuming);
    Params resumed = problem.model.init(4);  // other numbers, overwritten by the file
    load_tree(file, resumed);
    distributed::train(fewer, StepRange{5, 10}, problem.step_fn(resumed, plan, fewer, no_failure, no_change));
    CHECK(tree_hash(resumed) == tree_hash(problem.single_process(10, plan)));
  }
  world().barrier();
  if (world().rank() == 0) std::filesystem::remove(file);
}

TEST_CASE("distributed meta-training: the single process's meta-losses, evaluations and weights to the last bit") {
  const QuadraticTask<double> task;
  const MetaTrainingOptions options{.optimizee_steps = 10, .unroll = 5, .meta_iterations = 2, .meta_batch = 3,
                                    .evaluate_every = 1, .evaluation_optimizees = 3, .seed = 5};
  const auto initial = LstmOptimizer<Tensor<T>>::initial(8, 4);
  const auto many = distributed::meta_train(world(), task, initial, options);
  const auto one = meta_train(task, initial, options);
  CHECK(many.meta_losses == one.meta_losses);
  CHECK(many.evaluations == one.evaluations);
  CHECK(many.optimizee_steps == one.optimizee_steps);
  CHECK(tree_hash(many.best.weights) == tree_hash(one.best.weights));
  CHECK(many.meta_losses.size() == 4);

  // A task whose second optimizee on a rank fails: every rank throws the same error, wherever it happened.
  struct Failing : QuadraticTask<double> {
    Problem sample(std::uint64_t seed) const {
      if (++calls_ == 2) throw data_error("optimizee file unreadable");
      return QuadraticTask<double>::sample(seed);
    }
    mutable std::atomic<int> calls_{0};
  };
  CHECK_THROWS_AS(distributed::meta_train(world(), Failing{}, initial, options), data_error);
}

TEST_CASE("more ranks than shards is a value_error on every rank, before any exchange") {
  const Problem problem;
  const Params params = problem.model.init(3);
  const Dataset<T> batch = problem.data.batch(problem.order.batch(0));
  const auto loss_fn = [&](const ParamList<Var<T>>& p, const Shard& s) { return problem.shard_loss(batch, p, s); };
  const ShardPlan plan(96, 1);
  if (world().size() == 1) CHECK_NOTHROW(sharded_loss_and_gradient(params, plan, loss_fn, world()));
  else CHECK_THROWS_WITH_AS(sharded_loss_and_gradient(params, plan, loss_fn, world()),
                            doctest::Contains("at least as many shards as ranks"), value_error);
}

int main(int argc, char** argv) {
  const metagrad::distributed::Environment mpi(argc, argv);
  doctest::Context context(argc, argv);
  return context.run();
}
