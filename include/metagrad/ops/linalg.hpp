#pragma once
// Linear algebra on plain tensors: matmul (with transposed operands), transpose, dot.
#include <string>

#include "metagrad/tensor/tensor.hpp"

namespace metagrad {

/// op(a) · op(b) for rank-2 tensors, where op transposes when the flag is set; no transposed copy is made.
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, bool transpose_a = false, bool transpose_b = false) {
  if (a.rank() != 2 || b.rank() != 2)
    throw shape_error("matmul: rank-2 operands expected, got " + a.shape().str() + " and " + b.shape().str());
  const index_t m = transpose_a ? a.shape()[1] : a.shape()[0];
  const index_t ka = transpose_a ? a.shape()[0] : a.shape()[1];
  const index_t kb = transpose_b ? b.shape()[1] : b.shape()[0];
  const index_t n = transpose_b ? b.shape()[0] : b.shape()[1];
  if (ka != kb)
    throw shape_error("matmul: inner extents differ: " + a.shape().str() + (transpose_a ? "^T" : "") + " times " +
                      b.shape().str() + (transpose_b ? "^T" : "") + " (" + std::to_string(ka) + " vs " +
                      std::to_string(kb) + ")");
  Tensor<T> out = Tensor<T>::uninitialized(Shape{m, n});
  auto c = out.matrix();
  const auto A = a.matrix();
  const auto B = b.matrix();
  if (!transpose_a && !transpose_b) c.noalias() = A * B;
  else if (transpose_a && !transpose_b) c.noalias() = A.transpose() * B;
  else if (!transpose_a && transpose_b) c.noalias() = A * B.transpose();
  else c.noalias() = A.transpose() * B.transpose();
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

/// Σ a_i b_i over equal-shaped tensors, as a rank-0 tensor.
template <class T>
Tensor<T> dot(const Tensor<T>& a, const Tensor<T>& b) {
  if (!(a.shape() == b.shape()))
    throw shape_error("dot: shapes " + a.shape().str() + " and " + b.shape().str() + " must be equal");
  return Tensor<T>::scalar(a.array().matrix().dot(b.array().matrix()));
}

}  // namespace metagrad
