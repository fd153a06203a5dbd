#pragma once
// Shape: the extents of a tensor of rank 0 to 4, row-major.
#include <array>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "metagrad/error.hpp"

namespace metagrad {

using index_t = std::ptrdiff_t;  ///< Extents and indices: signed, as Eigen's.

/// Integer class labels or row indices.
using IndexVector = std::vector<index_t>;

/// The extents of a tensor: rank 0 (a scalar) to max_rank, each extent ≥ 0, row-major.
class Shape {
 public:
  static constexpr int max_rank = 4;  ///< Highest rank a tensor may have.

  /// Rank 0: a scalar with one element.
  Shape() = default;

  /// A shape from its extents, e.g. Shape{batch, features}; throws shape_error on a negative extent or rank > max_rank.
  Shape(std::initializer_list<index_t> extents) {
    if (extents.size() > max_rank)
      throw shape_error("Shape: rank " + std::to_string(extents.size()) + " requested, at most 4 is supported");
    for (index_t e : extents) push_back(e);
  }

  /// Appends one extent (used to build shapes programmatically). Throws when the element count would exceed
  /// `max_elements`, so that size() and every byte count computed from it never overflow.
  void push_back(index_t extent) {
    if (rank_ == max_rank) throw shape_error("Shape: cannot exceed rank 4");
    if (extent < 0) throw shape_error("Shape: negative extent " + std::to_string(extent));
    if (extent > 0 && size() > max_elements / extent)
      throw shape_error("Shape: " + str() + " extended by " + std::to_string(extent) + " would hold more than " +
                        std::to_string(max_elements) + " elements");
    dims_[static_cast<std::size_t>(rank_++)] = extent;
  }

  /// The largest element count a shape may hold: any tensor's size in bytes then fits in an index_t.
  static constexpr index_t max_elements = std::numeric_limits<index_t>::max() / 16;

  int rank() const { return rank_; }  ///< Number of axes (0 for a scalar).
  /// Extent of an axis in [0, rank()).
  index_t operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }

  /// The same shape with the extent of `axis` replaced (checked like push_back).
  Shape with_extent(int axis, index_t extent) const {
    Shape out;
    for (int i = 0; i < rank_; ++i) out.push_back(i == axis ? extent : (*this)[i]);
    return out;
  }

  /// Number of elements (1 for rank 0); never more than max_elements.
  index_t size() const {
    index_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }

  /// Row-major stride of an axis, in elements.
  index_t stride(int axis) const {
    index_t s = 1;
    for (int i = axis + 1; i < rank_; ++i) s *= dims_[static_cast<std::size_t>(i)];
    return s;
  }

  /// The same shape with `axis` removed (keepdims = false) or set to 1 (keepdims = true).
  Shape reduced(int axis, bool keepdims) const {
    Shape out;
    for (int i = 0; i < rank_; ++i) {
      if (i != axis) out.push_back((*this)[i]);
      else if (keepdims) out.push_back(1);
    }
    return out;
  }

  /// The same shape with a new axis of extent 1 inserted at `axis`.
  Shape inserted(int axis) const {
    Shape out;
    for (int i = 0; i <= rank_; ++i) {
      if (i == axis) out.push_back(1);
      if (i < rank_) out.push_back((*this)[i]);
    }
    return out;
  }

  /// Same rank and same extents.
  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a[i] != b[i]) return false;
    return true;
  }

  /// "[128, 784]"; "[]" for a scalar.
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string((*this)[i]);
    return s + "]";
  }

 private:
  std::array<index_t, max_rank> dims_{};
  int rank_ = 0;
};

/// Resolves a possibly negative axis (-1 is the last) and checks it is in range for `shape`.
inline int normalize_axis(const char* op, int axis, const Shape& shape) {
  const int r = shape.rank();
  const int a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r)
    throw value_error(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for a tensor of shape " +
                      shape.str());
  return a;
}

/// The numpy broadcast of two shapes (extents aligned from the right; 1 stretches), or a shape_error naming `op`.
inline Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const int r = a.rank() > b.rank() ? a.rank() : b.rank();
  Shape out;
  for (int i = 0; i < r; ++i) {
    const int ia = i - (r - a.rank()), ib = i - (r - b.rank());
    const index_t ea = ia >= 0 ? a[ia] : 1, eb = ib >= 0 ? b[ib] : 1;
    if (ea != eb && ea != 1 && eb != 1)
      throw shape_error(std::string(op) + ": shapes " + a.str() + " and " + b.str() +
                        " do not broadcast (extents must match or be 1, aligned from the last axis)");
    out.push_back(ea == 1 ? eb : ea);
  }
  return out;
}

}  // namespace metagrad
