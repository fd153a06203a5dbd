#pragma once
// The LSTM cell, for a batch of rows and either carrier (a learned optimizer runs one row per parameter coordinate).
#include <algorithm>
#include <string>
#include <utility>

#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/index.hpp"
#include "metagrad/autodiff/linalg.hpp"
#include "metagrad/autodiff/reduce.hpp"
#include "metagrad/nn/kernels/lstm.hpp"
#include "metagrad/ops/broadcast.hpp"
#include "metagrad/ops/elementwise.hpp"
#include "metagrad/tensor/tree.hpp"

namespace metagrad {

/// The weights of one LSTM layer with `inputs` inputs and `hidden` units: gates in PyTorch's order [i, f, g, o].
template <class C>
struct LstmWeights {
  C input;      ///< [inputs, 4·hidden]
  C recurrent;  ///< [hidden, 4·hidden]
  C bias;       ///< [4·hidden]
  METAGRAD_FIELDS(input, recurrent, bias)
};

namespace nn_detail {

/// The cell on plain tensors, one block of rows at a time: z = x·W_x + h·W_h + b, the gates and the cell update of a
/// block are computed while it is in cache (the composed ops would make a dozen passes over [rows, 4H] arrays).
/// Writes h' and c' ([rows, H] each), and when asked what the backward pass needs: the activated gates
/// [σ(i), σ(f), tanh(g), σ(o)] ([rows, 4H]) and tanh(c') ([rows, H]), all row-major. Rows are independent, so the
/// blocks are split over metagrad's threads (a learned optimizer's coordinates): the same bits on any number.
template <class T>
void lstm_forward(const Tensor<T>& x, const Tensor<T>& h, const Tensor<T>& c, const Tensor<T>& w_input, const Tensor<T>& w_recurrent,
                  const Tensor<T>& bias, T* h_out, T* c_out, T* gates = nullptr, T* tanh_cell = nullptr) {
  const index_t rows = x.shape()[0], F = x.shape()[1], H = h.shape()[1];
  constexpr index_t block = lstm_block_rows;
  const GateWeights<T> w(w_input, w_recurrent, bias);
  const index_t blocks = (rows + block - 1) / block;
  detail::for_parts(blocks, block * 4 * H * (F + H), [&](index_t first_block, index_t end_block) {
    Buffer<T> z_scratch(gates ? 0 : block * 4 * H), tanh_scratch(tanh_cell ? 0 : block * H);
    with_hidden_size(H, [&]<int HH>() {
      for (index_t r = first_block * block; r < std::min(rows, end_block * block); r += block) {
        const index_t n = std::min(block, rows - r);
        T* z = gates ? gates + r * 4 * H : z_scratch.data();
        gate_products<T, HH>(w, x.data() + r * F, F, h.data() + r * H, H, n, z);
        sigmoid_in_place(z, n * 4 * H);
        auto g = gate<T, HH>(z, n, H, 2);
        g = T(2) * g - T(1);
        auto cell = units<T, HH>(c_out + r * H, n, H), tc = units<T, HH>(tanh_cell ? tanh_cell + r * H : tanh_scratch.data(), n, H);
        cell = gate<T, HH>(z, n, H, 1) * units<T, HH>(c.data() + r * H, n, H) + gate<T, HH>(z, n, H, 0) * g;
        tc = T(2) * cell;
        sigmoid_in_place(tc.data(), n * H);
        tc = T(2) * tc - T(1);
        units<T, HH>(h_out + r * H, n, H) = gate<T, HH>(z, n, H, 3) * tc;
      }
    });
  });
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
/// contiguous copies, not a short copy per row). It keeps the activated gates and tanh(c') of the forward pass, so
/// the first-order backward is one fused pass over blocks of rows; a recorded
/// (create_graph) backward is the same formula in ops, recomputing the gates from the inputs.
template <class T>
struct LstmCell : Rule<T, LstmCell<T>> {
  Tensor<T> gates, tanh_cell;  // [rows, 4H], [rows, H]: the activated gates and tanh(c') of the forward pass
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
      const index_t F = x.shape()[1];
      Buffer<T> dz_scratch(block * 4 * H), dc_scratch(block * H);
      nn_detail::with_hidden_size(H, [&]<int HH>() {
        using nn_detail::gate, nn_detail::units;
        // With H known, D·Wᵀ (for ∂h, and ∂x when x has H columns too) and the weight gradients run in registers.
        constexpr bool kernels = HH != Eigen::Dynamic;
        constexpr int Width = kernels ? 4 * HH : 1, P = Eigen::internal::packet_traits<T>::size, KP = kernels ? (HH + P - 1) / P * P : 1;
        const bool x_kernel = kernels && need[0] && F == H;
        nn_detail::TransposedWeights<T, Width, KP> wh_t, wx_t;
        if constexpr (kernels) {
          if (need[1]) wh_t = nn_detail::transposed_weights<T, Width, KP>(wh);
          if (x_kernel) wx_t = nn_detail::transposed_weights<T, Width, KP>(wx);
        }
        for (index_t r = 0; r < rows; r += block) {
          const index_t n = std::min(block, rows - r);
          const T* G = gates.data() + r * 4 * H;
          const auto i = gate<T, HH>(G, n, H, 0), f = gate<T, HH>(G, n, H, 1), g = gate<T, HH>(G, n, H, 2), o = gate<T, HH>(G, n, H, 3);
          const auto tc = units<T, HH>(tanh_cell.data() + r * H, n, H), gh = units<T, HH>(grad.data() + r * H, n, H);
          T* D = dz_scratch.data();
          auto d = units<T, HH>(dc_scratch.data(), n, H);
          d = units<T, HH>(grad.data() + (rows + r) * H, n, H) + gh * o * (T(1) - tc.square());
          gate<T, HH>(D, n, H, 0) = d * g * i * (T(1) - i);
          gate<T, HH>(D, n, H, 1) = d * units<T, HH>(c.data() + r * H, n, H) * f * (T(1) - f);
          gate<T, HH>(D, n, H, 2) = d * i * (T(1) - g.square());
          gate<T, HH>(D, n, H, 3) = gh * tc * o * (T(1) - o);
          if (need[2]) units<T, HH>(dcell.data() + r * H, n, H) = d * f;
          const auto Dm = Eigen::Map<const nn_detail::RowMatrix<T>>(D, n, 4 * H);
          if (x_kernel) nn_detail::input_gradient<T, Width, KP>(D, n, wx_t, F, dx.data() + r * F);
          else if (need[0]) dx.matrix().middleRows(r, n).noalias() = Dm * wx.matrix().transpose();
          if constexpr (kernels) {
            if (need[1]) nn_detail::input_gradient<T, Width, KP>(D, n, wh_t, H, dh.data() + r * H);
            if (need[3]) nn_detail::weight_gradient<T, Width>(x.data() + r * F, F, F, D, n, dwx.data());
            if (need[4]) nn_detail::weight_gradient<T, Width>(h.data() + r * H, H, H, D, n, dwh.data());
          } else {
            if (need[1]) dh.matrix().middleRows(r, n).noalias() = Dm * wh.matrix().transpose();
            if (need[3]) dwx.matrix().noalias() += x.matrix().middleRows(r, n).transpose() * Dm;
            if (need[4]) dwh.matrix().noalias() += h.matrix().middleRows(r, n).transpose() * Dm;
          }
          if (need[5]) db.matrix() += Dm.colwise().sum();
        }
      });
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
