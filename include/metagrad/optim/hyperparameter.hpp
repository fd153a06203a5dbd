#pragma once
// Hyperparameter<T>: a plain number or a rank-0 Var, so that one hyperparameter of a rule can receive a gradient
// while the others stay plain numbers: `Momentum<Var<double>>{.momentum = mu}` differentiates μ and keeps the
// default weight decay a plain 0, which records nothing. A rule declares its fields as `Hyper<S>`: S itself for a
// plain number type, Hyperparameter for a Var type. Arithmetic with Vars uses the number directly when there is no
// Var (no constant nodes); arithmetic with plain numbers stays a Hyperparameter.
#include <cmath>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "metagrad/autodiff/elementwise.hpp"

namespace metagrad {

/// A hyperparameter that is a plain number or a rank-0 Var (then it receives a gradient).
template <class T>
class Hyperparameter {
 public:
  using value_type = T;  ///< Its number type.

  /// A plain number (implicit, so a rule's field takes a number as before).
  Hyperparameter(T number) : number_(number) {}
  /// A differentiable one-element Var (implicit); throws shape_error for any other shape.
  Hyperparameter(Var<T> var) : var_(std::move(var)) {
    if (var_->value().size() != 1)
      throw shape_error("Hyperparameter: a hyperparameter is one number, got a Var of shape " + var_->shape().str());
  }

  bool is_var() const { return var_.has_value(); }  ///< Whether it is a Var (and so receives a gradient).
  /// The Var, when there is one.
  const Var<T>& var() const { return *var_; }
  /// The current value, plain or taped.
  T value() const { return var_ ? var_->value().item() : number_; }
  /// A plain zero: a term it multiplies can be left out without recording anything.
  bool is_plain_zero() const { return !var_ && number_ == T(0); }

 private:
  std::optional<Var<T>> var_;
  T number_ = T(0);
};

namespace optim_detail {
template <class S> struct hyper { using type = Hyperparameter<typename S::value_type>; };
template <class S> requires std::is_arithmetic_v<S> struct hyper<S> { using type = S; };
}  // namespace optim_detail

/// A rule's hyperparameter field for hyperparameter type S: S for a plain number type, else Hyperparameter.
template <class S>
using Hyper = typename optim_detail::hyper<S>::type;

namespace optim_detail {
template <class S> inline constexpr bool is_hyperparameter = false;
template <class T> inline constexpr bool is_hyperparameter<Hyperparameter<T>> = true;
}  // namespace optim_detail

// Hyperparameter ∘ Var and Var ∘ Hyperparameter: a Var, with no constant node for a plain number.
/// h + x.
template <class T> Var<T> operator+(const Hyperparameter<T>& h, const Var<T>& x) {
  return h.is_var() ? h.var() + x : h.value() + x;
}
/// x + h.
template <class T> Var<T> operator+(const Var<T>& x, const Hyperparameter<T>& h) {
  return h.is_var() ? x + h.var() : x + h.value();
}
/// h − x.
template <class T> Var<T> operator-(const Hyperparameter<T>& h, const Var<T>& x) {
  return h.is_var() ? h.var() - x : h.value() - x;
}
/// x − h.
template <class T> Var<T> operator-(const Var<T>& x, const Hyperparameter<T>& h) {
  return h.is_var() ? x - h.var() : x - h.value();
}
/// h · x.
template <class T> Var<T> operator*(const Hyperparameter<T>& h, const Var<T>& x) {
  return h.is_var() ? h.var() * x : h.value() * x;
}
/// x · h.
template <class T> Var<T> operator*(const Var<T>& x, const Hyperparameter<T>& h) {
  return h.is_var() ? x * h.var() : x * h.value();
}
/// h / x.
template <class T> Var<T> operator/(const Hyperparameter<T>& h, const Var<T>& x) {
  return h.is_var() ? h.var() / x : h.value() / x;
}
/// x / h.
template <class T> Var<T> operator/(const Var<T>& x, const Hyperparameter<T>& h) {
  return h.is_var() ? x / h.var() : x / h.value();
}

/// s − h, e.g. 1 − β1: still a hyperparameter.
template <class T> Hyperparameter<T> operator-(std::type_identity_t<T> s, const Hyperparameter<T>& h) {
  if (h.is_var()) return Hyperparameter<T>(s - h.var());
  return Hyperparameter<T>(s - h.value());
}

/// h^t, e.g. β1^t for Adam's bias correction.
template <class T> Hyperparameter<T> pow(const Hyperparameter<T>& h, std::int64_t t) {
  if (h.is_var()) return Hyperparameter<T>(pow(h.var(), static_cast<T>(t)));
  return Hyperparameter<T>(std::pow(h.value(), static_cast<T>(t)));
}

}  // namespace metagrad
