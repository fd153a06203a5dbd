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
using ColumnArray = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using ColumnMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
/// Rows per block of the fused forward and backward passes. A block's pre-activations and gates are held column by
/// column ([n, 4H] column-major, in cache), so each gate of the block is one contiguous run of n·H values that the
/// vectorized σ and tanh sweep in full packets (row by row, H = 20 would leave a partial packet in every row).
inline constexpr index_t lstm_block_rows = 256;

/// σ and tanh over a contiguous run of values, in place, vectorized (σ as the sigmoid op computes it).
template <class T>
void sigmoid_in_place(T* data, index_t count) {
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> v(data, count);
  v = T(1) / (T(1) + (-v).exp());
}
template <class T>
void tanh_in_place(T* data, index_t count) {
  if constexpr (std::is_same_v<T, double>) {
    detail::tanh_double(data, data, count);
  } else {
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> v(data, count);
    v = v.tanh();
  }
}

/// The cell on plain tensors, one block of rows at a time: z = x·W_x + h·W_h + b and the gates of a block are computed
/// while they are in cache (the composed ops would make a dozen passes over [rows, 4H] arrays). Writes h' and c'
/// ([rows, H] each), and when asked what the backward pass needs: the activated gates [σ(i), σ(f), tanh(g), σ(o)]
/// ([rows, 4H]) and tanh(c') ([rows, H]), each block of rows column-major.
template <class T>
void lstm_forward(const Tensor<T>& x, const Tensor<T>& h, const Tensor<T>& c, const Tensor<T>& w_input, const Tensor<T>& w_recurrent,
                  const Tensor<T>& bias, T* h_out, T* c_out, T* gates = nullptr, T* tanh_cell = nullptr) {
  const index_t rows = x.shape()[0], H = h.shape()[1];
  constexpr index_t block = lstm_block_rows;
  ColumnMatrix<T> z_scratch(gates ? 0 : block, 4 * H);
  ColumnArray<T> cell_scratch(block, H), tanh_scratch(tanh_cell ? 0 : block, H);
  const auto b = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>(bias.data(), 4 * H);
  for (index_t r = 0; r < rows; r += block) {
    const index_t n = std::min(block, rows - r);
    T* zp = gates ? gates + r * 4 * H : z_scratch.data();
    Eigen::Map<ColumnMatrix<T>> z(zp, n, 4 * H);
    z.noalias() = x.matrix().middleRows(r, n) * w_input.matrix();
    z.noalias() += h.matrix().middleRows(r, n) * w_recurrent.matrix();
    auto a = z.array();
    a.rowwise() += b;
    sigmoid_in_place(zp, n * 2 * H);  // i, f
    tanh_in_place(zp + n * 2 * H, n * H);  // g
    sigmoid_in_place(zp + n * 3 * H, n * H);  // o
    Eigen::Map<ColumnArray<T>> cell(cell_scratch.data(), n, H), tc(tanh_cell ? tanh_cell + r * H : tanh_scratch.data(), n, H);
    cell = Eigen::Map<const RowArray<T>>(c.data() + r * H, n, H);
    cell = a.middleCols(H, H) * cell + a.leftCols(H) * a.middleCols(2 * H, H);
    tc = cell;
    tanh_in_place(tc.data(), n * H);
    Eigen::Map<RowArray<T>>(c_out + r * H, n, H) = cell;
    cell = a.rightCols(H) * tc;
    Eigen::Map<RowArray<T>>(h_out + r * H, n, H) = cell;
  }
}

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
/// The whole cell as one node: inputs x, h, c, W_x, W_h, b; output [2·rows, H], h' above c' (taking them apart is two
/// contiguous copies, not a short copy per row). It keeps the activated gates and tanh(c') of the forward pass (in
/// lstm_forward's blocks), so the first-order backward is one fused pass over the same blocks; a recorded
/// (create_graph) backward is the same formula in ops, recomputing the gates from the inputs.
template <class T>
struct LstmCell : Rule<T, LstmCell<T>> {
  Tensor<T> gates, tanh_cell;  // [rows, 4H], [rows, H], column-major within each block of rows
  LstmCell(Tensor<T> g, Tensor<T> t) : gates(std::move(g)), tanh_cell(std::move(t)) {}
  const char* name() const override { return "lstm_cell"; }

  template <class Ctx>
  void vjp(Ctx& ctx) const {
    if constexpr (std::is_same_v<typename Ctx::carrier, Tensor<T>>) {
      first_order_backward(ctx);
    } else {
      const index_t rows = tanh_cell.shape()[0], H = tanh_cell.shape()[1];
      const auto z = matmul(ctx.input(0), ctx.input(3)) + matmul(ctx.input(1), ctx.input(4)) + ctx.input(5);
      const auto i = sigmoid(slice(z, 1, 0, H)), f = sigmoid(slice(z, 1, H, H)), g = tanh(slice(z, 1, 2 * H, H)),
                 o = sigmoid(slice(z, 1, 3 * H, H)), tc = tanh(slice(ctx.output(), 0, rows, rows));
      const auto gh = slice(ctx.grad(), 0, 0, rows);
      const auto dc = slice(ctx.grad(), 0, rows, rows) + gh * o * (T(1) - tc * tc);
      const auto dz = concat({dc * g * i * (T(1) - i), dc * ctx.input(2) * f * (T(1) - f), dc * i * (T(1) - g * g), gh * tc * o * (T(1) - o)}, 1);
      if (ctx.needs(2)) ctx.accumulate(2, dc * f);
      accumulate_products(ctx, dz);
    }
  }

 private:
  /// The first-order backward in one pass over blocks of rows: a block's ∂/∂z is formed in cache and goes straight
  /// into the products (∂x and ∂h block by block; ∂W_x, ∂W_h and ∂b summed over the blocks).
  template <class Ctx>
  void first_order_backward(Ctx& ctx) const {
    using Rows = nn_detail::RowArray<T>;
    using Columns = nn_detail::ColumnArray<T>;
    const index_t rows = gates.shape()[0], H = tanh_cell.shape()[1];
    bool need[6];
    for (int k = 0; k < 6; ++k) need[k] = ctx.needs(k);
    const auto gradient_of = [&](int k, bool summed) {
      return !need[k] ? Tensor<T>() : summed ? Tensor<T>::zeros(ctx.value(k).shape()) : Tensor<T>::uninitialized(ctx.value(k).shape());
    };
    Tensor<T> dx = gradient_of(0, false), dh = gradient_of(1, false), dcell = gradient_of(2, false), dwx = gradient_of(3, true),
              dwh = gradient_of(4, true), db = gradient_of(5, true);
    {  // the inputs' values are read here, before any accumulate
      const Tensor<T>&grad = ctx.grad(), &x = ctx.value(0), &h = ctx.value(1), &c = ctx.value(2), &wx = ctx.value(3), &wh = ctx.value(4);
      constexpr index_t block = nn_detail::lstm_block_rows;
      nn_detail::ColumnMatrix<T> dz_scratch(block, 4 * H);
      Columns grad_scratch(block, 2 * H), cell_scratch(block, H), dc_scratch(block, H);
      for (index_t r = 0; r < rows; r += block) {
        const index_t n = std::min(block, rows - r);
        const auto G = Eigen::Map<const Columns>(gates.data() + r * 4 * H, n, 4 * H);
        const auto tc = Eigen::Map<const Columns>(tanh_cell.data() + r * H, n, H);
        Eigen::Map<Columns> cb(cell_scratch.data(), n, H), gr(grad_scratch.data(), n, 2 * H), d(dc_scratch.data(), n, H),
            D(dz_scratch.data(), n, 4 * H);
        cb = Eigen::Map<const Rows>(c.data() + r * H, n, H);
        gr.leftCols(H) = Eigen::Map<const Rows>(grad.data() + r * H, n, H);
        gr.rightCols(H) = Eigen::Map<const Rows>(grad.data() + (rows + r) * H, n, H);
        const auto i = G.leftCols(H), f = G.middleCols(H, H), g = G.middleCols(2 * H, H), o = G.rightCols(H);
        const auto gh = gr.leftCols(H);
        d = gr.rightCols(H) + gh * o * (T(1) - tc.square());
        D.leftCols(H) = d * g * i * (T(1) - i);
        D.middleCols(H, H) = d * cb * f * (T(1) - f);
        D.middleCols(2 * H, H) = d * i * (T(1) - g.square());
        D.rightCols(H) = gh * tc * o * (T(1) - o);
        if (need[2]) {
          d *= f;
          Eigen::Map<Rows>(dcell.data() + r * H, n, H) = d;
        }
        const auto Dm = D.matrix();
        if (need[0]) dx.matrix().middleRows(r, n).noalias() = Dm * wx.matrix().transpose();
        if (need[1]) dh.matrix().middleRows(r, n).noalias() = Dm * wh.matrix().transpose();
        if (need[3]) dwx.matrix().noalias() += x.matrix().middleRows(r, n).transpose() * Dm;
        if (need[4]) dwh.matrix().noalias() += h.matrix().middleRows(r, n).transpose() * Dm;
        if (need[5]) db.matrix() += Dm.colwise().sum();
      }
    }
    Tensor<T>* gradients[6] = {&dx, &dh, &dcell, &dwx, &dwh, &db};
    for (int k = 0; k < 6; ++k)
      if (need[k]) ctx.accumulate(k, std::move(*gradients[k]));
  }
  /// The gradients through z = x·W_x + h·W_h + b (the recorded backward).
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
  if constexpr (std::is_same_v<X, H> && std::is_same_v<H, W> && std::is_same_v<W, Tensor<T>>) {
    auto h_out = Tensor<T>::uninitialized(Shape{x.shape()[0], hidden}), c_out = Tensor<T>::uninitialized(Shape{x.shape()[0], hidden});
    nn_detail::lstm_forward(x, h, c, w.input, w.recurrent, w.bias, h_out.data(), c_out.data());
    return std::pair{std::move(h_out), std::move(c_out)};
  } else if constexpr (std::is_same_v<X, H> && std::is_same_v<H, W> && std::is_same_v<W, Var<T>>) {
    const index_t rows = x.shape()[0];
    auto out = Tensor<T>::uninitialized(Shape{2 * rows, hidden}), gates = Tensor<T>::uninitialized(Shape{rows, 4 * hidden}),
         tanh_cell = Tensor<T>::uninitialized(Shape{rows, hidden});
    nn_detail::lstm_forward(x.value(), h.value(), c.value(), w.input.value(), w.recurrent.value(), w.bias.value(), out.data(),
                            out.data() + rows * hidden, gates.data(), tanh_cell.data());
    const Var<T> both = x.tape().record(std::move(out), {x, h, c, w.input, w.recurrent, w.bias},
                                        rules::LstmCell<T>(std::move(gates), std::move(tanh_cell)));
    return std::pair{slice(both, 0, 0, rows), slice(both, 0, rows, rows)};
  } else {
    const auto z = matmul(x, w.input) + matmul(h, w.recurrent) + w.bias;
    const auto gate = [&](int k) { return slice(z, 1, k * hidden, hidden); };
    const auto cell = sigmoid(gate(1)) * c + sigmoid(gate(0)) * tanh(gate(2));
    auto out = sigmoid(gate(3)) * tanh(cell);
    return std::pair{out, cell};
  }
}

}  // namespace metagrad
