#pragma once
// Batch and layer normalization, written in the op vocabulary on either carrier (so differentiated to any order).
//
// Batch normalization in training mode normalizes with the batch's own statistics, which are then part of the
// computation being differentiated; its running statistics are training state, a tree updated after each step, and
// evaluation mode normalizes with them:
//
//   auto batch = batch_statistics(h);                                   // training mode
//   h = batch_norm(h, batch.mean, batch.variance, gamma, beta);
//   running = updated(running, batch);                                  // the state for evaluation mode
//   h = batch_norm(h, running.mean, running.variance, gamma, beta);     // evaluation mode
#include <string>
#include <vector>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/reduce.hpp"
#include "metagrad/tensor/tree.hpp"

namespace metagrad {

/// One batch's statistics per channel: mean and (biased) variance over every axis but the channels, and how many
/// values each was taken over.
template <class C>
struct BatchStatistics {
  C mean;          ///< [channels]
  C variance;      ///< [channels], divided by count
  index_t count;   ///< values per channel
};

/// Batch normalization's running statistics, a tree: training state that evaluation mode normalizes with.
template <class C>
struct RunningStatistics {
  C mean;      ///< [channels], starting at 0
  C variance;  ///< [channels], unbiased, starting at 1
  METAGRAD_FIELDS(mean, variance)

  /// PyTorch's starting values for `channels` channels: mean 0, variance 1.
  static RunningStatistics init(index_t channels) { return {C::zeros(Shape{channels}), C::ones(Shape{channels})}; }
};

namespace detail {
/// x [N, C] or [N, C, H, W] as [N, C, H·W].
inline Shape channels_in_middle(const char* op, const Shape& s) {
  if (s.rank() != 2 && s.rank() != 4)
    throw shape_error(std::string(op) + ": input of rank 2 [batch, channels] or 4 [batch, channels, height, width] "
                      "expected, got " + s.str());
  return Shape{s[0], s[1], s.rank() == 4 ? s[2] * s[3] : 1};
}
}  // namespace detail

/// The per-channel mean and biased variance of x [N, C] or [N, C, H, W] over the batch (and the positions).
template <class X>
auto batch_statistics(const X& x) {
  const Shape s = detail::channels_in_middle("batch_statistics", x.shape());
  if (s[0] * s[2] < 2)
    throw value_error("batch_statistics: input " + x.shape().str() + " has one value per channel (more expected: a "
                      "batch of one sample and one position has no variance)");
  const auto x3 = reshape(x, s);
  const auto mu = mean(mean(x3, 2), 0);
  const auto centered = x3 - reshape(mu, Shape{1, s[1], 1});
  return BatchStatistics<std::decay_t<decltype(mu)>>{mu, mean(mean(centered * centered, 2), 0), s[0] * s[2]};
}

/// (x − mean) / √(variance + ε) · γ + β per channel of x [N, C] or [N, C, H, W], with statistics and γ, β all [C]: the
/// batch's statistics in training mode, the running ones in evaluation mode. Any mix of carriers.
template <class X, class M, class V, class G, class B>
auto batch_norm(const X& x, const M& mean, const V& variance, const G& gamma, const B& beta, double epsilon = 1e-5) {
  const Shape s = detail::channels_in_middle("batch_norm", x.shape());
  for (const Shape* p : {&mean.shape(), &variance.shape(), &gamma.shape(), &beta.shape()})
    if (!(*p == Shape{s[1]}))
      throw shape_error("batch_norm: statistics, scale and shift of shape " + p->str() + " for input " +
                        x.shape().str() + " ([" + std::to_string(s[1]) + "] expected: one per channel)");
  if (!(epsilon > 0)) throw value_error("batch_norm: epsilon " + std::to_string(epsilon) + " (> 0 expected)");
  using T = typename X::value_type;
  const auto scale = gamma / sqrt(variance + static_cast<T>(epsilon));
  const auto shift = beta - mean * scale;
  return reshape(reshape(x, s) * reshape(scale, Shape{1, s[1], 1}) + reshape(shift, Shape{1, s[1], 1}), x.shape());
}

/// The running statistics after one training batch: (1 − momentum)·running + momentum·batch, with the batch's
/// variance made unbiased (× count / (count − 1)), as PyTorch's BatchNorm with its default momentum 0.1.
template <class R, class B>
auto updated(const RunningStatistics<R>& running, const BatchStatistics<B>& batch, double momentum = 0.1) {
  if (!(momentum >= 0 && momentum <= 1))
    throw value_error("updated (batch norm running statistics): momentum " + std::to_string(momentum) +
                      " (0 to 1 expected)");
  using T = typename R::value_type;
  const T m = static_cast<T>(momentum), unbias = static_cast<T>(batch.count) / static_cast<T>(batch.count - 1);
  auto mean = running.mean * (T(1) - m) + batch.mean * m;
  auto variance = running.variance * (T(1) - m) + batch.variance * (m * unbias);
  return RunningStatistics<decltype(mean)>{std::move(mean), std::move(variance)};
}

/// Each of a network's running statistics after one training batch, in order (see updated above).
template <class R, class B>
auto updated(const std::vector<RunningStatistics<R>>& running, const std::vector<BatchStatistics<B>>& batch,
             double momentum = 0.1) {
  if (running.size() != batch.size())
    throw value_error("updated (batch norm running statistics): " + std::to_string(running.size()) +
                      " running statistics and " + std::to_string(batch.size()) + " batches' statistics");
  std::vector<decltype(updated(running[0], batch[0], momentum))> out;
  for (std::size_t k = 0; k < running.size(); ++k) out.push_back(updated(running[k], batch[k], momentum));
  return out;
}

/// (x − mean) / √(variance + ε) · γ + β over the trailing axes of x that γ and β span (layer normalization, as
/// PyTorch's layer_norm with normalized_shape = γ's shape). Any mix of carriers.
template <class X, class G, class B>
auto layer_norm(const X& x, const G& gamma, const B& beta, double epsilon = 1e-5) {
  const Shape& s = x.shape();
  const Shape& g = gamma.shape();
  const int lead = s.rank() - g.rank();
  bool fits = lead >= 0 && g.rank() >= 1 && beta.shape() == g;
  for (int a = 0; fits && a < g.rank(); ++a) fits = s[lead + a] == g[a];
  if (!fits)
    throw shape_error("layer_norm: scale " + g.str() + " and shift " + beta.shape().str() + " for input " + s.str() +
                      " (both equal to the input's trailing axes expected)");
  if (!(epsilon > 0)) throw value_error("layer_norm: epsilon " + std::to_string(epsilon) + " (> 0 expected)");
  using T = typename X::value_type;
  const index_t inner = g.size(), outer = s.size() / inner;
  const auto x2 = reshape(x, Shape{outer, inner});
  const auto centered = x2 - mean(x2, 1, true);
  const auto normalized = centered / sqrt(mean(centered * centered, 1, true) + static_cast<T>(epsilon));
  return reshape(normalized * reshape(gamma, Shape{inner}) + reshape(beta, Shape{inner}), s);
}

}  // namespace metagrad
