// Models: the MLP's initialization, shapes and errors, its derivatives (first and second order, every activation),
// and the per-example losses.
#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

TEST_CASE("Mlp: initialization from a seed, shapes and errors") {
  const Mlp<double> model{{6, 5, 4, 3}, Activation::relu};
  const auto p = model.init(7);
  REQUIRE(p.size() == 6);
  CHECK(p[0].shape() == Shape{6, 5});
  CHECK(p[1].shape() == Shape{5});
  CHECK(p[4].shape() == Shape{4, 3});
  CHECK(model.parameter_count() == 7 * 5 + 6 * 4 + 5 * 3);
  CHECK(model.init(7)[2] == p[2]);        // the same seed, the same bits
  CHECK(!(model.init(8)[2] == p[2]));     // another seed, other values
  CHECK(!(p[0].matrix().topLeftCorner(1, 5) == p[1].matrix()));  // tensors of one seed are independent streams
  const double bound = 1 / std::sqrt(6.0);
  CHECK(p[0].array().abs().maxCoeff() < bound);
  CHECK(p[0].array().abs().maxCoeff() > 0.8 * bound);  // U(−1/√fan_in, 1/√fan_in) fills its range
  CHECK(p[1].array().abs().maxCoeff() < bound);
  CHECK(model.logits(p, randn({9, 6}, 1)).shape() == Shape{9, 3});

  check_throws_with<value_error>([&] { model.logits(std::vector<TD>(p.begin(), p.end() - 1), randn({9, 6}, 1)); },
                                 {"Mlp", "5 parameter tensors", "3 layers", "6 expected"});
  auto swapped = p;
  std::swap(swapped[0], swapped[2]);
  check_throws_with<shape_error>([&] { model.logits(swapped, randn({9, 6}, 1)); }, {"Mlp: layer 0", "[5, 4]", "[6, 5]"});
  check_throws_with<shape_error>([&] { model.logits(p, randn({9, 7}, 1)); }, {"Mlp: input", "[9, 7]", "[batch, 6]"});
  check_throws_with<value_error>([] { Mlp<double>{{6}}.init(1); }, {"Mlp", "two widths"});
  check_throws_with<value_error>([] { Mlp<double>{{6, 0, 3}}.init(1); }, {"Mlp", "width 0"});
  CHECK(activation_from_name("sigmoid") == Activation::sigmoid);
  check_throws_with<value_error>([] { activation_from_name("gelu"); }, {"gelu", "tanh, relu or sigmoid"});
}

TEST_CASE("Mlp and the per-example losses: derivatives against finite differences, first and second order") {
  const TD x = randn({7, 3}, 2);
  const IndexVector labels = {0, 1, 2, 1, 0, 2, 2};
  for (Activation a : {Activation::tanh, Activation::sigmoid, Activation::relu}) {
    INFO(activation_name(a));
    const Mlp<double> model{{3, 4, 3}, a, 0.5};
    auto xs = model.init(3);
    xs.push_back(randu({7}, 4, 0.5, 1.5));  // data weights
    check_first_and_second_order(
        [&](const Vars& v) {
          const Vars p(v.begin(), v.begin() + 4);
          return weighted_mean(cross_entropy(model.logits(p, x), labels), v[4]);
        },
        xs);
  }
  // squared_error per example, with the inputs differentiated too.
  const Mlp<double> model{{3, 2}, Activation::tanh};
  auto xs = model.init(5);
  xs.push_back(x);
  const TD target = randn({7, 2}, 6);
  check_first_and_second_order(
      [&](const Vars& v) { return sum(squared_error(model.logits(Vars{v[0], v[1]}, v[2]), target)); }, xs);
}

TEST_CASE("per-example losses and accuracy on plain tensors") {
  const TD prediction = TD::from_eigen(Eigen::MatrixXd{{1, 2}, {3, 4}});
  const TD target = TD::from_eigen(Eigen::MatrixXd{{1, 0}, {0, 0}});
  CHECK(squared_error(prediction, target) == TD::from_eigen(Eigen::VectorXd{{4, 25}}).reshape({2}));
  CHECK(weighted_mean(TD::from_eigen(Eigen::VectorXd{{1, 3}}).reshape({2}), TD::from_eigen(Eigen::VectorXd{{2, 1}}).reshape({2})).item() == 2.5);
  CHECK(accuracy(prediction, IndexVector{1, 0}) == 0.5);
  check_throws_with<shape_error>([&] { squared_error(prediction, TD::ones({2, 3})); }, {"squared_error", "[2, 2]", "[2, 3]"});
  check_throws_with<shape_error>([&] { weighted_mean(TD::ones({3}), TD::ones({2})); }, {"weighted_mean", "[3]", "[2]"});
  check_throws_with<value_error>([&] { weighted_mean(TD::ones({0}), TD::ones({0})); }, {"weighted_mean", "no examples"});
  check_throws_with<shape_error>([&] { accuracy(prediction, IndexVector{1}); }, {"accuracy"});
}

namespace {
/// The fused cell against the composed ops over three blocks of rows of the fused passes, the last one partial. Values
/// agree to `tolerance`: a few units in the last place of z, whose sums run over the inputs and units in another order.
void check_fused_lstm_cell(index_t inputs, index_t hidden, double tolerance) {
  CAPTURE(inputs);
  CAPTURE(hidden);
  const index_t rows = 2 * nn_detail::lstm_block_rows + 23;
  const std::vector<TD> values{randn({rows, inputs}, 1), randn({rows, hidden}, 2), randn({rows, hidden}, 3),
                               randn({inputs, 4 * hidden}, 4), randn({hidden, 4 * hidden}, 5), randn({4 * hidden}, 6)};
  const auto composed = [&](const Vars& v) {
    const auto z = matmul(v[0], v[3]) + matmul(v[1], v[4]) + v[5];
    const auto gate = [&](int k) { return slice(z, 1, k * hidden, hidden); };
    const auto cell = sigmoid(gate(1)) * v[2] + sigmoid(gate(0)) * tanh(gate(2));
    return std::pair{sigmoid(gate(3)) * tanh(cell), cell};
  };
  const auto fused = [&](const Vars& v) { return lstm_cell(v[0], v[1], v[2], LstmWeights<VD>{v[3], v[4], v[5]}); };
  const auto loss = [](const std::pair<VD, VD>& hc) { return sum(tanh(hc.first) * hc.second); };
  const auto gradients = [&](const auto& cell) {
    Tape<double> tape;
    Vars v;
    for (const auto& x : values) v.push_back(tape.variable(x));
    const auto hc = cell(v);
    const std::size_t nodes = tape.size();
    std::vector<TD> directions;
    for (std::size_t k = 0; k < values.size(); ++k) directions.push_back(randn(values[k].shape(), 10 + k));
    return std::tuple{hc.first.value(), hc.second.value(), grad(loss(hc), v), hvp(loss(cell(v)), v, directions), nodes};
  };
  const auto [h_fused, c_fused, g_fused, hv_fused, nodes_fused] = gradients(fused);
  const auto [h_composed, c_composed, g_composed, hv_composed, nodes_composed] = gradients(composed);
  const auto max_abs_difference = [](const TD& a, const TD& b) { return (a.array() - b.array()).abs().maxCoeff(); };
  CHECK(nodes_fused < nodes_composed);
  CHECK(max_abs_difference(h_fused, h_composed) < tolerance);
  CHECK(max_abs_difference(c_fused, c_composed) < tolerance);
  const auto [h_plain, c_plain] = lstm_cell(values[0], values[1], values[2], LstmWeights<TD>{values[3], values[4], values[5]});
  CHECK(max_abs_difference(h_plain, h_fused) == 0);
  CHECK(max_abs_difference(c_plain, c_fused) == 0);
  // Single precision against the composed ops in single precision.
  std::vector<Tensor<float>> single;
  for (const auto& v : values) single.push_back(Tensor<float>::from_eigen(v.matrix().cast<float>()).reshape(v.shape()));
  const auto [h_single, c_single] = lstm_cell(single[0], single[1], single[2], LstmWeights<Tensor<float>>{single[3], single[4], single[5]});
  const auto z = matmul(single[0], single[3]) + matmul(single[1], single[4]) + single[5];
  const auto gate = [&](int k) { return slice(z, 1, k * hidden, hidden); };
  const auto cell = sigmoid(gate(1)) * single[2] + sigmoid(gate(0)) * tanh(gate(2));
  CHECK((c_single.array() - cell.array()).abs().maxCoeff() < 1e-5f);
  CHECK((h_single.array() - (sigmoid(gate(3)) * tanh(cell)).array()).abs().maxCoeff() < 1e-5f);
  for (std::size_t k = 0; k < values.size(); ++k) {
    CAPTURE(k);
    CHECK(max_abs_difference(g_fused[k], g_composed[k]) < 1e-12 * (1 + g_composed[k].array().abs().maxCoeff()));
    CHECK(max_abs_difference(hv_fused[k], hv_composed[k]) < 1e-12 * (1 + hv_composed[k].array().abs().maxCoeff()));
  }
}

}  // namespace

TEST_CASE("lstm_cell on Vars: the fused node agrees with the composed ops over many blocks of rows, to any order") {
  check_fused_lstm_cell(3, 5, 1e-15);    // Eigen's products; z sums 9 terms
  static_assert(nn_detail::lstm_kernel_hidden == 20);
  check_fused_lstm_cell(3, 20, 1e-14);   // the register-blocked ones (∂x by Eigen's); z sums 24 terms, |z| up to about 20
  check_fused_lstm_cell(20, 20, 2e-14);  // ∂x by the register-blocked kernel too; z sums 41 terms
}

TEST_CASE("lstm gate products: the register-blocked rows agree with the general product for every row grouping") {
  // How many rows share each weight load depends on the vector width the consumer compiles for: check every grouping.
  const index_t rows = 11, inputs = 3, hidden = 20;
  const TD x = randn({rows, inputs}, 1), h = randn({rows, hidden}, 2);
  const nn_detail::GateWeights<double> w(randn({inputs, 4 * hidden}, 3), randn({hidden, 4 * hidden}, 4), randn({4 * hidden}, 5));
  const Eigen::MatrixXd expected = (x.matrix() * w.input.matrix() + h.matrix() * w.recurrent.matrix()).rowwise() + w.bias.matrix();
  const auto check = [&]<int R>() {
    CAPTURE(R);
    TD z({rows, 4 * hidden}, std::numeric_limits<double>::quiet_NaN());
    const index_t done = nn_detail::gate_rows<double, 80, R>(w, x.data(), inputs, h.data(), hidden, rows, z.data());
    CHECK(done == rows - rows % R);
    nn_detail::gate_rows<double, 80, 1>(w, x.data() + done * inputs, inputs, h.data() + done * hidden, hidden, rows - done,
                                        z.data() + done * 4 * hidden);
    CHECK((z.matrix() - expected).cwiseAbs().maxCoeff() < 1e-13);
  };
  check.operator()<1>();
  check.operator()<2>();
  check.operator()<4>();
}

TEST_CASE("lstm backward kernels: D·Wᵀ and the weight gradient agree with Eigen's products for every grouping") {
  const index_t rows = 11, inputs = 7, hidden = 20;
  const TD D = randn({rows, 4 * hidden}, 1), a = randn({rows, inputs}, 2), w = randn({hidden, 4 * hidden}, 3);
  const Eigen::MatrixXd input_expected = D.matrix() * w.matrix().transpose(), weight_expected = a.matrix().transpose() * D.matrix();
  constexpr int KP = 24;  // 20 columns padded to whole vectors of up to 8 doubles
  const auto wt = nn_detail::transposed_weights<double, 80, KP>(w);
  const auto check = [&]<int R>() {
    CAPTURE(R);
    TD out({rows, hidden}, std::numeric_limits<double>::quiet_NaN()), dW = TD::ones({inputs, 4 * hidden});
    const index_t done = nn_detail::input_gradient_rows<double, 80, KP, R>(D.data(), rows, wt, hidden, out.data());
    CHECK(done == rows - rows % R);
    nn_detail::input_gradient_rows<double, 80, KP, 1>(D.data() + done * 80, rows - done, wt, hidden, out.data() + done * hidden);
    CHECK((out.matrix() - input_expected).cwiseAbs().maxCoeff() < 1e-13);
    const index_t rows_done = nn_detail::weight_gradient_rows<double, 80, R>(a.data(), inputs, inputs, D.data(), rows, dW.data());
    CHECK(rows_done == inputs - inputs % R);
    nn_detail::weight_gradient_rows<double, 80, 1>(a.data() + rows_done, inputs, inputs - rows_done, D.data(), rows, dW.data() + rows_done * 80);
    CHECK((dW.matrix().array() - 1 - weight_expected.array()).abs().maxCoeff() < 1e-13);  // accumulated onto ones
  };
  check.operator()<1>();
  check.operator()<2>();
  check.operator()<4>();
}

TEST_CASE("lstm_cell: one step against a hand-computed reference, derivatives against finite differences") {
  const index_t rows = 3, inputs = 2, hidden = 4;
  const LstmWeights<TD> w{randn({inputs, 4 * hidden}, 1), randn({hidden, 4 * hidden}, 2), randn({4 * hidden}, 3)};
  const TD x = randn({rows, inputs}, 4), h = randn({rows, hidden}, 5), c = randn({rows, hidden}, 6);
  const auto [h1, c1] = lstm_cell(x, h, c, w);
  const auto sigma = [](double v) { return 1 / (1 + std::exp(-v)); };
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < hidden; ++j) {
      double z[4];
      for (int k = 0; k < 4; ++k) {
        const index_t col = k * hidden + j;
        z[k] = w.bias(col);
        for (index_t a = 0; a < inputs; ++a) z[k] += x(r, a) * w.input(a, col);
        for (index_t a = 0; a < hidden; ++a) z[k] += h(r, a) * w.recurrent(a, col);
      }
      const double cell = sigma(z[1]) * c(r, j) + sigma(z[0]) * std::tanh(z[2]);
      CHECK(c1(r, j) == doctest::Approx(cell).epsilon(1e-13));
      CHECK(h1(r, j) == doctest::Approx(sigma(z[3]) * std::tanh(cell)).epsilon(1e-13));
    }
  // The plain path is one fused pass per block of rows (σ through the vectorized tanh for double); float takes Eigen's
  // functions. Both agree with the composed ops that a tape records.
  Tape<double> tape;
  const auto [h_taped, c_taped] = lstm_cell(tape.variable(x), tape.variable(h), tape.variable(c),
                                            LstmWeights<VD>{tape.variable(w.input), tape.variable(w.recurrent), tape.variable(w.bias)});
  CHECK((h_taped.value().array() - h1.array()).abs().maxCoeff() < 1e-15);
  CHECK((c_taped.value().array() - c1.array()).abs().maxCoeff() < 1e-15);
  const auto to_float = [](const TD& t) {
    Tensor<float> out(t.shape());
    for (index_t i = 0; i < t.size(); ++i) out.data()[i] = static_cast<float>(t.data()[i]);
    return out;
  };
  const auto [h_float, c_float] = lstm_cell(to_float(x), to_float(h), to_float(c),
                                            LstmWeights<Tensor<float>>{to_float(w.input), to_float(w.recurrent), to_float(w.bias)});
  for (index_t i = 0; i < h1.size(); ++i) {
    CHECK(h_float.data()[i] == doctest::Approx(h1.data()[i]).epsilon(1e-5));
    CHECK(c_float.data()[i] == doctest::Approx(c1.data()[i]).epsilon(1e-5));
  }
  check_first_and_second_order(
      [&](const Vars& v) {
        const auto [h2, c2] = lstm_cell(v[0], v[1], v[2], LstmWeights<VD>{v[3], v[4], v[5]});
        return sum(h2 * c2);
      },
      {x, h, c, w.input, w.recurrent, w.bias});
  check_throws_with<shape_error>([&] { lstm_cell(randn({rows, 3}, 7), h, c, w); }, {"lstm_cell", "[3, 3]", "2 inputs"});
  check_throws_with<shape_error>([&] { lstm_cell(x, h, c, LstmWeights<TD>{w.input, w.recurrent, randn({5}, 8)}); }, {"lstm_cell", "[5]"});
}
