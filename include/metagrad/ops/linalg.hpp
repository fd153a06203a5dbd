#pragma once
// Linear algebra on plain tensors: matmul (with transposed operands, batched over a leading axis), transpose, dot,
// and the matrix-structure ops tril, triu, diagonal and diag_embed (each pair the other's adjoint where it is linear).
#include <algorithm>
#include <string>

#include "metagrad/ops/gemm.hpp"
#include "metagrad/tensor/tensor.hpp"

namespace metagrad {

namespace detail {
/// op(x) for the row-major matrix at data with `cols` columns.
template <class T>
StridedMatrix<T> operand(const T* data, index_t cols, bool transpose) {
  return transpose ? StridedMatrix<T>{data, 1, cols} : StridedMatrix<T>{data, cols, 1};
}
}  // namespace detail

/// op(a) · op(b), where op transposes (the last two axes) when the flag is set; no transposed copy is made. Rank-2
/// operands are matrices; rank-3 operands [batch, rows, cols] are a batch of them with equal batch extents. Each
/// element is summed in the order of the inner index (ops/gemm.hpp), so its bits do not depend on the shapes around it.
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, bool transpose_a = false, bool transpose_b = false) {
  const bool batched = a.rank() == 3 && b.rank() == 3;
  if (!batched && (a.rank() != 2 || b.rank() != 2))
    throw shape_error("matmul: two rank-2 or two rank-3 (batched) operands expected, got " + a.shape().str() + " and " +
                      b.shape().str());
  const int r = batched ? 1 : 0;
  const index_t batch = batched ? a.shape()[0] : 1;
  const index_t ar = a.shape()[r], ac = a.shape()[r + 1], br = b.shape()[r], bc = b.shape()[r + 1];
  const index_t m = transpose_a ? ac : ar, ka = transpose_a ? ar : ac;
  const index_t kb = transpose_b ? bc : br, n = transpose_b ? br : bc;
  const auto operands = [&] {
    return a.shape().str() + (transpose_a ? "^T" : "") + " and " + b.shape().str() + (transpose_b ? "^T" : "");
  };
  if (batched && (ka != kb || b.shape()[0] != batch))
    throw shape_error("matmul: batched operands " + operands() + " (equal batches and inner extents expected)");
  if (ka != kb)
    throw shape_error("matmul: inner extents differ: " + operands() + " (" + std::to_string(ka) + " vs " +
                      std::to_string(kb) + ")");
  Tensor<T> out = Tensor<T>::uninitialized(batched ? Shape{batch, m, n} : Shape{m, n});
  const auto product = [&](index_t i) {
    detail::gemm(m, n, ka, detail::operand(a.data() + i * ar * ac, ac, transpose_a),
                 detail::operand(b.data() + i * br * bc, bc, transpose_b), out.data() + i * m * n);
  };
  if (batch > 1 && batch * m * n * ka >= detail::min_parallel_work)
    parallel_for(batch, product);  // a matrix per task (each one's product then runs on its task's thread)
  else
    for (index_t i = 0; i < batch; ++i) product(i);
  return out;
}

/// The transpose of a rank-2 tensor.
template <class T>
Tensor<T> transpose(const Tensor<T>& a) {
  if (a.rank() != 2) throw shape_error("transpose: rank-2 tensor expected, got " + a.shape().str());
  Tensor<T> out = Tensor<T>::uninitialized(Shape{a.shape()[1], a.shape()[0]});
  out.matrix() = a.matrix().transpose();
  return out;
}

namespace detail {
/// The matrices of x (its last two axes, rank >= 2) with every entry (i, j) where keep(j − i) is false set to 0.
template <class T, class Keep>
Tensor<T> band(const char* op, Tensor<T> x, Keep keep) {
  if (x.rank() < 2) throw shape_error(std::string(op) + ": a tensor of rank >= 2 expected, got " + x.shape().str());
  const index_t rows = x.shape()[x.rank() - 2], cols = x.shape()[x.rank() - 1];
  const index_t matrices = x.size() / std::max<index_t>(1, rows * cols);
  for (index_t b = 0; b < matrices; ++b)
    for (index_t i = 0; i < rows; ++i) {
      T* row = x.data() + (b * rows + i) * cols;
      for (index_t j = 0; j < cols; ++j)
        if (!keep(j - i)) row[j] = T(0);
    }
  return x;
}
}  // namespace detail

/// The lower triangle of each matrix (the last two axes): entries with j − i <= k kept, the rest 0. k = 0 keeps the
/// diagonal, k = −1 starts below it. Its adjoint is itself.
template <class T> Tensor<T> tril(Tensor<T> x, index_t k = 0) {
  return detail::band("tril", std::move(x), [k](index_t d) { return d <= k; });
}
/// The upper triangle of each matrix: entries with j − i >= k kept, the rest 0. Its adjoint is itself.
template <class T> Tensor<T> triu(Tensor<T> x, index_t k = 0) {
  return detail::band("triu", std::move(x), [k](index_t d) { return d >= k; });
}

/// The diagonal of each square matrix: [..., n, n] → [..., n]. Its adjoint is diag_embed.
template <class T> Tensor<T> diagonal(const Tensor<T>& x) {
  const int r = x.rank();
  if (r < 2 || x.shape()[r - 1] != x.shape()[r - 2])
    throw shape_error("diagonal: square matrices [..., n, n] expected, got " + x.shape().str());
  const index_t n = x.shape()[r - 1];
  const Shape shape = r == 2 ? Shape{n} : r == 3 ? Shape{x.shape()[0], n} : Shape{x.shape()[0], x.shape()[1], n};
  Tensor<T> out = Tensor<T>::uninitialized(shape);
  for (index_t b = 0; b < out.size() / std::max<index_t>(1, n); ++b)
    for (index_t i = 0; i < n; ++i) out.data()[b * n + i] = x.data()[(b * n + i) * n + i];
  return out;
}

/// Square matrices with x's last axis on their diagonals and 0 elsewhere: [..., n] → [..., n, n] (rank <= 3 in).
/// Its adjoint is diagonal.
template <class T> Tensor<T> diag_embed(const Tensor<T>& x) {
  const int r = x.rank();
  if (r < 1 || r > 3) throw shape_error("diag_embed: a tensor of rank 1 to 3 expected, got " + x.shape().str());
  const index_t n = x.shape()[r - 1];
  const Shape shape =
      r == 1 ? Shape{n, n} : r == 2 ? Shape{x.shape()[0], n, n} : Shape{x.shape()[0], x.shape()[1], n, n};
  Tensor<T> out = Tensor<T>::zeros(shape);
  for (index_t b = 0; b < x.size() / std::max<index_t>(1, n); ++b)
    for (index_t i = 0; i < n; ++i) out.data()[(b * n + i) * n + i] = x.data()[b * n + i];
  return out;
}

/// Σ a_i b_i over equal-shaped tensors, as a rank-0 tensor.
template <class T>
Tensor<T> dot(const Tensor<T>& a, const Tensor<T>& b) {
  if (!(a.shape() == b.shape()))
    throw shape_error("dot: shapes " + a.shape().str() + " and " + b.shape().str() + " must be equal");
  return Tensor<T>::scalar(a.array().matrix().dot(b.array().matrix()));
}

}  // namespace metagrad
