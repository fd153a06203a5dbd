#pragma once
// matmul (batched too), transpose, dot, tril, triu, diagonal and diag_embed on Vars, with their backward rules.
#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/autodiff/index.hpp"
#include "metagrad/ops/linalg.hpp"

namespace metagrad {

template <class T> Var<T> tril(const Var<T>& x, index_t k = 0);
template <class T> Var<T> triu(const Var<T>& x, index_t k = 0);
template <class T> Var<T> diagonal(const Var<T>& x);
template <class T> Var<T> diag_embed(const Var<T>& x);

namespace rules {

template <class T> struct Matmul : Rule<T, Matmul<T>> {
  bool ta, tb;
  Matmul(bool a, bool b) : ta(a), tb(b) {}
  const char* name() const override { return "matmul"; }
  // y = op(a) op(b); each gradient is again one matmul with transposed operands, never an explicit transpose.
  template <class C> void vjp(C& c) const {
    const auto& g = c.grad();
    if (c.needs(0)) {
      if (!ta) c.accumulate(0, matmul(g, c.input(1), false, !tb));  // g op(b)ᵀ
      else c.accumulate(0, matmul(c.input(1), g, tb, true));        // op(b) gᵀ
    }
    if (c.needs(1)) {
      if (!tb) c.accumulate(1, matmul(c.input(0), g, !ta, false));  // op(a)ᵀ g
      else c.accumulate(1, matmul(g, c.input(0), true, ta));        // gᵀ op(a)
    }
  }
};
template <class T> struct Transpose : Rule<T, Transpose<T>> {
  const char* name() const override { return "transpose"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, transpose(c.grad())); }
};
template <class T> struct Tril : Rule<T, Tril<T>> {
  index_t k;
  explicit Tril(index_t k_) : k(k_) {}
  const char* name() const override { return "tril"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, tril(c.release_grad(), k)); }
};
template <class T> struct Triu : Rule<T, Triu<T>> {
  index_t k;
  explicit Triu(index_t k_) : k(k_) {}
  const char* name() const override { return "triu"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, triu(c.release_grad(), k)); }
};
template <class T> struct Diagonal : Rule<T, Diagonal<T>> {
  const char* name() const override { return "diagonal"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, diag_embed(c.grad())); }
};
template <class T> struct DiagEmbed : Rule<T, DiagEmbed<T>> {
  const char* name() const override { return "diag_embed"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, diagonal(c.grad())); }
};
template <class T> struct Dot : Rule<T, Dot<T>> {
  const char* name() const override { return "dot"; }
  template <class C> void vjp(C& c) const {
    if (c.needs(0)) c.accumulate(0, c.grad() * c.input(1));
    if (c.needs(1)) c.accumulate(1, c.grad() * c.input(0));
  }
};

}  // namespace rules

/// The matrix product op(a)·op(b), op transposing when asked, recorded.
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b, bool transpose_a = false, bool transpose_b = false) {
  return detail::common_tape("matmul", a, b)
      .record(matmul(a.value(), b.value(), transpose_a, transpose_b), {a, b}, rules::Matmul<T>(transpose_a, transpose_b));
}
/// matmul with b as a constant on a's tape.
template <class T>
Var<T> matmul(const Var<T>& a, const Tensor<T>& b, bool transpose_a = false, bool transpose_b = false) {
  return matmul(a, a.tape().constant(b), transpose_a, transpose_b);
}
/// matmul with a as a constant on b's tape.
template <class T>
Var<T> matmul(const Tensor<T>& a, const Var<T>& b, bool transpose_a = false, bool transpose_b = false) {
  return matmul(b.tape().constant(a), b, transpose_a, transpose_b);
}
/// The transpose of a matrix, recorded; a view of a's storage when a is one row or one column.
template <class T> Var<T> transpose(const Var<T>& a) {
  const Shape& s = a.shape();
  if (s.rank() == 2 && (s[0] == 1 || s[1] == 1)) return reshape(a, Shape{s[1], s[0]});
  return a.tape().record(transpose(a.value()), {a}, rules::Transpose<T>{});
}
/// The inner product of equal-shaped a and b, as a rank-0 Var, recorded.
template <class T> Var<T> dot(const Var<T>& a, const Var<T>& b) {
  return detail::common_tape("dot", a, b).record(dot(a.value(), b.value()), {a, b}, rules::Dot<T>{});
}
/// dot with b as a constant.
template <class T> Var<T> dot(const Var<T>& a, const Tensor<T>& b) { return dot(a, a.tape().constant(b)); }
/// dot with a as a constant.
template <class T> Var<T> dot(const Tensor<T>& a, const Var<T>& b) { return dot(b.tape().constant(a), b); }

/// The lower triangle of each matrix (entries with j − i <= k), recorded.
template <class T> Var<T> tril(const Var<T>& x, index_t k) {
  return x.tape().record(tril(x.value(), k), {x}, rules::Tril<T>(k));
}
/// The upper triangle of each matrix (entries with j − i >= k), recorded.
template <class T> Var<T> triu(const Var<T>& x, index_t k) {
  return x.tape().record(triu(x.value(), k), {x}, rules::Triu<T>(k));
}
/// The diagonal of each square matrix, [..., n, n] → [..., n], recorded.
template <class T> Var<T> diagonal(const Var<T>& x) {
  return x.tape().record(diagonal(x.value()), {x}, rules::Diagonal<T>{});
}
/// Square matrices with x's last axis on their diagonals, [..., n] → [..., n, n], recorded.
template <class T> Var<T> diag_embed(const Var<T>& x) {
  return x.tape().record(diag_embed(x.value()), {x}, rules::DiagEmbed<T>{});
}

}  // namespace metagrad
