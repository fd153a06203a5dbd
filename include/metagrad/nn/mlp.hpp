#pragma once
// A multilayer perceptron as a pure function of its parameters: `logits(params, x)` is a template over the carrier,
// so the same model trains on plain tensors and is differentiated on Vars (a metagradient records it on a tape).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/tensor/random.hpp"

namespace metagrad {

/// A multilayer perceptron as a pure function of its parameter list, on either carrier.
template <class T = double>
struct Mlp {
  /// Layer widths from input to output: {784, 100, 10} is one hidden layer of 100; {784, 10} is logistic regression.
  std::vector<index_t> widths;
  Activation activation = Activation::tanh;  ///< The hidden layers' nonlinearity.
  /// The logits are multiplied by this: the REPLAY paper scales a network's final layer down (≈ 0.1) to make its
  /// metagradients smoother.
  T output_scale = 1;

  /// Number of layers (widths minus one).
  std::size_t layers() const { return widths.size() < 2 ? 0 : widths.size() - 1; }

  /// The parameters [W₀, b₀, W₁, b₁, …], W_l of shape [widths[l], widths[l+1]] and b_l of shape [widths[l+1]].
  /// PyTorch's default initialization: every weight and bias of layer l drawn from U(−1/√widths[l], 1/√widths[l]).
  /// Tensor k is drawn from the stream SplitMix64(seed) gives as its k-th number, so each seed gives independent
  /// tensors and the same seed the same bits everywhere.
  std::vector<Tensor<T>> init(std::uint64_t seed) const {
    check_widths();
    SplitMix64 seeds(seed);
    std::vector<Tensor<T>> params;
    for (std::size_t l = 0; l < layers(); ++l) {
      const T bound = T(1) / std::sqrt(static_cast<T>(widths[l]));
      params.push_back(Tensor<T>::random_uniform({widths[l], widths[l + 1]}, seeds.next(), -bound, bound));
      params.push_back(Tensor<T>::random_uniform({widths[l + 1]}, seeds.next(), -bound, bound));
    }
    return params;
  }

  /// Number of scalars in the parameters.
  index_t parameter_count() const {
    index_t n = 0;
    for (std::size_t l = 0; l < layers(); ++l) n += (widths[l] + 1) * widths[l + 1];
    return n;
  }

  /// The logits [batch, widths.back()] for inputs x [batch, widths[0]]: the activation between layers, none after the
  /// last. Any carrier for the parameters and for x.
  template <class P, class X>
  auto logits(const std::vector<P>& params, const X& x) const {
    check(params, x.shape());
    auto h = linear(x, params[0], params[1]);
    for (std::size_t l = 1; l < layers(); ++l) h = linear(activate(activation, h), params[2 * l], params[2 * l + 1]);
    if (output_scale != T(1)) h = h * output_scale;
    return h;
  }

  /// Throws unless `params` are [W₀, b₀, …] of this model's shapes and x is [batch, widths[0]].
  template <class P>
  void check(const std::vector<P>& params, const Shape& x) const {
    check_widths();
    if (params.size() != 2 * layers())
      throw value_error("Mlp: " + std::to_string(params.size()) + " parameter tensors for " + std::to_string(layers()) +
                        " layers (" + std::to_string(2 * layers()) + " expected: a weight and a bias per layer)");
    for (std::size_t l = 0; l < layers(); ++l) {
      const Shape w{widths[l], widths[l + 1]}, b{widths[l + 1]};
      if (!(params[2 * l].shape() == w) || !(params[2 * l + 1].shape() == b))
        throw shape_error("Mlp: layer " + std::to_string(l) + " has weight " + params[2 * l].shape().str() + " and bias " +
                          params[2 * l + 1].shape().str() + ", expected " + w.str() + " and " + b.str());
    }
    if (x.rank() != 2 || x[1] != widths[0])
      throw shape_error("Mlp: input of shape " + x.str() + ", expected [batch, " + std::to_string(widths[0]) + "]");
  }

 private:
  void check_widths() const {
    if (widths.size() < 2) throw value_error("Mlp: at least two widths (input and output) expected");
    for (index_t w : widths)
      if (w < 1) throw value_error("Mlp: layer width " + std::to_string(w) + " (positive widths expected)");
  }
};

}  // namespace metagrad
