// metagrad's threads: the pool's contract (every task once, the lowest-numbered failure, serial nesting, the program's
// own threads), the settings' errors, and the same bits on 1, 2, 3 and 4 threads. The sizes are large enough that the
// products are split (see detail::min_parallel_work).
#include <atomic>
#include <functional>
#include <thread>

#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

namespace {

/// Sets the thread count for a scope and restores the one before it.
struct ThreadCount {
  int before = num_threads();
  explicit ThreadCount(int n) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(before); }
};

/// Gradient descent with a per-step learning-rate schedule on a 784-64-10 MLP over random inputs: products large
/// enough to be split across threads.
struct WideMlpRun {
  using value_type = double;
  template <class C> using State = TrainingState<C, SgdState<C>>;
  Mlp<double> model{{784, 64, 10}, Activation::tanh};
  TD inputs = randn({96, 784}, 31);
  IndexVector labels;
  BatchOrder order{96, 32, 32};
  WideMlpRun() {
    for (index_t i = 0; i < 96; ++i) labels.push_back((i * 7) % 10);
  }

  std::vector<Shape> metaparameter_shapes(std::int64_t steps) const { return {{steps}}; }
  template <class C> State<C> init(const std::vector<C>& meta) const {
    ParamList<C> params;
    for (const TD& p : model.init(33)) params.push_back(constant_like(meta[0], p));
    return {params, {}};
  }
  template <class C> C loss(const ParamList<C>& p, const IndexVector& rows) const {
    IndexVector y;
    for (index_t i : rows) y.push_back(labels[static_cast<std::size_t>(i)]);
    return mean(cross_entropy(model.logits(p, constant_like(p[0], gather_rows(inputs, rows))), y));
  }
  template <class C> StepResult<State<C>, C> step(std::int64_t t, State<C> s, const std::vector<C>& meta) const {
    auto [loss_value, g] = loss_and_gradient(s.params, [&](const auto& p) { return loss(p, order.batch(t)); });
    auto [params, opt] = metagrad::step(Sgd<hyper_t<C>>{}, std::move(s.params), g, std::move(s.optimizer),
                                        schedule_at(meta[0], t));
    return {{std::move(params), std::move(opt)}, loss_value};
  }
  template <class C> C objective(const State<C>& s, const std::vector<C>&) const {
    IndexVector all(96);
    for (index_t i = 0; i < 96; ++i) all[static_cast<std::size_t>(i)] = i;
    return loss(s.params, all);
  }
};

/// SGD on a 12-8-3 tanh network with per-step learning rates (as logarithms) and per-example data weights, its
/// gradient over `shards` virtual shards of each batch (0: loss_and_gradient over the whole batch).
struct ShardedRun {
  using value_type = double;
  template <class C> using State = TrainingState<C, SgdState<C>>;
  template <class C> struct Meta {
    C log_learning_rates;  // [steps]
    C data_weights;        // [40]
    METAGRAD_FIELDS(log_learning_rates, data_weights)
  };
  Mlp<double> model{{12, 8, 3}, Activation::tanh};
  TD inputs = randn({40, 12}, 61);
  IndexVector labels;
  BatchOrder order{40, 20, 62};
  std::int64_t shards = 0;
  explicit ShardedRun(std::int64_t shards_) : shards(shards_) {
    for (index_t i = 0; i < 40; ++i) labels.push_back(i % 3);
  }

  Meta<Shape> metaparameter_shapes(std::int64_t steps) const { return {{steps}, {40}}; }
  template <class C> State<C> init(const Meta<C>& meta) const { return {as_constants(model.init(63), meta), {}}; }
  template <class W> auto loss(const Vars& p, const W& weights, const IndexVector& rows) const {
    IndexVector y;
    for (index_t i : rows) y.push_back(labels[static_cast<std::size_t>(i)]);
    return weighted_mean(cross_entropy(model.logits(p, gather_rows(inputs, rows)), y), gather_rows(weights, rows));
  }
  template <class C> StepResult<State<C>, C> step(std::int64_t t, State<C> s, const Meta<C>& meta) const {
    const IndexVector rows = order.batch(t);
    auto [loss_value, g] = shards == 0
        ? loss_and_gradient(s.params, [&](const Vars& p) { return loss(p, meta.data_weights, rows); })
        : sharded_loss_and_gradient(s.params, std::vector<C>{meta.data_weights}, ShardPlan(20, shards),
                                    [this, rows](const Vars& p, const Vars& in, const Shard& shard) {
                                      const IndexVector part(rows.begin() + shard.begin, rows.begin() + shard.end);
                                      return loss(p, in[0], part) * shard.fraction();
                                    });
    const auto rate = [&] {
      if constexpr (std::is_same_v<C, TD>) return std::exp(schedule_at(meta.log_learning_rates, t));
      else return exp(schedule_at(meta.log_learning_rates, t));
    }();
    auto [params, opt] = metagrad::step(Sgd<hyper_t<C>>{}, std::move(s.params), g, std::move(s.optimizer), rate);
    return {{std::move(params), std::move(opt)}, loss_value};
  }
  template <class C> C objective(const State<C>& s, const Meta<C>&) const {
    return mean(cross_entropy(model.logits(s.params, constant_like(s.params[0], inputs)), labels));
  }
};

/// Everything whose bits must not depend on the thread count, as one list of tensors.
std::vector<TD> results_on_threads(int n) {
  const ThreadCount threads(n);
  std::vector<TD> out;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      const TD a = randn(ta ? Shape{300, 130} : Shape{130, 300}, 41), b = randn(tb ? Shape{70, 300} : Shape{300, 70}, 42);
      out.push_back(matmul(a, b, ta, tb));  // split by rows
      out.push_back(matmul(b, a, !tb, !ta));  // split by columns
    }
  out.push_back(matmul(randn({5, 64, 100}, 43), randn({5, 100, 64}, 44)));  // a batch, a matrix per task
  const TD x = randn({100003}, 45);  // elementwise ops in blocks of 2^15, the last one partial
  for (const TD& y : {exp(x), log(abs(x)), sqrt(abs(x)), square(x), pow(abs(x), 0.3), tanh(x), sigmoid(x), relu(x),
                      softplus(x), tanh_backward(x, tanh(x)), sigmoid_backward(x, sigmoid(x))})
    out.push_back(y);
  const WideMlpRun run;
  const auto params = run.model.init(33);
  Tape<double> tape;
  Vars p;
  for (const TD& x : params) p.push_back(tape.variable(x));
  IndexVector rows(64);
  for (index_t i = 0; i < 64; ++i) rows[static_cast<std::size_t>(i)] = i;
  for (const TD& g : grad(run.loss(p, rows), p)) out.push_back(g);
  std::vector<TD> directions;
  for (std::size_t i = 0; i < params.size(); ++i) directions.push_back(randn(params[i].shape(), 50 + i));
  for (const TD& h : hvp(run.loss(p, rows), p, directions)) out.push_back(h);
  const std::vector<TD> meta = {TD::full({3}, 0.1)};
  for (const auto& result : {metagradient(run, meta, 3, StoreAll{}), metagradient(run, meta, 3, Replay{2})}) {
    out.push_back(TD::scalar(result.objective));
    out.push_back(result.gradient[0]);
  }
  return out;
}

/// An op of the vocabulary on inputs large enough that its kernels are split (2¹⁸ elements and more).
struct OpCase {
  const char* name;
  std::function<VD(const Vars&)> f;
  std::vector<TD> inputs;
};

std::vector<OpCase> op_cases() {
  const TD a = randn({512, 520}, 70), b = randu({512, 520}, 71, 0.5, 2.0), bias = randn({520}, 72);
  const TD per_row = randu({512, 1}, 73, 0.5, 2.0), planes = randn({2, 1, 520}, 74);
  TD away = randu({512, 520}, 75, 0.2, 2.0);  // away from the kinks of abs, relu and clamp
  for (index_t i = 0; i < away.size(); i += 2) away.data()[i] = -away.data()[i];
  IndexVector labels, rows;
  for (index_t i = 0; i < 512; ++i) labels.push_back((i * 37) % 520), rows.push_back((i * 11) % 300);
  const TD tall = randn({300, 520}, 76), cube = randn({32, 16, 520}, 77), images = randn({40, 8, 20, 20}, 81);
  return {
      {"add", [](const Vars& v) { return v[0] + v[1]; }, {a, b}},
      {"sub, a bias", [](const Vars& v) { return v[0] - v[1]; }, {a, bias}},
      {"mul, one value per row", [](const Vars& v) { return v[0] * v[1]; }, {a, per_row}},
      {"div, a general broadcast", [](const Vars& v) { return v[0] / v[1]; }, {planes, per_row}},
      {"scalar arithmetic", [](const Vars& v) { return 3.0 / (2.0 - v[0] * 0.5 + 1.0) / 4.0 - (-v[0]); }, {b}},
      {"exp", [](const Vars& v) { return exp(v[0]); }, {a}},
      {"log", [](const Vars& v) { return log(v[0]); }, {b}},
      {"sqrt", [](const Vars& v) { return sqrt(v[0]); }, {b}},
      {"square", [](const Vars& v) { return square(v[0]); }, {a}},
      {"pow", [](const Vars& v) { return pow(v[0], -1.5); }, {b}},
      {"abs", [](const Vars& v) { return abs(v[0]); }, {away}},
      {"tanh", [](const Vars& v) { return tanh(v[0]); }, {a}},
      {"sigmoid", [](const Vars& v) { return sigmoid(v[0]); }, {a}},
      {"relu", [](const Vars& v) { return relu(v[0]); }, {away}},
      {"softplus", [](const Vars& v) { return softplus(v[0]); }, {a}},
      {"clamp", [](const Vars& v) { return clamp(v[0], -1.0, 1.0); }, {away * 0.9}},
      {"tanh_backward", [](const Vars& v) { return tanh_backward(v[0], v[1]); }, {a, b}},
      {"sigmoid_backward", [](const Vars& v) { return sigmoid_backward(v[0], v[1]); }, {a, b}},
      {"matmul", [](const Vars& v) { return matmul(v[0], v[1], false, true); }, {a, randn({300, 520}, 78)}},
      {"batched matmul", [](const Vars& v) { return matmul(v[0], v[1]); }, {randn({5, 64, 100}, 79), randn({5, 100, 64}, 80)}},
      {"transpose", [](const Vars& v) { return transpose(v[0]); }, {a}},
      {"dot", [](const Vars& v) { return dot(v[0], v[1]); }, {a, b}},
      {"sum", [](const Vars& v) { return sum(v[0]); }, {a}},
      {"mean", [](const Vars& v) { return mean(v[0]); }, {a}},
      {"sum over rows", [](const Vars& v) { return sum(v[0], 0); }, {a}},
      {"sum of each row", [](const Vars& v) { return sum(v[0], 1, true); }, {a}},
      {"mean along a middle axis", [](const Vars& v) { return mean(v[0], 1); }, {cube}},
      {"max", [](const Vars& v) { return max(v[0], 1); }, {a}},
      {"logsumexp", [](const Vars& v) { return logsumexp(v[0], 0); }, {a}},
      {"softmax", [](const Vars& v) { return softmax(v[0], 1); }, {a}},
      {"log_softmax", [](const Vars& v) { return log_softmax(v[0], 0); }, {a}},
      {"cross_entropy", [=](const Vars& v) { return mean(cross_entropy(v[0], labels)); }, {a}},
      {"mse", [](const Vars& v) { return mse(v[0], v[1]); }, {a, b}},
      {"broadcast_to", [](const Vars& v) { return broadcast_to(v[0], {2, 512, 520}); }, {per_row}},
      {"sum_to a row", [](const Vars& v) { return sum_to(v[0], {1, 520}); }, {planes * per_row}},
      {"sum_to one value per row", [](const Vars& v) { return sum_to(v[0], {512, 1}); }, {a}},
      {"sum_to a general shape", [](const Vars& v) { return sum_to(v[0], {2, 1, 520}); }, {planes * per_row}},
      {"reshape", [](const Vars& v) { return reshape(v[0], {520, 512}); }, {a}},
      {"gather and scatter rows", [=](const Vars& v) { return scatter_add_rows(gather_rows(v[0], rows), rows, 300); }, {tall}},
      {"slice, pad, concat", [](const Vars& v) { return concat({pad(slice(v[0], 1, 3, 517), 1, 2, 1), v[1]}, 0); }, {a, b}},
      {"conv2d", [](const Vars& v) { return conv2d(v[0], v[1], {.padding = {1, 1}}); }, {images, randn({16, 8, 3, 3}, 82)}},
      {"conv2d, strided, dilated, in groups",
       [](const Vars& v) { return conv2d(v[0], v[1], {.stride = {2, 1}, .dilation = {1, 2}, .groups = 2}); },
       {images, randn({12, 4, 3, 3}, 83)}},
      {"max_pool2d", [](const Vars& v) { return max_pool2d(v[0]); }, {images}},
      {"avg_pool2d", [](const Vars& v) { return avg_pool2d(v[0], {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}); },
       {images}},
      {"batch_norm", [](const Vars& v) {
         const auto b = batch_statistics(v[0]);
         return batch_norm(v[0], b.mean, b.variance, v[1], v[2]);
       }, {images, randu({8}, 84, 0.5, 1.5), randn({8}, 85)}},
  };
}

/// An op's value, the gradient of Σ w ⊙ op(x)² and its Hessian-vector product, on n threads.
std::vector<TD> op_results_on_threads(const OpCase& c, int n) {
  const ThreadCount threads(n);
  const auto loss = [&](const Vars& v) {
    const VD y = c.f(v);
    return sum(square(y) * v[0].tape().constant(randn(y.value().shape(), 90)));
  };
  Tape<double> tape;
  Vars x;
  std::vector<TD> directions;
  for (std::size_t i = 0; i < c.inputs.size(); ++i) {
    x.push_back(tape.variable(c.inputs[i]));
    directions.push_back(randn(c.inputs[i].shape(), 91 + i));
  }
  std::vector<TD> out = {c.f(x).value()};
  for (TD& g : grad(loss(x), x)) out.push_back(std::move(g));
  for (TD& h : hvp(loss(x), x, directions)) out.push_back(std::move(h));
  return out;
}

}  // namespace

TEST_CASE("parallel_for runs every task once, rethrows the lowest-numbered task's failure, and nests serially") {
  for (const int n : {1, 2, 3, 4}) {
    const ThreadCount threads(n);
    CHECK(num_threads() == n);
    std::vector<int> runs(1000, 0);
    parallel_for(1000, [&](std::int64_t i) { ++runs[static_cast<std::size_t>(i)]; });
    CHECK(std::all_of(runs.begin(), runs.end(), [](int r) { return r == 1; }));

    std::vector<int> nested(40 * 25, 0);  // inner loops run in their outer task's thread
    parallel_for(40, [&](std::int64_t i) {
      const auto outer = std::this_thread::get_id();
      parallel_for(25, [&](std::int64_t j) {
        if (std::this_thread::get_id() == outer) ++nested[static_cast<std::size_t>(i * 25 + j)];
      });
    });
    CHECK(std::all_of(nested.begin(), nested.end(), [](int r) { return r == 1; }));

    std::vector<int> ended(100, 0);
    const auto failing = [&](std::int64_t i) {
      if (i % 30 == 7) throw value_error("task " + std::to_string(i));
      ++ended[static_cast<std::size_t>(i)];
    };
    check_throws_with<value_error>([&] { parallel_for(100, failing); }, {"task 7"});
    CHECK(std::count(ended.begin(), ended.end(), 1) == 96);  // every other task still ran, once
    std::atomic<int> refused = 0;  // set_num_threads inside a task is refused (checked here: not every thread asserts)
    parallel_for(3, [&](std::int64_t) {
      try {
        set_num_threads(2);
      } catch (const value_error& e) {
        if (std::string(e.what()).find("inside a parallel task") != std::string::npos) ++refused;
      }
    });
    CHECK(refused == 3);
    CHECK(num_threads() == n);
    bool ran = false;
    parallel_for(0, [&](std::int64_t) { ran = true; });
    CHECK_FALSE(ran);
  }
}

TEST_CASE("set_num_threads and METAGRAD_NUM_THREADS refuse impossible counts with a clear error") {
  const int before = num_threads();
  for (const int bad : {0, -3, 5000}) check_throws_with<value_error>([&] { set_num_threads(bad); }, {"set_num_threads", std::to_string(bad), "1 to 4096"});
  CHECK(num_threads() == before);  // unchanged by the refusals

  const char* saved = std::getenv("METAGRAD_NUM_THREADS");
  const std::string restore = saved ? saved : "";
  setenv("METAGRAD_NUM_THREADS", "3", 1);
  CHECK(detail::default_num_threads() == 3);
  for (const char* bad : {"0", "two", "4x", "-1"}) {
    setenv("METAGRAD_NUM_THREADS", bad, 1);
    check_throws_with<value_error>([] { (void)detail::default_num_threads(); }, {"METAGRAD_NUM_THREADS", bad, "1 to 4096"});
  }
  if (saved) setenv("METAGRAD_NUM_THREADS", restore.c_str(), 1);
  else unsetenv("METAGRAD_NUM_THREADS");
  CHECK(detail::default_num_threads() >= 1);
}

TEST_CASE("the same bits on 1, 2, 3 and 4 threads: products, an MLP's gradient and HVP, metagradients") {
  const std::vector<TD> one = results_on_threads(1);
  for (const int n : {2, 3, 4}) {
    const std::vector<TD> many = results_on_threads(n);
    REQUIRE(many.size() == one.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      INFO(n << " threads, result " << i);
      CHECK(many[i] == one[i]);
    }
  }
}

TEST_CASE("the same bits on 1, 2, 3 and 4 threads: every op's value, gradient and HVP") {
  for (const OpCase& c : op_cases()) {
    const std::vector<TD> one = op_results_on_threads(c, 1);
    for (const int n : {2, 3, 4}) {
      const std::vector<TD> many = op_results_on_threads(c, n);
      REQUIRE(many.size() == one.size());
      for (std::size_t i = 0; i < one.size(); ++i) {
        INFO(c.name << " on " << n << " threads, result " << i << " (0: value, then gradients, then HVPs)");
        CHECK(many[i] == one[i]);
      }
    }
  }
}

TEST_CASE("the program's own threads share the pool: no deadlock, the same bits") {
  const ThreadCount threads(2);
  const TD a = randn({200, 300}, 61), b = randn({300, 150}, 62);
  TD expected;
  {
    const ThreadCount serial(1);
    expected = matmul(a, b);
  }
  std::vector<TD> products(4);
  std::vector<std::thread> own;
  for (std::size_t i = 0; i < products.size(); ++i)
    own.emplace_back([&, i] {
      for (int repeat = 0; repeat < 20; ++repeat) products[i] = matmul(a, b);
    });
  for (auto& t : own) t.join();
  for (const TD& p : products) CHECK(p == expected);
}

TEST_CASE("the same bits on 1, 2, 3 and 4 threads: meta-training iterations, optimizees run in parallel") {
  const QuadraticTask<double> task;
  const MetaTrainingOptions options{.optimizee_steps = 10, .unroll = 5, .meta_iterations = 2, .meta_batch = 3,
                                    .evaluate_every = 1, .evaluation_optimizees = 3, .seed = 5};
  const auto on_threads = [&](int n) {
    const ThreadCount threads(n);
    return meta_train(task, LstmOptimizer<TD>::initial(8, 4), options);
  };
  const auto one = on_threads(1);
  for (const int n : {2, 3, 4}) {
    INFO(n << " threads");
    const auto many = on_threads(n);
    CHECK(many.meta_losses == one.meta_losses);
    CHECK(many.evaluations == one.evaluations);
    CHECK(tree_flatten(many.best.weights) == tree_flatten(one.best.weights));
  }
}

TEST_CASE("the same bits on 1, 2, 3 and 4 threads: the LSTM cell over a learned optimizer's many coordinate rows") {
  for (const index_t hidden : {20, 7}) {  // the fused kernels' hidden size, and the general path
    CAPTURE(hidden);
    const index_t rows = 3001;  // 12 blocks of 256 rows, the last one short
    const TD x = randn({rows, 6}, 40), h = randn({rows, hidden}, 41), c = randn({rows, hidden}, 42);
    const LstmWeights<TD> w{randn({6, 4 * hidden}, 43), randn({hidden, 4 * hidden}, 44), randn({4 * hidden}, 45)};
    std::optional<std::uint64_t> plain, taped;
    for (int threads = 1; threads <= 4; ++threads) {
      const ThreadCount scope(threads);
      const auto [h_next, c_next] = lstm_cell(x, h, c, w);
      Tape<double> tape;
      const Vars v{tape.variable(x), tape.variable(h), tape.variable(c), tape.variable(w.input), tape.variable(w.recurrent),
                   tape.variable(w.bias)};
      const auto [hv, cv] = lstm_cell(v[0], v[1], v[2], LstmWeights<VD>{v[3], v[4], v[5]});
      const std::uint64_t p = tree_hash(std::pair{h_next, c_next}), t = tree_hash(std::pair{hv.value(), grad(sum(hv * cv), v)});
      if (!plain) plain = p, taped = t;
      CHECK(p == *plain);
      CHECK(t == *taped);
    }
  }
}

TEST_CASE("ShardPlan: near-equal shards, contiguous ranks, and clear errors for impossible plans") {
  const ShardPlan plan(10, 4);
  std::vector<std::pair<index_t, index_t>> ranges;
  for (std::int64_t s = 0; s < plan.count(); ++s) ranges.emplace_back(plan.shard(s).begin, plan.shard(s).end);
  CHECK(ranges == std::vector<std::pair<index_t, index_t>>{{0, 2}, {2, 5}, {5, 7}, {7, 10}});
  CHECK(plan.shard(1).fraction() == 0.3);
  CHECK(plan.owned(0, 3) == std::pair<std::int64_t, std::int64_t>{0, 1});
  CHECK(plan.owned(2, 3) == std::pair<std::int64_t, std::int64_t>{2, 4});
  CHECK_THROWS_WITH_AS(ShardPlan(10, 11), doctest::Contains("no shard is empty"), value_error);
  CHECK_THROWS_AS(ShardPlan(10, 0), value_error);
  CHECK_THROWS_WITH_AS(plan.owned(0, 5), doctest::Contains("at least as many shards as ranks"), value_error);
  CHECK_THROWS_AS(plan.shard(4), value_error);
}

TEST_CASE("the sharded gradient: the batch's gradient, the same bits on 1, 2, 3 and 4 threads, errors passed on") {
  const Mlp<double> model{{30, 16, 4}, Activation::tanh};
  const ParamList<TD> params = model.init(5);
  const TD x = randn({50, 30}, 6);
  IndexVector y(50);
  for (index_t i = 0; i < 50; ++i) y[static_cast<std::size_t>(i)] = i % 4;
  const auto shard_loss = [&](const Vars& p, const Shard& s) {
    IndexVector labels(y.begin() + s.begin, y.begin() + s.end);
    return mean(cross_entropy(model.logits(p, slice(x, 0, s.begin, s.size())), labels)) * s.fraction();
  };
  const auto [whole_loss, whole] =
      loss_and_gradient(params, [&](const Vars& p) { return mean(cross_entropy(model.logits(p, x), y)); });
  for (const std::int64_t shards : {1, 3, 8}) {
    CAPTURE(shards);
    const ShardPlan plan(50, shards);
    std::optional<std::uint64_t> bits;
    for (int threads = 1; threads <= 4; ++threads) {
      const ThreadCount scope(threads);
      const auto [loss, gradient] = sharded_loss_and_gradient(params, plan, shard_loss);
      const std::uint64_t h = tree_hash(std::pair{loss, gradient});
      if (!bits) bits = h;
      CHECK(h == *bits);
      CHECK(std::abs(loss.item() - whole_loss.item()) < 1e-14);
      for (std::size_t i = 0; i < params.size(); ++i) CHECK((gradient[i].array() - whole[i].array()).abs().maxCoeff() < 1e-14);
    }
  }
  const ShardPlan plan(50, 5);
  CHECK_THROWS_WITH_AS(sharded_loss_and_gradient(params, plan, [&](const Vars& p, const Shard& s) {
    if (s.index == 3) throw data_error("shard 3 is unreadable");
    return shard_loss(p, s);
  }), "shard 3 is unreadable", data_error);
  CHECK_THROWS_WITH_AS(sharded_loss_and_gradient(params, plan, [&](const Vars& p, const Shard& s) {
    return cross_entropy(model.logits(p, slice(x, 0, s.begin, s.size())), IndexVector(y.begin() + s.begin, y.begin() + s.end));
  }), doctest::Contains("shard 0's loss has shape [10] (one number expected)"), shape_error);
}

TEST_CASE("a metagradient through sharded steps: the unsharded one to rounding, finite differences, and the same bits "
          "under every policy and on 1, 2, 3 and 4 threads") {
  const ShardedRun whole(0), sharded(3);
  const ShardedRun::Meta<TD> meta{TD::full({4}, std::log(0.5)), randu({40}, 64, 0.5, 1.5)};
  const MetagradientOptions options{.step_loss_weights = {0.5, 0.25, 1, 2}};  // the steps' losses count too
  const auto reference = metagradient(whole, meta, 4, StoreAll{}, options);
  const auto max_difference = [](const TD& a, const TD& b) { return (a.array() - b.array()).abs().maxCoeff(); };
  std::optional<std::uint64_t> bits;
  for (int threads = 1; threads <= 4; ++threads) {
    const ThreadCount scope(threads);
    for (const std::variant<StoreAll, Replay, Revolve> policy : {std::variant<StoreAll, Replay, Revolve>{StoreAll{}},
                                                                  {Replay{2}}, {Revolve{2}}}) {
      const auto result = metagradient(sharded, meta, 4, policy, options);
      const std::uint64_t h = tree_hash(std::pair{TD::scalar(result.objective), result.gradient});
      if (!bits) bits = h;
      CHECK(h == *bits);
      CHECK(std::abs(result.objective - reference.objective) < 1e-13);
      CHECK(max_difference(result.gradient.log_learning_rates, reference.gradient.log_learning_rates) < 1e-12);
      CHECK(max_difference(result.gradient.data_weights, reference.gradient.data_weights) < 1e-12);
    }
  }
  const auto result = metagradient(sharded, meta, 4, Revolve{2}, options);
  const double eps = 1e-5;
  for (const auto& coordinate : {std::pair{0, index_t(1)}, std::pair{1, index_t(7)}, std::pair{1, index_t(30)}}) {
    const int leaf = coordinate.first;  // 0: a log learning rate, 1: a data weight
    const index_t index = coordinate.second;
    CAPTURE(leaf);
    CAPTURE(index);
    ShardedRun::Meta<TD> up = meta, down = meta;
    (leaf == 0 ? up.log_learning_rates : up.data_weights).data()[index] += eps;
    (leaf == 0 ? down.log_learning_rates : down.data_weights).data()[index] -= eps;
    const double difference = (run_objective(sharded, up, 4, options) - run_objective(sharded, down, 4, options)) / (2 * eps);
    const double exact = (leaf == 0 ? result.gradient.log_learning_rates : result.gradient.data_weights).data()[index];
    CHECK(std::abs(difference - exact) < 1e-7 * std::max(1.0, std::abs(exact)));
  }

  Tape<double> tape;
  Vars p;
  for (const TD& x : sharded.model.init(63)) p.push_back(tape.variable(x));
  const IndexVector rows = sharded.order.batch(0);
  const TD weights = TD::ones({40});
  const auto [loss, g] = sharded_loss_and_gradient(p, ShardPlan(20, 2), [&](const Vars& q, const Shard& shard) {
    return sharded.loss(q, weights, IndexVector(rows.begin() + shard.begin, rows.begin() + shard.end)) * shard.fraction();
  });
  CHECK_THROWS_WITH_AS(grad(sum(g[0] * g[0]), p, create_graph), doctest::Contains("not twice"), tape_error);
  CHECK(grad(loss + sum(g[0]), p).size() == p.size());  // the backward releases the shards' recordings
  CHECK_THROWS_WITH_AS(grad(loss, p), doctest::Contains("runs once"), tape_error);
}

TEST_CASE("for_each_run: independent runs on the threads, or one after another when the run says so") {
  struct Serial {
    bool parallel_runs() const { return false; }
  };
  struct Parallel {};
  const ThreadCount scope(2);
  CHECK(parallel_runs(Parallel{}));
  CHECK_FALSE(parallel_runs(Serial{}));
  const std::thread::id caller = std::this_thread::get_id();
  std::vector<std::int64_t> order;
  bool on_caller = true;
  for_each_run(Serial{}, 5, [&](std::int64_t i) {
    on_caller = on_caller && std::this_thread::get_id() == caller;
    order.push_back(i);  // no lock: one after another on this thread
  });
  CHECK(on_caller);
  CHECK(order == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  std::vector<int> ran(7, 0);
  CHECK_THROWS_WITH_AS(for_each_run(Parallel{}, 7, [&](std::int64_t i) {
    ran[static_cast<std::size_t>(i)] = 1;
    if (i == 2 || i == 5) throw value_error("run " + std::to_string(i) + " failed");
  }), "run 2 failed", value_error);
  CHECK(ran == std::vector<int>(7, 1));
}
