#pragma once
// The reverse sweep, and the two contexts a backward rule sees: plain tensors (first order) or Vars (the sweep
// is recorded on the tape, so its result can be differentiated again).
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "metagrad/autodiff/tape.hpp"
#include "metagrad/ops/elementwise.hpp"
#include "metagrad/ops/index.hpp"

namespace metagrad {
namespace detail {
/// Marks in a sweep's reach vector: 0 = off every path, 1 = on a path to a requested gradient, target = requested.
inline constexpr char target = 2;
}  // namespace detail

/// What a backward rule sees during a first-order sweep: plain tensors, no recording.
template <class T>
class TensorBackward {
 public:
  using carrier = Tensor<T>;  ///< What the rule's vjp computes with: plain tensors.

  /// The adjoint of the node being processed.
  const Tensor<T>& grad() const { return *adj_[node_ - lo_]; }
  /// The adjoint, handed over for reuse as an output buffer: a rule's last use of it (copied only when the node is
  /// itself a requested gradient, which must survive the sweep).
  Tensor<T> release_grad() { return reach_[node_ - lo_] == detail::target ? *adj_[node_ - lo_] : std::move(*adj_[node_ - lo_]); }
  /// The node's k-th input, and the plain value of it (the same thing here).
  const Tensor<T>& input(int k) const { return tape_.nodes_[tape_.input(node_, k)].value; }
  const Tensor<T>& value(int k) const { return input(k); }                          ///< The plain value of input k.
  const Tensor<T>& output() const { return tape_.nodes_[node_].value; }             ///< The node's own value.
  int inputs() const { return static_cast<int>(tape_.nodes_[node_].input_count); }  ///< Number of inputs of the node.
  /// Whether input k leads to a requested gradient; rules skip the work for inputs that do not.
  bool needs(int k) const {
    const std::uint32_t j = tape_.input(node_, k);
    return j >= lo_ && reach_[j - lo_];
  }
  /// Adds g to the adjoint of input k.
  void accumulate(int k, Tensor<T> g) {
    const std::uint32_t j = tape_.input(node_, k);
    check_shape(g.shape(), tape_.nodes_[j].value.shape());
    auto& a = adj_[j - lo_];
    if (a) *a += g;
    else a = std::move(g);
  }
  /// Adds g to the adjoint of input k twice (the same bits as two accumulate calls, without a second g).
  void accumulate_twice(int k, Tensor<T> g) {
    if (adj_[tape_.input(node_, k) - lo_]) accumulate(k, g);
    else g += g;  // nothing there yet: the first addition gives g itself
    accumulate(k, std::move(g));
  }
  /// Whether inputs k and l are the same node (x · x, say).
  bool same_input(int k, int l) const { return tape_.input(node_, k) == tape_.input(node_, l); }
  /// Adds g to the slabs [start, start + g's extent) along `axis` of input k's adjoint: a slice's adjoint without
  /// padding g to the input's shape first (a node sliced in parts fills one adjoint in place).
  void accumulate_slice(int k, int axis, index_t start, const Tensor<T>& g) {
    const std::uint32_t j = tape_.input(node_, k);
    const Shape& shape = tape_.nodes_[j].value.shape();
    if (!(g.shape().with_extent(axis, shape[axis]) == shape) || start < 0 || start + g.shape()[axis] > shape[axis])
      throw tape_error(std::string("backward of ") + tape_.nodes_[node_].op->name() + ": rule produced a gradient of shape " +
                       g.shape().str() + " for slabs from " + std::to_string(start) + " of an input of shape " + shape.str());
    auto& a = adj_[j - lo_];
    if (!a) a = Tensor<T>::zeros(shape);
    detail::add_slabs(g, *a, start, axis);
  }
  /// A tensor the rule treats as constant.
  Tensor<T> constant(Tensor<T> t) const { return t; }

 private:
  template <class U> friend class Backpropagation;
  TensorBackward(Tape<T>& tape, std::uint32_t lo, const std::vector<char>& reach,
                 std::vector<std::optional<Tensor<T>>>& adj)
      : tape_(tape), lo_(lo), reach_(reach), adj_(adj) {}
  void check_shape(const Shape& got, const Shape& want) const {
    if (!(got == want))
      throw tape_error(std::string("backward of ") + tape_.nodes_[node_].op->name() + ": rule produced a gradient of shape " +
                       got.str() + " for an input of shape " + want.str());
  }

  Tape<T>& tape_;
  std::uint32_t lo_;
  const std::vector<char>& reach_;
  std::vector<std::optional<Tensor<T>>>& adj_;
  std::uint32_t node_ = 0;
};

/// What a backward rule sees during a recorded sweep (create_graph): Vars, so every step is taped.
template <class T>
class VarBackward {
 public:
  using carrier = Var<T>;  ///< What the rule's vjp computes with: Vars, so each step is recorded.

  Var<T> grad() const { return *adj_[node_ - lo_]; }  ///< The adjoint of the node being processed.
  Var<T> release_grad() const { return grad(); }      ///< The adjoint (Vars are handles: nothing to hand over).
  /// The node's k-th input, as a Var (differentiable).
  Var<T> input(int k) const { return tape_.handle(tape_.input(node_, k)); }
  /// The plain value of input k (for shapes and constants).
  const Tensor<T>& value(int k) const { return tape_.nodes_[tape_.input(node_, k)].value; }
  Var<T> output() const { return tape_.handle(node_); }                             ///< The node's own value, as a Var.
  int inputs() const { return static_cast<int>(tape_.nodes_[node_].input_count); }  ///< Number of inputs of the node.
  /// Whether input k leads to a requested gradient.
  bool needs(int k) const {
    const std::uint32_t j = tape_.input(node_, k);
    return j >= lo_ && reach_[j - lo_];
  }
  /// Adds g to input k's adjoint; throws tape_error if its shape is not the input's.
  void accumulate(int k, Var<T> g) {
    const std::uint32_t j = tape_.input(node_, k);
    if (!(g.shape() == tape_.nodes_[j].value.shape()))
      throw tape_error(std::string("backward of ") + tape_.nodes_[node_].op->name() + ": rule produced a gradient of shape " +
                       g.shape().str() + " for an input of shape " + tape_.nodes_[j].value.shape().str());
    auto& a = adj_[j - lo_];
    a = a ? *a + g : g;
  }
  /// Adds g to input k's adjoint twice.
  void accumulate_twice(int k, Var<T> g) {
    accumulate(k, g);
    accumulate(k, g);
  }
  /// Whether inputs k and l are the same node (x · x, say).
  bool same_input(int k, int l) const { return tape_.input(node_, k) == tape_.input(node_, l); }
  Var<T> constant(Tensor<T> t) const { return tape_.constant(std::move(t)); }  ///< A constant (no gradient) on the tape.

 private:
  template <class U> friend class Backpropagation;
  VarBackward(Tape<T>& tape, std::uint32_t lo, const std::vector<char>& reach, std::vector<std::optional<Var<T>>>& adj)
      : tape_(tape), lo_(lo), reach_(reach), adj_(adj) {}

  Tape<T>& tape_;
  std::uint32_t lo_;
  const std::vector<char>& reach_;
  std::vector<std::optional<Var<T>>>& adj_;
  std::uint32_t node_ = 0;
};

/// One reverse sweep from an output y to a set of nodes xs. Only the nodes between the earliest x and y that
/// lie on a path from some x to y are visited.
template <class T>
class Backpropagation {
 public:
  /// Gradients as plain tensors; the tape is left unchanged.
  static std::vector<Tensor<T>> run(const Var<T>& y, const std::vector<Var<T>>& xs, Tensor<T> seed) {
    Backpropagation bp(y, xs, "grad");
    std::vector<std::optional<Tensor<T>>> adj(bp.span());
    if (!(seed.shape() == y.shape()))
      throw shape_error("vjp: seed of shape " + seed.shape().str() + " for an output of shape " + y.shape().str());
    adj[bp.y_ - bp.lo_] = std::move(seed);
    TensorBackward<T> ctx(bp.tape_, bp.lo_, bp.reach_, adj);
    bp.sweep(ctx, adj);
    std::vector<Tensor<T>> out;
    for (std::size_t i = 0; i < xs.size(); ++i) {  // every x is at or after lo; one recorded after y gets zeros
      const std::uint32_t x = xs[i].index();
      if (x > bp.y_ || !adj[x - bp.lo_]) {
        out.push_back(Tensor<T>::zeros(xs[i].shape()));
        continue;
      }
      const bool asked_again = std::any_of(xs.begin() + static_cast<std::ptrdiff_t>(i) + 1, xs.end(),
                                           [&](const Var<T>& later) { return later.index() == x; });
      out.push_back(asked_again ? *adj[x - bp.lo_] : std::move(*adj[x - bp.lo_]));
    }
    return out;
  }

  /// Gradients as Vars: the sweep is recorded on the tape, so the results can be differentiated again.
  static std::vector<Var<T>> run_recorded(const Var<T>& y, const std::vector<Var<T>>& xs, const Var<T>& seed) {
    Backpropagation bp(y, xs, "grad (create_graph)");
    bp.tape_.check(seed, "vjp (create_graph)");
    if (!(seed.shape() == y.shape()))
      throw shape_error("vjp: seed of shape " + seed.shape().str() + " for an output of shape " + y.shape().str());
    std::vector<std::optional<Var<T>>> adj(bp.span());
    adj[bp.y_ - bp.lo_] = seed;
    VarBackward<T> ctx(bp.tape_, bp.lo_, bp.reach_, adj);
    bp.sweep(ctx, adj);
    std::vector<Var<T>> out;
    for (const auto& x : xs) {
      const bool reached = x.index() <= bp.y_ && adj[x.index() - bp.lo_];
      out.push_back(reached ? *adj[x.index() - bp.lo_] : bp.tape_.constant(Tensor<T>::zeros(x.shape())));
    }
    return out;
  }

 private:
  Backpropagation(const Var<T>& y, const std::vector<Var<T>>& xs, const char* op) : tape_(y.tape()) {
    tape_.check(y, op);
    y_ = y.index();
    lo_ = y_;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      tape_.check(xs[i], op);
      // A constant's gradient would be zero whatever y is, which hides a metaparameter recorded by mistake.
      if (!tape_.nodes_[xs[i].index()].requires_grad)
        throw tape_error(std::string(op) + ": input " + std::to_string(i) + " (node " + std::to_string(xs[i].index()) +
                         ") is a constant — recorded with Tape::constant or stop_gradient, or computed from constants "
                         "only — and has no gradient; record it with Tape::variable");
      lo_ = std::min(lo_, xs[i].index());
    }
    // reach[i]: node i is a requested x (target), or depends on one through recorded ops.
    reach_.assign(span(), 0);
    for (const auto& x : xs)
      if (x.index() <= y_) reach_[x.index() - lo_] = detail::target;
    for (std::uint32_t i = lo_; i <= y_; ++i) {
      const auto& n = tape_.nodes_[i];
      if (!n.op) continue;
      for (std::uint32_t k = 0; k < n.input_count; ++k) {
        const std::uint32_t j = tape_.inputs_[n.first_input + k];
        if (j >= lo_ && reach_[j - lo_] && !reach_[i - lo_]) reach_[i - lo_] = 1;
      }
    }
  }

  std::size_t span() const { return static_cast<std::size_t>(y_ - lo_) + 1; }

  template <class Ctx, class Adj>
  void sweep(Ctx& ctx, Adj& adj) {
    for (std::uint32_t i = y_ + 1; i-- > lo_;) {
      if (!adj[i - lo_] || !reach_[i - lo_]) continue;
      const Op<T>* op = tape_.nodes_[i].op.get();
      if (op) {
        ctx.node_ = i;
        op->backward(ctx);
      }
      if constexpr (std::is_same_v<Ctx, TensorBackward<T>>)  // free adjoints nobody asked for as soon as they are used
        if (reach_[i - lo_] != detail::target) adj[i - lo_].reset();
    }
  }

  Tape<T>& tape_;
  std::uint32_t y_ = 0, lo_ = 0;
  std::vector<char> reach_;
};

}  // namespace metagrad
