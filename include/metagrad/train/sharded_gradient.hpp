#pragma once
// A batch's loss and gradient as a sum over a fixed number of virtual shards of the batch, added up along a fixed
// binary tree over the shards: the same bits however many threads or MPI ranks compute them.
//
// A ShardPlan cuts a batch of B examples into S shards of near-equal size (shard s is rows [s·B/S, (s+1)·B/S)). Each
// shard's loss and gradient is computed on its own tape; then node [lo, hi) of the tree is node [lo, mid) + node
// [mid, hi) with mid = lo + (hi − lo)/2, and the root is the batch's. With several ranks, rank r computes the shards
// [r·S/N, (r+1)·S/N) and the largest tree nodes inside them, the ranks exchange those nodes (all-gather), and every
// rank adds up the rest of the tree. Every node is the same sum of the same leaves on any number of ranks, so the
// result is the same bits as the single-process run — which depends on S, never on N — and the exchange moves at
// most about 2·log2(S) gradients per rank (one each at N = 2 with S a power of two, as much as an allreduce).
// On a tape (a step a metagradient differentiates) the loss and gradient are one recorded node, whose backward sums
// the shards' vector–Jacobian products along the same tree, exchanged the same way: metagradients keep the bits too.
//
// The communicator is a type with
//   int rank() const;  int size() const;
//   void all_gather(std::span<const T> mine, std::span<const std::int64_t> counts, std::span<T> out) const;
//                                                     // every rank's numbers into out, in rank order
//   void agree(std::exception_ptr local_failure) const;  // collective: if any rank failed, all throw its error
// SingleProcess (below) is the one without MPI; metagrad/distributed/communicator.hpp has the MPI one.
#include <algorithm>
#include <concepts>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "metagrad/error.hpp"
#include "metagrad/meta/run.hpp"
#include "metagrad/threads.hpp"

namespace metagrad {

/// Rows [begin, end) of a batch of batch_size examples: one virtual shard.
struct Shard {
  std::int64_t index = 0;  ///< Which shard of the plan, from 0.
  index_t begin = 0;       ///< The shard's first example in the batch.
  index_t end = 0;         ///< One past its last example.
  index_t batch_size = 0;  ///< Examples in the whole batch.
  /// Examples in the shard.
  index_t size() const { return end - begin; }
  /// The shard's share of the batch: a mean over the shard's examples times this adds up to the batch's mean.
  double fraction() const { return static_cast<double>(size()) / static_cast<double>(batch_size); }
};

/// A batch of batch_size examples cut into `shards` virtual shards of near-equal size.
class ShardPlan {
 public:
  /// Throws value_error unless 1 ≤ shards ≤ batch_size.
  ShardPlan(index_t batch_size, std::int64_t shards) : batch_size_(batch_size), shards_(shards) {
    if (shards < 1 || shards > batch_size)
      throw value_error("ShardPlan: " + std::to_string(shards) + " shards of a batch of " + std::to_string(batch_size) +
                        " examples (1 to batch size expected, so that no shard is empty)");
  }
  /// Examples in a batch.
  index_t batch_size() const { return batch_size_; }
  /// Number of shards.
  std::int64_t count() const { return shards_; }
  /// Shard s (0 ≤ s < count()).
  Shard shard(std::int64_t s) const {
    if (s < 0 || s >= shards_)
      throw value_error("ShardPlan: shard " + std::to_string(s) + " of " + std::to_string(shards_));
    return {s, first_example(s), first_example(s + 1), batch_size_};
  }
  /// The shards [first, second) that rank `rank` of `ranks` computes; value_error when there are more ranks than
  /// shards (a rank would have nothing to do, and the plan must not depend on the rank count).
  std::pair<std::int64_t, std::int64_t> owned(int rank, int ranks) const {
    if (ranks < 1 || ranks > shards_ || rank < 0 || rank >= ranks)
      throw value_error("ShardPlan: rank " + std::to_string(rank) + " of " + std::to_string(ranks) + " with " +
                        std::to_string(shards_) + " shards (at least as many shards as ranks expected)");
    return {rank * shards_ / ranks, (rank + 1) * shards_ / ranks};
  }

 private:
  index_t first_example(std::int64_t s) const { return static_cast<index_t>(s * batch_size_ / shards_); }

  index_t batch_size_;
  std::int64_t shards_;
};

/// One process, no MPI: every shard is computed here (on metagrad's threads), nothing is exchanged.
struct SingleProcess {
  /// Always 0.
  int rank() const { return 0; }
  /// Always 1.
  int size() const { return 1; }
  /// Its own numbers, into `out`.
  template <class T>
  void all_gather(std::span<const T> mine, std::span<const std::int64_t>, std::span<T> out) const {
    if (out.size() != mine.size()) throw value_error("SingleProcess::all_gather: output of the wrong size");
    std::copy(mine.begin(), mine.end(), out.begin());
  }
  /// Rethrows its own failure.
  void agree(std::exception_ptr local_failure) const {
    if (local_failure) std::rethrow_exception(local_failure);
  }
};

/// Runs compute(i, out) for the items i of 0 … count − 1 that are this rank's (items [count·r/N, count·(r+1)/N) on
/// rank r of N: a rank may have none) on metagrad's threads; compute writes item i's `width` numbers to out. Returns
/// every item's numbers, row i of a [count, width] tensor, on every rank — the same bits as computing every item in
/// one process. If compute throws on any rank, every rank throws the same error (the lowest failing rank's, and on a
/// rank the lowest failing item's).
template <class T, class Communicator, class Compute>
Tensor<T> gather_items(const Communicator& communicator, std::int64_t count, std::int64_t width, Compute&& compute) {
  const int ranks = communicator.size();
  const auto first_item = [&](int r) { return count * r / ranks; };
  const std::int64_t first = first_item(communicator.rank()), end = first_item(communicator.rank() + 1);
  Tensor<T> mine = Tensor<T>::uninitialized({(end - first) * width});
  std::exception_ptr failure;
  try {
    parallel_for(end - first, [&](std::int64_t i) { compute(first + i, mine.data() + i * width); });
  } catch (...) {
    failure = std::current_exception();
  }
  communicator.agree(failure);
  std::vector<std::int64_t> counts;
  for (int r = 0; r < ranks; ++r) counts.push_back((first_item(r + 1) - first_item(r)) * width);
  Tensor<T> all = Tensor<T>::uninitialized({count, width});
  communicator.all_gather(std::span<const T>(mine.begin(), mine.end()), std::span<const std::int64_t>(counts),
                          std::span<T>(all.begin(), all.end()));
  return all;
}

namespace shard_detail {

/// Shards [lo, hi): a node of the fixed reduction tree.
struct Node {
  std::int64_t lo, hi;
  std::int64_t mid() const { return lo + (hi - lo) / 2; }
};

/// The largest nodes of the tree under `node` that lie inside shards [first, end), left to right.
inline void largest_nodes_inside(Node node, std::int64_t first, std::int64_t end, std::vector<Node>& out) {
  if (end <= node.lo || node.hi <= first) return;
  if (first <= node.lo && node.hi <= end) {
    out.push_back(node);
    return;
  }
  largest_nodes_inside({node.lo, node.mid()}, first, end, out);
  largest_nodes_inside({node.mid(), node.hi}, first, end, out);
}

/// Node's sum, in place: `rows` holds `width` numbers for each shard from `first`, and node [lo, hi)'s sum ends up in
/// row lo − first (left half plus right half, each summed the same way first).
template <class T>
void sum_rows(Node node, T* rows, std::int64_t first, std::int64_t width) {
  if (node.hi - node.lo == 1) return;
  sum_rows({node.lo, node.mid()}, rows, first, width);
  sum_rows({node.mid(), node.hi}, rows, first, width);
  T* into = rows + (node.lo - first) * width;
  const T* from = rows + (node.mid() - first) * width;
  for (std::int64_t i = 0; i < width; ++i) into[i] += from[i];
}

/// Node's sum where the gathered nodes (in `known`, each `width` numbers at its offset in `gathered`) stop the descent.
template <class T>
Tensor<T> sum_of_known(Node node, const std::vector<std::pair<Node, std::size_t>>& known, const Tensor<T>& gathered,
                       std::int64_t width) {
  for (const auto& [k, offset] : known)
    if (k.lo == node.lo && k.hi == node.hi) {
      Tensor<T> copy = Tensor<T>::uninitialized({width});
      std::copy(gathered.data() + offset, gathered.data() + offset + width, copy.data());
      return copy;
    }
  Tensor<T> sum = sum_of_known({node.lo, node.mid()}, known, gathered, width);
  sum.array() += sum_of_known({node.mid(), node.hi}, known, gathered, width).array();
  return sum;
}

/// The fixed tree's sum over the plan's shards of `width` numbers each — row(shard, out) writes a shard's — on every
/// rank the same bits, those of one process computing every shard. Each rank computes its own shards on metagrad's
/// threads and the largest tree nodes inside them; the ranks exchange those nodes and each adds up the rest of the
/// tree. If row throws on any rank, every rank throws the lowest failing rank's error.
template <class T, class Communicator, class Row>
Tensor<T> tree_sum(const ShardPlan& plan, std::int64_t width, Row&& row, const Communicator& communicator) {
  const int ranks = communicator.size();
  const auto owned = plan.owned(communicator.rank(), ranks);
  const std::int64_t first = owned.first, end = owned.second;
  // A tensor, not a vector: its memory comes from metagrad's cache instead of being page-faulted in every step.
  Tensor<T> rows = Tensor<T>::uninitialized({(end - first) * width});
  std::exception_ptr failure;
  try {
    parallel_for(end - first, [&](std::int64_t i) { row(plan.shard(first + i), rows.data() + i * width); });
  } catch (...) {
    failure = std::current_exception();
  }
  communicator.agree(failure);  // collective: every rank gets here, and throws together

  const Node root{0, plan.count()};
  if (ranks == 1) {  // the whole tree is here: nothing to exchange
    sum_rows(root, rows.data(), first, width);
    Tensor<T> sum = Tensor<T>::uninitialized({width});
    std::copy_n(rows.data(), width, sum.data());
    return sum;
  }
  std::vector<std::pair<Node, std::size_t>> known;  // every rank's largest nodes, at their offsets in the exchange
  std::vector<std::int64_t> counts;
  std::size_t offset = 0;
  for (int r = 0; r < ranks; ++r) {
    const auto [r_first, r_end] = plan.owned(r, ranks);
    std::vector<Node> nodes;
    largest_nodes_inside(root, r_first, r_end, nodes);
    for (const Node& node : nodes) {
      known.emplace_back(node, offset);
      offset += static_cast<std::size_t>(width);
    }
    counts.push_back(static_cast<std::int64_t>(nodes.size()) * width);
  }
  std::vector<Node> mine;
  largest_nodes_inside(root, first, end, mine);
  Tensor<T> send = Tensor<T>::uninitialized({static_cast<index_t>(mine.size()) * width});
  for (std::size_t k = 0; k < mine.size(); ++k) {
    sum_rows(mine[k], rows.data(), first, width);
    const T* sum = rows.data() + (mine[k].lo - first) * width;
    std::copy(sum, sum + width, send.data() + static_cast<index_t>(k) * width);
  }
  Tensor<T> gathered = Tensor<T>::uninitialized({static_cast<index_t>(offset)});
  communicator.all_gather(std::span<const T>(send.begin(), send.end()), std::span<const std::int64_t>(counts),
                          std::span<T>(gathered.begin(), gathered.end()));
  return sum_of_known(root, known, gathered, width);
}

/// A shard's loss, checked to be one number.
template <class T>
Var<T> checked_loss(Var<T> loss, const Shard& shard) {
  if (loss.shape().size() != 1)
    throw shape_error("sharded_loss_and_gradient: shard " + std::to_string(shard.index) + "'s loss has shape " +
                      loss.shape().str() + " (one number expected)");
  return reshape(loss, Shape{});
}

/// Shard `shard`'s loss and gradient with respect to the parameters, written to `out` (the loss first), from a
/// recording on this thread's scratch tape; the inputs are constants.
template <class T, class ShardLoss>
void shard_row(const std::vector<Tensor<T>>& params, const std::vector<Tensor<T>>& inputs, const Shard& shard,
               ShardLoss& shard_loss, std::type_identity_t<T>* out) {
  thread_local Tape<T> tape;
  const TapeScope<T> scratch(tape);
  ParamList<Var<T>> p;
  std::vector<Var<T>> in;
  for (const auto& x : params) p.push_back(tape.variable(x));
  for (const auto& x : inputs) in.push_back(tape.constant(x));
  const Var<T> loss = checked_loss(shard_loss(std::as_const(p), std::as_const(in), shard), shard);
  *out = loss.value().data()[0];
  tree_write_elements(grad(loss, p), out + 1);
}

/// One shard's loss and recorded gradient (create_graph) on a tape of its own, kept for the backward.
template <class T>
struct ShardRecording {
  Tape<T> tape;
  ParamList<Var<T>> params;
  std::vector<Var<T>> inputs;
  Var<T> loss;
  std::vector<Var<T>> gradient;
  bool released = false;

  /// Records the shard and writes its loss and gradient to `out` (the loss first).
  template <class ShardLoss>
  ShardRecording(const std::vector<Tensor<T>>& param_values, const std::vector<Tensor<T>>& input_values,
                 const Shard& shard, ShardLoss& shard_loss, T* out) {
    for (const auto& x : param_values) params.push_back(tape.variable(x));
    for (const auto& x : input_values) inputs.push_back(tape.variable(x));
    loss = checked_loss(shard_loss(std::as_const(params), std::as_const(inputs), shard), shard);
    gradient = grad(loss, params, create_graph);
    *out = loss.value().item();
    out += 1;
    for (const auto& g : gradient) out = std::copy(g.value().begin(), g.value().end(), out);
  }

  /// The shard's part of the vector–Jacobian product with the adjoint [l̄, ḡ] of (loss, gradient): the gradient of
  /// l̄·loss + ⟨gradient, ḡ⟩ with respect to the parameters, then the inputs, written to `out`. Once: it releases the
  /// recording.
  void vector_jacobian_product(const T* adjoint, T* out) {
    if (released)
      throw tape_error("sharded_loss_and_gradient: the backward through a recorded step runs once (it releases the "
                       "shards' recordings, on the threads that use them); record the step again to differentiate it again");
    const struct Release {  // the recording's memory goes back to this thread's cache, which records the next step
      ShardRecording& r;
      ~Release() {
        r.tape.clear();
        r.released = true;
      }
    } release{*this};
    Var<T> total = adjoint[0] * loss;
    const T* next = adjoint + 1;
    for (const Var<T>& g : gradient) {
      Tensor<T> a = Tensor<T>::uninitialized(g.shape());
      std::copy_n(next, a.size(), a.data());
      next += a.size();
      total = total + dot(g, tape.constant(std::move(a)));
    }
    std::vector<Var<T>> xs = params;
    xs.insert(xs.end(), inputs.begin(), inputs.end());
    tree_write_elements(grad(total, xs), out);
  }
};

/// The recorded node of the taped sharded_loss_and_gradient: its value is [loss, gradient's elements]; it keeps its
/// rank's shard recordings, and its backward takes each one's vector–Jacobian product and sums them along the same
/// tree, exchanged like the forward, so the metagradient through it is the same bits on any number of threads and
/// ranks.
template <class T, class Communicator>
class ShardedGradientOp final : public Op<T> {
 public:
  ShardedGradientOp(ShardPlan plan, std::vector<std::unique_ptr<ShardRecording<T>>> recordings, std::int64_t first,
                    const Communicator& communicator)
      : plan_(plan), recordings_(std::move(recordings)), first_(first), communicator_(stored(communicator)) {}
  const char* name() const override { return "sharded_loss_and_gradient"; }

  void backward(TensorBackward<T>& ctx) const override {
    std::int64_t width = 0;
    for (int k = 0; k < ctx.inputs(); ++k) width += ctx.value(k).size();
    const Tensor<T>& adjoint = ctx.grad();
    const Tensor<T> total = tree_sum<T>(plan_, width, [&](const Shard& shard, T* out) {
      recordings_[static_cast<std::size_t>(shard.index - first_)]->vector_jacobian_product(adjoint.data(), out);
    }, communicator());
    const T* next = total.data();
    for (int k = 0; k < ctx.inputs(); ++k) {
      Tensor<T> g = Tensor<T>::uninitialized(ctx.value(k).shape());
      std::copy_n(next, g.size(), g.data());
      next += g.size();
      if (ctx.needs(k)) ctx.accumulate(k, std::move(g));
    }
  }
  void backward(VarBackward<T>&) const override {
    throw tape_error("sharded_loss_and_gradient: its recorded gradient can be differentiated once (a metagradient "
                     "through the step), not twice");
  }

 private:
  // A stateless communicator (SingleProcess) is kept by value, so a default argument may be one; an MPI one by address.
  static constexpr bool by_value = std::is_empty_v<Communicator>;
  using Stored = std::conditional_t<by_value, Communicator, const Communicator*>;
  static Stored stored(const Communicator& c) {
    if constexpr (by_value) return c;
    else return &c;
  }
  const Communicator& communicator() const {
    if constexpr (by_value) return communicator_;
    else return *communicator_;
  }

  ShardPlan plan_;
  std::vector<std::unique_ptr<ShardRecording<T>>> recordings_;  // shard first_ + i's
  std::int64_t first_;
  Stored communicator_;
};

template <class T>
std::vector<Tensor<T>> values_of(const std::vector<Var<T>>& vars) {
  std::vector<Tensor<T>> out;
  for (const auto& v : vars) out.push_back(v.value());
  return out;
}

}  // namespace shard_detail

/// The batch's loss and its gradient with respect to `params`, as the fixed tree's sum over the plan's shards:
/// `shard_loss(params, inputs, shard)` gets the parameters and `inputs` (tensors the loss reads that are not
/// parameters: data weights, the batch's inputs) as Vars and a Shard, and returns that shard's part of the batch loss
/// as a rank-0 Var (e.g. a mean over the shard's rows times shard.fraction()). Each shard runs on its own tape on one
/// of metagrad's threads, so shard_loss must be safe to call concurrently; with an MPI communicator each rank runs its
/// own shards. Every rank returns the same bits, which are those of the single-process run on any number of threads
/// and ranks. If a shard throws on any rank, every rank throws the same error (the lowest failing rank's) and nothing
/// is returned.
template <class T, class ShardLoss, class Communicator = SingleProcess>
std::pair<Tensor<T>, ParamList<Tensor<T>>> sharded_loss_and_gradient(const ParamList<Tensor<T>>& params,
                                                                     const std::vector<Tensor<T>>& inputs,
                                                                     const ShardPlan& plan, ShardLoss&& shard_loss,
                                                                     const Communicator& communicator = {}) {
  const std::int64_t width = 1 + tree_element_count(params);  // the loss, then every gradient element
  const Tensor<T> total = shard_detail::tree_sum<T>(plan, width, [&](const Shard& shard, T* out) {
    shard_detail::shard_row(params, inputs, shard, shard_loss, out);
  }, communicator);
  return {Tensor<T>::scalar(total.data()[0]), tree_read_elements(params, total.data() + 1)};
}

/// The same, recorded on the parameters' tape (the step of a metagradient): the loss and the gradient are Vars,
/// differentiable once with respect to `params` and `inputs`. Each of this rank's shards is recorded on a tape of its
/// own (its gradient with create_graph), which the node keeps until the outer tape drops it; the backward takes each
/// shard's vector–Jacobian product (a Hessian–vector product for the parameters) and sums them along the same tree,
/// exchanged between the ranks like the forward, so a metagradient is the same bits on any number of threads and ranks.
/// The node's value is the gradient's elements after the loss, in one block; the loss and the gradient are views of it.
template <class T, class ShardLoss, class Communicator = SingleProcess>
std::pair<Var<T>, ParamList<Var<T>>> sharded_loss_and_gradient(const ParamList<Var<T>>& params, const std::vector<Var<T>>& inputs,
                                                               const ShardPlan& plan, ShardLoss&& shard_loss,
                                                               const Communicator& communicator = {}) {
  if (params.empty()) throw value_error("sharded_loss_and_gradient: no parameters to take the gradient with respect to");
  const std::vector<Tensor<T>> param_values = shard_detail::values_of(params), input_values = shard_detail::values_of(inputs);
  const std::int64_t width = 1 + tree_element_count(param_values);
  const std::int64_t first = plan.owned(communicator.rank(), communicator.size()).first;
  std::vector<std::unique_ptr<shard_detail::ShardRecording<T>>> recordings(
      static_cast<std::size_t>(plan.owned(communicator.rank(), communicator.size()).second - first));
  Tensor<T> total = shard_detail::tree_sum<T>(plan, width, [&](const Shard& shard, T* out) {
    recordings[static_cast<std::size_t>(shard.index - first)] =
        std::make_unique<shard_detail::ShardRecording<T>>(param_values, input_values, shard, shard_loss, out);
  }, communicator);
  std::vector<Var<T>> all = params;
  all.insert(all.end(), inputs.begin(), inputs.end());
  const Var<T> flat = params.front().tape().record(
      std::move(total), all, shard_detail::ShardedGradientOp<T, Communicator>(plan, std::move(recordings), first, communicator));
  ParamList<Var<T>> gradient;
  index_t offset = 1;
  for (const auto& p : params) {
    gradient.push_back(reshape(slice(flat, 0, offset, p.value().size()), p.shape()));
    offset += p.value().size();
  }
  return {reshape(slice(flat, 0, 0, 1), Shape{}), std::move(gradient)};
}

/// Without inputs: `shard_loss(params, shard)`, on plain tensors or on a tape.
template <class P, class ShardLoss, class Communicator = SingleProcess>
  requires std::same_as<P, Tensor<typename P::value_type>> || std::same_as<P, Var<typename P::value_type>>
std::pair<P, ParamList<P>> sharded_loss_and_gradient(const ParamList<P>& params, const ShardPlan& plan, ShardLoss&& shard_loss,
                                                     const Communicator& communicator = {}) {
  using T = typename P::value_type;
  auto without_inputs = [&shard_loss](const ParamList<Var<T>>& p, const std::vector<Var<T>>&, const Shard& shard) {
    return shard_loss(p, shard);
  };
  return sharded_loss_and_gradient(params, std::vector<P>{}, plan, without_inputs, communicator);
}

}  // namespace metagrad
