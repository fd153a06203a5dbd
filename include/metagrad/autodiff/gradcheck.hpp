#pragma once
// Checks a function's gradients and Hessian-vector products against central finite differences, in double
// precision. Non-scalar outputs are projected onto a fixed random direction first, so that every output element
// is checked (a plain sum would hide errors that cancel, e.g. in softmax, whose entries always sum to 1).
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "metagrad/autodiff/grad.hpp"

namespace metagrad {

/// Settings of the finite-difference checks.
struct GradientCheckOptions {
  double step = 1e-6;             ///< finite-difference step h
  double rtol = 1e-5;             ///< relative tolerance, against the larger of the two magnitudes
  double atol = 1e-6;             ///< absolute tolerance
  std::uint64_t seed = 20180401;  ///< for the output projection and the HVP directions
};

/// The outcome of a finite-difference check; converts to true when every entry agreed.
struct GradientCheckResult {
  bool ok = true;                                ///< Whether every entry agreed within the tolerances.
  double max_abs_error = 0;                      ///< The largest absolute difference seen.
  std::size_t checked = 0;                       ///< number of derivative entries compared
  std::string report;                            ///< the worst mismatches, with their positions
  explicit operator bool() const { return ok; }  ///< True when every entry agreed.
};

namespace detail {

/// f's output projected to a scalar: Σ f(x) ⊙ r.
template <class F>
Var<double> projected(F& f, const std::vector<Var<double>>& xs, const Tensor<double>& r) {
  return dot(f(xs), r);
}

inline std::vector<Var<double>> variables(Tape<double>& tape, const std::vector<Tensor<double>>& xs) {
  std::vector<Var<double>> vars;
  for (const auto& x : xs) vars.push_back(tape.variable(x));
  return vars;
}

template <class F>
std::vector<Tensor<double>> analytic_gradient(F& f, const std::vector<Tensor<double>>& xs, const Tensor<double>& r) {
  Tape<double> tape;
  const auto vars = variables(tape, xs);
  return grad(projected(f, vars, r), vars);
}

template <class F>
double projected_value(F& f, const std::vector<Tensor<double>>& xs, const Tensor<double>& r) {
  Tape<double> tape;
  std::vector<Var<double>> vars;
  for (const auto& x : xs) vars.push_back(tape.constant(x));
  return projected(f, vars, r).value().item();
}

inline void compare(GradientCheckResult& result, const char* what, std::size_t input, const Tensor<double>& analytic,
                    const Tensor<double>& numeric, const GradientCheckOptions& opt) {
  int reported = 0;
  for (index_t j = 0; j < analytic.size(); ++j) {
    const double a = analytic.data()[j], n = numeric.data()[j];
    const double err = std::abs(a - n);
    ++result.checked;
    const bool finite = std::isfinite(a) && std::isfinite(n);
    if (finite && err <= opt.atol + opt.rtol * std::max(std::abs(a), std::abs(n))) {
      result.max_abs_error = std::max(result.max_abs_error, err);
      continue;
    }
    result.ok = false;
    result.max_abs_error = finite ? std::max(result.max_abs_error, err) : INFINITY;
    if (reported++ < 5) {
      std::ostringstream os;
      os << what << " of input " << input << " " << analytic.shape().str() << ", element " << j << ": analytic " << a
         << ", finite difference " << n << "\n";
      result.report += os.str();
    }
  }
}

template <class F>
Tensor<double> projection_for(F& f, const std::vector<Tensor<double>>& xs, std::uint64_t seed) {
  Tape<double> tape;
  return Tensor<double>::random_normal(f(variables(tape, xs)).shape(), seed);
}

}  // namespace detail

/// Compares the tape's gradient of f at xs with central differences. f maps a vector of Var<double> (one per
/// tensor in xs) to a Var<double> of any shape.
template <class F>
GradientCheckResult check_gradient(F&& f, const std::vector<Tensor<double>>& xs, const GradientCheckOptions& opt = {}) {
  const Tensor<double> r = detail::projection_for(f, xs, opt.seed);
  const std::vector<Tensor<double>> analytic = detail::analytic_gradient(f, xs, r);
  GradientCheckResult result;
  std::vector<Tensor<double>> shifted = xs;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    Tensor<double> numeric(xs[i].shape());
    for (index_t j = 0; j < xs[i].size(); ++j) {
      double& v = shifted[i].data()[j];
      const double x0 = v;
      v = x0 + opt.step;
      const double up = detail::projected_value(f, shifted, r);
      v = x0 - opt.step;
      const double down = detail::projected_value(f, shifted, r);
      v = x0;
      numeric.data()[j] = (up - down) / (2 * opt.step);
    }
    detail::compare(result, "gradient", i, analytic[i], numeric, opt);
  }
  return result;
}

/// Compares the tape's Hessian-vector product of f at xs, along a random direction, with central differences
/// of the tape's gradient.
template <class F>
GradientCheckResult check_hvp(F&& f, const std::vector<Tensor<double>>& xs, const GradientCheckOptions& opt = {}) {
  const Tensor<double> r = detail::projection_for(f, xs, opt.seed);
  std::vector<Tensor<double>> vs;
  for (std::size_t i = 0; i < xs.size(); ++i) vs.push_back(Tensor<double>::random_normal(xs[i].shape(), opt.seed + 1 + i));
  std::vector<Tensor<double>> analytic;
  {
    Tape<double> tape;
    const auto vars = detail::variables(tape, xs);
    analytic = hvp(detail::projected(f, vars, r), vars, vs);
  }
  std::vector<Tensor<double>> up = xs, down = xs;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    up[i].array() += opt.step * vs[i].array();
    down[i].array() -= opt.step * vs[i].array();
  }
  const auto g_up = detail::analytic_gradient(f, up, r), g_down = detail::analytic_gradient(f, down, r);
  GradientCheckResult result;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    Tensor<double> numeric = (g_up[i] - g_down[i]) * (1.0 / (2 * opt.step));
    detail::compare(result, "Hessian-vector product", i, analytic[i], numeric, opt);
  }
  return result;
}

}  // namespace metagrad
