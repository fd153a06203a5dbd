#pragma once
// 2-D convolution on plain tensors, and its two adjoints: conv2d(x, w), conv2d_input_grad(g, w) (the transposed
// convolution) and conv2d_weight_grad(x, g). Each is the others' vector–Jacobian product, so the three are closed
// under differentiation: a convolution is differentiated to any order in this vocabulary (autodiff/conv.hpp).
//
// Each sample's patches are unfolded into columns (im2col) and multiplied by the weights with the library's matrix
// product, whose every element is one multiply-add chain in a fixed order (ops/gemm.hpp). Samples run on the threads;
// the weight gradient, a sum over samples, runs its chain through fixed blocks of samples and adds the blocks in
// order. So every result is the same bits on any number of threads.
#include <algorithm>
#include <array>
#include <string>

#include "metagrad/ops/gemm.hpp"
#include "metagrad/tensor/tensor.hpp"
#include "metagrad/threads.hpp"

namespace metagrad {

/// How a 2-D convolution's window moves over its input ([rows, columns] for each setting), as in PyTorch's conv2d:
/// `conv2d(x, w, {.stride = {2, 2}, .padding = {1, 1}})`. Padding adds zeros on both sides; dilation spaces the
/// kernel's taps; `groups` splits the channels into independent convolutions.
struct Conv2dOptions {
  std::array<index_t, 2> stride{1, 1};    ///< Steps between windows, ≥ 1.
  std::array<index_t, 2> padding{0, 0};   ///< Zeros added before and after each spatial axis, ≥ 0.
  std::array<index_t, 2> dilation{1, 1};  ///< Spacing of the kernel's taps, ≥ 1.
  index_t groups = 1;                     ///< Channel groups, dividing both the input and output channels.
};

namespace detail {

/// Ceiling of a / b for b > 0 and any sign of a.
inline index_t ceil_div(index_t a, index_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/// The sizes of one convolution, checked: input [N, C, H, W], weight [O, C/groups, kh, kw], output [N, O, Ho, Wo].
struct ConvGeometry {
  index_t N, C, H, W, O, kh, kw, Ho, Wo, groups;
  std::array<index_t, 2> stride, padding, dilation;

  index_t group_channels() const { return C / groups; }                        ///< Input channels per group.
  index_t group_outputs() const { return O / groups; }                         ///< Output channels per group.
  index_t patch() const { return group_channels() * kh * kw; }                 ///< Inner extent K of the products.
  index_t positions() const { return Ho * Wo; }                                ///< Output positions P per channel.
  Shape input() const { return Shape{N, C, H, W}; }                            ///< x's shape.
  Shape weight() const { return Shape{O, group_channels(), kh, kw}; }          ///< w's shape.
  Shape output() const { return Shape{N, O, Ho, Wo}; }                         ///< The output's shape.
  /// A 1×1 kernel with unit stride and no padding: the input's channels are the columns themselves.
  bool direct() const { return kh == 1 && kw == 1 && stride == std::array<index_t, 2>{1, 1} && padding[0] == 0 && padding[1] == 0; }

  static ConvGeometry of(const std::string& op, const Shape& x, const Shape& w, const Conv2dOptions& o) {
    if (x.rank() != 4) throw shape_error(op + ": input of rank 4 [batch, channels, height, width] expected, got " + x.str());
    if (w.rank() != 4)
      throw shape_error(op + ": weight of rank 4 [out_channels, in_channels / groups, kh, kw] expected, got " + w.str());
    for (int a = 0; a < 2; ++a)
      if (o.stride[a] < 1 || o.dilation[a] < 1 || o.padding[a] < 0)
        throw value_error(op + ": stride " + std::to_string(o.stride[a]) + ", dilation " + std::to_string(o.dilation[a]) +
                          " and padding " + std::to_string(o.padding[a]) + " on spatial axis " + std::to_string(a) +
                          " (stride and dilation >= 1, padding >= 0 expected)");
    if (o.groups < 1 || x[1] % o.groups != 0 || w[0] % o.groups != 0)
      throw value_error(op + ": " + std::to_string(o.groups) + " groups for " + std::to_string(x[1]) +
                        " input and " + std::to_string(w[0]) + " output channels (a common divisor >= 1 expected)");
    if (w[1] * o.groups != x[1])
      throw shape_error(op + ": weight " + w.str() + " for input " + x.str() + " in " + std::to_string(o.groups) +
                        " groups (in_channels / groups = " + std::to_string(x[1] / o.groups) + " expected on axis 1)");
    ConvGeometry q{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, o.groups, o.stride, o.padding, o.dilation};
    const index_t reach_h = (q.kh - 1) * q.dilation[0] + 1, reach_w = (q.kw - 1) * q.dilation[1] + 1;
    if (q.kh < 1 || q.kw < 1 || reach_h > q.H + 2 * q.padding[0] || reach_w > q.W + 2 * q.padding[1])
      throw shape_error(op + ": a " + std::to_string(q.kh) + "×" + std::to_string(q.kw) + " kernel (dilated to " +
                        std::to_string(reach_h) + "×" + std::to_string(reach_w) + ") does not fit input " + x.str() +
                        " padded by " + std::to_string(q.padding[0]) + "×" + std::to_string(q.padding[1]));
    q.Ho = (q.H + 2 * q.padding[0] - reach_h) / q.stride[0] + 1;
    q.Wo = (q.W + 2 * q.padding[1] - reach_w) / q.stride[1] + 1;
    return q;
  }

  /// Calls f(k, oh, row, first, last, iw0) for each patch row k = (c, i, j) and output row oh: `row` is the offset of
  /// the input row the tap reads (within the group's channels), or −1 where that row is padding; output columns
  /// [first, last) read it at columns iw0 + (ow − first)·stride, and the others read padding.
  template <class F>
  void for_each_tap_row(F&& f) const {
    for (index_t c = 0; c < group_channels(); ++c)
      for (index_t i = 0; i < kh; ++i)
        for (index_t j = 0; j < kw; ++j) {
          const index_t k = (c * kh + i) * kw + j, offset = j * dilation[1] - padding[1];
          const index_t first = std::clamp<index_t>(ceil_div(-offset, stride[1]), 0, Wo);
          const index_t last = std::clamp<index_t>(ceil_div(W - offset, stride[1]), first, Wo);
          for (index_t oh = 0; oh < Ho; ++oh) {
            const index_t ih = oh * stride[0] - padding[0] + i * dilation[0];
            f(k, oh, ih >= 0 && ih < H ? c * H * W + ih * W : index_t(-1), first, last, first * stride[1] + offset);
          }
        }
  }

  /// The columns [patch, positions] of one sample's group: column p holds the patch output position p reads.
  template <class T>
  void im2col(const T* x, T* cols) const {
    const index_t P = positions(), s = stride[1];
    for_each_tap_row([&](index_t k, index_t oh, index_t row, index_t first, index_t last, index_t iw0) {
      T* out = cols + k * P + oh * Wo;
      if (row < 0) return std::fill(out, out + Wo, T(0));
      std::fill(out, out + first, T(0));
      const T* in = x + row + iw0;
      if (s == 1) std::copy(in, in + (last - first), out + first);
      else
        for (index_t ow = first; ow < last; ++ow) out[ow] = in[(ow - first) * s];
      std::fill(out + last, out + Wo, T(0));
    });
  }

  /// out[j] += in[j] for j < n: a unit-stride loop the compiler vectorizes (the rows are short: a call per row costs).
  template <class T>
  static void add_row(const T* __restrict in, index_t n, T* __restrict out) {
    for (index_t j = 0; j < n; ++j) out[j] += in[j];
  }

  /// The adjoint of im2col: adds each column entry into the input element it was read from (x must start zeroed).
  template <class T>
  void col2im(const T* cols, T* x) const {
    const index_t P = positions(), s = stride[1];
    for_each_tap_row([&](index_t k, index_t oh, index_t row, index_t first, index_t last, index_t iw0) {
      if (row < 0) return;
      const T* in = cols + k * P + oh * Wo + first;
      T* out = x + row + iw0;
      if (s == 1) add_row(in, last - first, out);
      else
        for (index_t j = 0; j < last - first; ++j) out[j * s] += in[j];
    });
  }
};

/// Runs task(n) for each sample n, on the threads when the convolution is large enough to repay them.
template <class Task>
void for_each_sample(const ConvGeometry& q, Task&& task) {
  if (q.N > 1 && q.N * q.O * q.positions() * q.patch() >= min_parallel_work) return parallel_for(q.N, task);
  for (index_t n = 0; n < q.N; ++n) task(n);
}

/// Samples whose weight-gradient chains run as one, before the blocks are added in order: fixed, so that the bits
/// do not depend on the thread count.
inline constexpr index_t conv_sample_block = 8;

template <class T>
void check_conv_gradient(const std::string& op, const Tensor<T>& g, const ConvGeometry& q) {
  if (!(g.shape() == q.output()))
    throw shape_error(op + ": gradient of shape " + g.shape().str() + " for a convolution whose output is " +
                      q.output().str());
}
}  // namespace detail

/// The 2-D convolution (cross-correlation, as in PyTorch) of x [N, C, H, W] with w [O, C / groups, kh, kw]:
/// out[n, o, oh, ow] = Σ_{c, i, j} w[o, c, i, j] · x[n, g·C/groups + c, oh·sh − ph + i·dh, ow·sw − pw + j·dw], with
/// g = o's group and zeros outside x. The output is [N, O, Ho, Wo], Ho = ⌊(H + 2ph − dh(kh − 1) − 1) / sh⌋ + 1. A bias
/// is a separate add: `conv2d(x, w) + reshape(b, {1, O, 1, 1})`.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& w, const Conv2dOptions& options = {}) {
  const auto q = detail::ConvGeometry::of("conv2d", x.shape(), w.shape(), options);
  Tensor<T> out = Tensor<T>::uninitialized(q.output());
  const index_t Cg = q.group_channels(), Og = q.group_outputs(), K = q.patch(), P = q.positions();
  detail::for_each_sample(q, [&](index_t n) {
    Tensor<T> cols = Tensor<T>::uninitialized(Shape{q.direct() ? 0 : K * P});
    for (index_t g = 0; g < q.groups; ++g) {
      const T* xs = x.data() + (n * q.C + g * Cg) * q.H * q.W;
      if (!q.direct()) q.im2col(xs, cols.data());
      detail::gemm(Og, P, K, detail::StridedMatrix<T>{w.data() + g * Og * K, K, 1},
                   detail::StridedMatrix<T>{q.direct() ? xs : cols.data(), P, 1}, out.data() + (n * q.O + g * Og) * P);
    }
  });
  return out;
}

/// The adjoint of conv2d with respect to its input (the transposed convolution): for g shaped like conv2d's output,
/// the x̄ [input_shape] with ⟨x̄, u⟩ = ⟨g, conv2d(u, w)⟩ for every u.
template <class T>
Tensor<T> conv2d_input_grad(const Tensor<T>& g, const Tensor<T>& w, const Shape& input_shape,
                            const Conv2dOptions& options = {}) {
  const auto q = detail::ConvGeometry::of("conv2d_input_grad", input_shape, w.shape(), options);
  detail::check_conv_gradient("conv2d_input_grad", g, q);
  Tensor<T> out = Tensor<T>::zeros(input_shape);
  const index_t Cg = q.group_channels(), Og = q.group_outputs(), K = q.patch(), P = q.positions();
  detail::for_each_sample(q, [&](index_t n) {
    Tensor<T> cols = Tensor<T>::uninitialized(Shape{q.direct() ? 0 : K * P});
    for (index_t grp = 0; grp < q.groups; ++grp) {
      T* xs = out.data() + (n * q.C + grp * Cg) * q.H * q.W;
      detail::gemm(K, P, Og, detail::StridedMatrix<T>{w.data() + grp * Og * K, 1, K},
                   detail::StridedMatrix<T>{g.data() + (n * q.O + grp * Og) * P, P, 1}, q.direct() ? xs : cols.data());
      if (!q.direct()) q.col2im(cols.data(), xs);
    }
  });
  return out;
}

/// The adjoint of conv2d with respect to its weight: for g shaped like conv2d's output, the w̄ [weight_shape] with
/// ⟨w̄, v⟩ = ⟨g, conv2d(x, v)⟩ for every v — the weight's gradient, summed over the samples.
template <class T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& x, const Tensor<T>& g, const Shape& weight_shape,
                             const Conv2dOptions& options = {}) {
  const auto q = detail::ConvGeometry::of("conv2d_weight_grad", x.shape(), weight_shape, options);
  detail::check_conv_gradient("conv2d_weight_grad", g, q);
  const index_t Cg = q.group_channels(), Og = q.group_outputs(), K = q.patch(), P = q.positions();
  const index_t blocks = std::max<index_t>(1, (q.N + detail::conv_sample_block - 1) / detail::conv_sample_block);
  Tensor<T> partial = Tensor<T>::zeros(Shape{blocks, q.O * K});
  const auto block = [&](index_t b) {
    Tensor<T> cols = Tensor<T>::uninitialized(Shape{q.direct() ? 0 : K * P});
    const index_t first = b * detail::conv_sample_block, last = std::min(q.N, first + detail::conv_sample_block);
    for (index_t n = first; n < last; ++n)
      for (index_t grp = 0; grp < q.groups; ++grp) {
        const T* xs = x.data() + (n * q.C + grp * Cg) * q.H * q.W;
        if (!q.direct()) q.im2col(xs, cols.data());
        detail::gemm(Og, K, P, detail::StridedMatrix<T>{g.data() + (n * q.O + grp * Og) * P, P, 1},
                     detail::StridedMatrix<T>{q.direct() ? xs : cols.data(), 1, P},
                     partial.data() + b * q.O * K + grp * Og * K, n > first);
      }
  };
  if (blocks > 1 && q.N * q.O * P * K >= detail::min_parallel_work) parallel_for(blocks, block);
  else
    for (index_t b = 0; b < blocks; ++b) block(b);
  Tensor<T> out = Tensor<T>::uninitialized(weight_shape);
  out.array() = partial.array().head(q.O * K);
  for (index_t b = 1; b < blocks; ++b) out.array() += partial.array().segment(b * q.O * K, q.O * K);
  return out;
}

}  // namespace metagrad
