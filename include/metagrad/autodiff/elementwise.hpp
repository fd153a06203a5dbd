#pragma once
// Elementwise ops on Vars and their backward rules. Each rule is written once, in the op vocabulary, and runs
// on plain tensors (first order) or on Vars (create_graph).
#include "metagrad/autodiff/backward.hpp"
#include "metagrad/ops/elementwise.hpp"

namespace metagrad {
namespace rules {

template <class T> struct BroadcastTo : Rule<T, BroadcastTo<T>> {
  const char* name() const override { return "broadcast_to"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, sum_to(c.grad(), c.value(0).shape())); }
};
template <class T> struct SumTo : Rule<T, SumTo<T>> {
  const char* name() const override { return "sum_to"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, broadcast_to(c.grad(), c.value(0).shape())); }
};

// Binary rules reduce each operand's gradient to its own shape, undoing the broadcast.
template <class T> struct Add : Rule<T, Add<T>> {
  const char* name() const override { return "add"; }
  template <class C> void vjp(C& c) const {
    if (c.needs(1)) c.accumulate(1, sum_to(c.grad(), c.value(1).shape()));
    if (c.needs(0)) c.accumulate(0, sum_to(c.release_grad(), c.value(0).shape()));
  }
};
template <class T> struct Sub : Rule<T, Sub<T>> {
  const char* name() const override { return "sub"; }
  template <class C> void vjp(C& c) const {
    if (c.needs(0)) c.accumulate(0, sum_to(c.grad(), c.value(0).shape()));
    if (c.needs(1)) c.accumulate(1, -sum_to(c.release_grad(), c.value(1).shape()));  // negated after the reduction
  }
};
template <class T> struct Mul : Rule<T, Mul<T>> {
  const char* name() const override { return "mul"; }
  template <class C> void vjp(C& c) const {
    if (c.same_input(0, 1)) {  // x · x: both operands' terms are the same tensor, computed once
      if (c.needs(0)) c.accumulate_twice(0, c.grad() * c.input(0));
      return;
    }
    if (c.needs(0)) c.accumulate(0, sum_to(c.grad() * c.input(1), c.value(0).shape()));
    if (c.needs(1)) c.accumulate(1, sum_to(c.grad() * c.input(0), c.value(1).shape()));
  }
};
template <class T> struct Div : Rule<T, Div<T>> {  // y = a / b: ∂y/∂a = 1/b, ∂y/∂b = −y/b
  const char* name() const override { return "div"; }
  template <class C> void vjp(C& c) const {
    if (c.needs(0)) c.accumulate(0, sum_to(c.grad() / c.input(1), c.value(0).shape()));
    if (c.needs(1)) c.accumulate(1, sum_to(-(c.grad() * c.output()) / c.input(1), c.value(1).shape()));
  }
};

template <class T> struct AddScalar : Rule<T, AddScalar<T>> {
  const char* name() const override { return "add_scalar"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, c.release_grad()); }
};
template <class T> struct ScalarSub : Rule<T, ScalarSub<T>> {  // y = s − x
  const char* name() const override { return "scalar_sub"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, -c.release_grad()); }
};
template <class T> struct MulScalar : Rule<T, MulScalar<T>> {
  T s;
  explicit MulScalar(T s_) : s(s_) {}
  const char* name() const override { return "mul_scalar"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, c.release_grad() * s); }
};
template <class T> struct ScalarDiv : Rule<T, ScalarDiv<T>> {  // y = s / x: ∂y/∂x = −y/x
  const char* name() const override { return "scalar_div"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, -(c.grad() * c.output()) / c.input(0)); }
};
template <class T> struct Neg : Rule<T, Neg<T>> {
  const char* name() const override { return "neg"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, -c.release_grad()); }
};
template <class T> struct Exp : Rule<T, Exp<T>> {
  const char* name() const override { return "exp"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, c.grad() * c.output()); }
};
template <class T> struct Log : Rule<T, Log<T>> {
  const char* name() const override { return "log"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, c.grad() / c.input(0)); }
};
template <class T> struct Sqrt : Rule<T, Sqrt<T>> {
  const char* name() const override { return "sqrt"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, (c.grad() / c.output()) * T(0.5)); }
};
template <class T> struct Square : Rule<T, Square<T>> {
  const char* name() const override { return "square"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, (c.grad() * c.input(0)) * T(2)); }
};
template <class T> struct Pow : Rule<T, Pow<T>> {
  T p;
  explicit Pow(T p_) : p(p_) {}
  const char* name() const override { return "pow"; }
  template <class C> void vjp(C& c) const {
    if (p != T(0)) c.accumulate(0, (c.grad() * pow(c.input(0), p - T(1))) * p);
  }
};
template <class T> struct Abs : Rule<T, Abs<T>> {
  const char* name() const override { return "abs"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, c.grad() * c.constant(sign(c.value(0)))); }
};
template <class T> struct Tanh : Rule<T, Tanh<T>> {
  const char* name() const override { return "tanh"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, tanh_backward(c.release_grad(), c.output())); }
};
template <class T> struct TanhBackward : Rule<T, TanhBackward<T>> {  // z = g (1 − y²)
  const char* name() const override { return "tanh_backward"; }
  template <class C> void vjp(C& c) const {
    if (c.needs(0)) c.accumulate(0, tanh_backward(c.grad(), c.input(1)));
    if (c.needs(1)) c.accumulate(1, (c.grad() * c.input(0) * c.input(1)) * T(-2));
  }
};
template <class T> struct Sigmoid : Rule<T, Sigmoid<T>> {
  const char* name() const override { return "sigmoid"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, sigmoid_backward(c.release_grad(), c.output())); }
};
template <class T> struct SigmoidBackward : Rule<T, SigmoidBackward<T>> {  // z = g y (1 − y)
  const char* name() const override { return "sigmoid_backward"; }
  template <class C> void vjp(C& c) const {
    if (c.needs(0)) c.accumulate(0, sigmoid_backward(c.grad(), c.input(1)));
    if (c.needs(1)) c.accumulate(1, c.grad() * c.input(0) * (T(1) - c.input(1) * T(2)));
  }
};
template <class T> struct Relu : Rule<T, Relu<T>> {
  const char* name() const override { return "relu"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, c.grad() * c.constant(positive_mask(c.value(0)))); }
};
template <class T> struct Softplus : Rule<T, Softplus<T>> {
  const char* name() const override { return "softplus"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, c.grad() * sigmoid(c.input(0))); }
};
template <class T> struct Clamp : Rule<T, Clamp<T>> {
  T low, high;
  Clamp(T l, T h) : low(l), high(h) {}
  const char* name() const override { return "clamp"; }
  template <class C> void vjp(C& c) const {
    c.accumulate(0, c.grad() * c.constant(inside_mask(c.value(0), low, high)));
  }
};

}  // namespace rules

namespace detail {
template <class T>
Tape<T>& common_tape(const char* op, const Var<T>& a, const Var<T>& b) {
  Tape<T>& tape = a.tape();
  tape.check(a, op);
  tape.check(b, op);
  return tape;
}
}  // namespace detail

/// x broadcast to shape (NumPy rules), recorded.
template <class T> Var<T> broadcast_to(const Var<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return x.tape().record(broadcast_to(x.value(), shape), {x}, rules::BroadcastTo<T>{});
}
/// x summed down to shape (the adjoint of broadcast_to), recorded.
template <class T> Var<T> sum_to(const Var<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return x.tape().record(sum_to(x.value(), shape), {x}, rules::SumTo<T>{});
}

/// a + b with broadcasting, recorded.
template <class T> Var<T> operator+(const Var<T>& a, const Var<T>& b) {
  return detail::common_tape("add", a, b).record(a.value() + b.value(), {a, b}, rules::Add<T>{});
}
/// a − b with broadcasting, recorded.
template <class T> Var<T> operator-(const Var<T>& a, const Var<T>& b) {
  return detail::common_tape("sub", a, b).record(a.value() - b.value(), {a, b}, rules::Sub<T>{});
}
/// a · b elementwise with broadcasting, recorded.
template <class T> Var<T> operator*(const Var<T>& a, const Var<T>& b) {
  return detail::common_tape("mul", a, b).record(a.value() * b.value(), {a, b}, rules::Mul<T>{});
}
/// a / b elementwise with broadcasting, recorded.
template <class T> Var<T> operator/(const Var<T>& a, const Var<T>& b) {
  return detail::common_tape("div", a, b).record(a.value() / b.value(), {a, b}, rules::Div<T>{});
}

// A plain tensor next to a Var enters the tape as a constant.
/// a + b, b constant.
template <class T> Var<T> operator+(const Var<T>& a, const Tensor<T>& b) { return a + a.tape().constant(b); }
/// a + b, a constant.
template <class T> Var<T> operator+(const Tensor<T>& a, const Var<T>& b) { return b.tape().constant(a) + b; }
/// a − b, b constant.
template <class T> Var<T> operator-(const Var<T>& a, const Tensor<T>& b) { return a - a.tape().constant(b); }
/// a − b, a constant.
template <class T> Var<T> operator-(const Tensor<T>& a, const Var<T>& b) { return b.tape().constant(a) - b; }
/// a · b, b constant.
template <class T> Var<T> operator*(const Var<T>& a, const Tensor<T>& b) { return a * a.tape().constant(b); }
/// a · b, a constant.
template <class T> Var<T> operator*(const Tensor<T>& a, const Var<T>& b) { return b.tape().constant(a) * b; }
/// a / b, b constant.
template <class T> Var<T> operator/(const Var<T>& a, const Tensor<T>& b) { return a / a.tape().constant(b); }
/// a / b, a constant.
template <class T> Var<T> operator/(const Tensor<T>& a, const Var<T>& b) { return b.tape().constant(a) / b; }

/// x + s, recorded.
template <class T> Var<T> operator+(const Var<T>& x, std::type_identity_t<T> s) {
  return x.tape().record(x.value() + s, {x}, rules::AddScalar<T>{});
}
template <class T> Var<T> operator+(std::type_identity_t<T> s, const Var<T>& x) { return x + s; }  ///< s + x, recorded
/// x − s, recorded.
template <class T> Var<T> operator-(const Var<T>& x, std::type_identity_t<T> s) { return x + (-s); }
/// −x, recorded.
template <class T> Var<T> operator-(const Var<T>& x) { return x.tape().record(-x.value(), {x}, rules::Neg<T>{}); }
/// s − x, recorded.
template <class T> Var<T> operator-(std::type_identity_t<T> s, const Var<T>& x) {
  return x.tape().record(s - x.value(), {x}, rules::ScalarSub<T>{});
}
/// x · s, recorded.
template <class T> Var<T> operator*(const Var<T>& x, std::type_identity_t<T> s) {
  return x.tape().record(x.value() * s, {x}, rules::MulScalar<T>(s));
}
template <class T> Var<T> operator*(std::type_identity_t<T> s, const Var<T>& x) { return x * s; }  ///< s · x, recorded
/// x / s, recorded; throws value_error for s = 0.
template <class T> Var<T> operator/(const Var<T>& x, std::type_identity_t<T> s) {
  if (s == T(0)) throw value_error("div: division of a Var of shape " + x.shape().str() + " by the scalar 0");
  // The value divides, as the plain op does (x · (1/s) can differ in the last bit): a run gives the same bits on
  // either carrier. The derivative is 1/s either way.
  return x.tape().record(x.value() / s, {x}, rules::MulScalar<T>(T(1) / s));
}
/// s / x elementwise, recorded.
template <class T> Var<T> operator/(std::type_identity_t<T> s, const Var<T>& x) {
  return x.tape().record(s / x.value(), {x}, rules::ScalarDiv<T>{});
}

/// A constant of zeros with x's shape, on x's tape.
template <class T> Var<T> zeros_like(const Var<T>& x) { return x.tape().constant(Tensor<T>::zeros(x.shape())); }
/// t as a constant on like's tape (the plain overload returns t): a tensor of any shape in code written once for
/// both carriers, e.g. constant_like(x, Tensor<T>::eye(n)).
template <class T> Var<T> constant_like(const Var<T>& like, Tensor<T> t) { return like.tape().constant(std::move(t)); }

/// e^x, recorded.
template <class T> Var<T> exp(const Var<T>& x) { return x.tape().record(exp(x.value()), {x}, rules::Exp<T>{}); }
/// Natural log, recorded.
template <class T> Var<T> log(const Var<T>& x) { return x.tape().record(log(x.value()), {x}, rules::Log<T>{}); }
/// Square root, recorded.
template <class T> Var<T> sqrt(const Var<T>& x) { return x.tape().record(sqrt(x.value()), {x}, rules::Sqrt<T>{}); }
/// x², recorded.
template <class T> Var<T> square(const Var<T>& x) { return x.tape().record(square(x.value()), {x}, rules::Square<T>{}); }
/// x^p for a scalar p, recorded.
template <class T> Var<T> pow(const Var<T>& x, std::type_identity_t<T> p) {
  return x.tape().record(pow(x.value(), p), {x}, rules::Pow<T>(p));
}
/// |x|, recorded (derivative 0 at 0).
template <class T> Var<T> abs(const Var<T>& x) { return x.tape().record(abs(x.value()), {x}, rules::Abs<T>{}); }
/// tanh, recorded.
template <class T> Var<T> tanh(const Var<T>& x) { return x.tape().record(tanh(x.value()), {x}, rules::Tanh<T>{}); }
/// Logistic sigmoid, recorded.
template <class T> Var<T> sigmoid(const Var<T>& x) { return x.tape().record(sigmoid(x.value()), {x}, rules::Sigmoid<T>{}); }
/// g · (1 − y²): tanh's backward from its output y, recorded (so tanh differentiates to any order).
template <class T> Var<T> tanh_backward(const Var<T>& g, const Var<T>& y) {
  return detail::common_tape("tanh_backward", g, y).record(tanh_backward(g.value(), y.value()), {g, y},
                                                           rules::TanhBackward<T>{});
}
/// g · y · (1 − y): sigmoid's backward from its output y, recorded.
template <class T> Var<T> sigmoid_backward(const Var<T>& g, const Var<T>& y) {
  return detail::common_tape("sigmoid_backward", g, y).record(sigmoid_backward(g.value(), y.value()), {g, y},
                                                              rules::SigmoidBackward<T>{});
}
/// max(x, 0), recorded.
template <class T> Var<T> relu(const Var<T>& x) { return x.tape().record(relu(x.value()), {x}, rules::Relu<T>{}); }
/// log(1 + e^x), recorded.
template <class T> Var<T> softplus(const Var<T>& x) {
  return x.tape().record(softplus(x.value()), {x}, rules::Softplus<T>{});
}
/// x clamped to [low, high], recorded (derivative 0 outside).
template <class T> Var<T> clamp(const Var<T>& x, std::type_identity_t<T> low, std::type_identity_t<T> high) {
  return x.tape().record(clamp(x.value(), low, high), {x}, rules::Clamp<T>(low, high));
}

}  // namespace metagrad
