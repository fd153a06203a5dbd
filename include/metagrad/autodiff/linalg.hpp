#pragma once
// matmul, transpose and dot on Vars, with their backward rules.
#include "metagrad/autodiff/elementwise.hpp"
#include "metagrad/ops/linalg.hpp"

namespace metagrad {
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
/// The transpose of a matrix, recorded.
template <class T> Var<T> transpose(const Var<T>& a) {
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

}  // namespace metagrad
