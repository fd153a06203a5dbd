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
//
// The communicator is a type with
//   int rank() const;  int size() const;
//   void all_gather(std::span<const T> mine, std::span<const std::int64_t> counts, std::span<T> out) const;
//                                                     // every rank's numbers into out, in rank order
//   void agree(std::exception_ptr local_failure) const;  // collective: if any rank failed, all throw its error
// SingleProcess (below) is the one without MPI; metagrad/distributed/communicator.hpp has the MPI one.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
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

/// A node's sum: the loss and the gradient.
template <class T>
struct Part {
  Tensor<T> loss;
  ParamList<Tensor<T>> gradient;
  /// Adds `other` elementwise: the same bits as a new sum, without the allocation.
  void add(const Part& other) {
    loss.array() += other.loss.array();
    for (std::size_t i = 0; i < gradient.size(); ++i) gradient[i].array() += other.gradient[i].array();
  }
};

/// Node's sum, taking the leaves (leaves[s − first] for the shards s inside it).
template <class T>
Part<T> sum_of_leaves(Node node, std::vector<Part<T>>& leaves, std::int64_t first) {
  if (node.hi - node.lo == 1) return std::move(leaves[static_cast<std::size_t>(node.lo - first)]);
  Part<T> sum = sum_of_leaves({node.lo, node.mid()}, leaves, first);
  sum.add(sum_of_leaves({node.mid(), node.hi}, leaves, first));
  return sum;
}

/// Node's sum where the gathered nodes (in `known`, each `width` numbers at its offset: the loss, then the gradient
/// as tree_write_elements lays it out) stop the descent.
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

}  // namespace shard_detail

/// The batch's loss and its gradient with respect to `params`, as the fixed tree's sum over the plan's shards:
/// `shard_loss(vars, shard)` gets the parameters as Vars and a Shard and returns that shard's part of the batch loss
/// as a rank-0 Var (e.g. a mean over the shard's rows times shard.fraction()). Each shard runs on its own tape on one
/// of metagrad's threads; with an MPI communicator each rank runs its own shards. Every rank returns the same bits,
/// which are those of the single-process run on any number of threads and ranks. If a shard throws on any rank,
/// every rank throws the same error (the lowest failing rank's) and nothing is returned.
template <class T, class ShardLoss, class Communicator = SingleProcess>
std::pair<Tensor<T>, ParamList<Tensor<T>>> sharded_loss_and_gradient(const ParamList<Tensor<T>>& params,
                                                                     const ShardPlan& plan, ShardLoss&& shard_loss,
                                                                     const Communicator& communicator = {}) {
  using shard_detail::Node;
  using shard_detail::Part;
  const int ranks = communicator.size();
  const auto owned = plan.owned(communicator.rank(), ranks);
  const std::int64_t first = owned.first, end = owned.second;

  std::vector<Part<T>> leaves(static_cast<std::size_t>(end - first));
  std::exception_ptr failure;
  try {
    parallel_for(end - first, [&](std::int64_t i) {
      const Shard shard = plan.shard(first + i);
      auto [loss, gradient] = loss_and_gradient(params, [&](const ParamList<Var<T>>& vars) {
        Var<T> l = shard_loss(vars, shard);
        if (l.shape().size() != 1)
          throw shape_error("sharded_loss_and_gradient: shard " + std::to_string(shard.index) +
                            "'s loss has shape " + l.shape().str() + " (one number expected)");
        return l;
      });
      leaves[static_cast<std::size_t>(i)] = {reshape(std::move(loss), Shape{}), std::move(gradient)};
    });
  } catch (...) {
    failure = std::current_exception();
  }
  communicator.agree(failure);  // collective: every rank gets here, and throws together

  const Node root{0, plan.count()};
  if (ranks == 1) {  // the whole tree is here: nothing to exchange
    Part<T> total = shard_detail::sum_of_leaves(root, leaves, first);
    return {std::move(total.loss), std::move(total.gradient)};
  }
  // Each rank's largest nodes inside its shards: summed here for this rank, gathered for all.
  const std::int64_t width = 1 + tree_element_count(params);  // the loss, then every gradient element
  std::vector<std::pair<Node, std::size_t>> known;
  std::vector<std::int64_t> counts;
  std::size_t offset = 0;
  for (int r = 0; r < ranks; ++r) {
    const auto [r_first, r_end] = plan.owned(r, ranks);
    std::vector<Node> nodes;
    shard_detail::largest_nodes_inside(root, r_first, r_end, nodes);
    for (const Node& node : nodes) {
      known.emplace_back(node, offset);
      offset += static_cast<std::size_t>(width);
    }
    counts.push_back(static_cast<std::int64_t>(nodes.size()) * width);
  }
  std::vector<Node> mine;
  shard_detail::largest_nodes_inside(root, first, end, mine);
  // Tensors, not vectors: their memory comes from metagrad's cache instead of being page-faulted in every step.
  Tensor<T> send = Tensor<T>::uninitialized({static_cast<index_t>(mine.size()) * width});
  for (std::size_t k = 0; k < mine.size(); ++k) {
    const Part<T> node = shard_detail::sum_of_leaves(mine[k], leaves, first);
    T* out = send.data() + static_cast<index_t>(k) * width;
    *out = node.loss.item();
    tree_write_elements(node.gradient, out + 1);
  }
  leaves.clear();
  Tensor<T> gathered = Tensor<T>::uninitialized({static_cast<index_t>(offset)});
  communicator.all_gather(std::span<const T>(send.begin(), send.end()), std::span<const std::int64_t>(counts),
                          std::span<T>(gathered.begin(), gathered.end()));
  const Tensor<T> total = shard_detail::sum_of_known(root, known, gathered, width);
  return {Tensor<T>::scalar(total.data()[0]), tree_read_elements(params, total.data() + 1)};
}

}  // namespace metagrad
