#pragma once
// The LSTM cell, for a batch of rows and either carrier (a learned optimizer runs one row per parameter coordinate).
#include <algorithm>
#include <string>
#include <utility>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/ops/elementwise.hpp"
#include "metagrad/autodiff/index.hpp"
#include "metagrad/autodiff/linalg.hpp"

namespace metagrad {

/// The weights of one LSTM layer with `inputs` inputs and `hidden` units: gates in PyTorch's order [i, f, g, o].
template <class C>
struct LstmWeights {
  C input;      // [inputs, 4·hidden]
  C recurrent;  // [hidden, 4·hidden]
  C bias;       // [4·hidden]
};

/// One step of an LSTM layer: z = x·W_x + h·W_h + b split into gates i, f, g, o; c' = σ(f)⊙c + σ(i)⊙tanh(g),
/// h' = σ(o)⊙tanh(c'). x is [rows, inputs], h and c are [rows, hidden]. Returns (h', c').
namespace nn_detail {
/// The cell's update from the pre-activations z [rows, 4H] (bias not yet added), on plain tensors in one pass over
/// blocks of rows that stay in cache (the composed ops would make a dozen passes over [rows, H] arrays).
template <class T>
std::pair<Tensor<T>, Tensor<T>> lstm_gates(Tensor<T>& z, const Tensor<T>& bias, const Tensor<T>& c, index_t hidden) {
  using Rows = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const index_t rows = z.shape()[0];
  Tensor<T> h_out = Tensor<T>::uninitialized(Shape{rows, hidden}), c_out = Tensor<T>::uninitialized(Shape{rows, hidden});
  Eigen::Map<Rows> all(z.data(), rows, 4 * hidden);
  all.rowwise() += Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>(bias.data(), 4 * hidden);
  constexpr index_t block = 64;
  for (index_t r = 0; r < rows; r += block) {
    const index_t n = std::min(block, rows - r);
    auto zb = all.middleRows(r, n);  // whole rows: contiguous
    auto cb = Eigen::Map<const Rows>(c.data() + r * hidden, n, hidden);
    auto cn = Eigen::Map<Rows>(c_out.data() + r * hidden, n, hidden);
    auto hn = Eigen::Map<Rows>(h_out.data() + r * hidden, n, hidden);
    if constexpr (std::is_same_v<T, double>) {  // σ(x) = (1 + tanh(x/2)) / 2, with the vectorized tanh kernel
      zb.leftCols(2 * hidden) *= 0.5;
      zb.rightCols(hidden) *= 0.5;
      detail::tanh_double(zb.data(), zb.data(), n * 4 * hidden);
      cn = (0.5 + 0.5 * zb.middleCols(hidden, hidden)) * cb + (0.5 + 0.5 * zb.leftCols(hidden)) * zb.middleCols(2 * hidden, hidden);
      detail::tanh_double(cn.data(), hn.data(), n * hidden);
      hn *= 0.5 + 0.5 * zb.rightCols(hidden);
    } else {
      const auto sigma = [](const auto& v) { return T(1) / (T(1) + (-v).exp()); };
      cn = sigma(zb.middleCols(hidden, hidden)) * cb + sigma(zb.leftCols(hidden)) * zb.middleCols(2 * hidden, hidden).tanh();
      hn = sigma(zb.rightCols(hidden)) * cn.tanh();
    }
  }
  return {std::move(h_out), std::move(c_out)};
}
}  // namespace nn_detail

template <class X, class H, class W>
auto lstm_cell(const X& x, const H& h, const H& c, const LstmWeights<W>& w) {
  const index_t hidden = w.recurrent.shape()[0];
  if (w.recurrent.shape().rank() != 2 || w.recurrent.shape()[1] != 4 * hidden || w.input.shape().rank() != 2 ||
      w.input.shape()[1] != 4 * hidden || !(w.bias.shape() == Shape{4 * hidden}))
    throw shape_error("lstm_cell: weights " + w.input.shape().str() + ", " + w.recurrent.shape().str() + ", " + w.bias.shape().str() +
                      " (expected [inputs, 4H], [H, 4H], [4H])");
  if (x.shape().rank() != 2 || x.shape()[1] != w.input.shape()[0] || !(h.shape() == Shape{x.shape()[0], hidden}) ||
      !(c.shape() == h.shape()))
    throw shape_error("lstm_cell: input " + x.shape().str() + ", hidden " + h.shape().str() + ", cell " + c.shape().str() +
                      " for weights of " + std::to_string(w.input.shape()[0]) + " inputs and " + std::to_string(hidden) + " units");
  if constexpr (std::is_same_v<X, H> && std::is_same_v<H, W> && std::is_same_v<W, Tensor<typename W::value_type>>) {
    Tensor<typename W::value_type> z = matmul(x, w.input);
    z.matrix().noalias() += h.matrix() * w.recurrent.matrix();
    return nn_detail::lstm_gates(z, w.bias, c, hidden);
  }
  const auto z = matmul(x, w.input) + matmul(h, w.recurrent) + w.bias;
  const auto gate = [&](int k) { return slice(z, 1, k * hidden, hidden); };
  const auto cell = sigmoid(gate(1)) * c + sigmoid(gate(0)) * tanh(gate(2));
  auto out = sigmoid(gate(3)) * tanh(cell);
  return std::pair{out, cell};
}

}  // namespace metagrad
