#pragma once
// Differentiation entry points: grad, vjp, hvp and the tape-wide backward(y).
#include <string>
#include <vector>

#include "metagrad/autodiff/backward.hpp"
#include "metagrad/ops/linalg.hpp"

namespace metagrad {

/// Tag asking for a recorded backward pass: the gradients come back as Vars that can be differentiated again.
struct create_graph_t {
  explicit create_graph_t() = default;
};
/// Pass as the last argument of grad or backward to record the backward pass.
inline constexpr create_graph_t create_graph{};

namespace detail {
template <class T>
void require_scalar(const char* op, const Var<T>& y) {
  if (y.value().size() != 1)
    throw tape_error(std::string(op) + ": output of shape " + y.shape().str() +
                     " is not a scalar; use vjp(y, xs, seed) with a seed of that shape");
}
}  // namespace detail

/// ∂y/∂x for every x, as plain tensors. y must hold one element. The tape is left unchanged.
template <class T>
std::vector<Tensor<T>> grad(const Var<T>& y, const std::vector<Var<T>>& xs) {
  detail::require_scalar("grad", y);
  return Backpropagation<T>::run(y, xs, Tensor<T>::ones(y.shape()));
}

/// ∂y/∂x for every x, recorded on the tape as Vars (for second and higher derivatives).
template <class T>
std::vector<Var<T>> grad(const Var<T>& y, const std::vector<Var<T>>& xs, create_graph_t) {
  detail::require_scalar("grad", y);
  return Backpropagation<T>::run_recorded(y, xs, y.tape().constant(Tensor<T>::ones(y.shape())));
}

/// The vector–Jacobian product seedᵀ ∂y/∂x for every x; seed has y's shape.
template <class T>
std::vector<Tensor<T>> vjp(const Var<T>& y, const std::vector<Var<T>>& xs, const Tensor<T>& seed) {
  return Backpropagation<T>::run(y, xs, seed);
}

/// The recorded vector–Jacobian product; the seed is a Var too, so the result is differentiable in it.
template <class T>
std::vector<Var<T>> vjp(const Var<T>& y, const std::vector<Var<T>>& xs, const Var<T>& seed, create_graph_t) {
  return Backpropagation<T>::run_recorded(y, xs, seed);
}

/// The Hessian-vector products (∂²y/∂x∂xᵀ) v for a scalar y, one per x, as plain tensors: one recorded
/// gradient and one backward pass through it. The tape is left as it was.
template <class T>
std::vector<Tensor<T>> hvp(const Var<T>& y, const std::vector<Var<T>>& xs, const std::vector<Tensor<T>>& vs) {
  if (vs.size() != xs.size())
    throw value_error("hvp: " + std::to_string(vs.size()) + " directions for " + std::to_string(xs.size()) + " variables");
  if (xs.empty()) return {};
  detail::require_scalar("hvp", y);
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (!(vs[i].shape() == xs[i].shape()))
      throw shape_error("hvp: direction " + std::to_string(i) + " has shape " + vs[i].shape().str() + ", its variable " +
                        xs[i].shape().str());
  Tape<T>& tape = y.tape();
  const TapeScope<T> scratch(tape);  // the recorded gradient is dropped again, also when something below throws
  const std::vector<Var<T>> g = grad(y, xs, create_graph);
  Var<T> g_dot_v;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Var<T> term = dot(g[i], tape.constant(vs[i]));
    g_dot_v = i == 0 ? term : g_dot_v + term;
  }
  return grad(g_dot_v, xs);
}

/// Stores ∂y/∂v in v.grad() for every variable v recorded before y (zeros for those y does not depend on).
template <class T>
void backward(const Var<T>& y) {
  Tape<T>& tape = y.tape();
  tape.check(y, "backward");
  std::vector<Var<T>> variables;
  for (std::uint32_t i = 0; i <= y.index(); ++i)
    if (tape.nodes_[i].requires_grad && !tape.nodes_[i].op) variables.push_back(tape.handle(i));
  std::vector<Tensor<T>> g = grad(y, variables);
  for (std::size_t i = 0; i < variables.size(); ++i) tape.nodes_[variables[i].index()].grad = std::move(g[i]);
}

}  // namespace metagrad
