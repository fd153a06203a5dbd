#pragma once
// softmax, log_softmax, logsumexp, cross_entropy and mse on Vars, with their backward rules.
#include "metagrad/autodiff/reduce.hpp"
#include "metagrad/ops/nn.hpp"

namespace metagrad {
namespace rules {

template <class T> struct Softmax : Rule<T, Softmax<T>> {  // y ⊙ (g − Σ g⊙y)
  int axis;
  explicit Softmax(int a) : axis(a) {}
  const char* name() const override { return "softmax"; }
  template <class C> void vjp(C& c) const {
    const auto& y = c.output();
    c.accumulate(0, y * (c.grad() - sum(c.grad() * y, axis, true)));
  }
};
template <class T> struct LogSoftmax : Rule<T, LogSoftmax<T>> {  // g − softmax ⊙ Σ g
  int axis;
  explicit LogSoftmax(int a) : axis(a) {}
  const char* name() const override { return "log_softmax"; }
  template <class C> void vjp(C& c) const { c.accumulate(0, c.grad() - exp(c.output()) * sum(c.grad(), axis, true)); }
};
template <class T> struct CrossEntropy : Rule<T, CrossEntropy<T>> {  // g_i (softmax(x_i) − onehot_i)
  IndexVector labels;
  explicit CrossEntropy(IndexVector l) : labels(std::move(l)) {}
  const char* name() const override { return "cross_entropy"; }
  template <class C> void vjp(C& c) const {
    const Shape& s = c.value(0).shape();
    c.accumulate(0, reshape(c.grad(), Shape{s[0], 1}) * (softmax(c.input(0), 1) - c.constant(one_hot<T>(labels, s[1]))));
  }
};

template <class T> struct LogSumExp : Rule<T, LogSumExp<T>> {
  int axis;
  bool keepdims;
  LogSumExp(int a, bool k) : axis(a), keepdims(k) {}
  const char* name() const override { return "logsumexp"; }
  template <class C> void vjp(C& c) const {
    c.accumulate(0, spread(c.grad(), c.value(0).shape(), axis, keepdims) * softmax(c.input(0), axis));
  }
};

}  // namespace rules

/// softmax along axis, recorded.
template <class T> Var<T> softmax(const Var<T>& x, int axis = -1) {
  const int a = normalize_axis("softmax", axis, x.shape());
  return x.tape().record(softmax(x.value(), a), {x}, rules::Softmax<T>(a));
}
/// log softmax along axis, recorded.
template <class T> Var<T> log_softmax(const Var<T>& x, int axis = -1) {
  const int a = normalize_axis("log_softmax", axis, x.shape());
  return x.tape().record(log_softmax(x.value(), a), {x}, rules::LogSoftmax<T>(a));
}
/// log Σ exp along axis, recorded.
template <class T> Var<T> logsumexp(const Var<T>& x, int axis, bool keepdims = false) {
  const int a = normalize_axis("logsumexp", axis, x.shape());
  return x.tape().record(logsumexp(x.value(), a, keepdims), {x}, rules::LogSumExp<T>(a, keepdims));
}

/// Mean cross-entropy of logits [batch, classes] against integer labels, recorded.
template <class T> Var<T> cross_entropy(const Var<T>& logits, const IndexVector& labels) {
  return logits.tape().record(cross_entropy(logits.value(), labels), {logits}, rules::CrossEntropy<T>(labels));
}
/// Mean squared difference of equal-shaped a and b, recorded.
template <class T> Var<T> mse(const Var<T>& a, const Var<T>& b) {
  if (!(a.shape() == b.shape()))
    throw shape_error("mse: shapes " + a.shape().str() + " and " + b.shape().str() + " must be equal");
  return mean(square(a - b));
}
/// mse against a constant target.
template <class T> Var<T> mse(const Var<T>& a, const Tensor<T>& b) { return mse(a, a.tape().constant(b)); }

}  // namespace metagrad
