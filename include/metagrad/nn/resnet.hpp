#pragma once
// A small residual network as a pure function of its parameters, on either carrier (as Mlp), in the shape of the
// REPLAY paper's ResNet-9: 3×3 convolution units (convolution, batch norm, ReLU), stages that halve the resolution,
// residual blocks of two units, global average pooling and a dense layer with a logit scale. Where batch norm sits —
// before the activation, after it, or nowhere — is a setting: the REPLAY paper finds it decides how metasmooth the
// training is.
#include <cstdint>
#include <string>
#include <vector>

#include "metagrad/autodiff/pool.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/normalization.hpp"
#include "metagrad/tensor/random.hpp"

namespace metagrad {

/// Where a convolution unit applies batch normalization.
enum class BatchNormPlacement {
  none,               ///< convolution (with a bias), ReLU
  before_activation,  ///< convolution (no bias), batch norm, ReLU: the usual ResNet unit
  after_activation,   ///< convolution (with a bias), ReLU, batch norm
};

/// "none", "before" or "after".
inline const char* placement_name(BatchNormPlacement p) {
  switch (p) {
    case BatchNormPlacement::none: return "none";
    case BatchNormPlacement::before_activation: return "before";
    case BatchNormPlacement::after_activation: return "after";
  }
  return "?";
}

/// A residual network for images [batch, channels, H, W]: a stem unit to widths[0] channels; then for each stage s,
/// a unit with stride 2 to widths[s] channels (from the second stage on) and `blocks` residual blocks h + u₂(u₁(h));
/// then the mean of each channel and a dense layer to the classes, times output_scale.
template <class T = double>
struct ResNet {
  index_t channels = 1;                      ///< Input channels.
  index_t classes = 10;                      ///< Outputs.
  std::vector<index_t> widths = {16, 32};    ///< Channels of each stage.
  index_t blocks = 1;                        ///< Residual blocks per stage.
  BatchNormPlacement batch_norm = BatchNormPlacement::before_activation;  ///< Where each unit normalizes.
  T output_scale = 1;                        ///< The logits are multiplied by this (the REPLAY paper's logit scale).
  double epsilon = 1e-5;                     ///< Batch norm's ε.

  /// One 3×3 convolution unit: its input and output channels and its stride.
  struct Unit {
    index_t in;      ///< Input channels.
    index_t out;     ///< Output channels.
    index_t stride;  ///< 1, or 2 where a stage halves the resolution.
  };
  /// The units in order of application.
  std::vector<Unit> units() const {
    check_settings();
    std::vector<Unit> out = {{channels, widths[0], 1}};
    for (std::size_t s = 0; s < widths.size(); ++s) {
      if (s > 0) out.push_back({widths[s - 1], widths[s], 2});
      for (index_t b = 0; b < 2 * blocks; ++b) out.push_back({widths[s], widths[s], 1});
    }
    return out;
  }
  bool has_bias() const { return batch_norm != BatchNormPlacement::before_activation; }  ///< Convolutions with a bias.
  bool has_batch_norm() const { return batch_norm != BatchNormPlacement::none; }         ///< Units with batch norm.
  /// How many batch norms the network has (and running statistics it keeps).
  std::size_t batch_norms() const { return has_batch_norm() ? units().size() : 0; }

  /// The parameters' shapes in order: each unit's weight [out, in, 3, 3], bias [out] (without batch norm before the
  /// activation) and batch norm scale and shift [out] (with batch norm); then the dense weight [widths.back(),
  /// classes] and bias [classes].
  std::vector<Shape> parameter_shapes() const {
    std::vector<Shape> shapes;
    for (const Unit& u : units()) {
      shapes.push_back({u.out, u.in, 3, 3});
      if (has_bias()) shapes.push_back({u.out});
      if (has_batch_norm()) shapes.insert(shapes.end(), {{u.out}, {u.out}});
    }
    shapes.insert(shapes.end(), {{widths.back(), classes}, {classes}});
    return shapes;
  }

  /// PyTorch's default initialization: convolution and dense weights and biases from U(−1/√fan_in, 1/√fan_in);
  /// batch norm scales 1 and shifts 0. Tensor k is drawn from the k-th number of SplitMix64(seed).
  std::vector<Tensor<T>> init(std::uint64_t seed) const {
    SplitMix64 seeds(seed);
    std::vector<Tensor<T>> params;
    T bound = 0;
    for (const Unit& u : units()) {
      bound = T(1) / std::sqrt(static_cast<T>(u.in * 9));
      params.push_back(Tensor<T>::random_uniform({u.out, u.in, 3, 3}, seeds.next(), -bound, bound));
      if (has_bias()) params.push_back(Tensor<T>::random_uniform({u.out}, seeds.next(), -bound, bound));
      if (has_batch_norm()) {
        params.push_back(Tensor<T>::ones({u.out}));
        params.push_back(Tensor<T>::zeros({u.out}));
      }
    }
    bound = T(1) / std::sqrt(static_cast<T>(widths.back()));
    params.push_back(Tensor<T>::random_uniform({widths.back(), classes}, seeds.next(), -bound, bound));
    params.push_back(Tensor<T>::random_uniform({classes}, seeds.next(), -bound, bound));
    return params;
  }

  /// Running statistics for evaluation mode, one per batch norm, at PyTorch's starting values.
  std::vector<RunningStatistics<Tensor<T>>> init_running_statistics() const {
    std::vector<RunningStatistics<Tensor<T>>> out;
    for (const Unit& u : units())
      if (has_batch_norm()) out.push_back(RunningStatistics<Tensor<T>>::init(u.out));
    return out;
  }

  /// Training mode: the logits [batch, classes], each batch norm normalizing with the batch's statistics.
  template <class P, class X>
  auto logits(const std::vector<P>& params, const X& x) const {
    return forward(params, x, [&](std::size_t, const auto& h, const P& gamma, const P& beta) {
      const auto s = batch_statistics(h);
      return metagrad::batch_norm(h, s.mean, s.variance, gamma, beta, epsilon);
    });
  }
  /// Training mode, appending each batch norm's batch statistics to `statistics` (for the running statistics:
  /// `running = updated(running, statistics)`).
  template <class P, class X, class S>
  auto logits(const std::vector<P>& params, const X& x, std::vector<BatchStatistics<S>>& statistics) const {
    return forward(params, x, [&](std::size_t, const auto& h, const P& gamma, const P& beta) {
      statistics.push_back(batch_statistics(h));
      return metagrad::batch_norm(h, statistics.back().mean, statistics.back().variance, gamma, beta, epsilon);
    });
  }
  /// Evaluation mode: each batch norm normalizes with its running statistics (one per batch norm, in order).
  template <class P, class X, class R>
  auto eval_logits(const std::vector<P>& params, const X& x, const std::vector<RunningStatistics<R>>& running) const {
    if (running.size() != batch_norms())
      throw value_error("ResNet: " + std::to_string(running.size()) + " running statistics for " +
                        std::to_string(batch_norms()) + " batch norms");
    return forward(params, x, [&](std::size_t k, const auto& h, const P& gamma, const P& beta) {
      return metagrad::batch_norm(h, running[k].mean, running[k].variance, gamma, beta, epsilon);
    });
  }

  /// Throws unless the parameters have this model's shapes and x is [batch, channels, H, W].
  template <class P>
  void check(const std::vector<P>& params, const Shape& x) const {
    const auto shapes = parameter_shapes();
    if (params.size() != shapes.size())
      throw value_error("ResNet: " + std::to_string(params.size()) + " parameter tensors (" +
                        std::to_string(shapes.size()) + " expected)");
    for (std::size_t k = 0; k < shapes.size(); ++k)
      if (!(params[k].shape() == shapes[k]))
        throw shape_error("ResNet: parameter " + std::to_string(k) + " has shape " + params[k].shape().str() + ", " +
                          shapes[k].str() + " expected");
    if (x.rank() != 4 || x[1] != channels)
      throw shape_error("ResNet: input of shape " + x.str() + ", expected [batch, " + std::to_string(channels) + ", H, W]");
  }

 private:
  void check_settings() const {
    if (channels < 1 || classes < 1 || blocks < 0 || widths.empty())
      throw value_error("ResNet: " + std::to_string(channels) + " channels, " + std::to_string(classes) + " classes, " +
                        std::to_string(blocks) + " blocks per stage and " + std::to_string(widths.size()) +
                        " stages (positive counts, at least one stage expected)");
    for (index_t w : widths)
      if (w < 1) throw value_error("ResNet: stage width " + std::to_string(w) + " (positive widths expected)");
  }

  /// The network with `normalize(k, h, γ, β)` as the k-th batch norm.
  template <class P, class X, class Normalize>
  auto forward(const std::vector<P>& params, const X& x, Normalize&& normalize) const {
    check(params, x.shape());
    std::size_t k = 0, norms = 0;
    const auto unit = [&](const auto& h, index_t stride) {
      const Conv2dOptions o{.stride = {stride, stride}, .padding = {1, 1}};
      auto y = has_bias() ? conv2d_layer(h, params[k], params[k + 1], o) : conv2d(h, params[k], o);
      k += has_bias() ? 2 : 1;
      if (batch_norm == BatchNormPlacement::before_activation) y = normalize(norms++, y, params[k], params[k + 1]);
      y = relu(y);
      if (batch_norm == BatchNormPlacement::after_activation) y = normalize(norms++, y, params[k], params[k + 1]);
      if (has_batch_norm()) k += 2;
      return y;
    };
    auto h = unit(x, 1);
    for (std::size_t s = 0; s < widths.size(); ++s) {
      if (s > 0) h = unit(h, 2);
      for (index_t b = 0; b < blocks; ++b) {
        const auto inner = unit(h, 1);
        h = h + unit(inner, 1);
      }
    }
    auto logits = linear(global_avg_pool2d(h), params[k], params[k + 1]);
    if (output_scale != T(1)) logits = logits * output_scale;
    return logits;
  }
};

}  // namespace metagrad
