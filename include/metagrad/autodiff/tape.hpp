#pragma once
// Tape<T> and Var<T>: a linear arena of nodes in execution order, and the handles that refer to them.
//
// Every op on Vars computes its value with the plain-tensor op and appends one node holding that value, the
// indices of its inputs and its backward rule. A backward pass is one reverse sweep over the nodes. Backward
// rules are templates over the carrier: the same rule runs on plain tensors (first-order, fast) or on Vars
// (create_graph: the backward pass is recorded and can itself be differentiated).
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/autodiff/node_arena.hpp"
#include "metagrad/tensor/tensor.hpp"

namespace metagrad {

template <class T> class Tape;
template <class T> class Var;
template <class T> class TensorBackward;
template <class T> class VarBackward;
template <class T> void backward(const Var<T>& y);

/// A recorded operation's backward rule. Implementations derive from Rule<T, Derived> and provide one
/// template `vjp(ctx)` that is valid for both contexts.
template <class T>
struct Op {
  virtual ~Op() = default;
  virtual const char* name() const = 0;  ///< The op's name, for error messages.
  /// First-order backward: accumulates the inputs' adjoints as plain tensors.
  virtual void backward(TensorBackward<T>& ctx) const = 0;
  /// Recorded backward (create_graph): accumulates adjoints as Vars on the tape.
  virtual void backward(VarBackward<T>& ctx) const = 0;
};

/// The base of a backward rule: dispatches both contexts to Derived's one template vjp(ctx).
template <class T, class Derived>
struct Rule : Op<T> {
  /// Calls Derived::vjp on plain tensors.
  void backward(TensorBackward<T>& ctx) const override { static_cast<const Derived&>(*this).vjp(ctx); }
  /// Calls Derived::vjp on Vars.
  void backward(VarBackward<T>& ctx) const override { static_cast<const Derived&>(*this).vjp(ctx); }
};

/// A handle to one node of a tape: cheap to copy, valid while the node it names is on the tape. The references
/// `value()`, `shape()` and `grad()` return stay valid while the node does: recording more nodes never moves it.
template <class T>
class Var {
 public:
  using value_type = T;  ///< The element type.

  /// An empty handle; every use of it throws.
  Var() = default;

  const Tensor<T>& value() const { return tape().node(*this).value; }      ///< The node's value.
  const Shape& shape() const { return value().shape(); }                   ///< The value's shape.
  bool requires_grad() const { return tape().node(*this).requires_grad; }  ///< Whether gradients flow to this node.
  /// The gradient stored by the last `backward(y)` that covered this variable.
  const Tensor<T>& grad() const { return tape().stored_grad(*this); }

  /// The tape the node is on; throws tape_error for a default-constructed Var.
  Tape<T>& tape() const {
    if (!tape_) throw tape_error("Var: empty handle (default-constructed Var used in an operation)");
    return *tape_;
  }
  std::uint32_t index() const { return index_; }  ///< The node's position on its tape.

 private:
  friend class Tape<T>;
  Var(Tape<T>* tape, std::uint32_t index, std::uint64_t serial) : tape_(tape), index_(index), serial_(serial) {}

  Tape<T>* tape_ = nullptr;
  std::uint32_t index_ = 0;
  std::uint64_t serial_ = 0;
};

/// A recording of operations on Vars, and their reverse sweep; not thread-safe (one tape per thread).
template <class T>
class Tape {
 public:
  /// A position on the tape; `rewind` to it drops every node recorded after it.
  struct Mark {
    std::size_t nodes = 0;   ///< Nodes on the tape at the mark.
    std::size_t inputs = 0;  ///< Input indices on the tape at the mark.
  };

  /// `nodes_per_block` (a power of two) sets how many nodes each block of the tape's storage holds; the default
  /// suits every use, and tests set it small to cross block boundaries often.
  static constexpr std::size_t default_nodes_per_block = 256;
  explicit Tape(std::size_t nodes_per_block = default_nodes_per_block) : nodes_(nodes_per_block) {}  ///< An empty tape.
  Tape(const Tape&) = delete;  // Vars point at their tape
  Tape& operator=(const Tape&) = delete;

  /// A leaf that gradients are taken with respect to.
  Var<T> variable(Tensor<T> value) { return append(std::move(value), nullptr, true); }
  /// A leaf that never receives a gradient.
  Var<T> constant(Tensor<T> value) { return append(std::move(value), nullptr, false); }

  /// The value of a leaf, for updating it in place between steps — e.g. parameters created once before a mark,
  /// updated by the optimizer after each rewind. Throws if v is not a leaf or if a node on the tape already
  /// read it (changing it then would make the recorded values inconsistent).
  Tensor<T>& mutable_value(const Var<T>& v) {
    Node& n = node(v);
    if (n.op) throw tape_error(std::string("Tape::mutable_value: node ") + std::to_string(v.index_) + " is the result of " +
                               n.op->name() + ", not a leaf");
    if (!n.value.owns_data())
      throw tape_error("Tape::mutable_value: node " + std::to_string(v.index_) + " is a view of node " +
                       std::to_string(inputs_[n.first_input]) + ", sharing its storage, not a leaf of its own");
    const std::size_t after = v.index_ + 1 < nodes_.size() ? nodes_[v.index_ + 1].first_input : inputs_.size();
    for (std::size_t k = after; k < inputs_.size(); ++k)
      if (inputs_[k] == v.index_)
        throw tape_error("Tape::mutable_value: leaf " + std::to_string(v.index_) +
                         " is already used by recorded nodes; rewind past them first");
    return n.value;
  }

  Mark mark() const { return {nodes_.size(), inputs_.size()}; }  ///< The current position, for rewind.

  /// Drops every node recorded after `m`. Vars that named them become stale, and using one throws.
  void rewind(Mark m) {
    if (m.nodes > nodes_.size() || m.inputs > inputs_.size())
      throw tape_error("Tape::rewind: the mark (" + std::to_string(m.nodes) + " nodes) lies beyond the tape's end (" +
                       std::to_string(nodes_.size()) + " nodes)");
    nodes_.shrink(m.nodes);
    inputs_.resize(m.inputs);
  }

  /// Drops every node.
  void clear() { rewind(Mark{}); }

  /// Number of nodes on the tape.
  std::size_t size() const { return nodes_.size(); }

  /// Appends the result of an op: its value, its inputs and its backward rule. A result whose inputs need no
  /// gradient is stored as a constant, without the rule.
  template <class R>
  Var<T> record(Tensor<T> value, std::initializer_list<Var<T>> inputs, R rule) {
    return record_range(std::move(value), inputs.begin(), inputs.size(), std::move(rule));
  }
  /// Records an op: its output value, its inputs and its backward rule; returns the output's Var.
  template <class R>
  Var<T> record(Tensor<T> value, const std::vector<Var<T>>& inputs, R rule) {
    return record_range(std::move(value), inputs.data(), inputs.size(), std::move(rule));
  }

  /// Records shape.size() elements of x from flat position offset as a node that shares x's storage instead of
  /// copying it (a reshape, a contiguous slice); returns an empty optional when they are none or do not start on an
  /// address Eigen's maps accept, and the caller copies. Gradients flow through the rule unless `differentiable` is
  /// false (stop_gradient). The node is x's dependant even without a rule, so mutable_value refuses to change x under
  /// it; x lies earlier on the tape, so it outlives the view.
  template <class R>
  std::optional<Var<T>> record_view(const Var<T>& x, index_t offset, const Shape& shape, R rule,
                                    bool differentiable = true) {
    check(x, rule.name());
    const Tensor<T>& from = nodes_[x.index_].value;
    if (offset < 0 || offset + shape.size() > from.size())
      throw shape_error(std::string(rule.name()) + ": a view of " + std::to_string(shape.size()) + " elements from " +
                        std::to_string(offset) + " does not fit in " + from.shape().str());
    if (shape.size() == 0 || !Tensor<T>::can_view(from, offset)) return std::nullopt;
    const bool requires_grad = differentiable && nodes_[x.index_].requires_grad;
    std::unique_ptr<const Op<T>> op = requires_grad ? std::make_unique<R>(std::move(rule)) : nullptr;
    return append(Tensor<T>::view(from, offset, shape), std::move(op), requires_grad, &x, 1);
  }

  /// Throws unless v is a live node of this tape; `op` names the caller in the message.
  void check(const Var<T>& v, const char* op) const {
    if (v.tape_ != this)
      throw tape_error(std::string(op) + ": the variable belongs to " + (v.tape_ ? "another tape" : "no tape (empty Var)"));
    if (v.index_ >= nodes_.size() || nodes_[v.index_].serial != v.serial_)
      throw tape_error(std::string(op) + ": stale variable (node " + std::to_string(v.index_) +
                       " was dropped by Tape::rewind or clear)");
  }

 private:
  friend class Var<T>;
  friend class TensorBackward<T>;
  friend class VarBackward<T>;
  template <class U> friend class Backpropagation;
  template <class U> friend void backward(const Var<U>& y);

  struct Node {
    Tensor<T> value;
    std::unique_ptr<const Op<T>> op;  // null for leaves and constants
    std::uint32_t first_input = 0;
    std::uint32_t input_count = 0;
    std::uint64_t serial = 0;
    bool requires_grad = false;
    std::optional<Tensor<T>> grad;  // set by backward(y) on variables
  };

  template <class R>
  Var<T> record_range(Tensor<T> value, const Var<T>* inputs, std::size_t count, R rule) {
    bool needs_grad = false;
    for (std::size_t k = 0; k < count; ++k) {
      check(inputs[k], rule.name());
      needs_grad = needs_grad || nodes_[inputs[k].index_].requires_grad;
    }
    if (!needs_grad) return constant(std::move(value));
    return append(std::move(value), std::make_unique<R>(std::move(rule)), true, inputs, count);
  }

  /// A new node with its inputs' indices; an allocation that fails leaves the tape as it was.
  Var<T> append(Tensor<T> value, std::unique_ptr<const Op<T>> op, bool requires_grad, const Var<T>* inputs = nullptr,
                std::size_t count = 0) {
    if (nodes_.size() >= UINT32_MAX) throw tape_error("Tape: more than 2^32 nodes");
    const auto first = static_cast<std::uint32_t>(inputs_.size());
    try {
      for (std::size_t k = 0; k < count; ++k) inputs_.push_back(inputs[k].index_);
      Node& n = nodes_.emplace_back();
      n.value = std::move(value);
      n.op = std::move(op);
      n.first_input = first;
      n.input_count = static_cast<std::uint32_t>(count);
      n.serial = ++serial_;
      n.requires_grad = requires_grad;
      return Var<T>(this, static_cast<std::uint32_t>(nodes_.size() - 1), n.serial);
    } catch (...) {
      inputs_.resize(first);
      throw;
    }
  }

  const Node& node(const Var<T>& v) const {
    check(v, "Var");
    return nodes_[v.index_];
  }
  Node& node(const Var<T>& v) {
    check(v, "Var");
    return nodes_[v.index_];
  }
  Var<T> handle(std::uint32_t index) { return Var<T>(this, index, nodes_[index].serial); }
  std::uint32_t input(std::uint32_t node, int k) const { return inputs_[nodes_[node].first_input + static_cast<std::uint32_t>(k)]; }

  const Tensor<T>& stored_grad(const Var<T>& v) const {
    const Node& n = node(v);
    if (!n.grad)
      throw tape_error("Var::grad: no gradient was computed for node " + std::to_string(v.index_) +
                       " (call backward(y) on an output that was recorded after this variable)");
    return *n.grad;
  }

  // Nodes never move once recorded (a block arena, not a vector), so a rule may hold a reference to a node's value
  // while it records new nodes.
  NodeArena<Node> nodes_;
  std::vector<std::uint32_t> inputs_;  // input indices of all nodes, in one arena
  std::uint64_t serial_ = 0;
};

/// Scratch recording: when the scope ends — normally or by an exception — the tape is rewound to where it stood
/// when the scope began (or to `mark`), dropping what was recorded in between.
template <class T>
class TapeScope {
 public:
  /// Rewinds to the tape's current position at scope end.
  explicit TapeScope(Tape<T>& tape) : TapeScope(tape, tape.mark()) {}
  TapeScope(Tape<T>& tape, typename Tape<T>::Mark mark) : tape_(tape), mark_(mark) {}  ///< Rewinds to mark at scope end.
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;
  ~TapeScope() {
    if (mark_.nodes <= tape_.size()) tape_.rewind(mark_);  // never throws: the mark lies within the tape
  }

 private:
  Tape<T>& tape_;
  typename Tape<T>::Mark mark_;
};

}  // namespace metagrad
