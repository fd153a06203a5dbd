#pragma once
// The LSTM cell's kernels on plain arrays (nn/lstm.hpp's forward and backward passes use them): the gate products
// z = b + x·W_x + h·W_h and the backward's products in register-blocked loops for the learned optimizer's 20 units,
// each row of z held in vector registers while every weight row loaded serves several rows.
#include <algorithm>

#include <Eigen/Core>

#include "metagrad/tensor/tensor.hpp"

namespace metagrad::nn_detail {
template <class T>
using RowArray = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// [rows, H] arrays with H known at compile time (HH = H) or not (HH = Eigen::Dynamic): with H known, Eigen sweeps
/// each row of 20 in whole vectors instead of deciding at run time.
template <class T, int HH>
using Units = Eigen::Array<T, Eigen::Dynamic, HH, Eigen::RowMajor>;
/// One gate, [rows, H], inside row-major [rows, 4H] gates.
template <int HH>
using GateStride = Eigen::OuterStride<HH == Eigen::Dynamic ? Eigen::Dynamic : 4 * HH>;
template <class T, int HH>
Eigen::Map<Units<T, HH>, 0, GateStride<HH>> gate(T* gates, index_t rows, index_t H, int k) {
  return {gates + k * H, rows, H, GateStride<HH>(4 * H)};
}
template <class T, int HH>
Eigen::Map<const Units<T, HH>, 0, GateStride<HH>> gate(const T* gates, index_t rows, index_t H, int k) {
  return {gates + k * H, rows, H, GateStride<HH>(4 * H)};
}
template <class T, int HH>
Eigen::Map<Units<T, HH>> units(T* data, index_t rows, index_t H) {
  return {data, rows, H};
}
template <class T, int HH>
Eigen::Map<const Units<T, HH>> units(const T* data, index_t rows, index_t H) {
  return {data, rows, H};
}

/// Rows per block of the fused forward and backward passes: a block's gates stay in cache from the products through
/// the activations to the cell update (forward) or to the products with ∂z (backward).
inline constexpr index_t lstm_block_rows = 256;
/// The hidden size with a register-blocked kernel for the gate products and fixed-size cell updates: the learned
/// optimizer's 20 units (other sizes take Eigen's products).
inline constexpr int lstm_kernel_hidden = 20;

/// σ over a contiguous run of values, in place, vectorized (the sigmoid op's formula).
template <class T>
void sigmoid_in_place(T* data, index_t count) {
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> v(data, count);
  v = T(1) / (T(1) + (-v).exp());
}

/// The weights as the forward pass uses them: the g gate's columns of W_x, W_h and b doubled, so that one σ sweep
/// over all four gates gives tanh(g) = 2σ(2g) − 1 from the g columns (row-major [inputs, 4H], [H, 4H], [4H]).
template <class T>
struct GateWeights {
  RowArray<T> input, recurrent;
  Eigen::Array<T, 1, Eigen::Dynamic> bias;
  GateWeights(const Tensor<T>& wx, const Tensor<T>& wh, const Tensor<T>& b)
      : input(Eigen::Map<const RowArray<T>>(wx.data(), wx.shape()[0], wx.shape()[1])),
        recurrent(Eigen::Map<const RowArray<T>>(wh.data(), wh.shape()[0], wh.shape()[1])),
        bias(Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>(b.data(), b.size())) {
    const index_t H = wh.shape()[0];
    input.middleCols(2 * H, H) *= T(2);
    recurrent.middleCols(2 * H, H) *= T(2);
    bias.segment(2 * H, H) *= T(2);
  }
};

/// z = b + x·W_x + h·W_h for R rows at a time with 4H = Width known: each row of z is Width / packet vector
/// registers, R rows of accumulators stay in registers, and every weight row loaded serves R rows.
template <class T, int Width, int R>
index_t gate_rows(const GateWeights<T>& w, const T* x, index_t F, const T* h, index_t H, index_t n, T* z) {
  using Row = Eigen::Array<T, 1, Width>;
  const Row bias = w.bias;
  index_t r = 0;
  for (; r + R <= n; r += R) {
    Row acc[R];
    for (int q = 0; q < R; ++q) acc[q] = bias;
    for (index_t k = 0; k < F; ++k) {
      const Eigen::Map<const Row> weights(w.input.data() + k * Width);
      for (int q = 0; q < R; ++q) acc[q] += x[(r + q) * F + k] * weights;
    }
    for (index_t k = 0; k < H; ++k) {
      const Eigen::Map<const Row> weights(w.recurrent.data() + k * Width);
      for (int q = 0; q < R; ++q) acc[q] += h[(r + q) * H + k] * weights;
    }
    for (int q = 0; q < R; ++q) Eigen::Map<Row>(z + (r + q) * Width) = acc[q];
  }
  return r;
}

/// How many rows of `width` numbers fit in about 20 vector registers of accumulators (at least one).
template <class T>
constexpr int rows_in_registers(int width) {
  const int registers = (width + Eigen::internal::packet_traits<T>::size - 1) / Eigen::internal::packet_traits<T>::size;
  return registers >= 20 ? 1 : 20 / registers;
}

/// z = b + x·W_x + h·W_h for n rows (row-major x [n, F], h [n, H], z [n, 4H]).
template <class T, int HH>
void gate_products(const GateWeights<T>& w, const T* x, index_t F, const T* h, index_t H, index_t n, T* z) {
  if constexpr (HH != Eigen::Dynamic) {
    constexpr int Width = 4 * HH, R = rows_in_registers<T>(Width);
    const index_t done = gate_rows<T, Width, R>(w, x, F, h, H, n, z);
    gate_rows<T, Width, 1>(w, x + done * F, F, h + done * H, H, n - done, z + done * Width);
  } else {
    Eigen::Map<RowMatrix<T>> out(z, n, 4 * H);
    out.noalias() = Eigen::Map<const RowMatrix<T>>(x, n, F) * w.input.matrix();
    out.noalias() += Eigen::Map<const RowMatrix<T>>(h, n, H) * w.recurrent.matrix();
    out.array().rowwise() += w.bias;
  }
}

/// dW += aᵀ·D for the backward pass (a row-major [n, K] with row stride lda, D [n, Width], dW [K, Width]): KR rows of
/// dW stay in registers while the rows of D stream past, each loaded once for KR updates.
template <class T, int Width, int KR>
index_t weight_gradient_rows(const T* a, index_t lda, index_t K, const T* D, index_t n, T* dW) {
  using Row = Eigen::Array<T, 1, Width>;
  index_t k = 0;
  for (; k + KR <= K; k += KR) {
    Row acc[KR];
    for (int q = 0; q < KR; ++q) acc[q].setZero();
    for (index_t r = 0; r < n; ++r) {
      const Eigen::Map<const Row> d(D + r * Width);
      for (int q = 0; q < KR; ++q) acc[q] += a[r * lda + k + q] * d;
    }
    for (int q = 0; q < KR; ++q) Eigen::Map<Row>(dW + (k + q) * Width) += acc[q];
  }
  return k;
}
template <class T, int Width>
void weight_gradient(const T* a, index_t lda, index_t K, const T* D, index_t n, T* dW) {
  const index_t done = weight_gradient_rows<T, Width, rows_in_registers<T>(Width)>(a, lda, K, D, n, dW);
  weight_gradient_rows<T, Width, 1>(a + done, lda, K - done, D, n, dW + done * Width);
}

/// W transposed for input_gradient_rows: [Width, KP] row-major, zero beyond W's rows, so that a row of D·Wᵀ is KP
/// numbers, whole vector registers.
template <class T, int Width, int KP>
using TransposedWeights = Eigen::Array<T, Width, KP, Eigen::RowMajor>;
template <class T, int Width, int KP>
TransposedWeights<T, Width, KP> transposed_weights(const Tensor<T>& w) {
  TransposedWeights<T, Width, KP> out = TransposedWeights<T, Width, KP>::Zero();
  out.leftCols(w.shape()[0]) = w.matrix().transpose().array();
  return out;
}

/// out = D·Wᵀ for the backward pass (D [n, Width], out [n, K] row-major, K ≤ KP): R rows of D·Wᵀ in registers, each
/// row of Wᵀ loaded once for R rows; the K first of KP columns are kept.
template <class T, int Width, int KP, int R>
index_t input_gradient_rows(const T* D, index_t n, const TransposedWeights<T, Width, KP>& wt, index_t K, T* out) {
  using Row = Eigen::Array<T, 1, KP>;
  index_t r = 0;
  for (; r + R <= n; r += R) {
    Row acc[R];
    for (int q = 0; q < R; ++q) acc[q].setZero();
    for (index_t j = 0; j < Width; ++j) {
      const Eigen::Map<const Row> w(wt.data() + j * KP);
      for (int q = 0; q < R; ++q) acc[q] += D[(r + q) * Width + j] * w;
    }
    for (int q = 0; q < R; ++q) Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>(out + (r + q) * K, K) = acc[q].head(K);
  }
  return r;
}
template <class T, int Width, int KP>
void input_gradient(const T* D, index_t n, const TransposedWeights<T, Width, KP>& wt, index_t K, T* out) {
  const index_t done = input_gradient_rows<T, Width, KP, rows_in_registers<T>(KP)>(D, n, wt, K, out);
  input_gradient_rows<T, Width, KP, 1>(D + done * Width, n - done, wt, K, out + done * K);
}

/// Calls f.template operator()<HH>() with HH = H when the kernels know H at compile time, else Eigen::Dynamic.
template <class F>
decltype(auto) with_hidden_size(index_t H, F&& f) {
  if (H == lstm_kernel_hidden) return f.template operator()<lstm_kernel_hidden>();
  return f.template operator()<Eigen::Dynamic>();
}

}  // namespace metagrad::nn_detail
