// The tape itself: gradients of any order, vjp and hvp, backward(y), mark/rewind, and every misuse error.
#include <thread>

#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

TEST_SUITE("tape") {

TEST_CASE("gradient of a known function") {
  Tape<double> tape;
  VD x = tape.variable(TD({3}, {1.0, 2.0, 3.0}));
  VD w = tape.variable(TD({3}, {0.5, -1.0, 2.0}));
  const auto g = grad(sum(square(x) * w), {x, w});
  CHECK(g[0] == TD({3}, {1.0, -4.0, 12.0}));  // 2 x w
  CHECK(g[1] == TD({3}, {1.0, 4.0, 9.0}));    // x²
}

TEST_CASE("third-order derivatives of a scalar function") {
  // f(x) = Σ x⁴: f''' along (v, w) is 24 Σ x v w eᵢ exactly.
  Tape<double> tape;
  const TD x0 = randn({4}, 1), v = randn({4}, 2), w = randn({4}, 3);
  VD x = tape.variable(x0);
  const VD f = sum(pow(x, 4.0));
  const VD g = grad(f, {x}, create_graph)[0];
  const VD hv = grad(dot(g, v), {x}, create_graph)[0];
  const TD third = grad(dot(hv, w), {x})[0];
  TD expected = x0 * v * w * 24.0;
  CHECK((third.array() - expected.array()).abs().maxCoeff() < 1e-12);
  CHECK((g.value().array() - (x0.array().cube() * 4.0)).abs().maxCoeff() < 1e-12);
  CHECK((hv.value().array() - x0.array().square() * 12.0 * v.array()).abs().maxCoeff() < 1e-12);

  // A non-polynomial function: the third derivative against central differences of the second.
  auto third_along = [&](const TD& at) {
    Tape<double> t;
    VD xv = t.variable(at);
    const VD y = logsumexp(reshape(tanh(xv) * exp(xv * 0.5), {1, 4}), 1);
    const VD gy = grad(sum(y), {xv}, create_graph)[0];
    const VD hy = grad(dot(gy, v), {xv}, create_graph)[0];
    return std::pair{hy.value(), grad(dot(hy, w), {xv})[0]};
  };
  const double h = 1e-5;
  const TD numeric = (third_along(x0 + w * h).first - third_along(x0 - w * h).first) * (1 / (2 * h));
  const TD analytic = third_along(x0).second;
  CHECK((numeric.array() - analytic.array()).abs().maxCoeff() < 1e-6);
  CHECK(analytic.array().abs().maxCoeff() > 1e-3);  // not trivially zero
}

TEST_CASE("vjp with a seed, and hvp leaves the tape as it was") {
  Tape<double> tape;
  const TD a0 = randn({2, 3}, 4);
  VD a = tape.variable(a0);
  const VD y = a * 3.0;
  CHECK_THROWS_AS(grad(y, {a}), tape_error);
  const TD seed = randn({2, 3}, 5);
  CHECK(vjp(y, {a}, seed)[0] == seed * 3.0);
  CHECK_THROWS_AS(vjp(y, {a}, randn({3, 2}, 6)), shape_error);

  const VD f = sum(pow(a, 3.0));
  const std::size_t before = tape.size();
  const TD v = randn({2, 3}, 7);
  const TD hv = hvp(f, {a}, {v})[0];
  CHECK(tape.size() == before);
  CHECK((hv.array() - a0.array() * v.array() * 6.0).abs().maxCoeff() < 1e-12);
  CHECK_THROWS_AS(hvp(f, {a}, {}), value_error);
  CHECK_THROWS_AS(hvp(f, {a}, {randn({3}, 8)}), shape_error);
  CHECK(tape.size() == before);  // nothing recorded by the calls that threw
}

TEST_CASE("a node's value stays where it is while the tape grows") {
  Tape<double> tape;
  const VD a = tape.variable(randn({3}, 1));
  const TD& held = a.value();  // a reference into the tape's storage, held across thousands of recordings
  const double* data = held.data();
  VD y = a;
  for (int k = 0; k < 5000; ++k) y = y * 1.0;
  CHECK(&a.value() == &held);
  CHECK(held.data() == data);
  CHECK(held == y.value());
  check_throws_with<value_error>([] { Tape<double> t(3); }, {"power of two", "3"});
  Tape<double> tiny(1);  // a block per node: every recording allocates
  const VD b = tiny.variable(randn({2, 2}, 2));
  CHECK(hvp(sum(pow(b, 3.0)), {b}, {TD::ones({2, 2})})[0] == b.value() * 6.0);
}

TEST_CASE("backward on a stale variable is an error before anything is read") {
  Tape<double> tape;
  const VD a = tape.variable(randn({2}, 3));
  const auto m = tape.mark();
  const VD y = sum(a * a);
  tape.rewind(m);
  check_throws_with<tape_error>([&] { backward(y); }, {"backward", "stale"});
  (void)tape.variable(randn({4}, 4));  // a new node where y was: y is still stale
  check_throws_with<tape_error>([&] { backward(y); }, {"backward", "stale"});
}

TEST_CASE("variables that do not influence y get zero gradients") {
  Tape<double> tape;
  VD x = tape.variable(randn({3}, 9));
  VD unused = tape.variable(randn({2, 2}, 10));
  const VD y = sum(exp(x));
  VD later = tape.variable(randn({4}, 11));  // recorded after y
  const auto g = grad(y, {x, unused, later});
  CHECK(g[1] == TD::zeros({2, 2}));
  CHECK(g[2] == TD::zeros({4}));
  const auto gv = grad(y, {unused}, create_graph);
  CHECK(gv[0].value() == TD::zeros({2, 2}));
}

TEST_CASE("a gradient with respect to a constant is an error naming the input") {
  Tape<double> tape;
  VD x = tape.variable(randn({3}, 9));
  VD c = tape.constant(randn({3}, 12));
  const VD y = sum(c * x);
  check_throws_with<tape_error>([&] { grad(y, {x, c}); }, {"grad", "input 1", "constant", "Tape::variable"});
  check_throws_with<tape_error>([&] { grad(y, {c}, create_graph); }, {"input 0", "constant"});
  check_throws_with<tape_error>([&] { grad(y, {stop_gradient(x)}); }, {"input 0", "constant"});
  const VD from_constants = exp(c);  // computed from constants only
  check_throws_with<tape_error>([&] { vjp(y, {from_constants}, TD::ones({})); }, {"input 0", "constant"});
  const auto size = tape.size();
  check_throws_with<tape_error>([&] { hvp(y, {x, c}, {TD::ones({3}), TD::ones({3})}); }, {"input 1", "constant"});
  CHECK(tape.size() == size);  // hvp rewinds what it recorded
  CHECK(grad(y, {x})[0] == c.value());  // the variable alone is fine
}

TEST_CASE("gradient with respect to an intermediate result") {
  Tape<double> tape;
  VD x = tape.variable(randn({3}, 13));
  const VD h = tanh(x);
  const VD y = sum(square(h));
  const auto g = grad(y, {h, x});
  CHECK(g[0] == h.value() * 2.0);
  CHECK((g[1].array() - 2.0 * h.value().array() * (1 - h.value().array().square())).abs().maxCoeff() < 1e-15);
}

TEST_CASE("backward(y) stores gradients on variables") {
  Tape<double> tape;
  VD x = tape.variable(TD({2}, {1.0, -2.0}));
  VD z = tape.variable(TD({2}, {5.0, 5.0}));
  CHECK_THROWS_WITH_AS(x.grad(), doctest::Contains("no gradient was computed"), tape_error);
  backward(sum(square(x)));
  CHECK(x.grad() == TD({2}, {2.0, -4.0}));
  CHECK(z.grad() == TD::zeros({2}));
  VD late = tape.variable(TD::ones({2}));
  CHECK_THROWS_AS(late.grad(), tape_error);
}

TEST_CASE("mark and rewind reclaim a step's nodes; stale handles are caught") {
  Tape<double> tape;
  VD w = tape.variable(randn({4, 4}, 14));
  const auto start = tape.mark();
  for (int step = 0; step < 3; ++step) {
    const VD loss = sum(square(matmul(w, w)));
    CHECK(grad(loss, {w})[0].shape() == Shape{4, 4});
    CHECK(tape.size() > 1);
    tape.rewind(start);
    CHECK(tape.size() == 1);
    check_throws_with<tape_error>([&] { (void)loss.value(); }, {"stale variable"});
  }
  VD a = square(w);
  tape.rewind(start);
  VD b = exp(w);  // reuses a's slot: a must still be detected as stale
  CHECK(a.index() == b.index());
  check_throws_with<tape_error>([&] { (void)(a + b); }, {"stale variable"});

  check_throws_with<tape_error>([&] { tape.rewind({100, 0}); }, {"beyond the tape's end"});

  // A TapeScope rewinds when it ends, also when an exception leaves it.
  {
    const TapeScope<double> scratch(tape);
    (void)sum(square(w));
    CHECK(tape.size() > 2);
  }
  CHECK(tape.size() == 2);  // w and b
  CHECK_THROWS_AS(([&] {
                    const TapeScope<double> scratch(tape);
                    (void)matmul(w, w);
                    (void)matmul(w, tape.constant(TD::ones({3, 3})));  // a shape error, after a node was recorded
                  }()),
                  shape_error);
  CHECK(tape.size() == 2);
}

TEST_CASE("leaves created before a mark can be updated in place between steps") {
  Tape<double> tape;
  VD w = tape.variable(TD({2}, {1.0, 2.0}));
  VD c = tape.constant(TD({2}, {3.0, 3.0}));
  const auto start = tape.mark();
  for (int step = 0; step < 3; ++step) {
    const TD g = grad(sum(square(w) * c), {w})[0];
    check_throws_with<tape_error>([&] { (void)tape.mutable_value(w); }, {"mutable_value", "already used"});
    tape.rewind(start);
    tape.mutable_value(w).array() -= 0.1 * g.array();  // one gradient-descent step on 3 Σ w²
  }
  CHECK(w.value()(0) == doctest::Approx(1.0 * 0.4 * 0.4 * 0.4));
  CHECK(grad(sum(w * 2.0), {w})[0] == TD::full({2}, 2.0));  // the updated value is what later ops see
  VD y = square(w);
  tape.rewind(start);
  y = square(w);
  check_throws_with<tape_error>([&] { (void)tape.mutable_value(y); }, {"mutable_value", "square", "not a leaf"});
}

TEST_CASE("reshape, contiguous slices and stop_gradient are views: no copy, the same gradients") {
  Tape<double> tape;
  const VD x = tape.variable(randn({64, 64}, 21));  // 32 KiB: a block the memory counters see
  const std::size_t live = memory::live_bytes();
  const VD r = reshape(x, {32, 128}), rows = slice(x, 0, 2, 30), flat = reshape(rows, {30 * 64});
  CHECK(memory::live_bytes() == live);  // nothing was allocated for the three results
  CHECK(r.value().data() == x.value().data());
  CHECK(rows.value().data() == x.value().data() + 2 * 64);
  CHECK(flat.value().data() == rows.value().data());
  CHECK((x.value().owns_data() && !r.value().owns_data() && !rows.value().owns_data()));
  const TD copy = rows.value();  // copies of a view own their elements
  CHECK((copy.owns_data() && copy.data() != rows.value().data() && copy == slice(x.value(), 0, 2, 30)));
  // Not views: a slice that is not one range, and one that starts off the 16-byte alignment Eigen's maps assume.
  CHECK(slice(x, 1, 0, 8).value().owns_data());
  const VD odd = tape.variable(randn({4, 3}, 22));
  CHECK(slice(odd, 0, 1, 2).value().owns_data());
  CHECK(slice(odd, 0, 2, 2).value().data() == odd.value().data() + 6);
  const VD column = slice(odd, 1, 1, 1);  // a copy, [4, 1]; its transpose, squeeze and unsqueeze are views of it
  for (const VD& v : {transpose(column), squeeze(column, 1), unsqueeze(column, 0)})
    CHECK((v.value().data() == column.value().data() && !v.value().owns_data()));

  // The same gradients as copies would get, first and second order.
  const TD c = randn({30, 64}, 23);
  CHECK(grad(sum(rows * c), {x})[0] == pad(c, 0, 2, 32));
  CHECK(grad(sum(stop_gradient(x) * x), {x})[0] == x.value());
  CHECK(!stop_gradient(x).requires_grad());
  const TD v = randn({64, 64}, 24);
  const TD h = hvp(sum(pow(reshape(slice(x, 0, 4, 8), {512}), 3.0)), {x}, {v})[0];
  const TD expected = pad(slice(x.value(), 0, 4, 8) * slice(v, 0, 4, 8) * 6.0, 0, 4, 52);
  CHECK((h.array() - expected.array()).abs().maxCoeff() <= 1e-13 * expected.array().abs().maxCoeff());

  // A view keeps what it shares unchanged: mutable_value refuses the viewed leaf (also a constant one) and the view.
  const VD k = tape.constant(randn({8, 8}, 25));
  const VD kv = reshape(k, {64});
  CHECK(kv.value().data() == k.value().data());
  check_throws_with<tape_error>([&] { (void)tape.mutable_value(k); }, {"mutable_value", "already used"});
  check_throws_with<tape_error>([&] { (void)tape.mutable_value(kv); }, {"mutable_value", "view of node"});
  check_throws_with<tape_error>([&] { (void)tape.mutable_value(stop_gradient(k)); }, {"mutable_value", "view of node"});
  check_throws_with<shape_error>([&] { (void)reshape(x, {5}); }, {"reshape", "[64, 64]", "[5]"});
}

TEST_CASE("the same variable asked for twice gets its gradient twice") {
  Tape<double> tape;
  VD x = tape.variable(TD({2}, {1.0, 2.0}));
  const auto g = grad(sum(square(x)), {x, x});
  CHECK(g[0] == TD({2}, {2.0, 4.0}));
  CHECK(g[1] == g[0]);
}

TEST_CASE("misuse errors name what was wrong") {
  Tape<double> t1, t2;
  VD a = t1.variable(randn({2}, 15));
  VD b = t2.variable(randn({2}, 16));
  check_throws_with<tape_error>([&] { (void)(a + b); }, {"add", "another tape"});
  check_throws_with<tape_error>([&] { (void)grad(sum(a), {b}); }, {"grad", "another tape"});
  check_throws_with<tape_error>([&] { (void)grad(a, {a}); }, {"grad", "[2]", "not a scalar"});
  check_throws_with<tape_error>([&] { (void)(VD() * a); }, {"empty"});
  check_throws_with<shape_error>([&] { (void)(a + t1.variable(randn({3}, 17))); }, {"add", "[2]", "[3]"});
}

TEST_CASE("float and double agree; same seed, same bits") {
  Tape<float> tf;
  Tape<double> td;
  const TD x0 = randn({3, 2}, 18);
  Tensor<float> xf(x0.shape());
  for (index_t i = 0; i < x0.size(); ++i) xf.data()[i] = static_cast<float>(x0.data()[i]);
  Var<float> vf = tf.variable(xf);
  VD vd = td.variable(x0);
  const auto gf = grad(sum(tanh(matmul(vf, vf, true, false))), {vf})[0];
  const auto gd = grad(sum(tanh(matmul(vd, vd, true, false))), {vd})[0];
  for (index_t i = 0; i < gd.size(); ++i) CHECK(gf.data()[i] == doctest::Approx(gd.data()[i]).epsilon(1e-5));
  // Determinism: two identical runs give identical bits.
  Tape<double> t2;
  VD v2 = t2.variable(x0);
  CHECK(grad(sum(tanh(matmul(v2, v2, true, false))), {v2})[0] == gd);
}

TEST_CASE("threads: tapes on several threads give the same bits as one thread") {
  auto run = [] {
    Tape<double> tape;
    const VD w = tape.variable(randn({32, 16}, 90)), b = tape.variable(randn({16}, 91));
    const TD x = randn({64, 32}, 92);
    IndexVector labels;
    for (index_t i = 0; i < 64; ++i) labels.push_back(i % 16);
    const VD loss = mean(cross_entropy(tanh(matmul(x, w)) + b, labels));
    std::vector<TD> out = grad(loss, {w, b});
    const auto hv = hvp(loss, {w, b}, {randn({32, 16}, 93), randn({16}, 94)});
    out.insert(out.end(), hv.begin(), hv.end());
    return out;
  };
  const auto reference = run();
  std::vector<std::vector<TD>> results(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < results.size(); ++i) threads.emplace_back([&, i] { results[i] = run(); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    REQUIRE(r.size() == reference.size());
    for (std::size_t k = 0; k < r.size(); ++k) CHECK(r[k] == reference[k]);
  }
}

TEST_CASE("the README sample") {
  Tape<double> tape;
  Var<double> w = tape.variable(Tensor<double>::random_normal({4, 3}, /*seed=*/1));
  Var<double> b = tape.variable(Tensor<double>::zeros({3}));
  Tensor<double> x = Tensor<double>::random_normal({8, 4}, 2);
  IndexVector labels = {0, 1, 2, 0, 1, 2, 0, 1};
  Var<double> loss = mean(cross_entropy(tanh(matmul(x, w)) + b, labels));
  std::vector<Tensor<double>> g = grad(loss, {w, b});
  std::vector<Tensor<double>> v = {Tensor<double>::ones({4, 3}), Tensor<double>::ones({3})};
  std::vector<Tensor<double>> hv = hvp(loss, {w, b}, v);
  std::vector<Var<double>> g2 = grad(loss, {w, b}, create_graph);
  CHECK(g2[0].value() == g[0]);
  CHECK(g2[1].value() == g[1]);
  CHECK(hv[0].shape() == Shape{4, 3});
  // The last column of the softmax gradient sums to zero over classes: Σ_c ∂loss/∂b_c = 0.
  CHECK(std::abs(g[1].array().sum()) < 1e-15);
}

}  // TEST_SUITE
