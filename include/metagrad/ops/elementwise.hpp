#pragma once
// Elementwise ops on plain tensors: arithmetic with broadcasting and scalars, and the unary functions.
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "metagrad/ops/broadcast.hpp"

namespace metagrad {

// ---- arithmetic: tensor (op) tensor with broadcasting ----
/// a + b with NumPy broadcasting; throws shape_error for incompatible shapes.
template <class T> Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::broadcast_binary("add", a, b, [](const auto& x, const auto& y) { return x + y; });
}
/// a − b with NumPy broadcasting.
template <class T> Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::broadcast_binary("sub", a, b, [](const auto& x, const auto& y) { return x - y; });
}
/// a · b elementwise with NumPy broadcasting.
template <class T> Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::broadcast_binary("mul", a, b, [](const auto& x, const auto& y) { return x * y; });
}
/// a / b elementwise with NumPy broadcasting.
template <class T> Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::broadcast_binary("div", a, b, [](const auto& x, const auto& y) { return x / y; });
}

// ---- arithmetic with scalars (the scalar's type never drives deduction, so `2 * x` works for Tensor<float>) ----
/// x + s.
template <class T> Tensor<T> operator+(Tensor<T> a, std::type_identity_t<T> s) {
  return detail::map_blocks(std::move(a), [s](auto r) { r += s; });
}
/// s + x.
template <class T> Tensor<T> operator+(std::type_identity_t<T> s, Tensor<T> a) { return std::move(a) + s; }
/// x − s.
template <class T> Tensor<T> operator-(Tensor<T> a, std::type_identity_t<T> s) {
  return detail::map_blocks(std::move(a), [s](auto r) { r -= s; });
}
/// s − x.
template <class T> Tensor<T> operator-(std::type_identity_t<T> s, Tensor<T> a) {
  return detail::map_blocks(std::move(a), [s](auto r) { r = s - r; });
}
/// x · s.
template <class T> Tensor<T> operator*(Tensor<T> a, std::type_identity_t<T> s) {
  return detail::map_blocks(std::move(a), [s](auto r) { r *= s; });
}
/// s · x.
template <class T> Tensor<T> operator*(std::type_identity_t<T> s, Tensor<T> a) { return std::move(a) * s; }
/// x / s.
template <class T> Tensor<T> operator/(Tensor<T> a, std::type_identity_t<T> s) {
  return detail::map_blocks(std::move(a), [s](auto r) { r /= s; });
}
/// s / x elementwise.
template <class T> Tensor<T> operator/(std::type_identity_t<T> s, Tensor<T> a) {
  return detail::map_blocks(std::move(a), [s](auto r) { r = s / r; });
}
/// −x.
template <class T> Tensor<T> operator-(Tensor<T> a) {
  return detail::map_blocks(std::move(a), [](auto r) { r = -r; });
}

/// In-place accumulation of an equal-shaped tensor.
template <class T> Tensor<T>& operator+=(Tensor<T>& a, const Tensor<T>& b) {
  if (!(a.shape() == b.shape()))
    throw shape_error("operator+=: shapes " + a.shape().str() + " and " + b.shape().str() + " must be equal");
  detail::for_blocks(a.size(), [&](index_t begin, index_t n) {
    detail::Run<T>(a.data() + begin, n) += detail::ConstRun<T>(b.data() + begin, n);
  });
  return a;
}

namespace detail {
template <class T>
void require_domain(const char* op, const Tensor<T>& x, bool ok, const char* expected) {
  if (!ok) throw value_error(std::string(op) + ": input of shape " + x.shape().str() + " has elements outside the domain (" +
                             expected + ")");
}
}  // namespace detail

// ---- unary functions (by value: an rvalue argument is reused as the result) ----
/// e^x (by value: an rvalue argument is reused as the result).
template <class T> Tensor<T> exp(Tensor<T> x) {
  return detail::map_blocks(std::move(x), [](auto a) { a = a.exp(); });
}
/// Natural log; throws value_error for negative elements.
template <class T> Tensor<T> log(Tensor<T> x) {
  detail::require_domain("log", x, (x.array() >= T(0)).all(), "x >= 0 expected");
  return detail::map_blocks(std::move(x), [](auto a) { a = a.log(); });
}
/// Square root; throws value_error for negative elements.
template <class T> Tensor<T> sqrt(Tensor<T> x) {
  detail::require_domain("sqrt", x, (x.array() >= T(0)).all(), "x >= 0 expected");
  return detail::map_blocks(std::move(x), [](auto a) { a = a.sqrt(); });
}
/// x².
template <class T> Tensor<T> square(Tensor<T> x) {
  return detail::map_blocks(std::move(x), [](auto a) { a = a.square(); });
}
/// x to a scalar power; a negative base needs an integer exponent.
template <class T> Tensor<T> pow(Tensor<T> x, std::type_identity_t<T> p) {
  if (p != std::round(p))
    detail::require_domain("pow", x, (x.array() >= T(0)).all(), "x >= 0 expected for a non-integer exponent");
  return detail::map_blocks(std::move(x), [p](auto a) { a = a.pow(p); });
}
/// |x|.
template <class T> Tensor<T> abs(Tensor<T> x) {
  return detail::map_blocks(std::move(x), [](auto a) { a = a.abs(); });
}
namespace detail {
/// tanh for double in a loop the compiler vectorizes (Eigen's double tanh, and libm's, are scalar): Cephes'
/// rational approximation for |x| < 0.625, else (e^{2|x|} − 1) / (e^{2|x|} + 1) with x's sign, where e^{2|x|} comes from
/// a branch-free exp (Cody–Waite reduction, degree-13 Taylor polynomial, exponent set by bit operations).
/// Within 2 ulp of std::tanh; NaN stays NaN.
inline void tanh_double(const double* x, double* y, index_t n) {
  for (index_t i = 0; i < n; ++i) {
    const double v = x[i], a = v < 0 ? -v : v;
    const double z = v * v;
    const double p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z - 1.61468768441708447952e3;
    const double q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z + 4.84406305325125486048e3;
    // One division for both branches: tanh = (v·q + v·z·p) / q below 0.625, ±(e − 1) / (e + 1) above.
    // tanh(20) rounds to 1, so 2|x| is capped at 40 (and a NaN takes the cap; it is restored below).
    const double t = 2 * a < 40.0 ? 2 * a : 40.0;
    const double k = (t * 1.4426950408889634 + 0x1.8p52) - 0x1.8p52;  // round(t / ln 2)
    const double r = (t - k * 6.93147180369123816490e-1) - k * 1.90821492927058770002e-10;
    double e = 1.0 / 6227020800.0;  // Σ r^j / j!, j = 0 … 13, by Horner
    for (double d : {479001600.0, 39916800.0, 3628800.0, 362880.0, 40320.0, 5040.0, 720.0, 120.0, 24.0, 6.0, 2.0,
                     1.0, 1.0})
      e = e * r + 1.0 / d;
    e *= std::bit_cast<double>((static_cast<std::int64_t>(k) + 1023) << 52);
    const bool small = a < 0.625;
    const double numerator = small ? v * q + v * z * p : (v < 0 ? 1.0 - e : e - 1.0);
    const double result = numerator / (small ? q : e + 1.0);
    y[i] = v != v ? v : result;
  }
}
}  // namespace detail

/// tanh (for double, a vectorized loop within 2 ulp of std::tanh).
template <class T> Tensor<T> tanh(Tensor<T> x) {
  return detail::map_blocks(std::move(x), [](auto a) {
    if constexpr (std::is_same_v<T, double>) detail::tanh_double(a.data(), a.data(), a.size());
    else a = a.tanh();
  });
}
/// Logistic sigmoid 1 / (1 + e^−x).
template <class T> Tensor<T> sigmoid(Tensor<T> x) {
  return detail::map_blocks(std::move(x), [](auto a) { a = T(1) / (T(1) + (-a).exp()); });
}
/// max(x, 0).
template <class T> Tensor<T> relu(Tensor<T> x) {
  return detail::map_blocks(std::move(x), [](auto a) { a = a.max(T(0)); });
}
/// log(1 + e^x), computed without overflow.
template <class T> Tensor<T> softplus(Tensor<T> x) {
  return detail::map_blocks(std::move(x), [](auto a) { a = a.max(T(0)) + (-a.abs()).exp().log1p(); });
}
/// x limited to [low, high].
template <class T> Tensor<T> clamp(Tensor<T> x, std::type_identity_t<T> low, std::type_identity_t<T> high) {
  if (!(low <= high))
    throw value_error("clamp: low (" + std::to_string(low) + ") must not exceed high (" + std::to_string(high) + ")");
  x.array() = x.array().max(low).min(high);
  return x;
}

// ---- fused backward kernels, ops in their own right so that recorded backward passes stay small ----
namespace detail {
template <class T>
void require_same_shape(const char* op, const Tensor<T>& a, const Tensor<T>& b) {
  if (!(a.shape() == b.shape()))
    throw shape_error(std::string(op) + ": shapes " + a.shape().str() + " and " + b.shape().str() + " must be equal");
}
}  // namespace detail
/// g ⊙ (1 − y²): tanh's backward, given its output y.
template <class T> Tensor<T> tanh_backward(Tensor<T> g, const Tensor<T>& y) {
  detail::require_same_shape("tanh_backward", g, y);
  detail::for_blocks(g.size(), [&](index_t b, index_t n) {
    detail::Run<T>(g.data() + b, n) *= T(1) - detail::ConstRun<T>(y.data() + b, n).square();
  });
  return g;
}
/// g ⊙ y ⊙ (1 − y): sigmoid's backward, given its output y.
template <class T> Tensor<T> sigmoid_backward(Tensor<T> g, const Tensor<T>& y) {
  detail::require_same_shape("sigmoid_backward", g, y);
  detail::for_blocks(g.size(), [&](index_t b, index_t n) {
    const detail::ConstRun<T> yb(y.data() + b, n);
    detail::Run<T>(g.data() + b, n) *= yb * (T(1) - yb);
  });
  return g;
}

/// A tensor of zeros with x's shape.
template <class T> Tensor<T> zeros_like(const Tensor<T>& x) { return Tensor<T>::zeros(x.shape()); }
/// t itself: the plain overload of constant_like (a Var `like` puts t on its tape as a constant).
template <class T> Tensor<T> constant_like(const Tensor<T>&, Tensor<T> t) { return t; }

// ---- non-differentiable helpers that backward rules use as constants ----
/// -1, 0 or +1 per element.
template <class T> Tensor<T> sign(Tensor<T> x) { x.array() = x.array().sign(); return x; }
/// 1 where x > 0, else 0.
template <class T> Tensor<T> positive_mask(Tensor<T> x) {
  x.array() = (x.array() > T(0)).template cast<T>();
  return x;
}
/// 1 where low <= x <= high, else 0.
template <class T> Tensor<T> inside_mask(Tensor<T> x, T low, T high) {
  x.array() = ((x.array() >= low) && (x.array() <= high)).template cast<T>();
  return x;
}

}  // namespace metagrad
