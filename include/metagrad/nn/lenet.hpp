#pragma once
// LeNet-5 as a pure function of its parameters, on either carrier (as Mlp): two 5×5 convolutions, each followed by
// the activation and 2×2 pooling (max, or average as in the original LeNet-5), then three dense layers.
#include <cstdint>
#include <string>
#include <vector>

#include "metagrad/autodiff/pool.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/tensor/random.hpp"

namespace metagrad {

/// How a network's feature maps are subsampled: the window's maximum, or its mean (smooth in its inputs).
enum class Pooling {
  max,      ///< max_pool2d
  average,  ///< avg_pool2d
};

/// LeNet-5 for square images [batch, channels, size, size]: conv 5×5 (padding 2) → 6 channels, activation, pool 2×2;
/// conv 5×5 → 16 channels, activation, pool 2×2; dense 120, activation; dense 84, activation; dense classes.
template <class T = double>
struct LeNet5 {
  index_t channels = 1;     ///< Input channels: 1 for MNIST, 3 for CIFAR-10.
  index_t image_size = 28;  ///< Input height and width: 28 for MNIST, 32 for CIFAR-10 (at least 12).
  index_t classes = 10;     ///< Outputs.
  Activation activation = Activation::relu;  ///< The nonlinearity after every layer but the last.
  T output_scale = 1;       ///< The logits are multiplied by this (the REPLAY paper's logit scale).
  Pooling pooling = Pooling::max;  ///< The 2×2 subsampling after each convolution.

  /// Extent of the feature maps entering the dense layers: 16 × features_side².
  index_t features_side() const { return (image_size / 2 - 4) / 2; }

  /// The shapes of the parameters, in order: conv1 weight [6, channels, 5, 5] and bias [6], conv2 weight
  /// [16, 6, 5, 5] and bias [16], then the dense layers' weights [in, out] and biases [out].
  std::vector<Shape> parameter_shapes() const {
    check_settings();
    const index_t features = 16 * features_side() * features_side();
    return {{6, channels, 5, 5}, {6}, {16, 6, 5, 5}, {16}, {features, 120}, {120}, {120, 84}, {84}, {84, classes}, {classes}};
  }

  /// PyTorch's default initialization: each layer's weight and bias from U(−1/√fan_in, 1/√fan_in), fan_in the inputs
  /// one output reads (channels · 5 · 5 for a convolution). Tensor k is drawn from the k-th number of SplitMix64(seed).
  std::vector<Tensor<T>> init(std::uint64_t seed) const {
    SplitMix64 seeds(seed);
    std::vector<Tensor<T>> params;
    const auto shapes = parameter_shapes();
    for (std::size_t l = 0; l < shapes.size(); l += 2) {
      const index_t fan_in = shapes[l].rank() == 4 ? shapes[l].size() / shapes[l][0] : shapes[l][0];
      const T bound = T(1) / std::sqrt(static_cast<T>(fan_in));
      params.push_back(Tensor<T>::random_uniform(shapes[l], seeds.next(), -bound, bound));
      params.push_back(Tensor<T>::random_uniform(shapes[l + 1], seeds.next(), -bound, bound));
    }
    return params;
  }

  /// The logits [batch, classes] for images x [batch, channels, image_size, image_size]. Any carriers.
  template <class P, class X>
  auto logits(const std::vector<P>& params, const X& x) const {
    check(params, x.shape());
    const auto pool = [&](const auto& a) { return pooling == Pooling::max ? max_pool2d(a) : avg_pool2d(a); };
    auto h = pool(activate(activation, conv2d_layer(x, params[0], params[1], {.padding = {2, 2}})));
    h = pool(activate(activation, conv2d_layer(h, params[2], params[3])));
    auto d = activate(activation, linear(flatten(h), params[4], params[5]));
    d = activate(activation, linear(d, params[6], params[7]));
    d = linear(d, params[8], params[9]);
    if (output_scale != T(1)) d = d * output_scale;
    return d;
  }

  /// Throws unless the parameters have this model's shapes and x is [batch, channels, image_size, image_size].
  template <class P>
  void check(const std::vector<P>& params, const Shape& x) const {
    const auto shapes = parameter_shapes();
    if (params.size() != shapes.size())
      throw value_error("LeNet5: " + std::to_string(params.size()) + " parameter tensors (10 expected)");
    for (std::size_t k = 0; k < shapes.size(); ++k)
      if (!(params[k].shape() == shapes[k]))
        throw shape_error("LeNet5: parameter " + std::to_string(k) + " has shape " + params[k].shape().str() + ", " +
                          shapes[k].str() + " expected");
    if (!(x.rank() == 4 && x[1] == channels && x[2] == image_size && x[3] == image_size))
      throw shape_error("LeNet5: input of shape " + x.str() + ", expected [batch, " + std::to_string(channels) + ", " +
                        std::to_string(image_size) + ", " + std::to_string(image_size) + "]");
  }

 private:
  void check_settings() const {
    if (channels < 1 || classes < 1 || image_size < 12)
      throw value_error("LeNet5: " + std::to_string(channels) + " channels, " + std::to_string(classes) +
                        " classes and images of side " + std::to_string(image_size) +
                        " (positive counts and a side of at least 12 expected)");
  }
};

}  // namespace metagrad
