// Convolutional networks' ops: conv2d and its adjoints, pooling, batch and layer normalization, dropout, flatten —
// their values against the defining sums, their derivatives against finite differences (first and second order),
// their errors.
#include "support.hpp"

using namespace metagrad;
using namespace metagrad::test;

namespace {

/// conv2d by its defining sum, one output element at a time.
template <class T>
Tensor<T> conv2d_by_definition(const Tensor<T>& x, const Tensor<T>& w, const Conv2dOptions& o) {
  const index_t N = x.shape()[0], H = x.shape()[2], W = x.shape()[3];
  const index_t O = w.shape()[0], Cg = w.shape()[1], kh = w.shape()[2], kw = w.shape()[3], Og = O / o.groups;
  const index_t Ho = (H + 2 * o.padding[0] - o.dilation[0] * (kh - 1) - 1) / o.stride[0] + 1;
  const index_t Wo = (W + 2 * o.padding[1] - o.dilation[1] * (kw - 1) - 1) / o.stride[1] + 1;
  Tensor<T> y(Shape{N, O, Ho, Wo});
  for (index_t n = 0; n < N; ++n)
    for (index_t oc = 0; oc < O; ++oc)
      for (index_t oh = 0; oh < Ho; ++oh)
        for (index_t ow = 0; ow < Wo; ++ow) {
          double s = 0;
          for (index_t c = 0; c < Cg; ++c)
            for (index_t i = 0; i < kh; ++i)
              for (index_t j = 0; j < kw; ++j) {
                const index_t ih = oh * o.stride[0] - o.padding[0] + i * o.dilation[0];
                const index_t iw = ow * o.stride[1] - o.padding[1] + j * o.dilation[1];
                if (ih >= 0 && ih < H && iw >= 0 && iw < W) s += double(w(oc, c, i, j)) * double(x(n, oc / Og * Cg + c, ih, iw));
              }
          y(n, oc, oh, ow) = static_cast<T>(s);
        }
  return y;
}

Tensor<float> to_float(const TD& x) {
  Tensor<float> out = Tensor<float>::uninitialized(x.shape());
  out.array() = x.array().cast<float>();
  return out;
}

struct ConvCase {
  const char* name;
  Shape input, weight;
  Conv2dOptions options;
};

const std::vector<ConvCase> conv_cases = {
    {"3×3, no padding", {2, 3, 6, 5}, {4, 3, 3, 3}, {}},
    {"3×2, strides 2×1, padding 1×2", {2, 3, 7, 6}, {4, 3, 3, 2}, {.stride = {2, 1}, .padding = {1, 2}}},
    {"dilation 2×1 with strides, padding and 2 groups", {1, 4, 9, 8}, {6, 2, 3, 3},
     {.stride = {2, 2}, .padding = {1, 1}, .dilation = {2, 1}, .groups = 2}},
    {"depthwise (groups = channels)", {3, 4, 5, 5}, {4, 1, 3, 3}, {.padding = {1, 1}, .groups = 4}},
    {"1×1", {2, 3, 4, 4}, {5, 3, 1, 1}, {}},
    {"1×1 with stride 2 and 2 groups", {2, 4, 5, 4}, {2, 2, 1, 1}, {.stride = {2, 2}, .groups = 2}},
    {"17 samples: three blocks of the weight gradient", {17, 2, 5, 5}, {3, 2, 3, 3}, {.padding = {1, 1}}},
};

}  // namespace

TEST_SUITE("convolutional networks") {

TEST_CASE("conv2d equals its defining sum: strides, padding, dilation, groups, 1×1, float and double") {
  std::uint64_t seed = 1;
  for (const ConvCase& c : conv_cases) {
    INFO(c.name);
    const TD x = randn(c.input, seed++), w = randn(c.weight, seed++);
    const TD y = conv2d(x, w, c.options);
    const TD expected = conv2d_by_definition(x, w, c.options);
    REQUIRE(y.shape() == expected.shape());
    CHECK((y.array() - expected.array()).abs().maxCoeff() < 1e-13);
    const Tensor<float> yf = conv2d(to_float(x), to_float(w), c.options);
    CHECK((yf.array().cast<double>() - expected.array()).abs().maxCoeff() < 1e-5);
  }
}

TEST_CASE("conv2d's adjoints: ⟨conv2d_input_grad(g, w), u⟩ = ⟨g, conv2d(u, w)⟩ and ⟨conv2d_weight_grad(x, g), v⟩ = "
          "⟨g, conv2d(x, v)⟩") {
  std::uint64_t seed = 100;
  for (const ConvCase& c : conv_cases) {
    INFO(c.name);
    const TD x = randn(c.input, seed++), w = randn(c.weight, seed++);
    const TD g = randn(conv2d(x, w, c.options).shape(), seed++);
    const TD u = randn(c.input, seed++), v = randn(c.weight, seed++);
    const double lhs_x = dot(conv2d_input_grad(g, w, c.input, c.options), u).item();
    const double lhs_w = dot(conv2d_weight_grad(x, g, c.weight, c.options), v).item();
    CHECK(lhs_x == doctest::Approx(dot(g, conv2d(u, w, c.options)).item()).epsilon(1e-12));
    CHECK(lhs_w == doctest::Approx(dot(g, conv2d(x, v, c.options)).item()).epsilon(1e-12));
  }
}

TEST_CASE("conv2d and its two adjoints against finite differences, first and second order") {
  std::uint64_t seed = 200;
  for (const ConvCase& c : conv_cases) {
    INFO(c.name);
    const TD x = randn(c.input, seed++), w = randn(c.weight, seed++);
    const TD g = randn(conv2d(x, w, c.options).shape(), seed++);
    const Conv2dOptions o = c.options;
    const Shape input = c.input, weight = c.weight;
    check_first_and_second_order([o](const Vars& v) { return conv2d(v[0], v[1], o); }, {x, w});
    check_first_and_second_order([o, input](const Vars& v) { return conv2d_input_grad(v[0], v[1], input, o); }, {g, w});
    check_first_and_second_order([o, weight](const Vars& v) { return conv2d_weight_grad(v[0], v[1], weight, o); }, {x, g});
  }
  SUBCASE("a convolution of a convolution, with a bias and a nonlinearity between them") {
    const std::vector<TD> xs = {randn({2, 2, 6, 6}, 300), randn({3, 2, 3, 3}, 301), randn({3}, 302), randn({2, 3, 2, 2}, 303)};
    check_first_and_second_order(
        [](const Vars& v) {
          const VD h = tanh(conv2d(v[0], v[1], {.padding = {1, 1}}) + reshape(v[2], {1, 3, 1, 1}));
          return conv2d(h, v[3], {.stride = {2, 2}});
        },
        xs);
  }
}

TEST_CASE("conv2d: constant inputs or weights on a tape, and clear errors for impossible shapes and settings") {
  const TD x = randn({2, 4, 5, 5}, 400), w = randn({6, 2, 3, 3}, 401);
  Tape<double> tape;
  const VD wv = tape.variable(w), xv = tape.variable(x);
  CHECK(conv2d(x, wv, {.groups = 2}).value() == conv2d(x, w, {.groups = 2}));
  CHECK(conv2d(xv, w, {.groups = 2}).value() == conv2d(x, w, {.groups = 2}));
  const auto throws = [&](const Shape& xs, const Shape& ws, const Conv2dOptions& o, const char* fragment) {
    INFO(fragment);
    CHECK_THROWS_WITH_AS(conv2d(TD(xs), TD(ws), o), doctest::Contains(fragment), const error&);
  };
  throws({4, 5, 5}, {6, 4, 3, 3}, {}, "input of rank 4 [batch, channels, height, width] expected, got [4, 5, 5]");
  throws({2, 4, 5, 5}, {6, 4, 3}, {}, "weight of rank 4");
  throws({2, 4, 5, 5}, {6, 3, 3, 3}, {}, "in_channels / groups = 4 expected on axis 1");
  throws({2, 4, 5, 5}, {6, 2, 3, 3}, {.groups = 3}, "3 groups for 4 input and 6 output channels");
  throws({2, 4, 5, 5}, {6, 4, 3, 3}, {.stride = {0, 1}}, "stride 0");
  throws({2, 4, 5, 5}, {6, 4, 3, 3}, {.padding = {0, -1}}, "padding -1");
  throws({2, 4, 5, 5}, {6, 4, 6, 3}, {}, "a 6×3 kernel (dilated to 6×3) does not fit input [2, 4, 5, 5]");
  throws({2, 4, 5, 5}, {6, 4, 3, 3}, {.dilation = {3, 1}}, "(dilated to 7×3) does not fit");
  CHECK_THROWS_WITH_AS(conv2d_input_grad(TD({2, 6, 2, 2}), w, Shape{2, 4, 5, 5}, {.groups = 2}),
                       doctest::Contains("gradient of shape [2, 6, 2, 2] for a convolution whose output is [2, 6, 3, 3]"),
                       const shape_error&);
  CHECK_THROWS_AS(conv2d_weight_grad(x, TD({2, 6, 3, 4}), w.shape(), {.groups = 2}), const shape_error&);
}

TEST_CASE("pooling: values by hand, derivatives against finite differences, errors") {
  const TD x(Shape{1, 1, 3, 4}, {1, 5, 2, 0,  //
                                 3, 4, 8, 6,  //
                                 7, 0, 1, 9});
  CHECK(max_pool2d(x) == TD(Shape{1, 1, 1, 2}, {5, 8}));
  CHECK(avg_pool2d(x) == TD(Shape{1, 1, 1, 2}, {3.25, 4}));
  CHECK(max_pool2d_positions(x) == IndexVector{1, 6});
  // 3×3 windows with stride 2 and padding 1: padding never wins a maximum and counts as zeros in a mean.
  CHECK(max_pool2d(x, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}) == TD(Shape{1, 1, 2, 2}, {5, 8, 7, 9}));
  const TD padded_means = avg_pool2d(x, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
  REQUIRE(padded_means.shape() == Shape{1, 1, 2, 2});
  const std::vector<double> sums = {13, 25, 14, 28};
  for (index_t i = 0; i < 4; ++i) CHECK(padded_means.data()[i] == doctest::Approx(sums[i] / 9).epsilon(1e-15));
  CHECK(global_avg_pool2d(x).shape() == Shape{1, 1});
  CHECK(global_avg_pool2d(x).item() == doctest::Approx(46.0 / 12).epsilon(1e-15));
  CHECK(flatten(x).shape() == Shape{1, 12});

  // Positions against a search written from the definition (the first maximum in row-major order), with many ties:
  // the 2×2 pooling has a path of its own, the other windows share the general one.
  TD ties = randu({2, 3, 9, 7}, 502, 0, 3);
  ties.array() = ties.array().round();
  for (const Pool2dOptions& o : {Pool2dOptions{}, Pool2dOptions{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}},
                                 Pool2dOptions{.kernel = {2, 3}, .stride = {1, 2}, .padding = {1, 0}}}) {
    const Shape in = ties.shape(), out = max_pool2d(ties, o).shape();
    const index_t sh = o.stride[0] ? o.stride[0] : o.kernel[0], sw = o.stride[1] ? o.stride[1] : o.kernel[1];
    IndexVector expected;
    for (index_t p = 0; p < in[0] * in[1]; ++p)
      for (index_t oh = 0; oh < out[2]; ++oh)
        for (index_t ow = 0; ow < out[3]; ++ow) {
          index_t best = -1;
          for (index_t i = 0; i < o.kernel[0]; ++i)
            for (index_t j = 0; j < o.kernel[1]; ++j) {
              const index_t h = oh * sh - o.padding[0] + i, w = ow * sw - o.padding[1] + j;
              if (h < 0 || h >= in[2] || w < 0 || w >= in[3]) continue;
              const index_t at = (p * in[2] + h) * in[3] + w;
              if (best < 0 || ties.data()[at] > ties.data()[best]) best = at;
            }
          expected.push_back(best);
        }
    CHECK(max_pool2d_positions(ties, o) == expected);
  }

  const TD distinct = randn({2, 3, 7, 6}, 500);  // distinct values: no ties within a finite-difference step
  for (const Pool2dOptions& o : {Pool2dOptions{}, Pool2dOptions{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}},
                                 Pool2dOptions{.kernel = {3, 2}, .stride = {1, 2}}}) {
    check_first_and_second_order([o](const Vars& v) { return max_pool2d(v[0], o); }, {distinct});
    check_first_and_second_order([o](const Vars& v) { return avg_pool2d(v[0], o); }, {distinct});
    const TD g = randn(avg_pool2d(distinct, o).shape(), 501);
    const Shape s = distinct.shape();
    check_first_and_second_order([o, s](const Vars& v) { return avg_pool2d_adjoint(v[0], s, o); }, {g});
  }
  check_first_and_second_order([](const Vars& v) { return global_avg_pool2d(v[0]) * flatten(v[0] * v[0]).shape()[1]; },
                               {distinct});
  check_first_and_second_order([](const Vars& v) { return flatten(v[0]); }, {distinct});

  CHECK_THROWS_WITH_AS(max_pool2d(TD({3, 4, 4})), doctest::Contains("input of rank 4"), const shape_error&);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, {.kernel = {2, 2}, .padding = {2, 0}}),
                       doctest::Contains("0 <= padding <= kernel / 2 expected"), const value_error&);
  CHECK_THROWS_WITH_AS(max_pool2d(x, {.kernel = {4, 2}}), doctest::Contains("a 4×2 window does not fit input [1, 1, 3, 4]"),
                       const shape_error&);
  CHECK_THROWS_WITH_AS(avg_pool2d_adjoint(TD({1, 1, 2, 2}), x.shape()),
                       doctest::Contains("gradient of shape [1, 1, 2, 2] for a pooling whose output is [1, 1, 1, 2]"),
                       const shape_error&);
}

TEST_CASE("batch normalization: the batch's statistics, training and evaluation mode, the running update, derivatives") {
  const TD x = randn({4, 3, 3, 2}, 600), gamma = randu({3}, 601, 0.5, 1.5), beta = randn({3}, 602);
  const auto batch = batch_statistics(x);
  CHECK(batch.count == 24);
  for (index_t c = 0; c < 3; ++c) {  // against the sums written out
    double s = 0, ss = 0;
    for (index_t n = 0; n < 4; ++n)
      for (index_t i = 0; i < 6; ++i) s += x.data()[(n * 3 + c) * 6 + i];
    const double m = s / 24;
    for (index_t n = 0; n < 4; ++n)
      for (index_t i = 0; i < 6; ++i) ss += std::pow(x.data()[(n * 3 + c) * 6 + i] - m, 2);
    CHECK(batch.mean.data()[c] == doctest::Approx(m).epsilon(1e-14));
    CHECK(batch.variance.data()[c] == doctest::Approx(ss / 24).epsilon(1e-14));
    const TD y = batch_norm(x, batch.mean, batch.variance, gamma, beta);
    for (index_t n = 0; n < 4; ++n)
      for (index_t i = 0; i < 6; ++i) {
        const index_t at = (n * 3 + c) * 6 + i;
        CHECK(y.data()[at] ==
              doctest::Approx((x.data()[at] - m) / std::sqrt(ss / 24 + 1e-5) * gamma.data()[c] + beta.data()[c]).epsilon(1e-13));
      }
  }
  // PyTorch's running update: momentum 0.1, the batch's variance made unbiased; starting at mean 0, variance 1.
  const auto running = updated(RunningStatistics<TD>::init(3), batch);
  for (index_t c = 0; c < 3; ++c) {
    CHECK(running.mean.data()[c] == doctest::Approx(0.1 * batch.mean.data()[c]).epsilon(1e-15));
    CHECK(running.variance.data()[c] == doctest::Approx(0.9 + 0.1 * batch.variance.data()[c] * 24 / 23).epsilon(1e-15));
  }
  CHECK(tree_paths(running) == std::vector<std::string>{"mean", "variance"});

  const auto training = [](const Vars& v) {
    const auto b = batch_statistics(v[0]);
    return batch_norm(v[0], b.mean, b.variance, v[1], v[2]);
  };
  check_first_and_second_order(training, {x, gamma, beta});
  check_first_and_second_order(training, {randn({5, 4}, 603), randu({4}, 604, 0.5, 1.5), randn({4}, 605)});
  // Evaluation mode, and the running statistics as differentiable state (a metagradient through them).
  check_first_and_second_order(
      [](const Vars& v) { return batch_norm(v[0], v[3], v[4], v[1], v[2]); },
      {x, gamma, beta, randn({3}, 606), randu({3}, 607, 0.5, 2.0)});
  check_first_and_second_order(
      [](const Vars& v) {
        const auto r = updated(RunningStatistics<VD>{v[1], v[2]}, batch_statistics(v[0]), 0.3);
        return r.mean * r.variance;
      },
      {x, randn({3}, 608), randu({3}, 609, 0.5, 2.0)});

  CHECK_THROWS_WITH_AS(batch_statistics(TD({1, 3, 1, 1})), doctest::Contains("one value per channel"), const value_error&);
  CHECK_THROWS_WITH_AS(batch_statistics(TD({2, 3, 4})), doctest::Contains("rank 2 [batch, channels] or 4"),
                       const shape_error&);
  CHECK_THROWS_WITH_AS(batch_norm(x, batch.mean, batch.variance, TD({4}), beta),
                       doctest::Contains("of shape [4] for input [4, 3, 3, 2] ([3] expected"), const shape_error&);
  CHECK_THROWS_AS(updated(running, batch, 1.5), const value_error&);
}

TEST_CASE("layer normalization over the trailing axes: values, derivatives, errors") {
  const TD x = randn({2, 3, 4}, 700), gamma = randu({3, 4}, 701, 0.5, 1.5), beta = randn({3, 4}, 702);
  const TD y = layer_norm(x, gamma, beta);
  for (index_t n = 0; n < 2; ++n) {
    const auto lane = x.array().segment(n * 12, 12);
    const double m = lane.mean(), var = (lane - m).square().mean();
    for (index_t i = 0; i < 12; ++i)
      CHECK(y.data()[n * 12 + i] ==
            doctest::Approx((lane[i] - m) / std::sqrt(var + 1e-5) * gamma.data()[i] + beta.data()[i]).epsilon(1e-13));
  }
  check_first_and_second_order([](const Vars& v) { return layer_norm(v[0], v[1], v[2]); }, {x, gamma, beta});
  check_first_and_second_order([](const Vars& v) { return layer_norm(v[0], v[1], v[2]); },
                               {x, randu({4}, 703, 0.5, 1.5), randn({4}, 704)});
  CHECK_THROWS_WITH_AS(layer_norm(x, TD({4, 3}), TD({4, 3})), doctest::Contains("equal to the input's trailing axes"),
                       const shape_error&);
  CHECK_THROWS_AS(layer_norm(x, TD::scalar(1), TD::scalar(0)), const shape_error&);  // normalizing over no axis
}

TEST_CASE("dropout: the mask is a pure function of (seed, step, layer), keeps about 1 − rate, scales the rest") {
  const TD x = randn({64, 50}, 800);
  const TD a = dropout(x, 0.3, {.seed = 1, .step = 7, .layer = 2});
  CHECK(a == dropout(x, 0.3, {.seed = 1, .step = 7, .layer = 2}));
  CHECK(!(a == dropout(x, 0.3, {.seed = 1, .step = 8, .layer = 2})));
  CHECK(!(a == dropout(x, 0.3, {.seed = 1, .step = 7, .layer = 3})));
  CHECK(!(a == dropout(x, 0.3, {.seed = 2, .step = 7, .layer = 2})));
  const TD mask = dropout_mask<double>(x.shape(), 0.3, {.seed = 1, .step = 7, .layer = 2});
  CHECK(a == x * mask);
  const double kept = (mask.array() > 0).cast<double>().mean();
  CHECK(kept == doctest::Approx(0.7).epsilon(0.03));  // 3200 draws: the standard deviation of the share is 0.008
  CHECK(((mask.array() == 0) || (mask.array() == 1 / 0.7)).all());
  CHECK(dropout(x, 0.0, {}) == x);
  // On a tape the mask is a constant: the derivative is the mask, and the second derivative zero.
  check_first_and_second_order([](const Vars& v) { return dropout(v[0] * v[0], 0.5, {.seed = 3}); }, {randn({4, 5}, 801)});
  CHECK_THROWS_WITH_AS(dropout(x, 1.0, {}), doctest::Contains("rate 1.0"), const value_error&);
  CHECK_THROWS_AS(dropout(x, -0.1, {}), const value_error&);
}

}  // TEST_SUITE

TEST_SUITE("convolutional networks") {

TEST_CASE("LeNet-5: PyTorch's shapes and initialization, logits on either carrier, max or average pooling, derivatives, errors") {
  const LeNet5<double> model{.channels = 1, .image_size = 12, .classes = 3, .activation = Activation::tanh};
  const std::vector<TD> params = model.init(1);
  REQUIRE(params.size() == 10);
  CHECK(params[0].shape() == Shape{6, 1, 5, 5});
  CHECK(params[4].shape() == Shape{16, 120});  // 16 channels of 1×1 features for 12×12 images
  CHECK(LeNet5<double>{}.parameter_shapes()[4] == Shape{400, 120});  // 16 × 5 × 5 for MNIST's 28×28
  CHECK(params[0].array().abs().maxCoeff() <= 1 / std::sqrt(25.0));  // U(±1/√fan_in), fan_in = 1 · 5 · 5
  CHECK(params[0].array().abs().maxCoeff() > 0.9 / std::sqrt(25.0));
  CHECK(params[8].array().abs().maxCoeff() <= 1 / std::sqrt(84.0));
  CHECK(model.init(1) == params);

  const TD x = randn({2, 1, 12, 12}, 900);
  Tape<double> tape;
  Vars p;
  for (const TD& t : params) p.push_back(tape.variable(t));
  const TD plain = model.logits(params, x);
  CHECK(plain.shape() == Shape{2, 3});
  CHECK(model.logits(p, x).value() == plain);
  // With max pooling and with average pooling (the original LeNet-5's): every coordinate of the convolutions' gradient
  // (the dense layers, checked with Mlp, held constant: their 12,000 coordinates would cost 24,000 forward passes),
  // and the Hessian-vector product over all parameters.
  const LeNet5<double> averaging{.channels = 1, .image_size = 12, .classes = 3, .activation = Activation::tanh,
                                  .pooling = Pooling::average};
  CHECK((averaging.logits(params, x) - plain).array().abs().maxCoeff() > 1e-3);
  const std::vector<TD> convolutions(params.begin(), params.begin() + 4);
  for (const LeNet5<double>* m : {&model, &averaging}) {
    const auto conv_loss = [&](const Vars& v) {
      Vars all = v;
      for (std::size_t k = 4; k < params.size(); ++k) all.push_back(v[0].tape().constant(params[k]));
      return m->logits(all, x);
    };
    CHECK(check_gradient(conv_loss, convolutions));
    CHECK(check_hvp([&](const Vars& v) { return m->logits(v, x); }, params));
  }

  CHECK_THROWS_WITH_AS(model.logits(params, randn({2, 1, 28, 28}, 901)),
                       doctest::Contains("input of shape [2, 1, 28, 28], expected [batch, 1, 12, 12]"), const shape_error&);
  std::vector<TD> wrong = params;
  wrong[2] = TD({16, 5, 5, 5});
  CHECK_THROWS_WITH_AS(model.logits(wrong, x), doctest::Contains("parameter 2 has shape [16, 5, 5, 5], [16, 6, 5, 5] expected"),
                       const shape_error&);
  CHECK_THROWS_AS((LeNet5<double>{.image_size = 8}.init(1)), const value_error&);
}

TEST_CASE("the small ResNet: batch norm before, after or nowhere; training and evaluation mode; derivatives") {
  const TD x = randn({3, 1, 6, 6}, 910);
  for (const BatchNormPlacement placement :
       {BatchNormPlacement::none, BatchNormPlacement::before_activation, BatchNormPlacement::after_activation}) {
    INFO("batch norm " << placement_name(placement));
    const ResNet<double> model{.channels = 1, .classes = 3, .widths = {2, 3}, .blocks = 1, .batch_norm = placement,
                               .output_scale = 0.5};
    CHECK(model.units().size() == 6);  // stem, 2 units of a block, downsampling unit, 2 units of a block
    const std::vector<TD> params = model.init(2);
    const std::size_t per_unit = 1 + (model.has_bias() ? 1 : 0) + (model.has_batch_norm() ? 2 : 0);
    REQUIRE(params.size() == 6 * per_unit + 2);
    CHECK(model.batch_norms() == (model.has_batch_norm() ? 6u : 0u));
    // Training mode returns the statistics the running ones are updated from; evaluation mode uses those.
    std::vector<BatchStatistics<TD>> statistics;
    const TD training = model.logits(params, x, statistics);
    CHECK(training == model.logits(params, x));
    REQUIRE(statistics.size() == model.batch_norms());
    const auto running = updated(model.init_running_statistics(), statistics);
    CHECK(model.eval_logits(params, x, running).shape() == Shape{3, 3});
    if (placement == BatchNormPlacement::none) CHECK(model.eval_logits(params, x, running) == training);
    const auto loss = [&](const Vars& v) { return model.logits(v, x); };
    CHECK(check_gradient(loss, params));
    CHECK(check_hvp(loss, params));
    CHECK_THROWS_WITH_AS(model.eval_logits(params, x, std::vector<RunningStatistics<TD>>(1)),
                         doctest::Contains("1 running statistics for"), const value_error&);
  }
  CHECK_THROWS_WITH_AS(ResNet<double>{.channels = 3}.logits(ResNet<double>{}.init(1), randn({2, 1, 8, 8}, 911)),
                       doctest::Contains("parameter 0 has shape [16, 1, 3, 3], [16, 3, 3, 3] expected"), const shape_error&);
}

}  // TEST_SUITE
