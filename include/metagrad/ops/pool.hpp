#pragma once
// 2-D pooling on plain tensors [N, C, H, W]: max_pool2d (through the flat positions of each window's maximum, so that
// on a tape it is a gather whose adjoint is a scatter), avg_pool2d and its adjoint, and global average pooling.
#include <algorithm>
#include <array>
#include <limits>
#include <string>

#include "metagrad/ops/elementwise.hpp"
#include "metagrad/ops/index.hpp"
#include "metagrad/ops/reduce.hpp"

namespace metagrad {

/// A pooling window and how it moves, [rows, columns] for each setting, as PyTorch's max_pool2d and avg_pool2d:
/// `max_pool2d(x, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}})`.
struct Pool2dOptions {
  std::array<index_t, 2> kernel{2, 2};   ///< The window's extent, ≥ 1.
  std::array<index_t, 2> stride{0, 0};   ///< Steps between windows; 0 means the kernel's extent (the default).
  std::array<index_t, 2> padding{0, 0};  ///< Padding on both sides, at most half the kernel: −∞ for max, 0 for average.
};

namespace detail {
/// The sizes of one pooling, checked: input [N, C, H, W], output [N, C, Ho, Wo].
struct PoolGeometry {
  index_t planes, H, W, Ho, Wo;
  std::array<index_t, 2> kernel, stride, padding;
  Shape output;

  static PoolGeometry of(const std::string& op, const Shape& x, const Pool2dOptions& o) {
    if (x.rank() != 4) throw shape_error(op + ": input of rank 4 [batch, channels, height, width] expected, got " + x.str());
    PoolGeometry q{x[0] * x[1], x[2], x[3], 0, 0, o.kernel, o.stride, o.padding, Shape{}};
    for (int a = 0; a < 2; ++a) {
      if (q.stride[a] == 0) q.stride[a] = q.kernel[a];
      if (q.kernel[a] < 1 || q.stride[a] < 1 || q.padding[a] < 0 || 2 * q.padding[a] > q.kernel[a])
        throw value_error(op + ": kernel " + std::to_string(q.kernel[a]) + ", stride " + std::to_string(q.stride[a]) +
                          " and padding " + std::to_string(q.padding[a]) + " on spatial axis " + std::to_string(a) +
                          " (kernel and stride >= 1, 0 <= padding <= kernel / 2 expected)");
      if (q.kernel[a] > x[2 + a] + 2 * q.padding[a])
        throw shape_error(op + ": a " + std::to_string(q.kernel[0]) + "×" + std::to_string(q.kernel[1]) +
                          " window does not fit input " + x.str() + " padded by " + std::to_string(q.padding[0]) + "×" +
                          std::to_string(q.padding[1]));
    }
    q.Ho = (q.H + 2 * q.padding[0] - q.kernel[0]) / q.stride[0] + 1;
    q.Wo = (q.W + 2 * q.padding[1] - q.kernel[1]) / q.stride[1] + 1;
    q.output = Shape{x[0], x[1], q.Ho, q.Wo};
    return q;
  }

  /// Calls f(out, in) for each output element and each input element inside its window (flat positions).
  template <class F>
  void for_each_window_element(F&& f) const {
    for (index_t p = 0; p < planes; ++p)
      for (index_t oh = 0; oh < Ho; ++oh)
        for (index_t ow = 0; ow < Wo; ++ow) {
          const index_t out = (p * Ho + oh) * Wo + ow;
          const index_t h0 = oh * stride[0] - padding[0], w0 = ow * stride[1] - padding[1];
          for (index_t ih = std::max<index_t>(h0, 0); ih < std::min(h0 + kernel[0], H); ++ih)
            for (index_t iw = std::max<index_t>(w0, 0); iw < std::min(w0 + kernel[1], W); ++iw)
              f(out, (p * H + ih) * W + iw);
        }
  }
};
}  // namespace detail

/// The flat positions in x [N, C, H, W] of each window's maximum (the first in row-major order when several are
/// equal), in the order of max_pool2d's output: max_pool2d(x) = reshape(take(x, positions), output shape).
template <class T>
IndexVector max_pool2d_positions(const Tensor<T>& x, const Pool2dOptions& options = {}) {
  const auto q = detail::PoolGeometry::of("max_pool2d", x.shape(), options);
  IndexVector at(static_cast<std::size_t>(q.output.size()));
  const T* data = x.data();
  index_t out = 0;
  // Every window holds at least one element (padding ≤ kernel / 2), which starts the search; the comparisons are
  // written to compile to conditional moves, since which element wins is data that no branch predictor learns.
  if (q.kernel == std::array<index_t, 2>{2, 2} && q.stride == q.kernel && q.padding == std::array<index_t, 2>{0, 0}) {
    // The common 2×2 pooling, with the window unrolled so that the loop over a row's windows vectorizes.
    for (index_t p = 0; p < q.planes; ++p)
      for (index_t oh = 0; oh < q.Ho; ++oh) {
        const index_t top = (p * q.H + 2 * oh) * q.W, bottom = top + q.W;
        index_t* best = at.data() + out;
        for (index_t ow = 0; ow < q.Wo; ++ow) {
          index_t b = top + 2 * ow;
          T v = data[b];
          for (const index_t in : {top + 2 * ow + 1, bottom + 2 * ow, bottom + 2 * ow + 1}) {
            const bool wins = data[in] > v;
            b = wins ? in : b;
            v = wins ? data[in] : v;
          }
          best[ow] = b;
        }
        out += q.Wo;
      }
    return at;
  }
  for (index_t p = 0; p < q.planes; ++p)
    for (index_t oh = 0; oh < q.Ho; ++oh) {
      const index_t h0 = oh * q.stride[0] - q.padding[0];
      const index_t ih_begin = std::max<index_t>(h0, 0), ih_end = std::min(h0 + q.kernel[0], q.H);
      for (index_t ow = 0; ow < q.Wo; ++ow, ++out) {
        const index_t w0 = ow * q.stride[1] - q.padding[1];
        const index_t iw_begin = std::max<index_t>(w0, 0), iw_end = std::min(w0 + q.kernel[1], q.W);
        index_t best = (p * q.H + ih_begin) * q.W + iw_begin;
        T best_value = data[best];
        for (index_t ih = ih_begin; ih < ih_end; ++ih)
          for (index_t in = (p * q.H + ih) * q.W + iw_begin, end = in + (iw_end - iw_begin); in < end; ++in) {
            const bool wins = data[in] > best_value;
            best = wins ? in : best;
            best_value = wins ? data[in] : best_value;
          }
        at[static_cast<std::size_t>(out)] = best;
      }
    }
  return at;
}

/// The maximum of each window of x [N, C, H, W] → [N, C, Ho, Wo], Ho = ⌊(H + 2ph − kh) / sh⌋ + 1 (padding never wins).
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, const Pool2dOptions& options = {}) {
  const auto q = detail::PoolGeometry::of("max_pool2d", x.shape(), options);
  return reshape(take(x, max_pool2d_positions(x, options)), q.output);
}

/// The mean of each window of x [N, C, H, W] → [N, C, Ho, Wo], padding counted as zeros (PyTorch's default).
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, const Pool2dOptions& options = {}) {
  const auto q = detail::PoolGeometry::of("avg_pool2d", x.shape(), options);
  Tensor<T> out = Tensor<T>::zeros(q.output);
  q.for_each_window_element([&](index_t o, index_t in) { out.data()[o] += x.data()[in]; });
  return std::move(out) * (T(1) / static_cast<T>(q.kernel[0] * q.kernel[1]));
}

/// The adjoint of avg_pool2d: for g shaped like its output, the x̄ [input_shape] with ⟨x̄, u⟩ = ⟨g, avg_pool2d(u)⟩.
template <class T>
Tensor<T> avg_pool2d_adjoint(const Tensor<T>& g, const Shape& input_shape, const Pool2dOptions& options = {}) {
  const auto q = detail::PoolGeometry::of("avg_pool2d_adjoint", input_shape, options);
  if (!(g.shape() == q.output))
    throw shape_error("avg_pool2d_adjoint: gradient of shape " + g.shape().str() + " for a pooling whose output is " +
                      q.output.str());
  Tensor<T> out = Tensor<T>::zeros(input_shape);
  const T share = T(1) / static_cast<T>(q.kernel[0] * q.kernel[1]);
  q.for_each_window_element([&](index_t o, index_t in) { out.data()[in] += share * g.data()[o]; });
  return out;
}

/// The mean over each channel's plane, [N, C, H, W] → [N, C], on either carrier.
template <class X>
auto global_avg_pool2d(const X& x) {
  if (x.shape().rank() != 4)
    throw shape_error("global_avg_pool2d: input of rank 4 [batch, channels, height, width] expected, got " + x.shape().str());
  const Shape& s = x.shape();
  return mean(reshape(x, Shape{s[0], s[1], s[2] * s[3]}), 2);
}

}  // namespace metagrad
