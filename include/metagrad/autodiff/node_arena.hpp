#pragma once
// NodeArena<N>: the tape's node storage — a list of fixed-size blocks, so that appending never moves an element.
// A std::vector would reallocate as the tape grows and leave every reference into it dangling; a backward rule
// that reads an input's value and then records new nodes (every create_graph sweep) holds exactly such a
// reference. Here a reference to element i stays valid until the arena shrinks below i + 1.
#include <bit>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "metagrad/error.hpp"

namespace metagrad {

/// The tape's node storage: fixed-size blocks, so a node never moves while more are appended.
template <class N>
class NodeArena {
 public:
  /// Blocks of per_block nodes (a power of two); throws value_error otherwise.
  explicit NodeArena(std::size_t per_block) {
    if (per_block == 0 || !std::has_single_bit(per_block))
      throw value_error("Tape: nodes_per_block must be a power of two, got " + std::to_string(per_block));
    shift_ = static_cast<unsigned>(std::countr_zero(per_block));
  }
  NodeArena(const NodeArena&) = delete;
  NodeArena& operator=(const NodeArena&) = delete;
  ~NodeArena() {
    shrink(0);
    for (N* b : blocks_) std::allocator<N>().deallocate(b, per_block());
  }

  std::size_t size() const { return size_; }  ///< Number of nodes.
  /// Node i; its address is stable until the arena shrinks below it.
  N& operator[](std::size_t i) { return blocks_[i >> shift_][i & (per_block() - 1)]; }
  const N& operator[](std::size_t i) const { return blocks_[i >> shift_][i & (per_block() - 1)]; }  ///< Node i.

  /// A default-constructed element at the end. Blocks emptied by `shrink` are reused; a new block is allocated
  /// only when every block is full (and nothing changes if that allocation or the construction throws).
  N& emplace_back() {
    if (size_ == blocks_.size() * per_block()) {
      blocks_.reserve(blocks_.size() + 1);
      blocks_.push_back(std::allocator<N>().allocate(per_block()));
    }
    N* slot = &(*this)[size_];
    std::construct_at(slot);
    ++size_;
    return *slot;
  }

  /// Destroys elements [n, size), last first; keeps their blocks for reuse.
  void shrink(std::size_t n) {
    while (size_ > n) std::destroy_at(&(*this)[--size_]);
  }

 private:
  std::size_t per_block() const { return std::size_t(1) << shift_; }

  std::vector<N*> blocks_;  // each holds per_block() elements, of which the first `size_` overall are alive
  std::size_t size_ = 0;
  unsigned shift_ = 0;
};

}  // namespace metagrad
