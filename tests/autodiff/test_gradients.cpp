// Every differentiable op against central finite differences, first and second order, in double precision.
#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

TEST_SUITE("gradients") {

TEST_CASE("arithmetic with equal shapes") {
  const std::vector<TD> xs = {randn({3, 4}, 1), randu({3, 4}, 2, 0.5, 2.0)};
  check_first_and_second_order([](const Vars& v) { return v[0] + v[1]; }, xs);
  check_first_and_second_order([](const Vars& v) { return v[0] - v[1]; }, xs);
  check_first_and_second_order([](const Vars& v) { return v[0] * v[1]; }, xs);
  check_first_and_second_order([](const Vars& v) { return v[0] / v[1]; }, xs);
  check_first_and_second_order([](const Vars& v) { return -v[0]; }, xs);
}

TEST_CASE("a product of a variable with itself, alone and beside other uses of it") {
  const std::vector<TD> xs = {randn({3, 4}, 31)};
  check_first_and_second_order([](const Vars& v) { return v[0] * v[0]; }, xs);
  check_first_and_second_order([](const Vars& v) { return tanh(v[0]) * (v[0] * v[0]) + v[0] * v[0] * v[0]; }, xs);
  // Its rule computes g·x once and adds it twice: the bits of g·x + g·x, with or without an adjoint already there.
  Tape<double> tape;
  const VD x = tape.variable(xs[0]), w = tape.constant(randn({3, 4}, 32));
  const VD square = x * x, first = w * square, second = w * x;  // recorded in this order: swept in reverse
  const TD alone = grad(sum(first), {x})[0], beside = grad(sum(first + second), {x})[0];
  const TD term = w.value() * x.value();
  CHECK(alone.array().cwiseEqual((term + term).array()).all());
  CHECK(beside.array().cwiseEqual((w.value() + term + term).array()).all());
}

TEST_CASE("arithmetic with broadcasting") {
  SUBCASE("trailing vector over rows (bias add)") {
    const std::vector<TD> xs = {randn({3, 4}, 3), randu({4}, 4, 0.5, 2.0)};
    check_first_and_second_order([](const Vars& v) { return v[0] + v[1]; }, xs);
    check_first_and_second_order([](const Vars& v) { return v[1] - v[0]; }, xs);
    check_first_and_second_order([](const Vars& v) { return v[0] * v[1]; }, xs);
    check_first_and_second_order([](const Vars& v) { return v[0] / v[1]; }, xs);
  }
  SUBCASE("rank-0 scalar against a matrix") {
    const std::vector<TD> xs = {randn({2, 3}, 5), TD::scalar(1.3)};
    check_first_and_second_order([](const Vars& v) { return v[1] * v[0]; }, xs);
    check_first_and_second_order([](const Vars& v) { return v[0] / v[1]; }, xs);
    check_first_and_second_order([](const Vars& v) { return v[1] - v[0]; }, xs);
  }
  SUBCASE("one value per row, and a general broadcast") {
    const std::vector<TD> xs = {randn({3, 4}, 6), randu({3, 1}, 7, 0.5, 2.0)};
    check_first_and_second_order([](const Vars& v) { return v[0] / v[1]; }, xs);
    const std::vector<TD> ys = {randn({2, 1, 3}, 8), randn({4, 1}, 9)};
    check_first_and_second_order([](const Vars& v) { return v[0] * v[1]; }, ys);
  }
  SUBCASE("broadcast_to and sum_to") {
    check_first_and_second_order([](const Vars& v) { return broadcast_to(v[0], {2, 3, 4}); }, {randn({3, 1}, 10)});
    check_first_and_second_order([](const Vars& v) { return sum_to(v[0], {3, 1}); }, {randn({2, 3, 4}, 11)});
  }
}

TEST_CASE("arithmetic with plain scalars and tensors") {
  const std::vector<TD> xs = {randu({2, 3}, 12, 0.5, 2.0)};
  const TD c = randn({3}, 13);
  check_first_and_second_order([](const Vars& v) { return v[0] + 2.0; }, xs);
  check_first_and_second_order([](const Vars& v) { return 2.0 - v[0]; }, xs);
  check_first_and_second_order([](const Vars& v) { return v[0] * 3.0; }, xs);
  check_first_and_second_order([](const Vars& v) { return v[0] / 3.0; }, xs);
  check_first_and_second_order([](const Vars& v) { return 3.0 / v[0]; }, xs);
  check_first_and_second_order([&](const Vars& v) { return v[0] * c - c / v[0]; }, xs);
}

TEST_CASE("unary functions") {
  const std::vector<TD> any = {randn({3, 4}, 20)};
  const std::vector<TD> positive = {randu({3, 4}, 21, 0.3, 3.0)};
  // Ops with kinks are checked away from them: |x| >= 0.2 never crosses 0 within a finite-difference step.
  TD away = randu({3, 4}, 22, 0.2, 2.0);
  for (index_t i = 0; i < away.size(); i += 2) away.data()[i] = -away.data()[i];
  check_first_and_second_order([](const Vars& v) { return exp(v[0]); }, any);
  check_first_and_second_order([](const Vars& v) { return log(v[0]); }, positive);
  check_first_and_second_order([](const Vars& v) { return sqrt(v[0]); }, positive);
  check_first_and_second_order([](const Vars& v) { return square(v[0]); }, any);
  check_first_and_second_order([](const Vars& v) { return pow(v[0], 3.0); }, any);
  check_first_and_second_order([](const Vars& v) { return pow(v[0], -1.5); }, positive);
  check_first_and_second_order([](const Vars& v) { return pow(v[0], 0.0); }, positive);
  check_first_and_second_order([](const Vars& v) { return abs(v[0]); }, {away});
  check_first_and_second_order([](const Vars& v) { return tanh(v[0]); }, any);
  check_first_and_second_order([](const Vars& v) { return sigmoid(v[0]); }, any);
  check_first_and_second_order([](const Vars& v) { return relu(v[0]); }, {away});
  check_first_and_second_order([](const Vars& v) { return softplus(v[0]); }, any);
  check_first_and_second_order([](const Vars& v) { return clamp(v[0], -1.0, 1.0); }, {away * 0.9});
  // The fused backward kernels are ops too: a recorded backward pass differentiates through them.
  check_first_and_second_order([](const Vars& v) { return tanh_backward(v[0], v[1]); }, {any[0], randn({3, 4}, 23)});
  check_first_and_second_order([](const Vars& v) { return sigmoid_backward(v[0], v[1]); }, {any[0], randn({3, 4}, 24)});
}

TEST_CASE("matmul in all four transpose combinations, transpose, dot") {
  const TD a = randn({3, 4}, 30), b = randn({4, 5}, 31);
  check_first_and_second_order([](const Vars& v) { return matmul(v[0], v[1]); }, {a, b});
  check_first_and_second_order([](const Vars& v) { return matmul(v[0], v[1], true, false); }, {transpose(a), b});
  check_first_and_second_order([](const Vars& v) { return matmul(v[0], v[1], false, true); }, {a, transpose(b)});
  check_first_and_second_order([](const Vars& v) { return matmul(v[0], v[1], true, true); }, {transpose(a), transpose(b)});
  check_first_and_second_order([](const Vars& v) { return matmul(v[0], v[0], false, true); }, {a});
  check_first_and_second_order([](const Vars& v) { return transpose(v[0]); }, {a});
  check_first_and_second_order([](const Vars& v) { return dot(v[0], v[1]); }, {a, randn({3, 4}, 32)});
  check_first_and_second_order([](const Vars& v) { return dot(v[0], v[0]); }, {a});
}

TEST_CASE("reductions over everything and along each axis") {
  const std::vector<TD> xs = {randn({2, 3, 4}, 40)};
  check_first_and_second_order([](const Vars& v) { return sum(v[0]); }, xs);
  check_first_and_second_order([](const Vars& v) { return mean(v[0]); }, xs);
  for (int axis : {0, 1, 2, -1})
    for (bool keepdims : {false, true}) {
      CAPTURE(axis);
      CAPTURE(keepdims);
      check_first_and_second_order([=](const Vars& v) { return sum(v[0], axis, keepdims); }, xs);
      check_first_and_second_order([=](const Vars& v) { return mean(v[0], axis, keepdims); }, xs);
      check_first_and_second_order([=](const Vars& v) { return max(v[0], axis, keepdims); }, xs);
      check_first_and_second_order([=](const Vars& v) { return logsumexp(v[0], axis, keepdims); }, xs);
    }
}

TEST_CASE("softmax, log_softmax, cross_entropy, mse") {
  const std::vector<TD> xs = {randn({4, 5}, 50)};
  for (int axis : {0, 1}) {
    CAPTURE(axis);
    check_first_and_second_order([=](const Vars& v) { return softmax(v[0], axis); }, xs);
    check_first_and_second_order([=](const Vars& v) { return log_softmax(v[0], axis); }, xs);
  }
  check_first_and_second_order([](const Vars& v) { return softmax(v[0], 1); }, {randn({2, 3, 4}, 51)});
  const IndexVector labels = {1, 0, 4, 4};
  check_first_and_second_order([&](const Vars& v) { return cross_entropy(v[0], labels); }, xs);
  check_first_and_second_order([&](const Vars& v) { return mean(cross_entropy(v[0], labels)); }, xs);
  check_first_and_second_order([](const Vars& v) { return mse(v[0], v[1]); }, {randn({3, 2}, 52), randn({3, 2}, 53)});
}

TEST_CASE("indexing: reshape, gather and scatter rows, slice, pad, concat") {
  const TD x = randn({4, 3}, 60);
  const IndexVector rows = {2, 0, 2, 3};  // a repeated row accumulates its gradient
  check_first_and_second_order([](const Vars& v) { return reshape(v[0], {2, 6}); }, {x});
  check_first_and_second_order([](const Vars& v) { return unsqueeze(squeeze(v[0], 1), 0) * v[0]; }, {randn({3, 1}, 66)});
  check_first_and_second_order([](const Vars& v) { return matmul(transpose(v[0]), v[0]); }, {randn({3, 1}, 67)});
  check_first_and_second_order([&](const Vars& v) { return gather_rows(v[0], rows); }, {x});
  check_first_and_second_order([&](const Vars& v) { return scatter_add_rows(v[0], rows, 5); }, {x});
  check_first_and_second_order([](const Vars& v) { return slice(v[0], 1, 1, 2); }, {x});
  check_first_and_second_order([](const Vars& v) { return slice(v[0], 0, 1, 2); }, {randn({3, 2, 2}, 61)});
  // Overlapping slices along a middle axis fill one adjoint in place (the first allocates it, the others add).
  check_first_and_second_order([](const Vars& v) { return slice(v[0], 1, 0, 2) * slice(v[0], 1, 1, 2) + slice(v[0], 1, 2, 1) * v[1]; },
                               {randn({3, 3, 2}, 64), randn({3, 1, 2}, 65)});
  check_first_and_second_order([](const Vars& v) { return pad(v[0], 0, 1, 2); }, {x});
  check_first_and_second_order([](const Vars& v) { return concat({v[0], v[1], v[0]}, 1); }, {x, randn({4, 2}, 62)});
  check_first_and_second_order([](const Vars& v) { return concat({v[0], v[1]}, 0); }, {x, randn({1, 3}, 63)});
}

TEST_CASE("gathers along any axis and at flat positions, matrix structure, batched matmul") {
  const TD x = randn({2, 3, 4}, 66);
  const IndexVector idx = {2, 0, 2};  // a repeated index accumulates its gradient
  check_first_and_second_order([&](const Vars& v) { return index_select(v[0], 1, idx) * index_select(v[0], 1, idx); }, {x});
  check_first_and_second_order([&](const Vars& v) { return index_select(v[0], -1, {3, 3, 1}); }, {x});
  check_first_and_second_order([&](const Vars& v) { return square(index_add(v[0], 1, idx, 5)); }, {x});
  check_first_and_second_order([&](const Vars& v) { return take(v[0], {23, 0, 7, 7}) * take(v[0], {1, 2, 3, 4}); }, {x});
  check_first_and_second_order([&](const Vars& v) { return square(scatter_add(v[0], {3, 6, 7, 3}, Shape{3, 3})); }, {randn({4}, 67)});
  const TD m = randn({2, 3, 3}, 68);
  check_first_and_second_order([](const Vars& v) { return tril(v[0]) * v[0]; }, {m});
  check_first_and_second_order([](const Vars& v) { return triu(v[0], 1) * v[0]; }, {m});
  check_first_and_second_order([](const Vars& v) { return square(diagonal(v[0])); }, {m});
  check_first_and_second_order([](const Vars& v) { return square(diag_embed(v[0])); }, {randn({2, 3}, 69)});
  const std::vector<TD> ab = {randn({2, 3, 4}, 70), randn({2, 4, 2}, 71)};
  check_first_and_second_order([](const Vars& v) { return matmul(v[0], v[1]); }, ab);
  check_first_and_second_order([](const Vars& v) { return matmul(v[1], v[0], true, true); }, ab);
  check_first_and_second_order([](const Vars& v) { return matmul(v[0], v[0], false, true) * matmul(v[0], v[0], false, true); }, {ab[0]});
}

TEST_CASE("stop_gradient cuts the gradient, and the gradient check notices a wrong derivative") {
  // d/dx [x · stop_gradient(x)] = stop_gradient(x): the cut is visible as half the true derivative.
  Tape<double> tape;
  const TD x0 = randn({3}, 70);
  VD x = tape.variable(x0);
  const auto g = grad(sum(x * stop_gradient(x)), {x});
  CHECK(g[0] == x0);
  // The checker must fail on this function, whose tape derivative is deliberately wrong.
  const auto result = check_gradient([](const Vars& v) { return v[0] * stop_gradient(v[0]); }, {x0});
  CHECK_FALSE(result.ok);
  CHECK(result.report.find("gradient of input 0") != std::string::npos);
}

TEST_CASE("a small network, end to end, first and second order") {
  const TD X = randn({6, 4}, 80);
  const IndexVector y = {0, 2, 1, 1, 0, 2};
  auto loss = [&](const Vars& v) {
    const VD h = tanh(matmul(v[0].tape().constant(X), v[0]) + v[1]);
    return mean(cross_entropy(matmul(h, v[2]) + v[3], y));
  };
  const std::vector<TD> params = {randn({4, 5}, 81), randn({5}, 82), randn({5, 3}, 83), randn({3}, 84)};
  const auto first = check_gradient(loss, params);
  CHECK_MESSAGE(first.ok, first.report);
  const auto second = check_hvp(loss, params);
  CHECK_MESSAGE(second.ok, second.report);
}

}  // TEST_SUITE
