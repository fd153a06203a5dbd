#pragma once
// The LSTM cell, for a batch of rows and either carrier (a learned optimizer runs one row per parameter coordinate).
#include <algorithm>
#include <string>
#include <utility>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/index.hpp"
#include "metagrad/autodiff/linalg.hpp"
#include "metagrad/autodiff/reduce.hpp"
#include "metagrad/ops/elementwise.hpp"

namespace metagrad {

/// The weights of one LSTM layer with `inputs` inputs and `hidden` units: gates in PyTorch's order [i, f, g, o].
template <class C>
struct LstmWeights {
  C input;      // [inputs, 4·hidden]
  C recurrent;  // [hidden, 4·hidden]
  C bias;       // [4·hidden]
};

namespace nn_detail {
template <class T>
using RowArray = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using StridedRows = Eigen::Map<RowArray<T>, 0, Eigen::OuterStride<>>;
/// Rows per block of the fused forward and backward passes: a block's gates stay in cache.
inline constexpr index_t lstm_block_rows = 64;

/// The cell's update from the pre-activations z [rows, 4H] (bias not yet added), in one pass over blocks of rows that
/// stay in cache (the composed ops would make a dozen passes over [rows, H] arrays). Leaves the activated gates
/// [σ(i), σ(f), tanh(g), σ(o)] in z and writes h' and c' to rows of stride `ld` (and tanh(c') when asked).
template <class T>
void lstm_gates(Tensor<T>& z, const Tensor<T>& bias, const Tensor<T>& c, index_t hidden, T* h_out, T* c_out, index_t ld,
                T* tanh_cell = nullptr) {
  const index_t rows = z.shape()[0], H = hidden;
  Eigen::Map<RowArray<T>> all(z.data(), rows, 4 * H);
  all.rowwise() += Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>(bias.data(), 4 * H);
  constexpr index_t block = lstm_block_rows;
  RowArray<T> scratch(block, H);
  for (index_t r = 0; r < rows; r += block) {
    const index_t n = std::min(block, rows - r);
    auto zb = all.middleRows(r, n);  // whole rows: contiguous
    const auto cb = Eigen::Map<const RowArray<T>>(c.data() + r * H, n, H);
    StridedRows<T> cn(c_out + r * ld, n, H, Eigen::OuterStride<>(ld)), hn(h_out + r * ld, n, H, Eigen::OuterStride<>(ld));
    Eigen::Map<RowArray<T>> tc(tanh_cell ? tanh_cell + r * H : scratch.data(), n, H);
    if constexpr (std::is_same_v<T, double>) {  // σ(x) = (1 + tanh(x/2)) / 2, with the vectorized tanh kernel
      zb.leftCols(2 * H) *= 0.5;
      zb.rightCols(H) *= 0.5;
      detail::tanh_double(zb.data(), zb.data(), n * 4 * H);
      zb.leftCols(2 * H) = 0.5 + 0.5 * zb.leftCols(2 * H);
      zb.rightCols(H) = 0.5 + 0.5 * zb.rightCols(H);
      tc = zb.middleCols(H, H) * cb + zb.leftCols(H) * zb.middleCols(2 * H, H);
      cn = tc;
      detail::tanh_double(tc.data(), tc.data(), n * H);
    } else {
      const auto sigma = [](const auto& v) { return T(1) / (T(1) + (-v).exp()); };
      zb.leftCols(2 * H) = sigma(zb.leftCols(2 * H));
      zb.middleCols(2 * H, H) = zb.middleCols(2 * H, H).tanh();
      zb.rightCols(H) = sigma(zb.rightCols(H));
      cn = zb.middleCols(H, H) * cb + zb.leftCols(H) * zb.middleCols(2 * H, H);
      tc = cn.tanh();
    }
    hn = zb.rightCols(H) * tc;
  }
}

template <class T> const Tensor<T>& value_of(const Tensor<T>& t) { return t; }
template <class T> const Tensor<T>& value_of(const Var<T>& v) { return v.value(); }

inline void check_lstm_shapes(const Shape& x, const Shape& h, const Shape& c, const Shape& wx, const Shape& wh, const Shape& b) {
  const index_t hidden = wh.rank() == 2 ? wh[0] : -1;
  if (hidden < 1 || wh[1] != 4 * hidden || wx.rank() != 2 || wx[1] != 4 * hidden || !(b == Shape{4 * hidden}))
    throw shape_error("lstm_cell: weights " + wx.str() + ", " + wh.str() + ", " + b.str() + " (expected [inputs, 4H], [H, 4H], [4H])");
  if (x.rank() != 2 || x[1] != wx[0] || !(h == Shape{x[0], hidden}) || !(c == h))
    throw shape_error("lstm_cell: input " + x.str() + ", hidden " + h.str() + ", cell " + c.str() + " for weights of " +
                      std::to_string(wx[0]) + " inputs and " + std::to_string(hidden) + " units");
}
}  // namespace nn_detail

namespace rules {
/// The whole cell as one node: inputs x, h, c, W_x, W_h, b; output [rows, 2H] = [h' | c']. It keeps the activated
/// gates and tanh(c') of the forward pass, so the first-order backward is one fused pass and four matrix products;
/// a recorded (create_graph) backward is the same formula in ops, recomputing the gates from the inputs.
template <class T>
struct LstmCell : Rule<T, LstmCell<T>> {
  Tensor<T> gates, tanh_cell;  // [rows, 4H], [rows, H]
  LstmCell(Tensor<T> g, Tensor<T> t) : gates(std::move(g)), tanh_cell(std::move(t)) {}
  const char* name() const override { return "lstm_cell"; }

  template <class Ctx>
  void vjp(Ctx& ctx) const {
    if constexpr (std::is_same_v<typename Ctx::carrier, Tensor<T>>) {
      auto [dz, dcell] = gate_gradients(ctx.grad(), ctx.value(2));
      if (ctx.needs(2)) ctx.accumulate(2, std::move(dcell));
      accumulate_products(ctx, dz);
    } else {
      const index_t H = tanh_cell.shape()[1];
      const auto z = matmul(ctx.input(0), ctx.input(3)) + matmul(ctx.input(1), ctx.input(4)) + ctx.input(5);
      const auto i = sigmoid(slice(z, 1, 0, H)), f = sigmoid(slice(z, 1, H, H)), g = tanh(slice(z, 1, 2 * H, H)),
                 o = sigmoid(slice(z, 1, 3 * H, H)), tc = tanh(slice(ctx.output(), 1, H, H));
      const auto gh = slice(ctx.grad(), 1, 0, H);
      const auto dc = slice(ctx.grad(), 1, H, H) + gh * o * (T(1) - tc * tc);
      const auto dz = concat({dc * g * i * (T(1) - i), dc * ctx.input(2) * f * (T(1) - f), dc * i * (T(1) - g * g), gh * tc * o * (T(1) - o)}, 1);
      if (ctx.needs(2)) ctx.accumulate(2, dc * f);
      accumulate_products(ctx, dz);
    }
  }

 private:
  /// (∂/∂z, ∂/∂c) from the output's adjoint [rows, 2H], block by block.
  std::pair<Tensor<T>, Tensor<T>> gate_gradients(const Tensor<T>& grad, const Tensor<T>& c) const {
    using Rows = nn_detail::RowArray<T>;
    const index_t rows = gates.shape()[0], H = tanh_cell.shape()[1];
    Tensor<T> dz = Tensor<T>::uninitialized(gates.shape()), dcell = Tensor<T>::uninitialized(c.shape());
    constexpr index_t block = nn_detail::lstm_block_rows;
    Rows dct(block, H);
    for (index_t r = 0; r < rows; r += block) {
      const index_t n = std::min(block, rows - r);
      const auto G = Eigen::Map<const Rows>(gates.data() + r * 4 * H, n, 4 * H);
      const auto tc = Eigen::Map<const Rows>(tanh_cell.data() + r * H, n, H);
      const auto cb = Eigen::Map<const Rows>(c.data() + r * H, n, H);
      const auto gr = Eigen::Map<const Rows>(grad.data() + r * 2 * H, n, 2 * H);
      auto D = Eigen::Map<Rows>(dz.data() + r * 4 * H, n, 4 * H);
      const auto i = G.leftCols(H), f = G.middleCols(H, H), g = G.middleCols(2 * H, H), o = G.rightCols(H);
      const auto gh = gr.leftCols(H);
      auto d = dct.topRows(n);
      d = gr.rightCols(H) + gh * o * (T(1) - tc.square());
      D.leftCols(H) = d * g * i * (T(1) - i);
      D.middleCols(H, H) = d * cb * f * (T(1) - f);
      D.middleCols(2 * H, H) = d * i * (T(1) - g.square());
      D.rightCols(H) = gh * tc * o * (T(1) - o);
      Eigen::Map<Rows>(dcell.data() + r * H, n, H) = d * f;
    }
    return {std::move(dz), std::move(dcell)};
  }
  /// The gradients through z = x·W_x + h·W_h + b.
  template <class Ctx, class C>
  static void accumulate_products(Ctx& ctx, const C& dz) {
    if (ctx.needs(0)) ctx.accumulate(0, matmul(dz, ctx.input(3), false, true));
    if (ctx.needs(1)) ctx.accumulate(1, matmul(dz, ctx.input(4), false, true));
    if (ctx.needs(3)) ctx.accumulate(3, matmul(ctx.input(0), dz, true, false));
    if (ctx.needs(4)) ctx.accumulate(4, matmul(ctx.input(1), dz, true, false));
    if (ctx.needs(5)) ctx.accumulate(5, sum(dz, 0));
  }
};
}  // namespace rules

/// One step of an LSTM layer: z = x·W_x + h·W_h + b split into gates i, f, g, o; c' = σ(f)⊙c + σ(i)⊙tanh(g),
/// h' = σ(o)⊙tanh(c'). x is [rows, inputs], h and c are [rows, hidden]. Returns (h', c'). On plain tensors it is one
/// fused pass; on Vars one node (when x, h, c and the weights are all Vars) or the composed ops.
template <class X, class H, class W>
auto lstm_cell(const X& x, const H& h, const H& c, const LstmWeights<W>& w) {
  nn_detail::check_lstm_shapes(x.shape(), h.shape(), c.shape(), w.input.shape(), w.recurrent.shape(), w.bias.shape());
  const index_t hidden = w.recurrent.shape()[0];
  using T = typename W::value_type;
  const auto pre_activations = [&] {
    Tensor<T> z = matmul(nn_detail::value_of(x), nn_detail::value_of(w.input));
    z.matrix().noalias() += nn_detail::value_of(h).matrix() * nn_detail::value_of(w.recurrent).matrix();
    return z;
  };
  if constexpr (std::is_same_v<X, H> && std::is_same_v<H, W> && std::is_same_v<W, Tensor<T>>) {
    Tensor<T> z = pre_activations();
    auto h_out = Tensor<T>::uninitialized(Shape{x.shape()[0], hidden}), c_out = Tensor<T>::uninitialized(Shape{x.shape()[0], hidden});
    nn_detail::lstm_gates(z, w.bias, c, hidden, h_out.data(), c_out.data(), hidden);
    return std::pair{std::move(h_out), std::move(c_out)};
  } else if constexpr (std::is_same_v<X, H> && std::is_same_v<H, W> && std::is_same_v<W, Var<T>>) {
    const index_t rows = x.shape()[0];
    Tensor<T> z = pre_activations();
    auto out = Tensor<T>::uninitialized(Shape{rows, 2 * hidden}), tanh_cell = Tensor<T>::uninitialized(Shape{rows, hidden});
    nn_detail::lstm_gates(z, w.bias.value(), c.value(), hidden, out.data(), out.data() + hidden, 2 * hidden, tanh_cell.data());
    const Var<T> both = x.tape().record(std::move(out), {x, h, c, w.input, w.recurrent, w.bias},
                                        rules::LstmCell<T>(std::move(z), std::move(tanh_cell)));
    return std::pair{slice(both, 1, 0, hidden), slice(both, 1, hidden, hidden)};
  } else {
    const auto z = matmul(x, w.input) + matmul(h, w.recurrent) + w.bias;
    const auto gate = [&](int k) { return slice(z, 1, k * hidden, hidden); };
    const auto cell = sigmoid(gate(1)) * c + sigmoid(gate(0)) * tanh(gate(2));
    auto out = sigmoid(gate(3)) * tanh(cell);
    return std::pair{out, cell};
  }
}

}  // namespace metagrad
